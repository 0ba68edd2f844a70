//! The join for one trust, with a national-scale endpoint snapshot in the database.
//!
//! `cargo bench -p wardcheck-server --bench join` makes a data folder with `demo-data`
//! (2,500,000 endpoints by default; `JOIN_BENCH_ENDPOINTS` to change it) under
//! `target/bench-join-<N>`, kept between runs since it takes a minute to make, then
//! measures, for the demo inspection of RJ1 (the largest demo trust: 9 % of the estate,
//! 225,000 endpoints at 2.5 million) and of RJ2 (5.5 %):
//!
//! - `aggregates, cold`: the three aggregate queries over the trust's rows
//!   (`join::count_checks`), as the first join of a trust after an import runs them;
//! - `join`: `Storage::join_telemetry` once the trust's figures are cached: the snapshot
//!   look-ups, the device look-ups, and the join itself, from an inspection's typed view;
//! - `join + load`: the same with loading the inspection document and its view first, as
//!   `GET /api/v1/inspections/{id}/join` does.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use uuid::Uuid;
use wardcheck_core::checklist::Checklist;
use wardcheck_core::inspection::{Inspection, InspectionView};
use wardcheck_core::store::load_checked;
use wardcheck_server::inspections::pinned_checklist;
use wardcheck_server::storage::{SqliteStorage, Storage};
use wardcheck_server::telemetry::TelemetryDb;
use wardcheck_server::{demo, join};

fn data_folder() -> (Arc<SqliteStorage>, TelemetryDb, PathBuf, u64) {
    let endpoints: u64 = std::env::var("JOIN_BENCH_ENDPOINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_500_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(format!("bench-join-{endpoints}"));
    let storage = SqliteStorage::open(&dir).expect("the bench data folder opens");
    // demo-data skips what exists, so this is quick after the first run.
    let opts = demo::Options {
        endpoints,
        seed: 2017,
        as_of: chrono::Utc::now().date_naive(),
    };
    let telemetry = TelemetryDb::open(&dir).expect("the bench telemetry opens");
    let summary = demo::run(&storage, &telemetry, &dir, &opts).expect("demo data");
    eprintln!("{summary}");
    (Arc::new(storage), telemetry, dir, endpoints)
}

fn load(storage: &dyn Storage, id: Uuid) -> (InspectionView, Arc<Checklist>) {
    let rec = storage
        .inspection(id)
        .unwrap()
        .expect("the demo inspection");
    let stored = storage.load_doc(id).unwrap().expect("its document");
    let changes = stored.changes.iter().map(Vec::as_slice);
    let doc = load_checked(id, &stored.snapshot, changes, &stored.heads).unwrap();
    let checklist = pinned_checklist(storage, &rec).unwrap();
    let view = Inspection::from_doc(doc, checklist.clone())
        .unwrap()
        .view()
        .unwrap();
    (view, checklist)
}

fn bench(c: &mut Criterion) {
    let (storage, telemetry, dir, endpoints) = data_folder();
    let join_of = |view: &InspectionView, checklist: &Checklist| {
        join::join(&telemetry.reader(), view, checklist).unwrap()
    };
    let conn = rusqlite::Connection::open(dir.join("telemetry.db")).unwrap();
    let mut group = c.benchmark_group(format!("join, {endpoints} endpoints held"));
    group.sample_size(30);
    for (trust, id) in [
        ("RJ1", demo::CONTRADICTION_INSPECTION),
        (
            "RJ2",
            Uuid::from_u128(0xd3e0_0000_0000_4000_8000_0000_0000_0004),
        ),
    ] {
        let (view, checklist) = load(&*storage, id);
        let join = join_of(&view, &checklist);
        let rows = join
            .items
            .iter()
            .find(|i| i.check.name() == "endpoints.unsupported_os")
            .and_then(|i| i.total)
            .unwrap_or(0);
        group.bench_function(
            format!("aggregates, cold {trust} ({rows} endpoints)"),
            |b| {
                b.iter(|| {
                    let snap = |kind| join::latest_snapshot(&conn, kind).unwrap();
                    let (e, n, a) = (snap("endpoints"), snap("network"), snap("alerts"));
                    join::count_checks(&conn, trust, e, n, a).unwrap()
                })
            },
        );
        group.bench_function(format!("join {trust}"), |b| {
            b.iter(|| join_of(&view, &checklist))
        });
        group.bench_function(format!("join + load {trust}"), |b| {
            b.iter(|| {
                let (view, checklist) = load(&*storage, id);
                join_of(&view, &checklist)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
