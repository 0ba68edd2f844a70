//! seal-bench: what the signed record costs, on a 300-item inspection with 5,000 changes
//! of history, each figure beside its peer measured in the same run:
//!
//! - **a sign-off taken by the server**: the policy's check of the change plus the
//!   signed content's hash recomputed on the document in place (what
//!   `sync::guard::sealed_content` does when the sign-off is the batch's last change),
//!   beside the same on a copy made at the sign-off's heads (`fork_at`: the path a
//!   sign-off followed by more changes takes, and how the check was first written);
//! - **an item's history** (`history::of`, every change decoded), beside building the
//!   inspection's whole view (what every read of the inspection costs).
//!
//! It prints the median and p99 of each and the ratios.
//! `cargo run --release -p wardcheck-bench --bin seal-bench`

#[path = "../synthetic.rs"]
mod synthetic;

use std::time::{Duration, Instant};

use anyhow::Result;
use automerge::{ActorId, AutoCommit, Change};
use clap::Parser;
use uuid::Uuid;
use wardcheck_core::history::{self, Subject};
use wardcheck_core::inspection::{Answer, Inspection, NewInspection, SignoffRole, State};
use wardcheck_core::policy::{Context, DocKind, Role, Writer, check_change};
use wardcheck_core::seal;

use synthetic::{ms, pct, stamp, synthetic_checklist};

#[derive(Debug, Parser)]
struct Args {
    /// Changes of history before the sign-off.
    #[arg(long, default_value_t = 5_000)]
    history: usize,
    /// Runs of each figure.
    #[arg(long, default_value_t = 30)]
    runs: usize,
}

fn time(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<(Duration, Duration)> {
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        v.push(t.elapsed());
    }
    v.sort();
    Ok((pct(&v, 0.5), pct(&v, 0.99)))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let checklist = synthetic_checklist(300);
    let items: Vec<String> = checklist.items().map(|(_, i)| i.id.clone()).collect();
    let mut insp = Inspection::create(
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
        ActorId::random(),
        &stamp(0),
    )?;
    insp.change_state(State::InProgress, &stamp(0))?;
    for i in 0..args.history {
        let item = &items[i % items.len()];
        if i % 10 == 0 {
            insp.edit_note(item, &format!("note {i}: seen on site"), &stamp(i))?;
        } else {
            let a = [Answer::Met, Answer::PartlyMet, Answer::NotMet][i % 3].clone();
            insp.set_answer(item, a, &stamp(i))?;
        }
    }
    insp.change_state(State::Submitted, &stamp(args.history + 1))?;
    let before = insp.heads();
    insp.set_writer(Writer::new("ann", Role::LeadInspector));
    insp.sign_off(
        Uuid::from_u128(1),
        SignoffRole::LeadInspector,
        "A fair account of what we saw.",
        &stamp(args.history + 2),
    )?;
    let bytes = insp.save_after(&before);
    let change = Change::try_from(&bytes[..])?;
    let link = insp.chain()?.links[0].clone();
    let mut doc = AutoCommit::load(&insp.save())?;
    let after = doc.get_heads();
    eprintln!(
        "a 300-item inspection with {} changes; {} runs of each figure",
        doc.get_changes(&[]).len(),
        args.runs
    );
    let writer = Writer::new("ann", Role::LeadInspector);
    let earned = |_: &str| true;
    let check = |doc: &AutoCommit| -> Result<()> {
        let ctx = Context {
            kind: DocKind::Inspection,
            checklist: Some(&checklist),
            state: State::Submitted,
            earned: &earned,
            seal: &seal::Seal::UNSIGNED,
        };
        check_change(doc, &before, &change, &writer, &ctx)
            .map_err(|r| anyhow::anyhow!("refused: {r}"))?;
        Ok(())
    };
    let in_place = time(args.runs, || {
        check(&doc)?;
        let h = Inspection::read_in(&mut doc, checklist.clone(), |i| {
            i.view().map(|v| seal::content_hash(&v))
        })??;
        anyhow::ensure!(Some(&h) == link.content.as_ref(), "the content matches");
        Ok(())
    })?;
    let forked = time(args.runs, || {
        check(&doc)?;
        let fork = doc.fork_at(&after)?;
        let h = seal::content_hash(&Inspection::from_doc(fork, checklist.clone())?.view()?);
        anyhow::ensure!(Some(&h) == link.content.as_ref(), "the content matches");
        Ok(())
    })?;
    let subject = Subject::Item(items[0].clone());
    let mut n = 0;
    let hist = time(args.runs, || {
        let (e, _) = history::of(&mut doc, &subject, 2_000);
        n = e.len();
        Ok(())
    })?;
    let view = time(args.runs, || {
        Inspection::read_in(&mut doc, checklist.clone(), |i| i.view().map(drop))??;
        Ok(())
    })?;
    println!("| figure | median | p99 |");
    println!("|---|---|---|");
    println!(
        "| a sign-off taken: policy + content hash in place | {:.2} ms | {:.2} ms |",
        ms(in_place.0),
        ms(in_place.1)
    );
    println!(
        "| the same on a copy at its heads (`fork_at`, the peer) | {:.2} ms | {:.2} ms |",
        ms(forked.0),
        ms(forked.1)
    );
    println!(
        "| in place / on a copy | {:.3} | {:.3} |",
        ms(in_place.0) / ms(forked.0),
        ms(in_place.1) / ms(forked.1)
    );
    println!(
        "| an item's history ({n} values, every change decoded) | {:.2} ms | {:.2} ms |",
        ms(hist.0),
        ms(hist.1)
    );
    println!(
        "| the whole inspection's view (the peer) | {:.2} ms | {:.2} ms |",
        ms(view.0),
        ms(view.1)
    );
    println!(
        "| history / view | {:.2} | {:.2} |",
        ms(hist.0) / ms(view.0),
        ms(hist.1) / ms(view.1)
    );
    Ok(())
}
