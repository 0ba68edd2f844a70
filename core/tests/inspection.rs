//! Operations on the inspection document: what they write, what they refuse, and how
//! concurrent edits show up.

mod common;

use automerge::ActorId;
use common::*;
use uuid::Uuid;
use wardcheck_core::checklist::Severity;
use wardcheck_core::inspection::*;

fn fresh() -> Inspection {
    Inspection::create(
        new_inspection(1),
        checklist(),
        ActorId::random(),
        &stamp("ann", 0),
    )
    .unwrap()
}

/// A second replica of `insp`, on its own actor, as another device would have it.
fn replica(insp: &mut Inspection) -> Inspection {
    Inspection::load(&insp.save(), insp.checklist().clone(), ActorId::random()).unwrap()
}

#[test]
fn create_records_meta_and_every_item() {
    let insp = fresh();
    let v = insp.view().unwrap();
    assert_eq!(v.id, Uuid::from_u128(1));
    assert_eq!(v.schema_version, SCHEMA_VERSION);
    assert_eq!(v.meta.trust, "RJ1");
    assert_eq!(v.meta.sites, ["RJ121", "RJ122"]);
    assert_eq!(v.meta.checklist, checklist().pin);
    assert_eq!(v.meta.state.current().value, State::Draft);
    assert_eq!(v.meta.created, stamp("ann", 0));
    assert_eq!(v.meta.team.len(), 1);
    // 5 compliance + number + date + text; device checks are not per-inspection.
    assert_eq!(
        v.responses.len(),
        8,
        "every inspection-scope item has a response slot"
    );
    assert!(!v.responses.contains_key("w1"));
    assert!(
        v.responses
            .values()
            .all(|r| r.answer.is_none() && r.note.is_empty())
    );
    assert_eq!(v.progress.len(), 1);
    assert_eq!((v.progress[0].answered, v.progress[0].total), (0, 8));
}

#[test]
fn answers_of_every_kind_are_recorded_with_author_and_time() {
    let mut insp = fresh();
    insp.set_answer("c1", Answer::Met, &stamp("ann", 10))
        .unwrap();
    insp.set_answer(
        "c2",
        Answer::NotApplicable {
            reason: "no wifi on site".into(),
        },
        &stamp("ann", 11),
    )
    .unwrap();
    insp.set_answer("n1", Answer::Number { value: 95.5 }, &stamp("bob", 12))
        .unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
    insp.set_answer("d1", Answer::Date { value: date }, &stamp("bob", 13))
        .unwrap();
    insp.set_answer(
        "t1",
        Answer::Text {
            value: "ZX-1".into(),
        },
        &stamp("bob", 14),
    )
    .unwrap();
    let v = insp.view().unwrap();
    let a = v.responses["c1"].answer.as_ref().unwrap();
    assert_eq!(a.current().value, Answer::Met);
    assert_eq!((a.current().by.as_str(), a.current().at), ("ann", t(10)));
    assert!(!a.is_conflict());
    assert_eq!(
        v.responses["n1"].answer.as_ref().unwrap().current().value,
        Answer::Number { value: 95.5 }
    );
    assert_eq!(v.progress[0].answered, 5);
    assert!(v.conflicts.is_empty());
}

