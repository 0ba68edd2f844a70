//! Replicas that apply random operations and exchange changes in random orders, by
//! merging and through the sync protocol, end with identical views and heads, and
//! nothing any replica did is lost.

mod common;

use std::collections::BTreeSet;

use automerge::{ActorId, ChangeHash, sync};
use common::*;
use proptest::prelude::*;
use uuid::Uuid;
use wardcheck_core::checklist::Severity;
use wardcheck_core::inspection::*;

const ITEMS: &[&str] = &["c1", "c2", "c3", "n1", "t1"];

#[derive(Debug, Clone)]
enum Step {
    Answer {
        at: usize,
        item: usize,
        pick: u8,
    },
    Note {
        at: usize,
        item: usize,
        text: String,
    },
    AddDevice {
        at: usize,
    },
    Observe {
        at: usize,
        device: usize,
        pick: u8,
    },
    AddFinding {
        at: usize,
        sev: u8,
    },
    EditFinding {
        at: usize,
        finding: usize,
        text: String,
    },
    Photo {
        at: usize,
        item: usize,
        seed: u8,
    },
    /// `to` pulls every change `from` has.
    Merge {
        from: usize,
        to: usize,
    },
    /// Run the sync protocol between two replicas, possibly cut short.
    Sync {
        a: usize,
        b: usize,
        rounds: u8,
    },
}

fn step(n: usize) -> impl Strategy<Value = Step> {
    let r = 0..n;
    prop_oneof![
        3 => (r.clone(), 0..ITEMS.len(), 0u8..5).prop_map(|(at, item, pick)| Step::Answer { at, item, pick }),
        2 => (r.clone(), 0..ITEMS.len(), "[a-z ]{0,12}").prop_map(|(at, item, text)| Step::Note { at, item, text }),
        1 => r.clone().prop_map(|at| Step::AddDevice { at }),
        2 => (r.clone(), 0..4usize, 0u8..3).prop_map(|(at, device, pick)| Step::Observe { at, device, pick }),
        1 => (r.clone(), 0u8..4).prop_map(|(at, sev)| Step::AddFinding { at, sev }),
        2 => (r.clone(), 0..4usize, "[a-z]{1,8}").prop_map(|(at, finding, text)| Step::EditFinding { at, finding, text }),
        1 => (r.clone(), 0..ITEMS.len(), any::<u8>()).prop_map(|(at, item, seed)| Step::Photo { at, item, seed }),
        3 => (r.clone(), r.clone()).prop_map(|(from, to)| Step::Merge { from, to }),
        3 => (r.clone(), r, 1u8..6).prop_map(|(a, b, rounds)| Step::Sync { a, b, rounds }),
    ]
}

fn scenario() -> impl Strategy<Value = (usize, Vec<Step>)> {
    (3usize..=5).prop_flat_map(|n| (Just(n), prop::collection::vec(step(n), 1..60)))
}

fn answer(item: &str, pick: u8) -> Answer {
    match item {
        "n1" => Answer::Number {
            value: f64::from(pick) * 10.0,
        },
        "t1" => Answer::Text {
            value: format!("v{pick}"),
        },
        _ => match pick % 4 {
            0 => Answer::Met,
            1 => Answer::PartlyMet,
            2 => Answer::NotMet,
            _ => Answer::NotApplicable {
                reason: format!("reason {pick}"),
            },
        },
    }
}

/// One replica and what it has done.
struct Replica {
    insp: Inspection,
    user: String,
    counter: u128,
    clock: i64,
    /// Per peer sync state.
    states: Vec<sync::State>,
}

impl Replica {
    fn next_id(&mut self, idx: usize) -> Uuid {
        self.counter += 1;
        Uuid::from_u128(((idx as u128 + 1) << 64) | self.counter)
    }
    fn stamp(&mut self) -> Stamp {
        self.clock += 1;
        stamp(&self.user, self.clock)
    }
}

