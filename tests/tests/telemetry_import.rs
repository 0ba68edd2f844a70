//! Telemetry feeds against the real server binary (issue 5 §1; RELIABILITY B10): files
//! made here are imported with `wardcheck-server telemetry import` and over
//! `POST /api/v1/telemetry/{kind}`, and what was stored is read back from `telemetry.db`.
//!
//! - a good CSV, and the same rows as JSON Lines, store the same values;
//! - the same file again changes nothing; another file for the same day replaces it;
//! - every bad row (wrong field count, bad UTF-8, a value that does not parse, an unknown
//!   trust, a site outside its trust, a duplicate device id) is reported with its line,
//!   also after a quoted line break, and nothing is imported (counted before and after);
//! - a BOM and quoted line breaks are accepted; a 10 MB field is refused without being
//!   read into memory;
//! - over HTTP, a reviewer imports; an inspector and a trust lead get 403.

mod api_support;

use std::path::{Path, PathBuf};

use api_support::*;
use reqwest::{StatusCode, header};
use serde_json::json;
use wardcheck_server::telemetry::{Kind, Snapshot, TelemetryStore};
use wardcheck_tests::server::Server;

const ENDPOINT_HEADER: &str = "device_id,device_name,os_platform,os_version,os_build,first_seen,\
last_seen,onboarding_status,health_status,exposure_level,missing_security_updates,smb1_enabled,\
bitlocker_on,firewall_domain,firewall_private,firewall_public,credential_guard_running,\
secure_boot_on,is_medical_device,trust,site";

const TRUSTS: &str = "ods_code,name,trust_type,major_trauma_centre,region\n\
RJ1,Guy's and St Thomas' NHS Foundation Trust,acute,yes,London\n\
RTH,Oxford University Hospitals NHS Foundation Trust,acute,yes,South East\n";

/// One endpoint row with plausible values.
fn ep(id: &str, name: &str, trust: &str, site: &str) -> String {
    format!(
        "{id},{name},Windows10,22H2,19045,2024-01-02T03:04:05Z,2026-11-28T10:00:00Z,onboarded,\
         Active,Low,2,no,yes,yes,yes,no,,yes,no,{trust},{site}"
    )
}

/// The same row as a JSON object, written as a feed in JSON Lines would.
fn ep_json(id: &str, name: &str, trust: &str, site: &str) -> String {
    json!({
        "device_id": id, "device_name": name, "os_platform": "windows10", "os_version": "22H2",
        "os_build": 19045, "first_seen": "2024-01-02T04:04:05+01:00",
        "last_seen": "2026-11-28T10:00:00Z", "onboarding_status": "Onboarded",
        "health_status": "Active", "exposure_level": "Low", "missing_security_updates": 2,
        "smb1_enabled": false, "bitlocker_on": true, "firewall_domain": "yes",
        "firewall_private": "1", "firewall_public": false, "credential_guard_running": null,
        "secure_boot_on": true, "is_medical_device": false, "trust": trust, "site": site
    })
    .to_string()
}