#[test]
fn operations_refuse_what_makes_no_sense() {
    let mut insp = fresh();
    let s = stamp("ann", 1);
    let e = insp.set_answer("nope", Answer::Met, &s).unwrap_err();
    assert!(
        matches!(e, InspectionError::UnknownItem(ref i) if i == "nope"),
        "{e}"
    );
    let e = insp
        .set_answer("c1", Answer::Number { value: 1.0 }, &s)
        .unwrap_err();
    assert!(matches!(e, InspectionError::WrongAnswerKind { .. }), "{e}");
    let e = insp.set_answer("n1", Answer::Met, &s).unwrap_err();
    assert!(matches!(e, InspectionError::WrongAnswerKind { .. }), "{e}");
    let e = insp
        .set_answer("n1", Answer::Number { value: 101.0 }, &s)
        .unwrap_err();
    assert!(matches!(e, InspectionError::OutOfRange { .. }), "{e}");
    let e = insp
        .set_answer("n1", Answer::Number { value: f64::NAN }, &s)
        .unwrap_err();
    assert!(matches!(e, InspectionError::OutOfRange { .. }), "{e}");
    let e = insp
        .set_answer(
            "c1",
            Answer::NotApplicable {
                reason: "  ".into(),
            },
            &s,
        )
        .unwrap_err();
    assert!(matches!(e, InspectionError::MissingReason(_)), "{e}");
    let e = insp.set_answer("w1", Answer::Met, &s).unwrap_err();
    assert!(
        matches!(e, InspectionError::WrongScope { .. }),
        "device checks are per device: {e}"
    );
    let e = insp.change_state(State::Closed, &s).unwrap_err();
    assert!(
        matches!(
            e,
            InspectionError::IllegalTransition {
                from: State::Draft,
                to: State::Closed
            }
        ),
        "{e}"
    );
    let e = insp
        .sign_off(Uuid::from_u128(9), SignoffRole::LeadInspector, "ok", &s)
        .unwrap_err();
    assert!(matches!(e, InspectionError::WrongState(..)), "{e}");
    let e = insp
        .edit_note("c1", &"x".repeat(MAX_TEXT_CHARS + 1), &s)
        .unwrap_err();
    assert!(matches!(e, InspectionError::TooLong { .. }), "{e}");
    let e = insp
        .record_observation(
            Uuid::from_u128(5),
            "w1",
            Observation {
                answer: Answer::Met,
                note: String::new(),
            },
            &s,
        )
        .unwrap_err();
    assert!(matches!(e, InspectionError::UnknownDevice(_)), "{e}");
    let bad_photo = PhotoRef {
        hash: "../../etc/passwd".into(),
        size: 1,
        width: 1,
        height: 1,
        mime: "image/jpeg".into(),
        caption: String::new(),
        captured_at: None,
    };
    let e = insp.attach_photo("c1", bad_photo, &s).unwrap_err();
    assert!(matches!(e, InspectionError::InvalidPhotoHash(_)), "{e}");
    // Nothing refused reached the document.
    let v = insp.view().unwrap();
    assert!(
        v.responses.values().all(|r| r.answer.is_none()),
        "a refused answer was written"
    );
}

#[test]
fn malformed_ods_codes_are_refused() {
    for (trust, sites) in [
        ("RJ", vec![]),
        ("rj1", vec![]),
        ("1J1", vec![]),
        ("RJ1X", vec![]),
        ("RJ1", vec!["RJ1"]),
        ("RJ1", vec!["RJ12!"]),
    ] {
        let mut n = new_inspection(1);
        n.trust = trust.into();
        n.sites = sites.into_iter().map(String::from).collect();
        let e =
            Inspection::create(n, checklist(), ActorId::random(), &stamp("ann", 0)).unwrap_err();
        assert!(
            matches!(e, InspectionError::InvalidOdsCode(_)),
            "{trust}: {e}"
        );
    }
    let mut n = new_inspection(1);
    n.sites = vec!["RTH01".into()];
    let e = Inspection::create(n, checklist(), ActorId::random(), &stamp("ann", 0)).unwrap_err();
    assert!(matches!(e, InspectionError::SiteNotInTrust { .. }), "{e}");
}

