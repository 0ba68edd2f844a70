//! Benchmarks of the field app's hot paths, on real encrypted SQLite files:
//!
//! - recording an answer durably (the operation plus its committed, synced save);
//! - opening an inspection with 300 items and 5,000 changes of history.
//!
//! Criterion reports medians; the durable-answer latency distribution (median, p99)
//! is also printed from its own sample of single writes, since a p99 is the figure
//! an inspector feels. Run: `cargo bench -p wardcheck-core --bench core`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use uuid::Uuid;
use wardcheck_core::checklist::{self, Checklist};
use wardcheck_core::inspection::{Answer, Inspection, NewInspection, Stamp};
use wardcheck_core::store::{Store, StoreKey};

/// A checklist of `n` compliance items in sections of 20, written as TOML and loaded
/// through the real loader.
fn synthetic_checklist(n: usize) -> Arc<Checklist> {
    let mut toml = String::from(
        "id = \"bench\"\nversion = \"1\"\ntitle = \"Benchmark\"\napplies_to = [\"acute\"]\n",
    );
    for s in 0..n.div_ceil(20) {
        toml.push_str(&format!(
            "\n[[sections]]\nid = \"s{s}\"\ntitle = \"Section {s}\"\n"
        ));
        for i in (s * 20)..((s + 1) * 20).min(n) {
            toml.push_str(&format!(
                "\n[[sections.items]]\nid = \"item-{i}\"\nprompt = \"Prompt {i}\"\n\
                 guidance = \"Guidance {i}\"\nanswer = \"compliance\"\nseverity = \"high\"\n"
            ));
        }
    }
    Arc::new(checklist::load_str("bench.toml", &toml, None).expect("synthetic checklist loads"))
}

fn stamp(i: i64) -> Stamp {
    Stamp::new("bench", Utc.timestamp_opt(1_790_000_000 + i, 0).unwrap())
}

fn answer(i: usize) -> Answer {
    [Answer::Met, Answer::PartlyMet, Answer::NotMet][i % 3].clone()
}

fn new_inspection(id: u128) -> NewInspection {
    NewInspection {
        id: Uuid::from_u128(id),
        trust: "RJ1".into(),
        sites: vec!["RJ121".into()],
        team: vec![],
        visit_start: None,
        visit_end: None,
        org: None,
    }
}

fn key() -> StoreKey {
    StoreKey::from_bytes([3; 32])
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn durable_answer(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let checklist = synthetic_checklist(300);
    let mut store = Store::open(&dir.path().join("bench.db"), &key()).unwrap();
    let mut insp = Inspection::create(
        new_inspection(1),
        checklist.clone(),
        store.actor(),
        &stamp(0),
    )
    .unwrap();
    store.insert_inspection(&mut insp, Utc::now()).unwrap();
    let items: Vec<String> = checklist.items().map(|(_, i)| i.id.clone()).collect();

    // The distribution, from single writes (compactions included, as in real use).
    let mut samples = Vec::with_capacity(2_000);
    for i in 0..2_000 {
        let start = Instant::now();
        insp.set_answer(&items[i % items.len()], answer(i), &stamp(i as i64))
            .unwrap();
        store.save_inspection(&mut insp, Utc::now()).unwrap();
        samples.push(start.elapsed());
    }
    samples.sort();
    println!(
        "durable answer over {} writes: median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().unwrap().as_secs_f64() * 1e3,
    );

    let mut i = 0usize;
    c.bench_function(
        "record an answer durably (set_answer + save, WAL FULL)",
        |b| {
            b.iter(|| {
                i += 1;
                insp.set_answer(&items[i % items.len()], answer(i), &stamp(i as i64))
                    .unwrap();
                store.save_inspection(&mut insp, Utc::now()).unwrap();
            })
        },
    );
}

fn open_inspection(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let checklist = synthetic_checklist(300);
    {
        let mut store = Store::open(&path, &key()).unwrap();
        let mut insp = Inspection::create(
            new_inspection(2),
            checklist.clone(),
            store.actor(),
            &stamp(0),
        )
        .unwrap();
        store.insert_inspection(&mut insp, Utc::now()).unwrap();
        let items: Vec<String> = checklist.items().map(|(_, i)| i.id.clone()).collect();
        // 5,000 changes of history: answers, and notes every tenth change.
        for i in 0..5_000usize {
            let item = &items[i % items.len()];
            if i % 10 == 0 {
                insp.edit_note(item, &format!("note {i}: seen on site"), &stamp(i as i64))
                    .unwrap();
            } else {
                insp.set_answer(item, answer(i), &stamp(i as i64)).unwrap();
            }
            store.save_inspection(&mut insp, Utc::now()).unwrap();
        }
    }
    let mut group = c.benchmark_group("open an inspection (300 items, 5,000 changes)");
    group.bench_function("open store + load + verify heads + view", |b| {
        b.iter(|| {
            let store = Store::open(&path, &key()).unwrap();
            let insp = store
                .load_inspection(Uuid::from_u128(2), checklist.clone())
                .unwrap();
            insp.view().unwrap()
        })
    });
    let store = Store::open(&path, &key()).unwrap();
    group.bench_function("load + verify heads + view (store already open)", |b| {
        b.iter(|| {
            let insp = store
                .load_inspection(Uuid::from_u128(2), checklist.clone())
                .unwrap();
            insp.view().unwrap()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = durable_answer, open_inspection
}
criterion_main!(benches);