/// What must still be there at the end.
#[derive(Default)]
struct Ledger {
    changes: Vec<ChangeHash>,
    devices: BTreeSet<Uuid>,
    findings: BTreeSet<Uuid>,
    photos: BTreeSet<(String, String)>,
    /// (item, answer) pairs that were set.
    answers: Vec<(String, Answer)>,
}

fn sync_pair(reps: &mut [Replica], a: usize, b: usize, rounds: usize) {
    if a == b {
        return;
    }
    for _ in 0..rounds {
        let (ra, rb) = two(reps, a, b);
        let m1 = ra.insp.generate_sync_message(&mut ra.states[b]);
        if let Some(m) = m1.clone() {
            // Through the wire encoding, as a real peer would send it.
            let m = sync::Message::decode(&m.encode()).unwrap();
            rb.insp.receive_sync_message(&mut rb.states[a], m).unwrap();
        }
        let m2 = rb.insp.generate_sync_message(&mut rb.states[a]);
        if let Some(m) = m2.clone() {
            let m = sync::Message::decode(&m.encode()).unwrap();
            ra.insp.receive_sync_message(&mut ra.states[b], m).unwrap();
        }
        if m1.is_none() && m2.is_none() {
            return;
        }
    }
}

fn two(reps: &mut [Replica], a: usize, b: usize) -> (&mut Replica, &mut Replica) {
    assert_ne!(a, b);
    if a < b {
        let (x, y) = reps.split_at_mut(b);
        (&mut x[a], &mut y[0])
    } else {
        let (x, y) = reps.split_at_mut(a);
        (&mut y[0], &mut x[b])
    }
}