#[test]
fn state_moves_through_its_life_and_closed_refuses_writes() {
    let mut insp = fresh();
    insp.change_state(State::InProgress, &stamp("ann", 1))
        .unwrap();
    insp.change_state(State::Submitted, &stamp("ann", 2))
        .unwrap();
    insp.sign_off(
        Uuid::from_u128(7),
        SignoffRole::LeadInspector,
        "I confirm",
        &stamp("ann", 3),
    )
    .unwrap();
    insp.change_state(State::SharedWithTrust, &stamp("rev", 4))
        .unwrap();
    insp.change_state(State::Closed, &stamp("rev", 5)).unwrap();
    let e = insp
        .set_answer("c1", Answer::Met, &stamp("ann", 6))
        .unwrap_err();
    assert!(matches!(e, InspectionError::Closed), "{e}");
    let v = insp.view().unwrap();
    assert_eq!(v.meta.state.current().value, State::Closed);
    assert_eq!(v.meta.state.current().by, "rev");
    assert_eq!(v.signoffs.len(), 1);
    assert_eq!(v.signoffs[0].statement, "I confirm");
}

#[test]
fn devices_findings_comments_and_photos() {
    let mut insp = fresh();
    let dev = Uuid::from_u128(100);
    insp.add_device(dev, "WS-RJ1-0042", "19045.4291", &stamp("ann", 1))
        .unwrap();
    insp.record_observation(
        dev,
        "w1",
        Observation {
            answer: Answer::NotMet,
            note: "SMB1 on".into(),
        },
        &stamp("ann", 2),
    )
    .unwrap();
    let e = insp
        .record_observation(
            dev,
            "c1",
            Observation {
                answer: Answer::Met,
                note: String::new(),
            },
            &stamp("ann", 2),
        )
        .unwrap_err();
    assert!(matches!(e, InspectionError::WrongScope { .. }), "{e}");
    let fid = Uuid::from_u128(200);
    insp.add_finding(
        NewFinding {
            id: fid,
            severity: Severity::High,
            text: "Unsupported Windows 7 on imaging".into(),
            items: vec!["c1".into(), "w1".into()],
            recommendation: "Isolate and replace".into(),
        },
        &stamp("ann", 3),
    )
    .unwrap();
    let e = insp
        .add_finding(
            NewFinding {
                id: fid,
                severity: Severity::Low,
                text: "x".into(),
                items: vec![],
                recommendation: String::new(),
            },
            &stamp("ann", 3),
        )
        .unwrap_err();
    assert!(matches!(e, InspectionError::Duplicate(..)), "{e}");
    insp.edit_finding(
        fid,
        FindingEdit {
            severity: Some(Severity::Critical),
            unlink: vec!["w1".into()],
            ..Default::default()
        },
        &stamp("rev", 4),
    )
    .unwrap();
    let hash = "ab".repeat(32);
    let photo = PhotoRef {
        hash: hash.clone(),
        size: 1234,
        width: 640,
        height: 480,
        mime: "image/jpeg".into(),
        caption: "Server room".into(),
        captured_at: Some(t(1)),
    };
    insp.attach_photo("c1", photo.clone(), &stamp("ann", 6))
        .unwrap();
    let v = insp.view().unwrap();
    assert_eq!(v.devices.len(), 1);
    assert_eq!(v.devices[0].hostname.current().value, "WS-RJ1-0042");
    assert_eq!(
        v.devices[0].observations["w1"].current().value.answer,
        Answer::NotMet
    );
    assert_eq!(v.findings[0].severity.current().value, Severity::Critical);
    assert_eq!(v.findings[0].severity.current().by, "rev");
    assert_eq!(v.findings[0].items, ["c1"]);
    assert_eq!(v.findings[0].edited, stamp("rev", 4));
    assert_eq!(v.responses["c1"].photos[0].value, photo);
    insp.detach_photo("c1", &hash, &stamp("ann", 7)).unwrap();
    assert!(insp.view().unwrap().responses["c1"].photos.is_empty());
    let e = insp
        .detach_photo("c1", &hash, &stamp("ann", 8))
        .unwrap_err();
    assert!(matches!(e, InspectionError::UnknownPhoto { .. }), "{e}");
}

