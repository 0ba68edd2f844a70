//! The inspection report's PDF (issue 14, item 5): `cargo bench -p wardcheck-server
//! --bench report`.
//!
//! An inspection of 300 items, every one answered with a note (compliance items cycle
//! through met, partly met, not met and not applicable with a reason), and 20 photos of
//! 1600 x 1200 processed as the app processes them (JPEG, about 0.3 MB each), written with
//! core's typed operations. Measured, in the same run:
//!
//! - `300 items, 20 photos`: [`report::render`] with each photo made ready
//!   ([`report::prepare_photo`]), as `POST /api/v1/inspections/{id}/reports` renders;
//! - `300 items, no photos`: the text alone (the peer: what the photos cost);
//! - `pdftotext of the result`: poppler reading the same PDF back (the peer a reader
//!   pays; skipped when poppler-utils is missing).

use std::collections::BTreeMap;
use std::sync::Arc;

use automerge::ActorId;
use chrono::{NaiveDate, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use uuid::Uuid;
use wardcheck_core::checklist::{AnswerKind, Checklist, Scope};
use wardcheck_core::inspection::{
    Answer, Inspection, NewInspection, PhotoRef, Stamp, State, TeamMember, TeamRole,
};
use wardcheck_core::photo;
use wardcheck_server::report::{self, Audience, PhotoBytes, ReportInput};
use wardcheck_server::storage::InspectionRecord;

const ITEMS: usize = 300;
const PHOTOS: usize = 20;

/// The bundled on-site checklist's inspection-scope items, repeated (with new ids) to
/// `ITEMS`.
fn checklist() -> Checklist {
    let base = wardcheck_core::checklist::bundled()
        .into_iter()
        .find(|c| c.id == "cqc-onsite-cyber")
        .expect("the bundled on-site checklist");
    let mut c = base.clone();
    c.sections.retain(|s| s.scope == Scope::Inspection);
    let mut n = c.sections.iter().map(|s| s.items.len()).sum::<usize>();
    let mut round = 1;
    while n < ITEMS {
        for s in base
            .sections
            .iter()
            .filter(|s| s.scope == Scope::Inspection)
        {
            let mut copy = s.clone();
            copy.id = format!("{}-r{round}", s.id);
            copy.title = format!("{} (part {})", s.title, round + 1);
            copy.items.truncate(ITEMS - n);
            for i in &mut copy.items {
                i.id = format!("{}-r{round}", i.id);
            }
            n += copy.items.len();
            if !copy.items.is_empty() {
                c.sections.push(copy);
            }
            if n >= ITEMS {
                break;
            }
        }
        round += 1;
    }
    c
}

fn photo_bytes(seed: u32) -> photo::ProcessedPhoto {
    let img = image::RgbImage::from_fn(1600, 1200, |x, y| {
        let v = (x * 7 + y * 13 + seed * 31) % 255;
        image::Rgb([v as u8, ((x ^ y) % 255) as u8, ((x / 8 + seed) % 255) as u8])
    });
    let mut raw = std::io::Cursor::new(Vec::new());
    img.write_to(&mut raw, image::ImageFormat::Jpeg).unwrap();
    photo::process(raw.get_ref(), &photo::Limits::default()).expect("a photo")
}

struct Fixture {
    record: InspectionRecord,
    checklist: Arc<Checklist>,
    view: wardcheck_core::inspection::InspectionView,
    photos: Vec<photo::ProcessedPhoto>,
}

fn fixture() -> Fixture {
    let checklist = Arc::new(checklist());
    let at = Utc.with_ymd_and_hms(2026, 11, 16, 9, 0, 0).unwrap();
    let stamp = |m: i64| Stamp::new("ann", at + chrono::Duration::minutes(m));
    let id = Uuid::from_u128(0xbe4c);
    let mut insp = Inspection::create(
        NewInspection {
            id,
            trust: "RJ1".into(),
            sites: vec!["RJ121".into()],
            team: vec![TeamMember {
                user: "ann".into(),
                name: "Ann Inspector".into(),
                role: TeamRole::LeadInspector,
            }],
            visit_start: NaiveDate::from_ymd_opt(2026, 11, 16),
            visit_end: NaiveDate::from_ymd_opt(2026, 11, 17),
            org: None,
        },
        checklist.clone(),
        ActorId::random(),
        &stamp(0),
    )
    .unwrap();
    let items: Vec<_> = checklist
        .sections
        .iter()
        .flat_map(|s| s.items.iter())
        .cloned()
        .collect();
    assert_eq!(items.len(), ITEMS);
    for (n, item) in items.iter().enumerate() {
        let answer = match &item.answer {
            AnswerKind::Compliance => match n % 4 {
                0 => Answer::Met,
                1 => Answer::PartlyMet,
                2 => Answer::NotMet,
                _ => Answer::NotApplicable {
                    reason: "No such system at this site: the service is run by the ICB.".into(),
                },
            },
            AnswerKind::Number { .. } => Answer::Number { value: 91.0 },
            AnswerKind::Date => Answer::Date {
                value: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            },
            AnswerKind::Text => Answer::Text {
                value: "Recorded as shown on the screen, photographed.".into(),
            },
        };
        insp.set_answer(&item.id, answer, &stamp(n as i64)).unwrap();
        insp.edit_note(
            &item.id,
            "Seen on site with the trust's infrastructure lead; the console was shown and \
             photographed, and the policy document's version and date were noted.",
            &stamp(n as i64),
        )
        .unwrap();
    }
    let photos: Vec<_> = (0..PHOTOS as u32).map(photo_bytes).collect();
    for (n, p) in photos.iter().enumerate() {
        let r = PhotoRef {
            hash: p.id.clone(),
            size: p.bytes.len() as u64,
            width: p.width,
            height: p.height,
            mime: p.mime.to_owned(),
            caption: format!("Console {n}"),
            captured_at: Some(at),
        };
        insp.attach_photo(&items[n * 7].id, r, &stamp(400)).unwrap();
    }
    let view = insp.view().unwrap();
    let record = InspectionRecord {
        id,
        trust: "RJ1".into(),
        sites: vec!["RJ121".into()],
        checklist_id: checklist.id.clone(),
        checklist_version: checklist.version.clone(),
        checklist_sha256: "0".repeat(64),
        state: State::Submitted,
        response_doc: Uuid::from_u128(0xbe4d),
        review_doc: Uuid::from_u128(0xbe4e),
        shared_at: None,
        created_at: at,
        created_by: "rita".into(),
        assignees: vec!["ann".into()],
        lead: Some("ann".into()),
        history_holds_comments: false,
    };
    Fixture {
        record,
        checklist,
        view,
        photos,
    }
}

fn render(f: &Fixture, with_photos: bool) -> Vec<u8> {
    let photos: BTreeMap<String, PhotoBytes> = if with_photos {
        f.photos
            .iter()
            .map(|p| {
                let mut budget = report::MAX_REENCODED_PIXELS;
                let img = report::prepare_photo(p.bytes.clone(), &mut budget).expect("a JPEG");
                (p.id.clone(), PhotoBytes::Image(img))
            })
            .collect()
    } else {
        BTreeMap::new()
    };
    let input = ReportInput {
        record: &f.record,
        trust_name: Some("Guy's and St Thomas' NHS Foundation Trust"),
        view: &f.view,
        checklist: &f.checklist,
        response: None,
        join: None,
        join_error: None,
        actions: &[],
        made_by: "rita",
        made_at: Utc::now(),
        audience: Audience::Regulator,
    };
    report::render(&input, photos).pdf
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let pdf = render(&f, true);
    eprintln!(
        "the report: {} items, {} photos, {} bytes of PDF",
        ITEMS,
        PHOTOS,
        pdf.len()
    );
    let mut g = c.benchmark_group("report");
    g.sample_size(10);
    g.bench_function("300 items, 20 photos", |b| b.iter(|| render(&f, true)));
    g.bench_function("300 items, no photos", |b| b.iter(|| render(&f, false)));
    if std::path::Path::new("/usr/bin/pdftotext").exists() {
        let path = std::env::temp_dir().join(format!("wardcheck-bench-{}.pdf", std::process::id()));
        std::fs::write(&path, &pdf).unwrap();
        g.bench_function("pdftotext of the result", |b| {
            b.iter(|| {
                let out = std::process::Command::new("/usr/bin/pdftotext")
                    .arg(&path)
                    .arg("-")
                    .output()
                    .unwrap();
                assert!(out.status.success());
                out.stdout.len()
            })
        });
        let _ = std::fs::remove_file(&path);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
