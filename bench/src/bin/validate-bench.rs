//! validate-bench: what checking one received change costs the server, on a 300-item
//! inspection with 5,000 changes of history.
//!
//! Each of `--changes` new changes (an answer, or a note every tenth) is taken the way
//! the server takes a peer's change, twice over, in the same run:
//!
//! - **before** (the peer): applied to the live document, then encoded for storage
//!   (`load_incremental`, `save_after`): what the server did before it checked anything;
//! - **now**: applied to the trial copy, the new changes listed, each held to the write
//!   policy (`policy::check_change`), encoded for storage, and that encoding loaded onto
//!   the live copy and its heads compared (the round trip): what `sync::docs::accept`
//!   does, less the SQLite lookup of the actor's binding (one indexed read per actor and
//!   message) and the commit both paths share.
//!
//! It prints the median and p99 of each, their ratio, and the policy check alone.
//! `cargo run --release -p wardcheck-bench --bin validate-bench`

#[path = "../synthetic.rs"]
mod synthetic;

use std::time::{Duration, Instant};

use anyhow::Result;
use automerge::{ActorId, AutoCommit, ChangeHash};
use clap::Parser;
use uuid::Uuid;
use wardcheck_core::inspection::{Answer, Inspection, NewInspection, State};
use wardcheck_core::policy::{Context, DocKind, Role, Writer, check_change};

use synthetic::{ms, pct, stamp, synthetic_checklist};

#[derive(Debug, Parser)]
struct Args {
    /// Changes of history before the measured ones.
    #[arg(long, default_value_t = 5_000)]
    history: usize,
    /// Changes measured.
    #[arg(long, default_value_t = 2_000)]
    changes: usize,
}

fn edit(insp: &mut Inspection, items: &[String], i: usize) {
    let item = &items[i % items.len()];
    if i.is_multiple_of(10) {
        insp.edit_note(item, &format!("note {i}: seen on site"), &stamp(i))
            .unwrap();
    } else {
        let a = [Answer::Met, Answer::PartlyMet, Answer::NotMet][i % 3].clone();
        insp.set_answer(item, a, &stamp(i)).unwrap();
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let checklist = synthetic_checklist(300);
    let items: Vec<String> = checklist.items().map(|(_, i)| i.id.clone()).collect();
    let author = ActorId::random();
    let mut client = Inspection::create(
        NewInspection {
            id: Uuid::from_u128(7),
            trust: "RJ1".into(),
            sites: vec![],
            team: vec![],
            visit_start: None,
            visit_end: None,
            org: None,
        },
        checklist.clone(),
        author,
        &stamp(0),
    )?;
    client.change_state(State::InProgress, &stamp(0))?;
    for i in 0..args.history {
        edit(&mut client, &items, i + 1);
    }
    let snapshot = client.save();
    let mut before_doc = AutoCommit::load(&snapshot)?;
    let mut trial = AutoCommit::load(&snapshot)?;
    let mut live = AutoCommit::load(&snapshot)?;
    eprintln!(
        "a 300-item inspection with {} changes ({} bytes saved); measuring {} more",
        before_doc.get_changes(&[]).len(),
        snapshot.len(),
        args.changes
    );
    let writer = Writer::new("ann", Role::LeadInspector);
    let earned = |_: &str| true;
    let (mut old, mut new, mut policy) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..args.changes {
        let heads: Vec<ChangeHash> = client.heads();
        edit(&mut client, &items, args.history + 1 + k);
        let chunk = client.save_after(&heads);

        // Before: apply to the live document, encode for storage.
        let t = Instant::now();
        let prev = before_doc.get_heads();
        before_doc.load_incremental(&chunk)?;
        let stored = before_doc.save_after(&prev);
        old.push(t.elapsed());
        std::hint::black_box(stored);

        // Now: trial, check, encode, round trip onto the live copy.
        let t = Instant::now();
        let before = trial.get_heads();
        trial.load_incremental(&chunk)?;
        let changes = trial.get_changes(&before);
        let mut p = Duration::ZERO;
        for c in &changes {
            let tp = Instant::now();
            let ctx = Context {
                kind: DocKind::Inspection,
                checklist: Some(&checklist),
                state: State::InProgress,
                earned: &earned,
                seal: &wardcheck_core::seal::Seal::UNSIGNED,
            };
            check_change(&trial, &before, c, &writer, &ctx)
                .map_err(|r| anyhow::anyhow!("refused: {r}"))?;
            p += tp.elapsed();
        }
        let stored = trial.save_after(&before);
        live.load_incremental(&stored)?;
        anyhow::ensure!(
            live.get_heads() == trial.get_heads(),
            "the round trip reaches the heads"
        );
        new.push(t.elapsed());
        policy.push(p);
    }
    for v in [&mut old, &mut new, &mut policy] {
        v.sort();
    }
    let (o50, o99) = (pct(&old, 0.5), pct(&old, 0.99));
    let (n50, n99) = (pct(&new, 0.5), pct(&new, 0.99));
    let (p50, p99) = (pct(&policy, 0.5), pct(&policy, 0.99));
    println!("| figure | median | p99 |");
    println!("|---|---|---|");
    println!(
        "| before: apply + encode (the peer) | {:.3} ms | {:.3} ms |",
        ms(o50),
        ms(o99)
    );
    println!(
        "| now: trial + policy + encode + round trip | {:.3} ms | {:.3} ms |",
        ms(n50),
        ms(n99)
    );
    println!(
        "| of which the write policy's check | {:.3} ms | {:.3} ms |",
        ms(p50),
        ms(p99)
    );
    println!(
        "| now / before | {:.2} | {:.2} |",
        ms(n50) / ms(o50),
        ms(n99) / ms(o99)
    );
    Ok(())
}