#[test]
fn concurrent_answers_show_as_a_conflict_until_one_is_picked() {
    let mut a = fresh();
    let mut b = replica(&mut a);
    a.set_answer("c1", Answer::Met, &stamp("ann", 10)).unwrap();
    b.set_answer("c1", Answer::NotMet, &stamp("bob", 11))
        .unwrap();
    a.merge(&mut b).unwrap();
    b.merge(&mut a).unwrap();
    let va = a.view().unwrap();
    assert_eq!(va, b.view().unwrap(), "both replicas see the same thing");
    let field = va.responses["c1"].answer.clone().unwrap();
    assert!(field.is_conflict(), "both values are kept");
    let mut seen: Vec<_> = field
        .values
        .iter()
        .map(|c| (c.value.by.clone(), c.value.value.clone()))
        .collect();
    seen.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        seen,
        [
            ("ann".to_string(), Answer::Met),
            ("bob".to_string(), Answer::NotMet)
        ]
    );
    assert_eq!(va.conflicts, [FieldRef::Answer { item: "c1".into() }]);

    let bobs = field
        .values
        .iter()
        .find(|c| c.value.by == "bob")
        .unwrap()
        .id
        .clone();
    a.resolve(
        &FieldRef::Answer { item: "c1".into() },
        &bobs,
        &stamp("rev", 20),
    )
    .unwrap();
    b.merge(&mut a).unwrap();
    let vb = b.view().unwrap();
    let field = vb.responses["c1"].answer.as_ref().unwrap();
    assert!(!field.is_conflict(), "resolved");
    let cur = field.current();
    assert_eq!(
        (cur.value.clone(), cur.by.as_str(), cur.at),
        (Answer::NotMet, "bob", t(11))
    );
    assert_eq!(
        cur.resolved,
        Some(stamp("rev", 20)),
        "who picked it is recorded"
    );
    assert!(vb.conflicts.is_empty());
    let e = a
        .resolve(
            &FieldRef::Answer { item: "c1".into() },
            "1@ff",
            &stamp("rev", 21),
        )
        .unwrap_err();
    assert!(matches!(e, InspectionError::UnknownCandidate { .. }), "{e}");
}

#[test]
fn concurrent_note_edits_merge() {
    let mut a = fresh();
    a.edit_note("c2", "Backups tested.", &stamp("ann", 1))
        .unwrap();
    let mut b = replica(&mut a);
    a.edit_note("c2", "Backups tested. Offline copy seen.", &stamp("ann", 2))
        .unwrap();
    b.edit_note("c2", "Restore log: Backups tested.", &stamp("bob", 3))
        .unwrap();
    a.merge(&mut b).unwrap();
    let note = a.view().unwrap().responses["c2"].note.clone();
    assert!(
        note.contains("Offline copy seen."),
        "ann's edit kept: {note}"
    );
    assert!(note.starts_with("Restore log: "), "bob's edit kept: {note}");
}

#[test]
fn concurrent_state_changes_and_severities_conflict_visibly() {
    let mut a = fresh();
    a.change_state(State::InProgress, &stamp("ann", 1)).unwrap();
    a.add_finding(
        NewFinding {
            id: Uuid::from_u128(5),
            severity: Severity::Low,
            text: "t".into(),
            items: vec![],
            recommendation: String::new(),
        },
        &stamp("ann", 2),
    )
    .unwrap();
    let mut b = replica(&mut a);
    a.edit_finding(
        Uuid::from_u128(5),
        FindingEdit {
            severity: Some(Severity::High),
            ..Default::default()
        },
        &stamp("ann", 3),
    )
    .unwrap();
    b.edit_finding(
        Uuid::from_u128(5),
        FindingEdit {
            severity: Some(Severity::Medium),
            ..Default::default()
        },
        &stamp("bob", 3),
    )
    .unwrap();
    a.merge(&mut b).unwrap();
    let v = a.view().unwrap();
    assert!(
        v.conflicts.contains(&FieldRef::FindingSeverity {
            finding: Uuid::from_u128(5)
        }),
        "{:?}",
        v.conflicts
    );
    assert_eq!(v.findings[0].severity.values.len(), 2);
}

