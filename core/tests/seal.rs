//! The signed record: a lead inspector's sign-off freezes what it signed for everyone, a
//! reviewer reopens it only with a reason (in the same change as the move back), and the
//! sign-offs chain. Each step is made by a typed operation and checked again as a
//! received change, the way the server checks it.

mod common;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Change, ReadDoc};
use common::*;
use uuid::Uuid;
use wardcheck_core::checklist::Severity;
use wardcheck_core::inspection::*;
use wardcheck_core::policy::{
    Checked, Code, Context, DocKind, Refusal, Role, Writer, check_change,
};
use wardcheck_core::seal::{self, Seal};

const FINDING: Uuid = Uuid::from_u128(0xf1);

fn signed_in_progress() -> Inspection {
    let mut insp = Inspection::create(
        new_inspection(1),
        checklist(),
        ActorId::random(),
        &stamp("ann", 0),
    )
    .unwrap();
    insp.change_state(State::InProgress, &stamp("ann", 1))
        .unwrap();
    insp.set_answer("c1", Answer::Met, &stamp("ann", 2))
        .unwrap();
    insp.add_device(Uuid::from_u128(0xd1), "WS-1", "19045", &stamp("ann", 3))
        .unwrap();
    insp.add_finding(
        NewFinding {
            id: FINDING,
            severity: Severity::High,
            text: "Unsupported devices".into(),
            items: vec!["c1".into()],
            recommendation: "Replace".into(),
        },
        &stamp("ann", 4),
    )
    .unwrap();
    insp
}

fn who(role: Role) -> &'static str {
    match role {
        Role::LeadInspector => "ann",
        Role::Reviewer => "rita",
        _ => "ian",
    }
}

/// Makes `op` on a copy as `role` (typed, held to the policy), and checks the change it
/// made as the server would. Returns the copy (to go on from) and the check's outcome.
fn both(
    insp: &mut Inspection,
    role: Role,
    secs: i64,
    op: impl FnOnce(&mut Inspection, &Stamp) -> Result<(), InspectionError>,
) -> Result<(Inspection, Checked), String> {
    let mut copy =
        Inspection::load(&insp.save(), insp.checklist().clone(), ActorId::random()).unwrap();
    copy.set_writer(Writer::new(who(role), role));
    let before = copy.heads();
    let seal = copy.chain().unwrap().seal();
    let state = copy.state().unwrap().current().value;
    op(&mut copy, &stamp(who(role), secs)).map_err(|e| format!("typed: {e}"))?;
    let bytes = copy.save_after(&before);
    let change = Change::try_from(&bytes[..]).expect("one change");
    let checklist = copy.checklist().clone();
    let all = |_: &str| true;
    let checked = check_change(
        copy.doc(),
        &before,
        &change,
        &Writer::new(who(role), role),
        &Context {
            kind: DocKind::Inspection,
            checklist: Some(&checklist),
            state,
            earned: &all,
            seal: &seal,
        },
    )
    .map_err(|r| format!("received: {r}"))?;
    Ok((copy, checked))
}

/// Checks a raw change `f` makes on `insp`'s document, as `role`.
fn raw(
    insp: &mut Inspection,
    role: Role,
    f: impl FnOnce(&mut AutoCommit),
) -> Result<Checked, Refusal> {
    let checklist = insp.checklist().clone();
    let seal = insp.chain().unwrap().seal();
    let state = insp.state().unwrap().current().value;
    let mut doc = AutoCommit::load(&insp.save()).unwrap();
    let before = doc.get_heads();
    f(&mut doc);
    doc.commit();
    let bytes = doc.save_after(&before);
    let change = Change::try_from(&bytes[..]).unwrap();
    let all = |_: &str| true;
    check_change(
        &doc,
        &before,
        &change,
        &Writer::new(who(role), role),
        &Context {
            kind: DocKind::Inspection,
            checklist: Some(&checklist),
            state,
            earned: &all,
            seal: &seal,
        },
    )
}

fn obj(doc: &AutoCommit, path: &[&str]) -> automerge::ObjId {
    let mut o = automerge::ROOT;
    for k in path {
        o = doc.get(&o, *k).unwrap().unwrap().1;
    }
    o
}

fn stamped(value: serde_json::Value, by: &str) -> String {
    serde_json::json!({"value": value, "by": by, "at": "2026-11-01T10:00:00Z"}).to_string()
}