fn csv(rows: &[String]) -> String {
    let mut out = format!("{ENDPOINT_HEADER}\n");
    for r in rows {
        out.push_str(r);
        out.push('\n');
    }
    out
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `telemetry import`: (success, stdout, stderr).
fn import(s: &Server, kind: &str, file: &Path, as_of: &str) -> (bool, String, String) {
    s.try_cli(
        &[
            "telemetry",
            "import",
            "--kind",
            kind,
            file.to_str().unwrap(),
            "--as-of",
            as_of,
        ],
        "",
    )
}

/// Imports and insists it worked; returns stdout.
fn import_ok(s: &Server, kind: &str, file: &Path, as_of: &str) -> String {
    let (ok, out, err) = import(s, kind, file, as_of);
    assert!(
        ok,
        "importing {} should succeed: {out}{err}",
        file.display()
    );
    assert!(
        err.is_empty(),
        "with no terminal there are no progress lines, and a good file has no problems: {err:?}"
    );
    out
}

/// The server's telemetry, opened beside it (in its data folder, whichever backend keeps
/// the record).
fn storage(s: &Server) -> wardcheck_server::telemetry::TelemetryDb {
    wardcheck_server::telemetry::TelemetryDb::open(s.data()).unwrap()
}

fn rows(s: &Server, kind: Kind) -> u64 {
    storage(s).telemetry_rows(kind).unwrap()
}

fn snapshots(s: &Server) -> Vec<Snapshot> {
    storage(s).snapshots().unwrap()
}

/// A server with the two trusts imported, and a scratch folder for files.
fn server() -> (Server, tempfile::TempDir) {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let out = import_ok(
        &s,
        "trusts",
        &write(dir.path(), "trusts.csv", TRUSTS),
        "2026-11-28",
    );
    assert!(
        out.starts_with("imported 2 trust rows for 2026-11-28"),
        "{out}"
    );
    (s, dir)
}

/// The stored endpoint rows of a snapshot, every column, in line order.
fn stored(s: &Server, snapshot: i64) -> Vec<Vec<rusqlite::types::Value>> {
    let db = rusqlite::Connection::open(s.data().join("telemetry.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT * FROM endpoints WHERE snapshot = ?1 ORDER BY line")
        .unwrap();
    let n = stmt.column_count();
    stmt.query_map([snapshot], |r| {
        (0..n)
            .map(|i| r.get::<_, rusqlite::types::Value>(i))
            .collect()
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

fn latest(s: &Server, kind: Kind) -> Snapshot {
    storage(s)
        .latest_snapshot(kind)
        .unwrap()
        .unwrap_or_else(|| panic!("a {kind} snapshot exists"))
}

#[test]
fn a_good_csv_and_the_same_rows_as_json_lines_store_the_same_values() {
    let (s, dir) = server();
    let devices = [
        ("d1", "GSTT-LT-0001.gstt.nhs.uk", "RJ1", "RJ121"),
        ("d2", "GSTT-WS-0002", "RJ1", "RJ122"),
        ("d3", "OUH-LT-0003.ouh.nhs.uk", "RTH", "RTH01"),
    ];
    let text = csv(&devices.map(|(a, b, c, d)| ep(a, b, c, d)));
    let out = import_ok(
        &s,
        "endpoints",
        &write(dir.path(), "e.csv", text),
        "2026-11-28",
    );
    assert!(
        out.starts_with("imported 3 endpoint rows for 2026-11-28 in "),
        "the summary says what was imported: {out}"
    );
    let lines: Vec<String> = devices.map(|(a, b, c, d)| ep_json(a, b, c, d)).to_vec();
    let jsonl = format!("{}\n", lines.join("\n"));
    let out = import_ok(
        &s,
        "endpoints",
        &write(dir.path(), "e.jsonl", jsonl),
        "2026-11-29",
    );
    assert!(
        out.starts_with("imported 3 endpoint rows for 2026-11-29"),
        "{out}"
    );

    let snaps = snapshots(&s);
    let ids: Vec<i64> = snaps
        .iter()
        .filter(|s| s.kind == Kind::Endpoints)
        .map(|s| s.id)
        .collect();
    assert_eq!(ids.len(), 2, "one snapshot per day: {snaps:?}");
    let (from_csv, from_jsonl) = (stored(&s, ids[0]), stored(&s, ids[1]));
    assert_eq!(from_csv.len(), 3);
    // Every column but the snapshot id and the line (the CSV has a header line) is the
    // same, whichever way the file was written.
    for (a, b) in from_csv.iter().zip(&from_jsonl) {
        assert_eq!(
            a[2..],
            b[2..],
            "a CSV row and its JSON twin store the same values"
        );
    }
    let db = rusqlite::Connection::open(s.data().join("telemetry.db")).unwrap();
    let (host, first, plat, onb, cg, fw): (String, String, String, String, Option<i64>, i64) = db
        .query_row(
            "SELECT hostname_lower, first_seen, os_platform, onboarding_status,
                    credential_guard_running, firewall_public
             FROM endpoints WHERE snapshot = ?1 AND device_id = 'd1'",
            [ids[1]],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(
        host, "gstt-lt-0001",
        "matched by the first DNS label, lower case"
    );
    assert_eq!(first, "2024-01-02T03:04:05Z", "times are stored in UTC");
    assert_eq!(plat, "Windows10", "vocabularies are stored as documented");
    assert_eq!(onb, "onboarded");
    assert_eq!(cg, None, "an empty value is unknown, not false");
    assert_eq!(fw, 0);
    assert_eq!(
        latest(&s, Kind::Endpoints).id,
        ids[1],
        "the newest day is the latest"
    );
    assert_eq!(rows(&s, Kind::Endpoints), 6);

    // The counts written with each snapshot agree with its rows.
    let group = |sql: &str| -> Vec<(String, String, i64, i64, i64, i64)> {
        let mut stmt = db.prepare(sql).unwrap();
        stmt.query_map([ids[0]], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    };
    let counted = group(
        "SELECT trust, site, sum(devices), sum(bitlocker_off), sum(credential_guard_unknown),
                sum(firewall_off) FROM endpoint_counts WHERE snapshot = ?1
          GROUP BY trust, site ORDER BY site",
    );
    let scanned = group(
        "SELECT trust, site, count(*), sum(bitlocker_on = 0), sum(credential_guard_running IS NULL),
                sum(firewall_domain = 0 OR firewall_private = 0 OR firewall_public = 0)
           FROM endpoints WHERE snapshot = ?1 GROUP BY trust, site ORDER BY site",
    );
    assert_eq!(
        counted, scanned,
        "endpoint_counts sums to what the rows say"
    );
    assert_eq!(counted.len(), 3, "one group per site here: {counted:?}");
    assert_eq!(counted[0], ("RJ1".into(), "RJ121".into(), 1, 0, 1, 1));

    // The main connection sees the tables too (telemetry.db is attached to it).
    let main = rusqlite::Connection::open(s.data().join("wardcheck.db")).unwrap();
    main.execute(
        "ATTACH DATABASE ?1 AS telemetry",
        [s.data().join("telemetry.db").to_str().unwrap()],
    )
    .unwrap();
    let n: i64 = main
        .query_row(
            "SELECT count(*) FROM endpoints WHERE trust = 'RJ1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 4);
}

#[test]
fn the_same_file_again_changes_nothing_and_another_file_replaces_the_day() {
    let (s, dir) = server();
    let first = write(
        dir.path(),
        "e.csv",
        csv(&[ep("d1", "a", "RJ1", "RJ121"), ep("d2", "b", "RJ1", "RJ121")]),
    );
    import_ok(&s, "endpoints", &first, "2026-11-28");
    let before = snapshots(&s);

    let out = import_ok(&s, "endpoints", &first, "2026-11-28");
    assert!(
        out.starts_with(
            "already imported: this file is the endpoints snapshot for 2026-11-28 (2 rows"
        ),
        "{out}"
    );
    assert!(out.contains("nothing changed"), "{out}");
    assert_eq!(
        snapshots(&s),
        before,
        "no snapshot was added, replaced or touched"
    );
    assert_eq!(rows(&s, Kind::Endpoints), 2);

    // The same file for another day is another snapshot.
    import_ok(&s, "endpoints", &first, "2026-11-27");
    assert_eq!(rows(&s, Kind::Endpoints), 4);

    let second = write(dir.path(), "e2.csv", csv(&[ep("d9", "z", "RTH", "RTH02")]));
    let out = import_ok(&s, "endpoints", &second, "2026-11-28");
    let old = &before.iter().find(|b| b.kind == Kind::Endpoints).unwrap();
    assert!(
        out.starts_with("imported 1 endpoint row for 2026-11-28")
            && out.contains(&format!(
                "this replaced the endpoints snapshot for 2026-11-28 imported before (2 rows, sha256 {})",
                old.sha256
            )),
        "the summary says the day's snapshot was replaced: {out}"
    );
    let now = latest(&s, Kind::Endpoints);
    assert_ne!(now.id, old.id);
    assert_eq!(now.rows, 1);
    assert!(
        !snapshots(&s).iter().any(|x| x.id == old.id),
        "the replaced snapshot is gone"
    );
    assert_eq!(
        rows(&s, Kind::Endpoints),
        3,
        "the old day's rows went with it: 1 new + 2 of the other day"
    );
    assert!(stored(&s, old.id).is_empty());
    let db = rusqlite::Connection::open(s.data().join("telemetry.db")).unwrap();
    let counts: i64 = db
        .query_row(
            "SELECT count(*) FROM endpoint_counts WHERE snapshot = ?1",
            [old.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(counts, 0, "the replaced snapshot's counts went with it");
}

#[test]
fn every_bad_row_is_reported_with_its_line_and_nothing_is_imported() {
    let (s, dir) = server();
    let good = write(
        dir.path(),
        "good.csv",
        csv(&[ep("d0", "x", "RJ1", "RJ121")]),
    );
    import_ok(&s, "endpoints", &good, "2026-11-28");
    let (before_rows, before) = (rows(&s, Kind::Endpoints), snapshots(&s));

    let mut text = format!("{ENDPOINT_HEADER}\n").into_bytes();
    let mut line = |bytes: &[u8]| {
        text.extend_from_slice(bytes);
        text.push(b'\n');
    };
    line(ep("d1", "ok-1", "RJ1", "RJ121").as_bytes()); // 2
    line(b"d2,too-few-fields,Windows10"); // 3: wrong field count
    line(
        &[
            b"d3,bad-",
            &[0xff, 0xfe][..],
            ep("", "", "RJ1", "RJ121").split_at(1).1.as_bytes(),
        ]
        .concat(),
    ); // 4: bad UTF-8
    line(ep("d4", "\"GSTT-LT\n-0004\"", "RJ1", "RJ121").as_bytes()); // 5-6: quoted line break
    line(ep("d5", "ok-5", "RZZ", "RZZ01").as_bytes()); // 7: unknown trust
    line(ep("d1", "again", "RJ1", "RJ122").as_bytes()); // 8: duplicate of line 2
    line(ep("d6", "ok-6", "RJ1", "RTH01").as_bytes()); // 9: site of another trust
    line(
        ep("d7", "ok-7", "RJ1", "RJ121")
            .replace("19045", "19045.3803")
            .replace("2024-01-02T03:04:05Z", "someday")
            .replace(",Low,", ",Severe,")
            .as_bytes(),
    ); // 10: two bad values (and an exposure level this build does not know: a warning)
    let bad = write(dir.path(), "bad.csv", &text);
    let (ok, out, err) = import(&s, "endpoints", &bad, "2026-11-28");
    assert!(!ok, "a file with bad rows fails: {out}{err}");
    let f = bad.display();
    for expected in [
        format!("{f}:3: 3 field(s) where the header has 21"),
        format!("{f}:4: device_name: not valid UTF-8 (at byte 4 of the field)"),
        format!("{f}:7: trust: RZZ is not a known trust"),
        format!("{f}:8: device_id: duplicate \"d1\" (first on line 2)"),
        format!("{f}:9: site: site \"RTH01\" does not belong to trust RJ1"),
        format!(
            "{f}:10: os_build: \"19045.3803\" is not a whole number; first_seen: \"someday\" is not an RFC 3339"
        ),
    ] {
        assert!(
            err.contains(&expected),
            "stderr should hold {expected:?}:\n{err}"
        );
    }
    assert!(
        !err.contains(":5:") && !err.contains(":6:"),
        "the record with a quoted line break is good, and later line numbers count its two lines:\n{err}"
    );
    assert!(
        err.contains("6 bad rows; nothing imported"),
        "one summary at the end: {err}"
    );
    assert!(out.is_empty(), "nothing on stdout: {out}");
    assert_eq!(rows(&s, Kind::Endpoints), before_rows, "no row was written");
    assert_eq!(
        snapshots(&s),
        before,
        "the day's snapshot is the one imported before"
    );
}

#[test]
fn a_bom_and_quoted_line_breaks_are_accepted() {
    let (s, dir) = server();
    let text = format!(
        "\u{feff}{}",
        csv(&[
            ep("d1", "\"WS, with a comma\"", "RJ1", "RJ121"),
            ep("d2", "\"two\nlines\"", "RJ1", "RJ121"),
            ep("d3", "after", "RJ1", "RJ121"),
        ])
    );
    let out = import_ok(
        &s,
        "endpoints",
        &write(dir.path(), "bom.csv", text),
        "2026-11-28",
    );
    assert!(out.starts_with("imported 3 endpoint rows"), "{out}");
    let rows = stored(&s, latest(&s, Kind::Endpoints).id);
    let text = |v: &rusqlite::types::Value| match v {
        rusqlite::types::Value::Text(t) => t.clone(),
        other => panic!("text expected: {other:?}"),
    };
    // Columns: snapshot, line, trust, site, device_id, device_name, ...
    assert_eq!(
        text(&rows[0][4]),
        "d1",
        "the BOM is not part of the first column's name"
    );
    assert_eq!(text(&rows[0][5]), "WS, with a comma");
    assert_eq!(text(&rows[1][5]), "two\nlines");
    let lines: Vec<&rusqlite::types::Value> = rows.iter().map(|r| &r[1]).collect();
    assert_eq!(
        lines,
        [2, 3, 5]
            .map(rusqlite::types::Value::Integer)
            .iter()
            .collect::<Vec<_>>(),
        "each row keeps the line its record starts on"
    );
}

#[test]
fn json_lines_bad_rows_and_many_bad_rows_are_all_counted() {
    let (s, dir) = server();
    let good = ep_json("d1", "a", "RJ1", "RJ121");
    let mut text = Vec::new();
    text.extend_from_slice(format!("{good}\n").as_bytes()); // 1
    text.extend_from_slice(good.replace("\"trust\"", "\"trusts\"").as_bytes()); // 2: unknown key
    text.extend_from_slice(b"\n{\"device_id\": \n"); // 3: not JSON
    let long = format!("{{\"device_id\":\"{}\"}}\n", "x".repeat(200 * 1024));
    text.extend_from_slice(long.as_bytes()); // 4: a line over the limit
    text.extend_from_slice(
        &[
            &good.as_bytes()[..20],
            &[0xc3, 0x28],
            &good.as_bytes()[20..],
            b"\n",
        ]
        .concat(),
    ); // 5
    let f = write(dir.path(), "bad.jsonl", &text);
    let (ok, _, err) = import(&s, "endpoints", &f, "2026-11-28");
    assert!(!ok);
    let f = f.display();
    for expected in [
        format!("{f}:2: unknown field \"trusts\""),
        format!("{f}:3: not a JSON object"),
        format!("{f}:4: a line longer than 131072 bytes"),
        format!("{f}:5: not valid UTF-8"),
    ] {
        assert!(
            err.contains(&expected),
            "stderr should hold {expected:?}:\n{err}"
        );
    }
    assert!(err.contains("4 bad rows; nothing imported"), "{err}");

    // 150 rows for a trust that does not exist: 100 listed, all counted.
    let many: Vec<String> = (0..150)
        .map(|i| ep(&format!("m{i}"), "x", "RZZ", "RZZ01"))
        .collect();
    let f = write(dir.path(), "many.csv", csv(&many));
    let (ok, _, err) = import(&s, "endpoints", &f, "2026-11-28");
    assert!(!ok);
    let listed = err
        .lines()
        .filter(|l| l.contains("not a known trust"))
        .count();
    assert_eq!(listed, 100, "the first 100 are listed:\n{err}");
    assert!(
        err.contains(&format!("{}:2: ", f.display())),
        "from the first"
    );
    assert!(err.contains("... and 50 more bad rows"), "{err}");
    assert!(err.contains("150 bad rows; nothing imported"), "{err}");
    assert_eq!(rows(&s, Kind::Endpoints), 0);
    assert!(snapshots(&s).iter().all(|x| x.kind == Kind::Trusts));
}

#[test]
fn other_feeds_and_refusals_before_reading() {
    let (s, dir) = server();
    let net = "device_id,trust,site,vendor,model,firmware,vendor_supported,last_rule_review,\
               admin_interface_exposed\n\
               fw-1,RJ1,RJ121,Palo Alto,PA-5220,10.2.4,true,2026-03-01,no\n\
               fw-2,RTH,RTH01,Cisco,ASA 5506,9.8(4),false,,yes\n";
    let out = import_ok(
        &s,
        "network",
        &write(dir.path(), "n.csv", net),
        "2026-11-28",
    );
    assert!(out.starts_with("imported 2 network device rows"), "{out}");
    let alerts = "alert_id,trust,issued,acknowledged,closed\n\
                  HSA-2026-001,RJ1,2026-11-01T09:00:00Z,2026-11-02T10:00:00Z,\n\
                  HSA-2026-001,RTH,2026-11-01T09:00:00Z,,\n\
                  HSA-2026-002,RTH,2026-11-01T09:00:00Z,2026-10-01,\n\
                  HSA-2026-001,RTH,2026-11-01T09:00:00Z,,2026-11-20\n";
    let (ok, _, err) = import(
        &s,
        "alerts",
        &write(dir.path(), "a.csv", alerts),
        "2026-11-28",
    );
    assert!(!ok);
    assert!(
        err.contains(":4: acknowledged: acknowledged before the alert was issued")
            && err.contains(
                ":5: alert_id: duplicate alert \"HSA-2026-001\" for trust RTH (first on line 3)"
            ),
        "{err}"
    );
    assert_eq!(rows(&s, Kind::Alerts), 0);
    assert_eq!(rows(&s, Kind::Network), 2);

    // A trusts file updates what it names and adds the rest; it never removes one.
    let more = "ods_code,name,trust_type,major_trauma_centre,region\n\
                RRU,London Ambulance Service NHS Trust,ambulance,no,London\n\
                RJ1,Guy's and St Thomas',acute,true,London\n";
    import_ok(
        &s,
        "trusts",
        &write(dir.path(), "t2.csv", more),
        "2026-11-29",
    );
    let trusts: Vec<String> = storage(&s)
        .trusts()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(
        trusts,
        [
            "Guy's and St Thomas'",
            "London Ambulance Service NHS Trust",
            "Oxford University Hospitals NHS Foundation Trust"
        ]
    );

    let header_only = write(dir.path(), "empty.csv", format!("{ENDPOINT_HEADER}\n"));
    let (ok, _, err) = import(&s, "endpoints", &header_only, "2026-11-28");
    assert!(!ok && err.contains("a header but no rows"), "{err}");
    let wrong_header = write(dir.path(), "h.csv", "device_id,name\nx,y\n");
    let (ok, _, err) = import(&s, "endpoints", &wrong_header, "2026-11-28");
    assert!(
        !ok && err.contains(
            ":1: bad header row: unknown column \"name\"; missing column(s): device_name,"
        ),
        "{err}"
    );
    let (ok, _, err) = import(&s, "endpoints", &dir.path().join("e.txt"), "2026-11-28");
    assert!(
        !ok && err.contains("name it .csv, .jsonl or .json"),
        "{err}"
    );
    let (ok, _, err) = import(&s, "endpoints", &header_only, "2999-01-01");
    assert!(
        !ok && err.contains("as_of 2999-01-01 is in the future"),
        "{err}"
    );
}

#[test]
fn a_10_mb_field_is_refused_in_bounded_memory() {
    let (s, dir) = server();
    let huge = "A".repeat(10 * 1024 * 1024);
    let text = csv(&[
        ep("d1", "ok", "RJ1", "RJ121"),
        ep("d2", &format!("\"{huge}\""), "RJ1", "RJ121"),
        ep("d3", "ok", "RJ1", "RJ121"),
    ]);
    let f = write(dir.path(), "huge.csv", &text);
    let (ok, _, err) = import(&s, "endpoints", &f, "2026-11-28");
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "{}:3: a record longer than 131072 bytes (a field this large is refused); the rest of the file was not read",
            f.display()
        )),
        "the record is named by its line, and why: {err}"
    );
    assert_eq!(rows(&s, Kind::Endpoints), 0, "nothing imported");

    // Over HTTP, with a field ten times larger, the server's peak memory must not grow
    // by anything like the field. (Larger than 10 MB because the server already had a
    // peak of tens of MB from signing in, Argon2 among it, which a 10 MB buffer could
    // reuse without raising the peak.)
    let huge = "A".repeat(100 * 1024 * 1024);
    let text = csv(&[
        ep("d1", "ok", "RJ1", "RJ121"),
        ep("d2", &format!("\"{huge}\""), "RJ1", "RJ121"),
    ]);
    drop(huge);
    let pid = s.pid().expect("the server runs");
    let peak = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc")
    };
    s.add_user("rita", "reviewer");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = client();
        let rita = token(&c, &s, "rita").await;
        let before = peak();
        let res = c
            .post(s.url("/api/v1/telemetry/endpoints?as_of=2026-11-28"))
            .bearer_auth(&rita)
            .header(header::CONTENT_TYPE, "text/csv")
            .body(text)
            .send()
            .await
            .unwrap();
        let v = json_ok(res, StatusCode::UNPROCESSABLE_ENTITY, "a 100 MB field").await;
        assert_eq!(v["bad_rows"][0]["line"], 3, "{v}");
        assert_eq!(v["stopped_early"], true, "{v}");
        let grew_kib = peak().saturating_sub(before);
        assert!(
            grew_kib < 16 * 1024,
            "the server's peak memory grew by {grew_kib} KiB for a 100 MB field: it must not hold it"
        );
    });
}

#[tokio::test]
async fn http_imports_for_reviewers_only() {
    let (s, _dir) = server();
    s.add_user("rita", "reviewer")
        .add_user("ann", "inspector")
        .add_user("lead1", "trust-lead:RJ1")
        .add_user("root", "admin");
    let c = client();
    let rita = token(&c, &s, "rita").await;
    let body = csv(&[ep("h1", "a", "RJ1", "RJ121"), ep("h2", "b", "RTH", "RTH01")]);
    let post = |kind: &str, as_of: &str, ct: &str, body: String| {
        c.post(s.url(&format!("/api/v1/telemetry/{kind}?as_of={as_of}")))
            .header(header::CONTENT_TYPE, ct)
            .body(body)
    };

    let res = post("endpoints", "2026-11-28", "text/csv", body.clone())
        .bearer_auth(&rita)
        .send()
        .await
        .unwrap();
    let v = json_ok(res, StatusCode::OK, "a reviewer imports").await;
    assert_eq!(v["outcome"], "imported", "{v}");
    assert_eq!(v["snapshot"]["rows"], 2, "{v}");
    assert_eq!(v["snapshot"]["imported_by"], "rita", "{v}");
    assert!(v["replaced"].is_null(), "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("imported 2 endpoint rows for 2026-11-28"),
        "{v}"
    );

    let res = post("endpoints", "2026-11-28", "text/csv", body.clone())
        .bearer_auth(&rita)
        .send()
        .await
        .unwrap();
    let again = json_ok(res, StatusCode::OK, "the same file again").await;
    assert_eq!(again["outcome"], "already_imported", "{again}");
    assert_eq!(again["snapshot"]["id"], v["snapshot"]["id"]);

    let jsonl = format!("{}\n", ep_json("h3", "c", "RJ1", "RJ121"));
    let res = post("endpoints", "2026-11-28", "application/x-ndjson", jsonl)
        .bearer_auth(&rita)
        .send()
        .await
        .unwrap();
    let replaced = json_ok(res, StatusCode::OK, "JSON lines replace the day").await;
    assert_eq!(
        replaced["replaced"]["id"], v["snapshot"]["id"],
        "{replaced}"
    );
    assert_eq!(rows(&s, Kind::Endpoints), 1);

    let bad = csv(&[ep("h1", "a", "RZZ", "RZZ01")]);
    let res = post("endpoints", "2026-11-28", "text/csv", bad)
        .bearer_auth(&rita)
        .send()
        .await
        .unwrap();
    let refused = json_ok(res, StatusCode::UNPROCESSABLE_ENTITY, "bad rows").await;
    assert_eq!(refused["error"]["code"], "bad_rows", "{refused}");
    assert_eq!(refused["bad_row_count"], 1);
    assert_eq!(refused["bad_rows"][0]["line"], 2);
    assert!(
        refused["bad_rows"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("RZZ is not a known trust"),
        "{refused}"
    );
    assert_eq!(rows(&s, Kind::Endpoints), 1, "nothing imported");

    let before = snapshots(&s);
    for user in ["ann", "lead1"] {
        let t = token(&c, &s, user).await;
        let res = post("endpoints", "2026-11-27", "text/csv", body.clone())
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        let (code, _) = error(res, StatusCode::FORBIDDEN, user).await;
        assert_eq!(code, "forbidden");
    }
    let res = post("endpoints", "2026-11-27", "text/csv", body.clone())
        .send()
        .await
        .unwrap();
    error(res, StatusCode::UNAUTHORIZED, "anonymous").await;
    assert_eq!(snapshots(&s), before, "no refused caller imported anything");

    let root = token(&c, &s, "root").await;
    let res = post("network", "2026-11-27", "text/csv", body.clone())
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    let v = json_ok(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the wrong feed's columns",
    )
    .await;
    assert!(
        v["bad_rows"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("bad header row"),
        "{v}"
    );
    for (kind, as_of, ct, status, code) in [
        (
            "firewalls",
            "2026-11-27",
            "text/csv",
            StatusCode::NOT_FOUND,
            "unknown_kind",
        ),
        (
            "endpoints",
            "27/11/2026",
            "text/csv",
            StatusCode::BAD_REQUEST,
            "bad_query",
        ),
        (
            "endpoints",
            "2026-11-27",
            "application/xml",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ] {
        let res = post(kind, as_of, ct, body.clone())
            .bearer_auth(&root)
            .send()
            .await
            .unwrap();
        let (got, _) = error(res, status, kind).await;
        assert_eq!(got, code);
    }

    let audit = s.cli(&["audit", "tail", "-n", "200"], "");
    let imports: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains("\ttelemetry_import\t"))
        .collect();
    for outcome in ["imported", "already_imported", "replaced", "bad_rows"] {
        assert!(
            imports.iter().any(|l| l.contains("\trita\t")
                && l.contains("telemetry:endpoints@2026-11-28")
                && l.ends_with(&format!("\t{outcome}"))),
            "an audit event for {outcome}:\n{}",
            imports.join("\n")
        );
    }
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\tann\t") && l.contains("\tdenied\t")),
        "the refusal is audited:\n{audit}"
    );
}

/// Issue 12: a vocabulary value this build does not know (a new OS platform, health
/// status, onboarding status or exposure level in a real export) is kept as `other` with
/// a warning naming its line and column; the file is imported, not refused. A bad value
/// of any other kind (a date, a number) still refuses the file.
#[test]
fn an_unknown_vocabulary_value_is_kept_as_other_with_a_warning_naming_its_line() {
    let (s, dir) = server();
    let good = ep("d1", "GSTT-LT-0001", "RJ1", "RJ121");
    let new_platform = ep("d2", "GSTT-LT-0002", "RJ1", "RJ121").replace("Windows10", "WindowsNext");
    let new_health = ep("d3", "GSTT-LT-0003", "RJ1", "RJ122").replace(",Active,", ",Hibernating,");
    let file = write(dir.path(), "e.csv", csv(&[good, new_platform, new_health]));
    let (ok, out, err) = import(&s, "endpoints", &file, "2026-11-28");
    assert!(ok, "the file is imported: {out}{err}");
    let f = file.display();
    assert!(
        err.contains(&format!(
            "{f}:3: warning: os_platform: \"WindowsNext\" is not a known OS platform"
        )) && err.contains(&format!(
            "{f}:4: warning: health_status: \"Hibernating\" is not a known health status"
        )) && err.contains("kept as 'other'"),
        "each warning names its line and column: {err}"
    );
    assert!(
        out.contains("2 values this build does not know kept as 'other'"),
        "{out}"
    );
    let rows = stored(&s, latest(&s, Kind::Endpoints).id);
    let texts: Vec<String> = rows.iter().map(|r| format!("{r:?}")).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("\"d2\"") && t.contains("Text(\"other\")")),
        "the unknown platform is stored as other: {texts:?}"
    );
    // A date that does not parse is still a bad row: nothing imported.
    let bad_date =
        ep("d4", "GSTT-LT-0004", "RJ1", "RJ121").replace("2026-11-28T10:00:00Z", "yesterday");
    let file = write(dir.path(), "bad.csv", csv(&[bad_date]));
    let (ok, _, err) = import(&s, "endpoints", &file, "2026-11-29");
    assert!(!ok && err.contains("last_seen"), "{err}");
}

/// Issue 12: Defender for Endpoint's machine export is read in its own shapes: the API's
/// JSON document (`{"value": [...]}`), JSON lines and CSV with its camelCase names
/// (REFERENCE §7.1). Trust, site, the medical flag and the edition come from machine
/// tags; the configuration the export does not carry is unknown, never off; fields
/// nothing judges by are read and not kept.
#[test]
fn the_machine_export_is_read_in_the_shapes_defender_produces() {
    let (s, dir) = server();
    let machine = |id: &str, name: &str, platform: &str, build: u32, tags: &[&str]| {
        json!({
            "id": id, "computerDnsName": name, "firstSeen": "2024-01-02T03:04:05Z",
            "lastSeen": "2026-11-28T10:00:00.123Z", "osPlatform": platform, "version": "22H2",
            "osProcessor": "x64", "osBuild": build, "lastIpAddress": "10.1.2.3",
            "lastExternalIpAddress": "81.2.69.160", "healthStatus": "Active",
            "onboardingStatus": "Onboarded", "rbacGroupName": "RJ1 laptops",
            "rbacGroupId": 140, "riskScore": "Medium", "exposureLevel": "Low",
            "aadDeviceId": "80fe8ff8-2624-418e-9591-41f0491218f9", "isAadJoined": true,
            "machineTags": tags, "agentVersion": "10.8750.19041.3693"
        })
    };
    let values = [
        machine(
            "m1",
            "gstt-lt-0001.gstt.nhs.uk",
            "Windows10",
            19045,
            &["site:RJ121"],
        ),
        machine(
            "m2",
            "gstt-ct-0002",
            "Windows10",
            19044,
            &["site:RJ122", "medical-device", "edition:IoTEnterpriseS"],
        ),
        machine("m3", "gstt-mac-0003", "macOS", 0, &["site:RJ121"]),
    ];
    let document = json!({
        "@odata.context": "https://api.securitycenter.microsoft.com/api/$metadata#Machines",
        "value": values
    });
    let out = import_ok(
        &s,
        "endpoints",
        &write(dir.path(), "machines.json", document.to_string()),
        "2026-11-28",
    );
    assert!(out.starts_with("imported 3 endpoint rows"), "{out}");
    let rows = stored(&s, latest(&s, Kind::Endpoints).id);
    let text = format!("{rows:?}");
    for expected in [
        "Text(\"RJ121\")",
        "Text(\"RJ122\")",
        "Text(\"iot-ltsc\")",
        "Text(\"Medium\")",
        "Text(\"81.2.69.160\")",
        "Text(\"RJ1 laptops\")",
        "Text(\"80fe8ff8-2624-418e-9591-41f0491218f9\")",
        "Text(\"site:RJ122;medical-device;edition:IoTEnterpriseS\")",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    // The same machines as JSON lines and as the CSV a script writes with the API's names.
    let jsonl: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    let out = import_ok(
        &s,
        "endpoints",
        &write(
            dir.path(),
            "machines.jsonl",
            format!("{}\n", jsonl.join("\n")),
        ),
        "2026-11-29",
    );
    assert!(out.starts_with("imported 3 endpoint rows"), "{out}");
    let csv = "id,computerDnsName,osPlatform,version,osBuild,firstSeen,lastSeen,\
               onboardingStatus,healthStatus,exposureLevel,riskScore,lastIpAddress,\
               lastExternalIpAddress,rbacGroupName,aadDeviceId,machineTags\n\
               m1,gstt-lt-0001,Windows10,22H2,19045,2024-01-02T03:04:05Z,2026-11-28T10:00:00Z,\
               Onboarded,Active,Low,Medium,10.1.2.3,81.2.69.160,RJ1 laptops,,site:RJ121\n";
    let out = import_ok(
        &s,
        "endpoints",
        &write(dir.path(), "m.csv", csv),
        "2026-11-30",
    );
    assert!(out.starts_with("imported 1 endpoint row"), "{out}");
    // The configuration the export does not carry is unknown (NULL), never off.
    let one = stored(&s, latest(&s, Kind::Endpoints).id);
    let nulls = one[0]
        .iter()
        .filter(|v| **v == rusqlite::types::Value::Null)
        .count();
    assert!(
        nulls >= 8,
        "SMBv1, BitLocker, firewall ... not known: {one:?}"
    );

    // A machine with no site tag and no trust column is a bad row that says how to fix it;
    // a bad address is named; a document that is not one of records is refused.
    let no_site = machine("m9", "x", "Windows10", 19045, &["laptop"]);
    let mut bad_ip = machine("m8", "y", "Windows10", 19045, &["site:RJ121"]);
    bad_ip["lastIpAddress"] = json!("10.1.2");
    let file = write(
        dir.path(),
        "bad.json",
        json!({ "value": [no_site, bad_ip] }).to_string(),
    );
    let (ok, _, err) = import(&s, "endpoints", &file, "2026-12-01");
    assert!(!ok, "{err}");
    let f = file.display();
    assert!(
        err.contains(&format!("{f}:1: trust: missing"))
            && err.contains(&format!(
                "{f}:2: last_ip_address: \"10.1.2\" is not an IP address"
            )),
        "{err}"
    );
    let file = write(dir.path(), "odd.json", "{\"value\": 3}");
    let (ok, _, err) = import(&s, "endpoints", &file, "2026-12-01");
    assert!(
        !ok && err.contains("not a JSON document of records"),
        "{err}"
    );

    // A document that is one page of several, or names its list twice, or holds a key
    // larger than a record: refused, nothing imported, memory bounded.
    let one = machine("m1", "a", "Windows10", 19045, &["site:RJ121"]);
    for (name, doc, says) in [
        (
            "page.json",
            json!({ "value": [one.clone()], "@odata.nextLink": "https://api/machines?$skip=10000" })
                .to_string(),
            "one page of several",
        ),
        (
            "twice.json",
            format!("{{\"value\": [{one}], \"value\": [{one}]}}"),
            "appears twice",
        ),
        (
            "key.json",
            format!("{{\"{}\": 1, \"value\": []}}", "k".repeat(3 << 20)),
            "longer than",
        ),
    ] {
        let (ok, _, err) = import(&s, "endpoints", &write(dir.path(), name, doc), "2026-12-02");
        assert!(!ok && err.contains(says), "{name}: {err}");
    }
    // Two site tags, or a tag that disagrees with the site column: a bad row.
    let two = machine("m5", "b", "Windows10", 19045, &["site:RJ121", "site:RJ122"]);
    let mut disagree = machine("m6", "c", "Windows10", 19045, &["site:RJ122"]);
    disagree["site"] = json!("RJ121");
    disagree["trust"] = json!("RJ1");
    let (ok, _, err) = import(
        &s,
        "endpoints",
        &write(
            dir.path(),
            "tags.json",
            json!({ "value": [two, disagree] }).to_string(),
        ),
        "2026-12-02",
    );
    assert!(!ok, "{err}");
    assert!(
        err.contains(":1: machine_tags: machine tags name 2 sites")
            && err.contains(
                ":2: machine_tags: the machine tag site:RJ122 disagrees with the site column RJ121"
            ),
        "{err}"
    );
    assert_eq!(
        latest(&s, Kind::Endpoints).as_of.to_string(),
        "2026-11-30",
        "nothing refused was imported"
    );
}

/// Issue 12: Defender Vulnerability Management's secure configuration assessment (the
/// advanced hunting table's own columns) is merged into the endpoint snapshot of its day:
/// BitLocker, SMBv1, firewall profiles, Credential Guard and Secure Boot come from it; a
/// configuration that is not applicable stays unknown; one no check reads is counted and
/// not kept; with no endpoint snapshot for the day, or a duplicate, nothing is written.
#[test]
fn the_secure_configuration_assessment_is_merged_into_its_days_endpoints() {
    let (s, dir) = server();
    let machine = |id: &str, site: &str| {
        json!({ "id": id, "computerDnsName": format!("{id}.gstt.nhs.uk"), "osPlatform": "Windows11",
            "osBuild": 26200, "lastSeen": "2026-11-28T10:00:00Z", "onboardingStatus": "Onboarded",
            "healthStatus": "Active", "exposureLevel": "Low", "machineTags": [format!("site:{site}")] })
    };
    let doc = json!({ "value": [machine("m1", "RJ121"), machine("m2", "RJ122")] });
    import_ok(
        &s,
        "endpoints",
        &write(dir.path(), "machines.json", doc.to_string()),
        "2026-11-28",
    );
    let before = latest(&s, Kind::Endpoints);
    let header = "DeviceId,DeviceName,OSPlatform,Timestamp,ConfigurationId,ConfigurationCategory,\
                  ConfigurationSubcategory,ConfigurationImpact,IsCompliant,IsApplicable,Context,\
                  IsExpectedUserImpact";
    let row = |device: &str, scid: &str, compliant: bool, applicable: bool| {
        format!(
            "{device},{device}.gstt.nhs.uk,Windows11,2026-11-28T06:00:00Z,{scid},Security controls,,9,\
             {compliant},{applicable},[],false"
        )
    };
    let rows = [
        row("m1", "scid-2090", true, true),
        row("m1", "scid-54", false, true),
        row("m1", "scid-2071", true, true),
        row("m1", "scid-9999", false, true),
        row("m2", "scid-2090", false, false),
        row("m2", "scid-2080", false, true),
    ];
    let csv_text = format!("{header}\n{}\n", rows.join("\n"));
    let out = import_ok(
        &s,
        "secure-config",
        &write(dir.path(), "config.csv", &csv_text),
        "2026-11-28",
    );
    assert!(
        out.starts_with("imported 6 configuration assessment rows"),
        "{out}"
    );
    let after = latest(&s, Kind::Endpoints);
    assert_ne!(
        after.sha256, before.sha256,
        "a new endpoint snapshot for the day"
    );
    assert_eq!(after.as_of, before.as_of);
    let conn = rusqlite::Connection::open(s.data().join("telemetry.db")).unwrap();
    let flags = |id: &str| -> Vec<Option<i64>> {
        conn.query_row(
            "SELECT bitlocker_on, smb1_enabled, firewall_domain, credential_guard_running
             FROM endpoints WHERE snapshot = ?1 AND device_id = ?2",
            rusqlite::params![after.id, id],
            |r| Ok(vec![r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?]),
        )
        .unwrap()
    };
    assert_eq!(
        flags("m1"),
        [Some(1), Some(1), Some(1), None],
        "BitLocker on, SMBv1 server not disabled (so enabled), domain firewall on, CG not assessed"
    );
    assert_eq!(
        flags("m2"),
        [None, None, None, Some(0)],
        "BitLocker not applicable: not known; Credential Guard not compliant: not running"
    );
    let counts: i64 = conn
        .query_row(
            "SELECT sum(bitlocker_off) + sum(bitlocker_unknown) FROM endpoint_counts WHERE snapshot = ?1",
            rusqlite::params![after.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(counts, 1, "the counts are made again from the merged rows");

    // No endpoint snapshot for the day: refused, nothing written.
    let (ok, _, err) = import(
        &s,
        "secure-config",
        &write(dir.path(), "config2.csv", &csv_text),
        "2026-11-27",
    );
    assert!(
        !ok && err.contains("no endpoint snapshot for 2026-11-27"),
        "{err}"
    );
    // The same device and configuration twice: refused.
    let dup = format!(
        "{header}\n{}\n{}\n",
        row("m1", "scid-2090", true, true),
        row("m1", "scid-2090", false, true)
    );
    let (ok, _, err) = import(
        &s,
        "secure-config",
        &write(dir.path(), "dup.csv", dup),
        "2026-11-28",
    );
    assert!(
        !ok && err.contains("duplicate assessment of scid-2090"),
        "{err}"
    );
    assert_eq!(
        latest(&s, Kind::Endpoints).sha256,
        after.sha256,
        "nothing changed"
    );

    // An assessment of devices the day's snapshot does not hold: refused.
    let other = format!("{header}\n{}\n", row("zz", "scid-2090", true, true));
    let (ok, _, err) = import(
        &s,
        "secure-config",
        &write(dir.path(), "other.csv", other),
        "2026-11-28",
    );
    assert!(
        !ok && err.contains("none of the 1 devices assessed"),
        "{err}"
    );

    // The day's machine export again replaces the merged snapshot: the report says the
    // assessment is not carried over, and the same assessment file then merges again
    // (not "already imported"), saying which assessed device the snapshot lacks.
    let doc2 = json!({ "value": [machine("m1", "RJ121"), machine("m3", "RJ121")] });
    let (ok, out, err) = import(
        &s,
        "endpoints",
        &write(dir.path(), "machines2.json", doc2.to_string()),
        "2026-11-28",
    );
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("warning: the day's secure configuration assessment")
            && err.contains("import it again"),
        "{err}"
    );
    let (ok, out, err) = import(
        &s,
        "secure-config",
        &write(dir.path(), "config.csv", &csv_text),
        "2026-11-28",
    );
    assert!(
        ok && out.starts_with("imported 6"),
        "merged again, not 'already imported': {out}{err}"
    );
    assert!(
        err.contains("1 of the 2 devices assessed are not in the endpoint snapshot"),
        "m2 is gone from the new export: {err}"
    );
}

/// `telemetry prune --keep-days N`: the snapshots of days more than N days ago go, with
/// their rows and endpoint tables, except the newest of each kind; trusts stay; audited.
#[test]
fn prune_removes_old_snapshots_but_never_the_newest_of_a_kind() {
    let (s, dir) = server();
    let today = chrono::Utc::now().date_naive();
    let day = |ago: u64| (today - chrono::Days::new(ago)).to_string();
    for (i, ago) in [200u64, 100, 1].into_iter().enumerate() {
        let rows: Vec<String> = (0..=i)
            .map(|n| ep(&format!("dev-{ago}-{n}"), &format!("PC{n}"), "RJ1", "RJ121"))
            .collect();
        import_ok(
            &s,
            "endpoints",
            &write(dir.path(), &format!("e{ago}.csv"), csv(&rows)),
            &day(ago),
        );
    }
    let net = "device_id,trust,site,vendor,model,firmware,vendor_supported,last_rule_review,\
               admin_interface_exposed\n\
               fw-1,RJ1,RJ121,Palo Alto,PA-5220,10.2.4,true,2026-03-01,no\n";
    import_ok(&s, "network", &write(dir.path(), "n.csv", net), &day(200));
    let before = snapshots(&s);
    let old: Vec<i64> = before
        .iter()
        .filter(|x| x.kind == Kind::Endpoints && x.as_of < today - chrono::Days::new(90))
        .map(|x| x.id)
        .collect();
    assert_eq!(old.len(), 2);

    let out = s.cli(&["telemetry", "prune", "--keep-days", "90"], "");
    assert!(
        out.contains("2 snapshots older than 90 days removed"),
        "{out}"
    );
    let after = snapshots(&s);
    let kinds: Vec<(Kind, String)> = after
        .iter()
        .map(|x| (x.kind, x.as_of.to_string()))
        .collect();
    assert!(kinds.contains(&(Kind::Endpoints, day(1))), "{kinds:?}");
    assert!(
        kinds.contains(&(Kind::Network, day(200))),
        "the only network snapshot stays, however old: {kinds:?}"
    );
    assert!(kinds.iter().any(|(k, _)| *k == Kind::Trusts));
    assert_eq!(after.len(), before.len() - 2);
    // Their rows and tables are gone; the view reads the newest only.
    let db = rusqlite::Connection::open(s.data().join("telemetry.db")).unwrap();
    for id in old {
        let tables: i64 = db
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = ?1",
                [format!("endpoints_{id}")],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "endpoints_{id} dropped");
        let counts: i64 = db
            .query_row(
                "SELECT count(*) FROM endpoint_counts WHERE snapshot = ?1",
                [id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(counts, 0);
    }
    assert_eq!(
        rows(&s, Kind::Endpoints),
        3,
        "the newest snapshot's three rows"
    );
    let audit = s.cli(&["audit", "tail", "-n", "20"], "");
    assert!(
        audit
            .lines()
            .any(|l| l.contains("telemetry_prune") && l.contains("2 snapshots")),
        "{audit}"
    );
    // Again: nothing left to remove.
    let out = s.cli(&["telemetry", "prune"], "");
    assert!(
        out.contains("0 snapshots older than 90 days removed"),
        "{out}"
    );
}
