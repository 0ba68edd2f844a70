//! The evidence pack: a ZIP of an inspection's report (PDF), its photos and action
//! evidence as stored, CSVs of answers, findings and actions, and a manifest of every
//! file's SHA-256 (`SHA256SUMS`, which `sha256sum -c` checks, and `manifest.json`).
//! A trust's pack holds one folder per inspection, each laid out the same.
//!
//! The same CSVs make the inspection page's "Download CSV" ([`inspection_csv`]: answers
//! and findings in one file).
//!
//! CSV cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
//! `@`, tab or CR) get a leading `'` (OWASP's advice); the `csv` crate quotes every cell
//! as RFC 4180 says.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use wardcheck_core::actions::Action;
use wardcheck_core::checklist::{Checklist, Scope};
use wardcheck_core::inspection::{Field, InspectionView};
use wardcheck_core::response::ResponseView;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::{answer_text, label, when};
use crate::join::Join;

/// One file of a pack.
#[derive(Debug)]
pub struct PackFile {
    /// Inside the ZIP, `/`-separated.
    pub path: String,
    pub bytes: Vec<u8>,
}

/// One line of the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestEntry {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// A finished pack.
#[derive(Debug)]
pub struct Pack {
    pub zip: Vec<u8>,
    pub files: Vec<ManifestEntry>,
    /// The SHA-256 of the ZIP itself.
    pub sha256: String,
}

/// Zips `files` with `SHA256SUMS` and `manifest.json` (which carries `about` and every
/// file's hash and size). Photos are stored as they are (already compressed); text is
/// deflated.
pub fn zip(
    files: Vec<PackFile>,
    about: serde_json::Value,
    made_at: DateTime<Utc>,
) -> Result<Pack, zip::result::ZipError> {
    let stamp = zip::DateTime::from_date_and_time(
        made_at.year().clamp(1980, 2107) as u16,
        made_at.month() as u8,
        made_at.day() as u8,
        made_at.hour() as u8,
        made_at.minute() as u8,
        made_at.second() as u8,
    )
    .unwrap_or_default();
    let total: usize = files.iter().map(|f| f.bytes.len()).sum();
    let mut out = ZipWriter::new(Cursor::new(Vec::with_capacity(total + 64 * 1024)));
    let mut entries = Vec::with_capacity(files.len());
    let put = |out: &mut ZipWriter<Cursor<Vec<u8>>>, path: &str, bytes: &[u8]| {
        let stored = path.ends_with(".jpg") || path.ends_with(".png") || path.ends_with(".bin");
        let options = SimpleFileOptions::default()
            .compression_method(if stored {
                CompressionMethod::Stored
            } else {
                CompressionMethod::Deflated
            })
            .last_modified_time(stamp)
            .large_file(bytes.len() as u64 >= u64::from(u32::MAX));
        out.start_file(path, options)?;
        out.write_all(bytes)?;
        Ok::<_, zip::result::ZipError>(())
    };
    for f in &files {
        put(&mut out, &f.path, &f.bytes)?;
        entries.push(ManifestEntry {
            path: f.path.clone(),
            sha256: hex::encode(Sha256::digest(&f.bytes)),
            size: f.bytes.len() as u64,
        });
    }
    let manifest = serde_json::json!({
        "about": about,
        "made_at": when(made_at),
        "files": entries,
    });
    let manifest = serde_json::to_vec_pretty(&manifest).expect("JSON of strings and numbers");
    put(&mut out, "manifest.json", &manifest)?;
    let mut sums = String::new();
    for e in &entries {
        sums.push_str(&format!("{}  {}\n", e.sha256, e.path));
    }
    sums.push_str(&format!(
        "{}  manifest.json\n",
        hex::encode(Sha256::digest(&manifest))
    ));
    put(&mut out, "SHA256SUMS", sums.as_bytes())?;
    let zip = out.finish()?.into_inner();
    Ok(Pack {
        sha256: hex::encode(Sha256::digest(&zip)),
        zip,
        files: entries,
    })
}