#[test]
fn a_sign_off_freezes_what_it_signed_until_a_reviewer_reopens_it_with_a_reason() {
    use Role::*;
    let insp = signed_in_progress();
    let mut insp = insp;
    let (mut insp, _) = both(&mut insp, LeadInspector, 10, |i, s| {
        i.change_state(State::Submitted, s)
    })
    .unwrap();
    // Before the lead inspector signs, the reviewer may not sign.
    let e = both(&mut insp, Reviewer, 11, |i, s| {
        i.sign_off(Uuid::from_u128(0x50), SignoffRole::Reviewer, "Reviewed", s)
    })
    .unwrap_err();
    assert!(e.contains("after the lead inspector"), "{e}");

    let (mut insp, checked) = both(&mut insp, LeadInspector, 12, |i, s| {
        i.sign_off(Uuid::from_u128(0x51), SignoffRole::LeadInspector, "Fair", s)
    })
    .unwrap();
    let first = checked.link.expect("the change adds a link");
    assert_eq!(first.prev, None);
    assert_eq!(
        first.content.as_deref(),
        Some(seal::content_hash(&insp.view().unwrap()).as_str())
    );
    let v = insp.view().unwrap();
    assert!(v.frozen);
    assert_eq!(v.signoffs.len(), 1);
    let h1 = v.signoffs[0].hash.clone().unwrap();

    // Frozen for everyone: the reviewer's finding edit, typed and raw.
    let e = both(&mut insp, Reviewer, 13, |i, s| {
        i.edit_finding(
            FINDING,
            FindingEdit {
                severity: Some(Severity::Low),
                ..Default::default()
            },
            s,
        )
    })
    .unwrap_err();
    assert!(e.contains("frozen"), "{e}");
    let r = raw(&mut insp, Reviewer, |d| {
        let f = obj(d, &["findings", &FINDING.to_string()]);
        d.put(&f, "severity", stamped(serde_json::json!("low"), "rita"))
            .unwrap();
    });
    assert_eq!(r.unwrap_err().code, Code::Frozen);
    // Sent back without a reason: refused.
    let r = raw(&mut insp, Reviewer, |d| {
        let m = obj(d, &["meta"]);
        d.put(
            &m,
            "state",
            stamped(serde_json::json!("in_progress"), "rita"),
        )
        .unwrap();
    });
    assert_eq!(r.unwrap_err().code, Code::Frozen);
    // A second lead sign-off, and a forged link that does not follow the chain.
    let e = both(&mut insp, LeadInspector, 14, |i, s| {
        i.sign_off(
            Uuid::from_u128(0x52),
            SignoffRole::LeadInspector,
            "Again",
            s,
        )
    })
    .unwrap_err();
    assert!(e.contains("signed it already"), "{e}");
    let content = seal::content_hash(&insp.view().unwrap());
    let r = raw(&mut insp, Reviewer, |d| {
        let heads: Vec<String> = d.get_heads().iter().map(|h| h.to_string()).collect();
        let o = obj(d, &["signoffs"]);
        let link = serde_json::json!({"id": Uuid::from_u128(0x53), "role": "reviewer",
            "statement": "ok", "by": "rita", "at": "2026-11-01T10:00:00Z",
            "heads": heads, "content": content});
        d.put(&o, Uuid::from_u128(0x53).to_string(), link.to_string())
            .unwrap();
    });
    assert_eq!(r.unwrap_err().code, Code::Frozen, "no prev");
    // A reopening that leaves the state where it is.
    let r = raw(&mut insp, Reviewer, |d| {
        let heads: Vec<String> = d.get_heads().iter().map(|h| h.to_string()).collect();
        let o = obj(d, &["signoffs"]);
        let link = serde_json::json!({"id": Uuid::from_u128(0x54), "role": "reviewer",
            "kind": "reopen", "statement": "why", "by": "rita", "at": "2026-11-01T10:00:00Z",
            "heads": heads, "content": content, "prev": h1});
        d.put(&o, Uuid::from_u128(0x54).to_string(), link.to_string())
            .unwrap();
    });
    assert_eq!(r.unwrap_err().code, Code::Malformed);

    // The reviewer reopens, with a reason: the state goes back, nothing is frozen.
    let (mut insp, checked) = both(&mut insp, Reviewer, 15, |i, s| {
        i.reopen(Uuid::from_u128(0x55), "Device sample too small", s)
    })
    .unwrap();
    assert_eq!(checked.state, Some(State::InProgress));
    assert_eq!(checked.link.unwrap().prev.as_deref(), Some(h1.as_str()));
    assert!(!insp.view().unwrap().frozen);
    let (mut insp, _) = both(&mut insp, LeadInspector, 16, |i, s| {
        i.set_answer("c1", Answer::PartlyMet, s)
    })
    .unwrap();
    let (mut insp, _) = both(&mut insp, LeadInspector, 17, |i, s| {
        i.change_state(State::Submitted, s)
    })
    .unwrap();
    let (mut insp, _) = both(&mut insp, LeadInspector, 18, |i, s| {
        i.sign_off(
            Uuid::from_u128(0x56),
            SignoffRole::LeadInspector,
            "Fair now",
            s,
        )
    })
    .unwrap();
    let (mut insp, _) = both(&mut insp, Reviewer, 19, |i, s| {
        i.sign_off(Uuid::from_u128(0x57), SignoffRole::Reviewer, "Reviewed", s)
    })
    .unwrap();
    let e = both(&mut insp, Reviewer, 20, |i, s| {
        i.sign_off(Uuid::from_u128(0x58), SignoffRole::Reviewer, "Twice", s)
    })
    .unwrap_err();
    assert!(e.contains("signed it already"), "{e}");

    let chain = insp.chain().unwrap();
    assert!(chain.broken.is_empty(), "{:?}", chain.broken);
    let kinds: Vec<(LinkKind, SignoffRole)> =
        chain.links.iter().map(|l| (l.kind, l.role)).collect();
    assert_eq!(
        kinds,
        [
            (LinkKind::SignOff, SignoffRole::LeadInspector),
            (LinkKind::Reopen, SignoffRole::Reviewer),
            (LinkKind::SignOff, SignoffRole::LeadInspector),
            (LinkKind::SignOff, SignoffRole::Reviewer),
        ]
    );
    assert_eq!(chain.links[1].statement, "Device sample too small");
    assert_ne!(
        chain.links[0].content, chain.links[2].content,
        "the second sign-off signs the changed answer"
    );
    assert_eq!(
        chain.seal(),
        Seal {
            tip: chain.links[3].hash.clone(),
            frozen: true,
            reviewer_signed: true
        }
    );
}

