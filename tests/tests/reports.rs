//! Reports that stand on their own (issue 14, item 5), against the real server on demo
//! data (SQLite, or PostgreSQL with `WARDCHECK_TEST_BACKEND=postgres`):
//!
//! - the PDF's text (read with poppler's `pdftotext`) holds every answer of the
//!   inspection beside its item, every note, not-applicable reason, photo hash, finding,
//!   comment, trust response and link of the sign-off chain; the PDF kept is the one
//!   downloaded, and its SHA-256 is in the audit log;
//! - a trust lead's report holds released comments only, and a reviewer's report is
//!   never theirs to list or download (the same 404 as none); another trust's lead, a
//!   malformed hash and admins are refused, audited, and nothing is kept;
//! - the evidence pack's manifest verifies with `sha256sum -c` (and fails when a file is
//!   changed), and holds every photo as stored, the report and the CSVs; a trust's pack
//!   has a folder per inspection.

mod api_support;

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};

use api_support::*;
use reqwest::StatusCode;
use serde_json::Value;
use wardcheck_server::demo::CONTRADICTION_INSPECTION;

/// The text of a PDF, as `pdftotext` reads it, with runs of white space made one space.
fn pdf_text(pdf: &[u8]) -> String {
    let mut child = Command::new("pdftotext")
        .args(["-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pdftotext runs (poppler-utils, installed by scripts/setup)");
    let mut stdin = child.stdin.take().unwrap();
    let bytes = pdf.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &bytes));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "pdftotext reads the PDF: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `s` with every white space removed (for hashes a line break may cut).