/// A cell a spreadsheet will not run as a formula.
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn csv_of(header: &[&str], rows: Vec<Vec<String>>) -> Vec<u8> {
    // Every cell quoted: a spreadsheet that splits on `;` (or another separator) never
    // finds a formula inside an unquoted cell.
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .terminator(csv::Terminator::CRLF)
        // Rows of one file may differ in length (`inspection_csv`'s two tables).
        .flexible(true)
        .from_writer(Vec::new());
    w.write_record(header).expect("writing to memory");
    for row in rows {
        w.write_record(row.iter().map(|c| cell(c)))
            .expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}

/// Every value of a field, conflicting ones joined by ` | `; and who set each.
fn values<T>(f: &Field<T>, show: impl Fn(&T) -> String) -> (String, String, String) {
    let v: Vec<String> = f.values.iter().map(|c| show(&c.value.value)).collect();
    let by: Vec<String> = f.values.iter().map(|c| c.value.by.clone()).collect();
    let at: Vec<String> = f.values.iter().map(|c| when(c.value.at)).collect();
    (v.join(" | "), by.join(" | "), at.join(" | "))
}

/// The columns of [`answers_csv`].
const ANSWER_COLUMNS: [&str; 11] = [
    "section",
    "item",
    "prompt",
    "device",
    "answer",
    "answered_by",
    "answered_at",
    "note",
    "photos_sha256",
    "verdict",
    "telemetry",
];

/// The columns of [`findings_csv`].
const FINDING_COLUMNS: [&str; 8] = [
    "finding",
    "severity",
    "text",
    "recommendation",
    "items",
    "recorded_by",
    "recorded_at",
    "trust_response",
];

/// Every item (device-scope items: a row per sampled device that answered), with its
/// answers, note, photos and telemetry verdict.
pub fn answers_csv(view: &InspectionView, checklist: &Checklist, join: Option<&Join>) -> Vec<u8> {
    csv_of(&ANSWER_COLUMNS, answer_rows(view, checklist, join))
}

/// Every finding, with the items it names and the trust's response.
pub fn findings_csv(view: &InspectionView, response: Option<&ResponseView>) -> Vec<u8> {
    csv_of(&FINDING_COLUMNS, finding_rows(view, response))
}

/// One CSV of an inspection, for a spreadsheet: the answers (rows whose `record` is
/// `answer`), then a blank row, then the findings under a header of their own (`finding`).
pub fn inspection_csv(
    view: &InspectionView,
    checklist: &Checklist,
    join: Option<&Join>,
    response: Option<&ResponseView>,
) -> Vec<u8> {
    let header = |cols: &[&str]| {
        std::iter::once("record".to_string())
            .chain(cols.iter().map(|c| c.to_string()))
            .collect::<Vec<_>>()
    };
    let tagged = |tag: &str, rows: Vec<Vec<String>>| {
        rows.into_iter()
            .map(|r| {
                std::iter::once(tag.to_string())
                    .chain(r)
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    let mut rows = tagged("answer", answer_rows(view, checklist, join));
    rows.push(Vec::new());
    rows.push(header(&FINDING_COLUMNS));
    rows.extend(tagged("finding", finding_rows(view, response)));
    // A byte order mark first, so that Excel reads the file as UTF-8.
    let mut out = "\u{feff}".as_bytes().to_vec();
    out.extend(csv_of(
        &header(&ANSWER_COLUMNS)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        rows,
    ));
    out
}

fn answer_rows(
    view: &InspectionView,
    checklist: &Checklist,
    join: Option<&Join>,
) -> Vec<Vec<String>> {
    let verdicts: BTreeMap<&str, &crate::join::ItemJoin> = join
        .map(|j| j.items.iter().map(|i| (i.item.as_str(), i)).collect())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for s in &checklist.sections {
        for item in &s.items {
            let (verdict, telemetry) = verdicts
                .get(item.id.as_str())
                .map_or((String::new(), String::new()), |j| {
                    (label(&j.verdict), format!("{} {}", j.summary, j.reason))
                });
            let base = |device: &str| {
                vec![
                    s.id.clone(),
                    item.id.clone(),
                    item.prompt.clone(),
                    device.to_string(),
                ]
            };
            match s.scope {
                Scope::Inspection => {
                    let r = view.responses.get(&item.id);
                    let (answer, by, at) = r
                        .and_then(|r| r.answer.as_ref())
                        .map_or_else(Default::default, |a| values(a, answer_text));
                    let mut row = base("");
                    row.extend([
                        answer,
                        by,
                        at,
                        r.map_or(String::new(), |r| r.note.clone()),
                        r.map_or(String::new(), |r| {
                            r.photos
                                .iter()
                                .map(|p| p.value.hash.clone())
                                .collect::<Vec<_>>()
                                .join(" ")
                        }),
                        verdict.clone(),
                        telemetry.clone(),
                    ]);
                    rows.push(row);
                }
                Scope::Device => {
                    for d in &view.devices {
                        let Some(o) = d.observations.get(&item.id) else {
                            continue;
                        };
                        let (answer, by, at) = values(o, |o| answer_text(&o.answer));
                        let (note, _, _) = values(o, |o| o.note.clone());
                        let mut row = base(&d.hostname.current().value);
                        row.extend([
                            answer,
                            by,
                            at,
                            note,
                            String::new(),
                            verdict.clone(),
                            telemetry.clone(),
                        ]);
                        rows.push(row);
                    }
                }
            }
        }
    }
    rows
}

fn finding_rows(view: &InspectionView, response: Option<&ResponseView>) -> Vec<Vec<String>> {
    view.findings
        .iter()
        .map(|f| {
            let (severity, _, _) = values(&f.severity, label);
            let answer = response
                .and_then(|r| r.findings.get(&f.id))
                .map_or(String::new(), |a| values(a, Clone::clone).0);
            vec![
                f.id.to_string(),
                severity,
                f.text.clone(),
                f.recommendation.clone(),
                f.items.join(" "),
                f.created.by.clone(),
                when(f.created.at),
                answer,
            ]
        })
        .collect()
}

/// Every action, one row per step.
pub fn actions_csv(actions: &[Action]) -> Vec<u8> {
    let mut rows = Vec::new();
    for a in actions {
        for s in &a.steps {
            rows.push(vec![
                a.id.to_string(),
                a.what.clone(),
                label(&a.priority),
                a.due.to_string(),
                label(&a.status),
                s.by.clone(),
                when(s.at),
                super::step_text(&s.step),
            ]);
        }
    }
    csv_of(
        &[
            "action", "what", "priority", "due", "status", "step_by", "step_at", "step",
        ],
        rows,
    )
}

/// Audit events as CSV, one row each (newest first, as given).
pub fn audit_csv(rows: &[(i64, crate::storage::AuditEvent)]) -> Vec<u8> {
    let rows = rows
        .iter()
        .map(|(seq, e)| {
            vec![
                seq.to_string(),
                when(e.at),
                e.actor.clone(),
                e.device.map_or(String::new(), |d| d.to_string()),
                e.action.clone(),
                e.target.clone(),
                e.from.clone(),
                e.outcome.clone(),
                e.detail.clone().unwrap_or_default(),
            ]
        })
        .collect();
    csv_of(
        &[
            "seq", "at", "actor", "device", "action", "target", "from", "outcome", "detail",
        ],
        rows,
    )
}

/// The file name a stored photo or document takes in the pack.
pub fn evidence_name(sha256: &str, mime: &str) -> String {
    let ext = match mime {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "application/pdf" => "pdf",
        _ => "bin",
    };
    format!("{sha256}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_quotes_kept() {
        let out = csv_of(
            &["a", "b"],
            vec![vec!["=HYPERLINK(\"x\")".into(), "plain, with comma".into()]],
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "\"a\",\"b\"\r\n\"'=HYPERLINK(\"\"x\"\")\",\"plain, with comma\"\r\n"
        );
    }

    #[test]
    fn the_manifest_lists_every_file_with_its_hash() {
        let files = vec![
            PackFile {
                path: "report.pdf".into(),
                bytes: b"%PDF-1.7 x".to_vec(),
            },
            PackFile {
                path: "photos/ab.jpg".into(),
                bytes: vec![0xff, 0xd8, 1, 2, 3],
            },
        ];
        let pack = zip(files, serde_json::json!({"k": 1}), Utc::now()).unwrap();
        let mut z = zip::ZipArchive::new(Cursor::new(pack.zip.clone())).unwrap();
        let mut sums = String::new();
        std::io::Read::read_to_string(&mut z.by_name("SHA256SUMS").unwrap(), &mut sums).unwrap();
        let mut checked = 0;
        for line in sums.lines() {
            let (hash, path) = line.split_once("  ").unwrap();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut z.by_name(path).unwrap(), &mut bytes).unwrap();
            assert_eq!(hex::encode(Sha256::digest(&bytes)), hash, "{path}");
            checked += 1;
        }
        assert_eq!(checked, 3);
        assert_eq!(pack.sha256, hex::encode(Sha256::digest(&pack.zip)));
    }
}