#[test]
fn a_sign_off_over_concurrent_values_is_refused() {
    let mut insp = signed_in_progress();
    let mut other =
        Inspection::load(&insp.save(), insp.checklist().clone(), ActorId::random()).unwrap();
    insp.set_answer("c2", Answer::Met, &stamp("ann", 5))
        .unwrap();
    other
        .set_answer("c2", Answer::NotMet, &stamp("ian", 6))
        .unwrap();
    insp.merge(&mut other).unwrap();
    insp.change_state(State::Submitted, &stamp("ann", 7))
        .unwrap();
    let e = insp
        .sign_off(
            Uuid::from_u128(1),
            SignoffRole::LeadInspector,
            "Fair",
            &stamp("ann", 8),
        )
        .unwrap_err();
    assert!(e.to_string().contains("pick one before signing"), "{e}");
}

#[test]
fn a_state_is_moved_once_per_change_and_a_pick_is_a_move_from_where_it_stands() {
    use Role::*;
    let mut insp = signed_in_progress();
    insp.change_state(State::Submitted, &stamp("ann", 10))
        .unwrap();
    // Two puts of the state in one change: refused, whatever they say.
    let r = raw(&mut insp, Reviewer, |d| {
        let m = obj(d, &["meta"]);
        d.put(
            &m,
            "state",
            stamped(serde_json::json!("shared_with_trust"), "rita"),
        )
        .unwrap();
        d.put(
            &m,
            "state",
            stamped(serde_json::json!("in_progress"), "rita"),
        )
        .unwrap();
    });
    assert!(r.unwrap_err().message.contains("moves the state once"));

    // A reviewer shared it on one copy while another copy went back to in progress: the
    // two values stand side by side. Picking the shared one is a move from where the
    // inspection stands, which a reviewer may not make from in progress.
    let mut other =
        Inspection::load(&insp.save(), insp.checklist().clone(), ActorId::random()).unwrap();
    insp.change_state(State::SharedWithTrust, &stamp("rita", 11))
        .unwrap();
    other
        .change_state(State::InProgress, &stamp("rita", 12))
        .unwrap();
    insp.merge(&mut other).unwrap();
    let state = insp.state().unwrap();
    assert!(state.is_conflict());
    let current = state.current().value;
    let loser = state
        .values
        .iter()
        .find(|c| c.value.value != current)
        .unwrap()
        .id
        .clone();
    let r = both(&mut insp, Reviewer, 13, |i, s| {
        i.resolve(&FieldRef::State, &loser, s)
    });
    let allowed = wardcheck_core::policy::permits_move(
        Role::Reviewer,
        current,
        if current == State::InProgress {
            State::SharedWithTrust
        } else {
            State::InProgress
        },
    )
    .is_ok();
    assert_eq!(r.is_ok(), allowed, "{r:?}");
}