#[test]
fn save_and_load_round_trip_and_check_the_pin() {
    let mut a = fresh();
    a.set_answer("c1", Answer::PartlyMet, &stamp("ann", 1))
        .unwrap();
    let bytes = a.save();
    assert_eq!(Inspection::pin_of(&bytes).unwrap(), checklist().pin);
    let b = Inspection::load(&bytes, checklist(), ActorId::random()).unwrap();
    assert_eq!(a.view().unwrap(), b.view().unwrap());
    let mut other = (*checklist()).clone();
    other.pin.sha256 = "1".repeat(64);
    let e = Inspection::load(&bytes, std::sync::Arc::new(other), ActorId::random()).unwrap_err();
    assert!(
        matches!(e, InspectionError::ChecklistMismatch { .. }),
        "{e}"
    );
    let e = Inspection::load(b"not automerge", checklist(), ActorId::random()).unwrap_err();
    assert!(matches!(e, InspectionError::Automerge(_)), "{e}");
}

#[test]
fn sync_protocol_brings_two_replicas_together() {
    let mut a = fresh();
    let mut b = replica(&mut a);
    a.set_answer("c1", Answer::Met, &stamp("ann", 1)).unwrap();
    b.add_device(Uuid::from_u128(9), "WS-1", "19045", &stamp("bob", 2))
        .unwrap();
    let (mut sa, mut sb) = (automerge::sync::State::new(), automerge::sync::State::new());
    for _ in 0..20 {
        let m1 = a.generate_sync_message(&mut sa);
        if let Some(m) = m1.clone() {
            b.receive_sync_message(&mut sb, m).unwrap();
        }
        let m2 = b.generate_sync_message(&mut sb);
        if let Some(m) = m2.clone() {
            a.receive_sync_message(&mut sa, m).unwrap();
        }
        if m1.is_none() && m2.is_none() {
            break;
        }
    }
    assert_eq!(a.heads(), b.heads());
    assert_eq!(a.view().unwrap(), b.view().unwrap());
    assert_eq!(a.view().unwrap().devices.len(), 1);
}

/// Issue 12: an inspection holds only the sections that apply to its trust, records the
/// trust's type, and a section left out cannot be answered.
#[test]
fn an_inspection_holds_only_the_sections_for_its_trust() {
    use wardcheck_core::checklist::{Org, OrgType};
    let cqc = std::sync::Arc::new(
        wardcheck_core::checklist::bundled()
            .into_iter()
            .find(|c| c.id == "cqc-onsite-cyber")
            .unwrap(),
    );
    let make = |org: Option<Org>| {
        let mut new = new_inspection(7);
        new.org = org;
        Inspection::create(new, cqc.clone(), ActorId::random(), &stamp("ann", 0)).unwrap()
    };
    let amb = make(Some(Org {
        kind: OrgType::Ambulance,
        major_trauma_centre: false,
    }));
    let view = amb.view().unwrap();
    assert!(view.responses.contains_key("amb-cad-fallback"));
    assert!(!view.responses.contains_key("mtc-imaging-continuity"));
    assert_eq!(view.meta.org.map(|o| o.kind), Some(OrgType::Ambulance));
    assert!(
        !view
            .progress
            .iter()
            .any(|p| p.section == "mtc-critical-services")
    );
    let mut acute = make(Some(Org {
        kind: OrgType::Acute,
        major_trauma_centre: false,
    }));
    assert!(
        !acute
            .view()
            .unwrap()
            .responses
            .contains_key("amb-cad-fallback")
    );
    acute
        .set_answer("gov-security-policy", Answer::Met, &stamp("ann", 4))
        .expect("an item the inspection holds is answered");
    assert!(
        acute
            .set_answer("amb-cad-fallback", Answer::Met, &stamp("ann", 5))
            .is_err(),
        "an item of a section the inspection does not hold cannot be answered"
    );
    let unknown = make(None).view().unwrap();
    assert!(
        unknown.responses.contains_key("amb-cad-fallback")
            && unknown.responses.contains_key("mtc-imaging-continuity")
    );
    assert_eq!(unknown.meta.org, None);
}