fn run(n: usize, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut origin = Inspection::create(
        new_inspection(1),
        checklist(),
        ActorId::random(),
        &stamp("ann", 0),
    )
    .unwrap();
    let snapshot = origin.save();
    let mut reps: Vec<Replica> = (0..n)
        .map(|i| Replica {
            insp: Inspection::load(&snapshot, checklist(), ActorId::random()).unwrap(),
            user: format!("user{i}"),
            counter: 0,
            clock: 0,
            states: (0..n).map(|_| sync::State::new()).collect(),
        })
        .collect();
    let mut ledger = Ledger::default();

    for s in steps {
        let at = match &s {
            Step::Answer { at, .. }
            | Step::Note { at, .. }
            | Step::AddDevice { at }
            | Step::Observe { at, .. }
            | Step::AddFinding { at, .. }
            | Step::EditFinding { at, .. }
            | Step::Photo { at, .. } => Some(*at),
            _ => None,
        };
        let before = at.map(|i| reps[i].insp.heads());
        match s {
            Step::Answer { at, item, pick } => {
                let st = reps[at].stamp();
                let a = answer(ITEMS[item], pick);
                reps[at]
                    .insp
                    .set_answer(ITEMS[item], a.clone(), &st)
                    .unwrap();
                ledger.answers.push((ITEMS[item].to_string(), a));
            }
            Step::Note { at, item, text } => {
                let st = reps[at].stamp();
                reps[at].insp.edit_note(ITEMS[item], &text, &st).unwrap();
            }
            Step::AddDevice { at } => {
                let id = reps[at].next_id(at);
                let st = reps[at].stamp();
                reps[at].insp.add_device(id, "WS-1", "19045", &st).unwrap();
                ledger.devices.insert(id);
            }
            Step::Observe { at, device, pick } => {
                let devices: Vec<Uuid> = reps[at]
                    .insp
                    .view()
                    .unwrap()
                    .devices
                    .iter()
                    .map(|d| d.id)
                    .collect();
                if let Some(id) = devices.get(device % devices.len().max(1)).copied() {
                    let st = reps[at].stamp();
                    let obs = Observation {
                        answer: answer("w1", pick),
                        note: String::new(),
                    };
                    reps[at]
                        .insp
                        .record_observation(id, "w1", obs, &st)
                        .unwrap();
                }
            }
            Step::AddFinding { at, sev } => {
                let id = reps[at].next_id(at);
                let st = reps[at].stamp();
                let severity = [
                    Severity::Low,
                    Severity::Medium,
                    Severity::High,
                    Severity::Critical,
                ][sev as usize];
                let f = NewFinding {
                    id,
                    severity,
                    text: "finding".into(),
                    items: vec!["c1".into()],
                    recommendation: String::new(),
                };
                reps[at].insp.add_finding(f, &st).unwrap();
                ledger.findings.insert(id);
            }
            Step::EditFinding { at, finding, text } => {
                let ids: Vec<Uuid> = reps[at]
                    .insp
                    .view()
                    .unwrap()
                    .findings
                    .iter()
                    .map(|f| f.id)
                    .collect();
                if let Some(id) = ids.get(finding % ids.len().max(1)).copied() {
                    let st = reps[at].stamp();
                    let edit = FindingEdit {
                        text: Some(text),
                        link: vec!["c2".into()],
                        ..Default::default()
                    };
                    reps[at].insp.edit_finding(id, edit, &st).unwrap();
                }
            }
            Step::Photo { at, item, seed } => {
                let hash = format!("{:064x}", u128::from(seed) * 7919 + at as u128);
                let st = reps[at].stamp();
                let p = PhotoRef {
                    hash: hash.clone(),
                    size: 10,
                    width: 1,
                    height: 1,
                    mime: "image/jpeg".into(),
                    caption: String::new(),
                    captured_at: None,
                };
                reps[at].insp.attach_photo(ITEMS[item], p, &st).unwrap();
                ledger.photos.insert((ITEMS[item].to_string(), hash));
            }
            Step::Merge { from, to } => {
                if from != to {
                    let (rf, rt) = two(&mut reps, from, to);
                    rt.insp.merge(&mut rf.insp).unwrap();
                }
            }
            Step::Sync { a, b, rounds } => sync_pair(&mut reps, a, b, rounds as usize),
        }
        if let (Some(i), Some(before)) = (at, before) {
            let after = reps[i].insp.heads();
            if after != before {
                ledger
                    .changes
                    .extend(after.into_iter().filter(|h| !before.contains(h)));
            }
        }
    }

    // Heal: sync every pair until nothing moves.
    for _ in 0..3 {
        for a in 0..n {
            for b in 0..n {
                sync_pair(&mut reps, a, b, 50);
            }
        }
    }

    let heads0 = reps[0].insp.heads();
    let view0 = reps[0].insp.view().unwrap();
    for r in reps.iter_mut().skip(1) {
        prop_assert_eq!(
            &r.insp.heads(),
            &heads0,
            "all replicas end with the same heads"
        );
        prop_assert_eq!(
            &r.insp.view().unwrap(),
            &view0,
            "all replicas end with the same view"
        );
    }
    for h in &ledger.changes {
        prop_assert!(
            reps[0].insp.has_change(h),
            "change {} made by a replica was lost",
            h
        );
    }
    let devices: BTreeSet<Uuid> = view0.devices.iter().map(|d| d.id).collect();
    prop_assert_eq!(devices, ledger.devices, "every device added is there");
    let findings: BTreeSet<Uuid> = view0.findings.iter().map(|f| f.id).collect();
    prop_assert_eq!(findings, ledger.findings, "every finding added is there");
    for (item, hash) in &ledger.photos {
        prop_assert!(
            view0.responses[item]
                .photos
                .iter()
                .any(|p| &p.value.hash == hash),
            "photo {} on {} was lost",
            hash,
            item
        );
    }
    // Each answered item shows one of the values set for it, and every value shown
    // was set by someone.
    for (item, r) in &view0.responses {
        let set: Vec<&Answer> = ledger
            .answers
            .iter()
            .filter(|(i, _)| i == item)
            .map(|(_, a)| a)
            .collect();
        match &r.answer {
            None => prop_assert!(set.is_empty(), "answers to {} vanished", item),
            Some(f) => {
                for c in &f.values {
                    prop_assert!(
                        set.contains(&&c.value.value),
                        "{} shows a value nobody set",
                        item
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_and_lose_nothing((n, steps) in scenario()) {
        run(n, steps)?;
    }
}