fn dense(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// What the report writes for an answer.
fn answer_words(a: &Value) -> String {
    match a["kind"].as_str().unwrap() {
        "met" => "Met".into(),
        "partly-met" => "Partly met".into(),
        "not-met" => "Not met".into(),
        "not-applicable" => format!("Not applicable. Reason: {}", a["reason"].as_str().unwrap()),
        // As Rust writes an f64: 91, 92.5.
        "number" => format!("{}", a["value"].as_f64().unwrap()),
        _ => a["value"].as_str().unwrap().to_string(),
    }
}

fn flat(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn make(t: &Demo, token: &str, id: &str) -> Value {
    let res = t
        .post(token, &format!("/api/v1/inspections/{id}/reports"))
        .await;
    json_ok(res, StatusCode::CREATED, "make a report").await
}

async fn download(t: &Demo, token: &str, sha: &str) -> Vec<u8> {
    let res = t.get(token, &format!("/api/v1/reports/{sha}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert_eq!(res.headers()["x-content-sha256"], sha);
    res.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_holds_every_answer_and_the_sign_off_chain() {
    let t = Demo::start().await;
    let (rita, lead, other, admin) = (
        t.token("rita").await,
        t.token("lead-rj1").await,
        t.token("lead-rth").await,
        t.token("admin").await,
    );
    let id = CONTRADICTION_INSPECTION.to_string();
    let detail = json_ok(
        t.get(&rita, &format!("/api/v1/inspections/{id}")).await,
        StatusCode::OK,
        "detail",
    )
    .await;
    let insp = &detail["inspection"];

    let made = make(&t, &rita, &id).await;
    let sha = made["sha256"].as_str().unwrap().to_string();
    assert_eq!(made["audience"], "regulator");
    let pdf = download(&t, &rita, &sha).await;
    assert_eq!(sha256(&pdf), sha, "the PDF kept is the one made");
    assert_eq!(made["size"].as_u64().unwrap(), pdf.len() as u64);
    let text = pdf_text(&pdf);
    let packed = dense(&text);

    // Every answer, beside its own item: the text from the item's id to the next item's
    // holds the answer and the note.
    let responses = insp["responses"].as_object().unwrap();
    let mut checked = 0;
    let ids: Vec<&String> = responses.keys().collect();
    for (item, r) in responses {
        let start = text
            .find(&format!("{item} "))
            .unwrap_or_else(|| panic!("item {item} is in the report"));
        let rest = &text[start + item.len()..];
        // The next item's heading, whichever comes first.
        let end = ids
            .iter()
            .filter(|o| **o != item)
            .filter_map(|o| rest.find(&format!(" {o} ")))
            .min()
            .unwrap_or(rest.len());
        let part = &rest[..end];
        for v in r["answer"]["values"].as_array().into_iter().flatten() {
            let words = flat(&answer_words(&v["value"]));
            assert!(
                part.contains(&words),
                "{item}: answer {words:?} in {part:?}"
            );
            assert!(
                part.contains(v["by"].as_str().unwrap()),
                "{item}: who answered"
            );
            checked += 1;
        }
        let note = flat(r["note"].as_str().unwrap_or(""));
        assert!(part.contains(&note), "{item}: note {note:?} in {part:?}");
        for p in r["photos"].as_array().into_iter().flatten() {
            let hash = p["value"]["hash"].as_str().unwrap();
            assert!(packed.contains(hash), "{item}: photo {hash}");
        }
    }
    assert!(checked > 10, "the demo answers many items ({checked})");
    // Device answers, each under its device's host name.
    for d in insp["devices"].as_array().unwrap() {
        let host = d["hostname"]["values"][0]["value"].as_str().unwrap();
        assert!(text.contains(host), "device {host}");
        for o in d["observations"].as_object().unwrap().values() {
            let v = &o["values"][0]["value"];
            let words = flat(&answer_words(&v["answer"]));
            assert!(text.contains(&format!("{host} {words}")), "{host}: {words}");
        }
    }
    for f in insp["findings"].as_array().unwrap() {
        assert!(text.contains(&flat(f["text"].as_str().unwrap())), "finding");
        assert!(
            text.contains(&flat(f["recommendation"].as_str().unwrap())),
            "recommendation"
        );
    }
    for c in insp["comments"].as_array().unwrap() {
        assert!(text.contains(&flat(c["text"].as_str().unwrap())), "comment");
    }
    for a in detail["trust_response"]["findings"]
        .as_object()
        .unwrap()
        .values()
    {
        let answer = flat(a["values"][0]["value"].as_str().unwrap());
        assert!(text.contains(&answer), "the trust's response {answer:?}");
    }
    let links = insp["signoffs"].as_array().unwrap();
    assert!(!links.is_empty(), "the demo inspection is signed off");
    for s in links {
        assert!(text.contains(&flat(s["statement"].as_str().unwrap())));
        assert!(text.contains(s["by"].as_str().unwrap()));
        for h in ["content", "hash"] {
            let hash = s[h].as_str().unwrap();
            assert!(packed.contains(hash), "the link's {h} {hash}");
        }
    }
    assert!(text.contains("Sign-off chain"));
    assert!(text.contains(&format!("page 1 of {}", made["pages"])));

    // The report's hash is in the audit log.
    let audit = t.s.cli(&["audit", "tail", "-n", "300"], "");
    assert!(
        audit.lines().any(|l| l.contains("\texport\t")
            && l.contains(&id)
            && l.contains("report")
            && l.contains(&sha)),
        "the report is audited with its SHA-256:\n{audit}"
    );
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\texport\t") && l.contains("download") && l.contains(&sha)),
        "the download is audited"
    );

    // The trust lead's report: released comments only.
    let theirs = make(&t, &lead, &id).await;
    assert_eq!(theirs["audience"], "trust");
    let their_text = pdf_text(&download(&t, &lead, theirs["sha256"].as_str().unwrap()).await);
    let comments = insp["comments"].as_array().unwrap();
    let internal: Vec<String> = comments
        .iter()
        .filter(|c| c["released"].is_null())
        .map(|c| flat(c["text"].as_str().unwrap()))
        .collect();
    assert!(!internal.is_empty(), "the demo has an internal comment");
    for c in &internal {
        assert!(text.contains(c), "the reviewer's report holds it");
        assert!(!their_text.contains(c), "the trust's never does: {c}");
    }
    // ... nor may the trust lead list or fetch the reviewer's.
    let listed = json_ok(
        t.get(&lead, &format!("/api/v1/inspections/{id}/reports"))
            .await,
        StatusCode::OK,
        "list",
    )
    .await;
    let shas: Vec<&str> = listed["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["sha256"].as_str().unwrap())
        .collect();
    assert_eq!(shas, [theirs["sha256"].as_str().unwrap()]);
    let missing = "0".repeat(64);
    let (code, msg) = error(
        t.get(&lead, &format!("/api/v1/reports/{sha}")).await,
        StatusCode::NOT_FOUND,
        "the reviewer's report, for the trust",
    )
    .await;
    let none = error(
        t.get(&lead, &format!("/api/v1/reports/{missing}")).await,
        StatusCode::NOT_FOUND,
        "no such report",
    )
    .await;
    assert_eq!((code, msg), none, "the same 404");
    error(
        t.get(&rita, "/api/v1/reports/not-a-hash").await,
        StatusCode::NOT_FOUND,
        "a malformed hash",
    )
    .await;

    // Refused: another trust's lead (404, as for an inspection that does not exist),
    // admins (403). Nothing is kept.
    let kept_before = t.s.sql_row("SELECT count(*) FROM reports").unwrap()[0].clone();
    let other_trust = error(
        t.post(&other, &format!("/api/v1/inspections/{id}/reports"))
            .await,
        StatusCode::NOT_FOUND,
        "another trust's lead",
    )
    .await;
    let nowhere = error(
        t.post(
            &other,
            &format!("/api/v1/inspections/{}/reports", uuid::Uuid::new_v4()),
        )
        .await,
        StatusCode::NOT_FOUND,
        "no such inspection",
    )
    .await;
    assert_eq!(other_trust, nowhere);
    error(
        t.post(&admin, &format!("/api/v1/inspections/{id}/reports"))
            .await,
        StatusCode::FORBIDDEN,
        "admin",
    )
    .await;
    // RJ1's lead's own report (made for the trust): still not RTH's lead's to read.
    let other_lead = error(
        t.get(
            &other,
            &format!("/api/v1/reports/{}", theirs["sha256"].as_str().unwrap()),
        )
        .await,
        StatusCode::NOT_FOUND,
        "another trust's lead downloads",
    )
    .await;
    assert_eq!(other_lead, none, "the same 404");
    assert_eq!(
        t.s.sql_row("SELECT count(*) FROM reports").unwrap()[0],
        kept_before,
        "nothing kept for a refusal"
    );
    assert_eq!(kept_before.as_deref(), Some("2"));
    let audit = t.s.cli(&["audit", "tail", "-n", "300"], "");
    assert!(
        audit
            .lines()
            .any(|l| l.starts_with_user("lead-rth") && l.contains("\tdenied\t") && l.contains(&id)),
        "the refusal is audited:\n{audit}"
    );
}

trait AuditLine {
    fn starts_with_user(&self, user: &str) -> bool;
}

impl AuditLine for &str {
    /// Whether the line's actor (its second column) is `user`.
    fn starts_with_user(&self, user: &str) -> bool {
        self.split('\t').nth(1) == Some(user)
    }
}

/// The files of a ZIP, by path.
fn unzip(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a ZIP");
    let mut out = BTreeMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        out.insert(f.name().expect("a UTF-8 name").to_string(), b);
    }
    out
}

/// Writes `files` under a new folder and runs `sha256sum -c SHA256SUMS` there.
fn sha256sum_checks(files: &BTreeMap<String, Vec<u8>>) -> bool {
    let dir = tempfile::tempdir().unwrap();
    for (path, bytes) in files {
        assert!(!path.contains(".."), "no path leaves the pack: {path}");
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    Command::new("sha256sum")
        .args(["--quiet", "--strict", "-c", "SHA256SUMS"])
        .current_dir(dir.path())
        // A failed check prints the file's name: the test says what it expected.
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evidence_pack_manifest_verifies() {
    let t = Demo::start().await;
    let (rita, other, admin) = (
        t.token("rita").await,
        t.token("lead-rth").await,
        t.token("admin").await,
    );
    let id = CONTRADICTION_INSPECTION.to_string();
    let detail = json_ok(
        t.get(&rita, &format!("/api/v1/inspections/{id}")).await,
        StatusCode::OK,
        "detail",
    )
    .await;

    let res = t
        .post(&rita, &format!("/api/v1/inspections/{id}/evidence-pack"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/zip");
    let zip_sha = res.headers()["x-content-sha256"]
        .to_str()
        .unwrap()
        .to_string();
    let bytes = res.bytes().await.unwrap();
    assert_eq!(sha256(&bytes), zip_sha);
    let mut files = unzip(&bytes);
    assert!(sha256sum_checks(&files), "the manifest verifies");

    // Every photo as the evidence store holds it, named by its id.
    let mut photos = 0;
    for r in detail["inspection"]["responses"]
        .as_object()
        .unwrap()
        .values()
    {
        for p in r["photos"].as_array().into_iter().flatten() {
            let hash = p["value"]["hash"].as_str().unwrap();
            let stored = t
                .get(&rita, &format!("/api/v1/blobs/{hash}"))
                .await
                .bytes()
                .await
                .unwrap();
            assert_eq!(
                files[&format!("photos/{hash}.jpg")],
                stored.to_vec(),
                "{hash}"
            );
            photos += 1;
        }
    }
    assert!(photos > 0);
    // The report, listed as kept, with the hash the manifest names.
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let report_sha = manifest["about"]["report_sha256"].as_str().unwrap();
    assert_eq!(sha256(&files["report.pdf"]), report_sha);
    let listed = json_ok(
        t.get(&rita, &format!("/api/v1/inspections/{id}/reports"))
            .await,
        StatusCode::OK,
        "list",
    )
    .await;
    assert_eq!(listed["reports"][0]["sha256"], report_sha);
    assert!(pdf_text(&files["report.pdf"]).contains("Sign-off chain"));
    // The CSVs: a row per answered item and per device observation, a row per finding.
    let answers = String::from_utf8(files["answers.csv"].clone()).unwrap();
    let mut csv = csv::Reader::from_reader(answers.as_bytes());
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    let item_rows = detail["inspection"]["responses"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| rows.iter().any(|r| &r[1] == k.as_str() && !r[4].is_empty()))
        .count();
    assert_eq!(
        item_rows,
        detail["inspection"]["responses"]
            .as_object()
            .unwrap()
            .values()
            .filter(|r| !r["answer"].is_null())
            .count()
    );
    let findings = String::from_utf8(files["findings.csv"].clone()).unwrap();
    assert_eq!(
        findings.lines().count(),
        1 + detail["inspection"]["findings"].as_array().unwrap().len()
    );
    // Changing a file breaks the check.
    files.get_mut("answers.csv").unwrap().push(b'x');
    assert!(!sha256sum_checks(&files), "a changed file fails the check");

    // The pack is audited with the ZIP's SHA-256.
    let audit = t.s.cli(&["audit", "tail", "-n", "300"], "");
    assert!(
        audit.lines().any(|l| l.contains("\texport\t")
            && l.contains("evidence_pack")
            && l.contains(&zip_sha)),
        "{audit}"
    );

    // A trust's pack: a folder per inspection, each verifying.
    let res = t.post(&rita, "/api/v1/trusts/RJ1/evidence-pack").await;
    assert_eq!(res.status(), StatusCode::OK);
    let files = unzip(&res.bytes().await.unwrap());
    assert!(sha256sum_checks(&files));
    assert!(files.contains_key(&format!("{id}/report.pdf")));
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["about"]["trust"], "RJ1");

    // Another trust's lead gets the 404 of a trust with nothing; admins 403.
    let theirs = error(
        t.post(&other, "/api/v1/trusts/RJ1/evidence-pack").await,
        StatusCode::NOT_FOUND,
        "another trust",
    )
    .await;
    let nothing = error(
        t.post(&other, "/api/v1/trusts/RXX/evidence-pack").await,
        StatusCode::NOT_FOUND,
        "no inspections",
    )
    .await;
    assert_eq!(theirs, nothing);
    error(
        t.post(&other, &format!("/api/v1/inspections/{id}/evidence-pack"))
            .await,
        StatusCode::NOT_FOUND,
        "another trust's inspection",
    )
    .await;
    error(
        t.post(&admin, "/api/v1/trusts/RJ1/evidence-pack").await,
        StatusCode::FORBIDDEN,
        "admin",
    )
    .await;
}

/// The rows of a CSV, each a list of cells (rows may differ in length).
fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_export_is_made_by_the_server_and_audited() {
    let t = Demo::start().await;
    let (rita, lead, other, admin) = (
        t.token("rita").await,
        t.token("lead-rj1").await,
        t.token("lead-rth").await,
        t.token("admin").await,
    );
    let id = CONTRADICTION_INSPECTION.to_string();
    let detail = json_ok(
        t.get(&rita, &format!("/api/v1/inspections/{id}")).await,
        StatusCode::OK,
        "detail",
    )
    .await;
    let insp = &detail["inspection"];
    let finding = insp["findings"][0]["id"].as_str().unwrap().to_string();

    // The trust lead answers a finding with what a spreadsheet would run as a formula.
    let formula = r#"=HYPERLINK("http://evil.example","open")"#;
    let res =
        t.c.put(t.s.url(&format!("/api/v1/inspections/{id}/responses/{finding}")))
            .bearer_auth(&lead)
            .json(&serde_json::json!({ "text": formula }))
            .send()
            .await
            .unwrap();
    assert!(res.status().is_success(), "the response: {}", res.status());

    let path = format!("/api/v1/inspections/{id}/export.csv");
    let res = t.get(&rita, &path).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let sha = res.headers()["x-content-sha256"]
        .to_str()
        .unwrap()
        .to_string();
    let bytes = res.bytes().await.unwrap().to_vec();
    assert_eq!(sha256(&bytes), sha, "the header names the file's hash");
    let body = bytes
        .strip_prefix("\u{feff}".as_bytes())
        .expect("a byte order mark, for Excel");
    let rows = csv_rows(body);
    assert_eq!(rows[0][..3], ["record", "section", "item"]);

    // Every inspection-scope answer, on its item's row.
    let mut checked = 0;
    for (item, r) in insp["responses"].as_object().unwrap() {
        let Some(first) = r["answer"]["values"][0]["value"].as_object() else {
            continue;
        };
        let row = rows
            .iter()
            .find(|row| row[0] == "answer" && row[2] == *item && row[4].is_empty())
            .unwrap_or_else(|| panic!("a row for {item}"));
        let words = answer_words(&Value::Object(first.clone()));
        assert!(row[5].contains(&words), "{item}: {words:?} in {row:?}");
        checked += 1;
    }
    assert!(checked > 10, "the demo answers many items ({checked})");
    // The verdict of the demo's contradiction is in the file.
    assert!(
        rows.iter()
            .any(|r| r[0] == "answer" && r.iter().any(|c| c == "Contradicted")),
        "a contradicted verdict"
    );
    // The findings' table, the trust's response neutralised: text, never a formula.
    let header = rows
        .iter()
        .find(|r| r[0] == "record" && r.iter().any(|c| c == "trust_response"))
        .expect("the findings' header");
    let col = header.iter().position(|c| c == "trust_response").unwrap();
    let row = rows
        .iter()
        .find(|r| r[0] == "finding" && r[1] == finding)
        .expect("the finding's row");
    assert_eq!(row[col], format!("'{formula}"));
    for r in &rows {
        for c in r {
            assert!(
                !c.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a live formula: {c:?}"
            );
        }
    }

    // The trust lead exports too (what the trust lead reads); the hash of each is audited.
    let theirs = t.get(&lead, &path).await;
    assert_eq!(theirs.status(), StatusCode::OK);
    let their_sha = theirs.headers()["x-content-sha256"]
        .to_str()
        .unwrap()
        .to_string();
    let audit = t.s.cli(&["audit", "tail", "-n", "300"], "");
    for (who, sha, audience) in [
        ("rita", &sha, "regulator"),
        ("lead-rj1", &their_sha, "trust"),
    ] {
        assert!(
            audit.lines().any(|l| l.starts_with_user(who)
                && l.contains("\texport\t")
                && l.contains(&id)
                && l.contains("\tcsv\t")
                && l.contains(sha.as_str())
                && l.contains(audience)),
            "{who}'s export is audited with its SHA-256:\n{audit}"
        );
    }

    // Refused: another trust's lead (the same 404 as no inspection), admins (403); both
    // audited, and neither gets a file.
    let refused = error(
        t.get(&other, &path).await,
        StatusCode::NOT_FOUND,
        "another trust",
    )
    .await;
    let nowhere = error(
        t.get(
            &other,
            &format!("/api/v1/inspections/{}/export.csv", uuid::Uuid::new_v4()),
        )
        .await,
        StatusCode::NOT_FOUND,
        "no such inspection",
    )
    .await;
    assert_eq!(refused, nowhere, "the same 404");
    error(t.get(&admin, &path).await, StatusCode::FORBIDDEN, "admin").await;
    let res = t.get("not-a-token", &path).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let audit = t.s.cli(&["audit", "tail", "-n", "300"], "");
    for who in ["lead-rth", "admin"] {
        assert!(
            audit
                .lines()
                .any(|l| l.starts_with_user(who) && l.contains("\tdenied\t") && l.contains(&id)),
            "{who}'s refusal is audited:\n{audit}"
        );
    }
    assert!(
        !audit.lines().any(
            |l| (l.starts_with_user("lead-rth") || l.starts_with_user("admin"))
                && l.contains("\texport\t")
        ),
        "no export for a refusal"
    );
}
