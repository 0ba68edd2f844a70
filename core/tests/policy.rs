//! The write policy, both ways: a typed operation made for a writer is refused exactly
//! when the change it would make is refused by `check_change` for that writer, in every
//! state and role; and raw changes that no typed operation makes (forged authors, the
//! server's facts, the document's shape, unearned photos) are refused with their code.

mod common;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Change, ObjType, ReadDoc, ScalarValue};
use common::*;
use uuid::Uuid;
use wardcheck_core::checklist::Severity;
use wardcheck_core::inspection::*;
use wardcheck_core::policy::{
    Checked, Code, Context, DocKind, Refusal, Role, Writer, check_change,
};
use wardcheck_core::response::TrustResponse;
use wardcheck_core::review::Review;

const DEVICE: Uuid = Uuid::from_u128(0xd1);
const FINDING: Uuid = Uuid::from_u128(0xf1);
const PHOTO: &str = "abababababababababababababababababababababababababababababababab";

fn user(role: Role) -> &'static str {
    match role {
        Role::LeadInspector => "ann",
        Role::Inspector => "ian",
        Role::Reviewer => "rita",
        Role::TrustLead => "lead",
        Role::Admin => "adam",
        Role::Server => "server",
    }
}

fn writer(role: Role) -> Writer {
    Writer::new(user(role), role)
}

fn replica(insp: &mut Inspection) -> Inspection {
    Inspection::load(&insp.save(), insp.checklist().clone(), ActorId::random()).unwrap()
}

fn photo(hash: &str) -> PhotoRef {
    PhotoRef {
        hash: hash.into(),
        size: 10,
        width: 1,
        height: 1,
        mime: "image/jpeg".into(),
        caption: "x".into(),
        captured_at: None,
    }
}

/// An inspection in `state`, holding a device, a finding, a photo and a conflict on c1.
fn doc_in(state: State) -> Inspection {
    let mut insp = Inspection::create(
        new_inspection(1),
        checklist(),
        ActorId::random(),
        &stamp("ann", 0),
    )
    .unwrap();
    insp.change_state(State::InProgress, &stamp("ann", 1))
        .unwrap();
    insp.add_device(DEVICE, "WS-1", "19045", &stamp("ann", 2))
        .unwrap();
    insp.add_finding(
        NewFinding {
            id: FINDING,
            severity: Severity::High,
            text: "Unsupported devices".into(),
            items: vec!["c1".into()],
            recommendation: "Replace".into(),
        },
        &stamp("ann", 3),
    )
    .unwrap();
    insp.attach_photo("c2", photo(PHOTO), &stamp("ann", 4))
        .unwrap();
    let mut other = replica(&mut insp);
    insp.set_answer("c1", Answer::Met, &stamp("ann", 5))
        .unwrap();
    other
        .set_answer("c1", Answer::NotMet, &stamp("ian", 6))
        .unwrap();
    insp.merge(&mut other).unwrap();
    let path = [State::Submitted, State::SharedWithTrust, State::Closed];
    if state == State::Draft {
        // A fresh draft: made the same way, but never moved on.
        let mut d = Inspection::create(
            new_inspection(1),
            checklist(),
            ActorId::random(),
            &stamp("ann", 0),
        )
        .unwrap();
        d.add_device(DEVICE, "WS-1", "19045", &stamp("ann", 2))
            .unwrap();
        d.add_finding(
            NewFinding {
                id: FINDING,
                severity: Severity::High,
                text: "Unsupported devices".into(),
                items: vec!["c1".into()],
                recommendation: "Replace".into(),
            },
            &stamp("ann", 3),
        )
        .unwrap();
        d.attach_photo("c2", photo(PHOTO), &stamp("ann", 4))
            .unwrap();
        return d;
    }
    for (i, s) in path.iter().enumerate() {
        if insp.state().unwrap().current().value == state {
            break;
        }
        insp.change_state(*s, &stamp("rita", 10 + i as i64))
            .unwrap();
    }
    assert_eq!(insp.state().unwrap().current().value, state);
    insp
}

fn last_change(insp: &mut Inspection, before: &[automerge::ChangeHash]) -> Change {
    let bytes = insp.save_after(before);
    Change::try_from(&bytes[..]).expect("one change")
}

fn earned_all(_: &str) -> bool {
    true
}

fn ctx<'a>(kind: DocKind, insp: &'a Inspection, state: State) -> Context<'a> {
    Context {
        kind,
        checklist: Some(insp.checklist()),
        state,
        earned: &earned_all,
        seal: &wardcheck_core::seal::Seal::UNSIGNED,
    }
}

type Op = fn(&mut Inspection, &Stamp) -> Result<(), InspectionError>;

fn ops() -> Vec<(&'static str, Op)> {
    vec![
        ("set_answer", |i, s| {
            i.set_answer("c3", Answer::PartlyMet, s)
        }),
        ("edit_note", |i, s| {
            i.edit_note("c3", "Saw the patch board", s)
        }),
        ("attach_photo", |i, s| {
            i.attach_photo("c3", photo(&"cd".repeat(32)), s)
        }),
        ("detach_photo", |i, s| i.detach_photo("c2", PHOTO, s)),
        ("add_device", |i, s| {
            i.add_device(Uuid::from_u128(0xd2), "WS-2", "19044", s)
        }),
        ("edit_device", |i, s| {
            i.edit_device(DEVICE, Some("WS-1A"), None, s)
        }),
        ("record_observation", |i, s| {
            i.record_observation(
                DEVICE,
                "w1",
                Observation {
                    answer: Answer::NotMet,
                    note: "SMBv1 on".into(),
                },
                s,
            )
        }),
        ("add_finding", |i, s| {
            i.add_finding(
                NewFinding {
                    id: Uuid::from_u128(0xf2),
                    severity: Severity::Low,
                    text: "Stale rules".into(),
                    items: vec!["c2".into()],
                    recommendation: String::new(),
                },
                s,
            )
        }),
        ("edit_finding", |i, s| {
            i.edit_finding(
                FINDING,
                FindingEdit {
                    severity: Some(Severity::Critical),
                    text: Some("Many unsupported devices".into()),
                    link: vec!["c2".into()],
                    unlink: vec!["c1".into()],
                    ..Default::default()
                },
                s,
            )
        }),
        ("to_in_progress", |i, s| {
            i.change_state(State::InProgress, s)
        }),
        ("to_submitted", |i, s| i.change_state(State::Submitted, s)),
        ("to_shared", |i, s| {
            i.change_state(State::SharedWithTrust, s)
        }),
        ("to_closed", |i, s| i.change_state(State::Closed, s)),
        ("sign_off_lead", |i, s| {
            i.sign_off(
                Uuid::from_u128(0x51),
                SignoffRole::LeadInspector,
                "Fair account",
                s,
            )
        }),
        ("sign_off_reviewer", |i, s| {
            i.sign_off(Uuid::from_u128(0x52), SignoffRole::Reviewer, "Reviewed", s)
        }),
        ("resolve_answer", |i, s| {
            let v = i.view()?;
            let Some(f) = v.responses["c1"].answer.clone() else {
                return Err(InspectionError::Malformed("no conflict".into()));
            };
            let pick = f.values.last().unwrap().id.clone();
            i.resolve(&FieldRef::Answer { item: "c1".into() }, &pick, s)
        }),
    ]
}

const STATES: [State; 5] = [
    State::Draft,
    State::InProgress,
    State::Submitted,
    State::SharedWithTrust,
    State::Closed,
];

#[test]
fn typed_operations_and_received_changes_are_held_to_the_same_table() {
    let mut cells = 0;
    let mut allowed = 0;
    for state in STATES {
        let mut base = doc_in(state);
        for role in Role::USERS {
            for (name, op) in ops() {
                let st = stamp(user(role), 100);
                let mut typed = replica(&mut base);
                typed.set_writer(writer(role));
                let typed_result = op(&mut typed, &st);

                let mut raw = replica(&mut base);
                let before = raw.heads();
                if op(&mut raw, &st).is_err() {
                    // The operation cannot be made at all here (a move the state
                    // machine has not, a sign-off before submission): no change to check.
                    assert!(
                        typed_result.is_err(),
                        "{name} as {role:?} in {state:?}: refused unrestricted, made for a writer"
                    );
                    continue;
                }
                let change = last_change(&mut raw, &before);
                let checked = check_change(
                    raw.doc(),
                    &before,
                    &change,
                    &writer(role),
                    &ctx(DocKind::Inspection, &raw, state),
                );
                cells += 1;
                assert_eq!(
                    typed_result.is_ok(),
                    checked.is_ok(),
                    "{name} as {role:?} in {state:?}: typed {typed_result:?}, received {checked:?}"
                );
                if checked.is_ok() {
                    allowed += 1;
                }
            }
        }
    }
    assert!(cells > 200, "{cells} cells compared");
    assert!(
        allowed > 30 && allowed < cells,
        "{allowed} of {cells} allowed"
    );
}

/// A raw change on `insp` made by `f` straight on its Automerge document.
fn raw_change(
    insp: &mut Inspection,
    f: impl FnOnce(&mut AutoCommit),
) -> (AutoCommit, Vec<automerge::ChangeHash>, Change) {
    let mut doc = AutoCommit::load(&insp.save()).unwrap();
    let before = doc.get_heads();
    f(&mut doc);
    doc.commit();
    let bytes = doc.save_after(&before);
    let change = Change::try_from(&bytes[..]).unwrap();
    (doc, before, change)
}

fn obj(doc: &AutoCommit, path: &[&str]) -> automerge::ObjId {
    let mut o = automerge::ROOT;
    for k in path {
        o = doc.get(&o, *k).unwrap().unwrap().1;
    }
    o
}

fn refused(
    insp: &mut Inspection,
    kind: DocKind,
    state: State,
    role: Role,
    f: impl FnOnce(&mut AutoCommit),
) -> Result<Checked, Refusal> {
    let checklist = insp.checklist().clone();
    let (doc, before, change) = raw_change(insp, f);
    let none = |_: &str| false;
    check_change(
        &doc,
        &before,
        &change,
        &writer(role),
        &Context {
            kind,
            checklist: Some(&checklist),
            state,
            earned: &none,
            seal: &wardcheck_core::seal::Seal::UNSIGNED,
        },
    )
}

fn code(r: Result<Checked, Refusal>) -> Code {
    r.expect_err("the change should be refused").code
}

fn stamped(value: serde_json::Value, by: &str) -> String {
    serde_json::json!({"value": value, "by": by, "at": "2026-11-01T10:00:00Z"}).to_string()
}

#[test]
fn raw_changes_no_typed_operation_makes_are_refused_with_their_code() {
    use Role::*;
    let mut insp = doc_in(State::InProgress);
    let ip = State::InProgress;

    // One trust's telemetry must not reach another's inspection: meta is the server's.
    let r = refused(&mut insp, DocKind::Inspection, ip, LeadInspector, |d| {
        let m = obj(d, &["meta"]);
        d.put(&m, "trust", "RTH").unwrap();
    });
    assert_eq!(code(r), Code::Forbidden);

    // An answer stamped with someone else's name.
    let r = refused(&mut insp, DocKind::Inspection, ip, LeadInspector, |d| {
        let o = obj(d, &["responses", "c3"]);
        d.put(
            &o,
            "answer",
            stamped(serde_json::json!({"kind": "met"}), "rita"),
        )
        .unwrap();
    });
    assert_eq!(code(r), Code::ForgedAuthor);
    // The same, honestly signed: accepted.
    let r = refused(&mut insp, DocKind::Inspection, ip, LeadInspector, |d| {
        let o = obj(d, &["responses", "c3"]);
        d.put(
            &o,
            "answer",
            stamped(serde_json::json!({"kind": "met"}), "ann"),
        )
        .unwrap();
    });
    assert_eq!(r.unwrap().parts.len(), 1);
    // A commit message that names someone else.
    let checklist = insp.checklist().clone();
    let mut doc = AutoCommit::load(&insp.save()).unwrap();
    let before = doc.get_heads();
    let o = obj(&doc, &["responses", "c4"]);
    doc.put(
        &o,
        "answer",
        stamped(serde_json::json!({"kind": "met"}), "ann"),
    )
    .unwrap();
    doc.commit_with(
        automerge::transaction::CommitOptions::default()
            .with_message(r#"{"op":"set_answer","by":"rita"}"#.to_owned()),
    );
    let bytes = doc.save_after(&before);
    let change = Change::try_from(&bytes[..]).unwrap();
    let none = |_: &str| false;
    let r = check_change(
        &doc,
        &before,
        &change,
        &writer(LeadInspector),
        &Context {
            kind: DocKind::Inspection,
            checklist: Some(&checklist),
            state: ip,
            earned: &none,
            seal: &wardcheck_core::seal::Seal::UNSIGNED,
        },
    );
    assert_eq!(code(r), Code::ForgedAuthor);

    // A reviewer's sign-off written from an inspector's device.
    let mut submitted = doc_in(State::Submitted);
    let signoff = |by: &str, role: &str| {
        serde_json::json!({"id": Uuid::from_u128(7), "role": role, "statement": "ok", "by": by,
            "at": "2026-11-01T10:00:00Z"})
        .to_string()
    };
    let s1 = signoff("rita", "reviewer");
    let r = refused(
        &mut submitted,
        DocKind::Inspection,
        State::Submitted,
        LeadInspector,
        |d| {
            let o = obj(d, &["signoffs"]);
            d.put(&o, Uuid::from_u128(7).to_string(), s1).unwrap();
        },
    );
    assert_eq!(code(r), Code::ForgedAuthor);
    let s2 = signoff("ann", "reviewer");
    let r = refused(
        &mut submitted,
        DocKind::Inspection,
        State::Submitted,
        LeadInspector,
        |d| {
            let o = obj(d, &["signoffs"]);
            d.put(&o, Uuid::from_u128(7).to_string(), s2).unwrap();
        },
    );
    assert_eq!(code(r), Code::Forbidden);
    let s3 = signoff("ian", "lead_inspector");
    let r = refused(
        &mut submitted,
        DocKind::Inspection,
        State::Submitted,
        Inspector,
        |d| {
            let o = obj(d, &["signoffs"]);
            d.put(&o, Uuid::from_u128(7).to_string(), s3).unwrap();
        },
    );
    assert_eq!(
        code(r),
        Code::Forbidden,
        "only the team's lead signs as lead inspector"
    );

    // The document's shape: a note replaced by a string, a finding deleted, a new root
    // key, a counter, an unknown field in a value, a list.
    let r = refused(&mut insp, DocKind::Inspection, ip, LeadInspector, |d| {
        let o = obj(d, &["responses", "c1"]);
        d.put(&o, "note", "flat").unwrap();
    });
    assert_eq!(code(r), Code::Forbidden);
    let r = refused(&mut insp, DocKind::Inspection, ip, LeadInspector, |d| {
        let o = obj(d, &["findings"]);
        d.delete(&o, FINDING.to_string()).unwrap();
    });
    assert_eq!(code(r), Code::Malformed);
    let r = refused(&mut insp, DocKind::Inspection, ip, LeadInspector, |d| {
        d.put(automerge::ROOT, "extra", "x").unwrap();
    });
    assert_eq!(code(r), Code::Malformed);
    let r = refused(&mut insp, DocKind::Inspection, ip, LeadInspector, |d| {
        let o = obj(d, &["devices", &DEVICE.to_string()]);
        d.put(&o, "hostname", ScalarValue::counter(1)).unwrap();
    });
    assert_eq!(code(r), Code::Malformed);
    let r = refused(&mut insp, DocKind::Inspection, ip, LeadInspector, |d| {
        let o = obj(d, &["devices", &DEVICE.to_string()]);
        let v = serde_json::json!({"value": "WS-9", "by": "ann", "at": "2026-11-01T10:00:00Z",
            "padding": "x".repeat(100)});
        d.put(&o, "hostname", v.to_string()).unwrap();
    });
    assert_eq!(code(r), Code::Malformed);
    let r = refused(&mut insp, DocKind::Inspection, ip, LeadInspector, |d| {
        let o = obj(d, &["devices"]);
        d.put_object(&o, Uuid::from_u128(0xd9).to_string(), ObjType::List)
            .unwrap();
    });
    assert_eq!(code(r), Code::Malformed);
    // A device made again over an existing one (hiding what it held).
    let r = refused(&mut insp, DocKind::Inspection, ip, LeadInspector, |d| {
        let o = obj(d, &["devices"]);
        d.put_object(&o, DEVICE.to_string(), ObjType::Map).unwrap();
    });
    assert_eq!(code(r), Code::Malformed);

    // A device or a finding made without the fields every view reads: one such change
    // would leave the inspection unreadable for everyone.
    let r = refused(&mut insp, DocKind::Inspection, ip, LeadInspector, |d| {
        let o = obj(d, &["devices"]);
        d.put_object(&o, Uuid::from_u128(0xd7).to_string(), ObjType::Map)
            .unwrap();
    });
    let r = r.expect_err("an empty device is refused");
    assert!(
        r.message.contains("made without its hostname"),
        "{}",
        r.message
    );
    let r = refused(&mut insp, DocKind::Inspection, ip, LeadInspector, |d| {
        let o = obj(d, &["findings"]);
        let f = d
            .put_object(&o, Uuid::from_u128(0xf7).to_string(), ObjType::Map)
            .unwrap();
        d.put(&f, "severity", stamped(serde_json::json!("high"), "ann"))
            .unwrap();
    });
    assert_eq!(code(r), Code::Malformed);
    // A device made whole from a copy from before the device existed: Automerge would
    // keep both maps as a conflict, and show only one of them.
    {
        let checklist = insp.checklist().clone();
        let mut full = AutoCommit::load(&insp.save()).unwrap();
        let created = full.get_changes(&[])[0].hash();
        let mut stale = full.fork_at(&[created]).unwrap();
        let devices = obj(&stale, &["devices"]);
        let dev = stale
            .put_object(&devices, DEVICE.to_string(), ObjType::Map)
            .unwrap();
        for k in ["hostname", "build_seen"] {
            stale
                .put(&dev, k, stamped(serde_json::json!("X"), "ann"))
                .unwrap();
        }
        stale
            .put(
                &dev,
                "added",
                serde_json::json!({"by": "ann", "at": "2026-11-01T10:00:00Z"}).to_string(),
            )
            .unwrap();
        stale
            .put_object(&dev, "observations", ObjType::Map)
            .unwrap();
        stale.commit();
        let change = stale.get_last_local_change().unwrap();
        let before = full.get_heads();
        full.apply_changes([change.clone()]).unwrap();
        let none = |_: &str| false;
        let r = check_change(
            &full,
            &before,
            &change,
            &writer(LeadInspector),
            &Context {
                kind: DocKind::Inspection,
                checklist: Some(&checklist),
                state: ip,
                earned: &none,
                seal: &wardcheck_core::seal::Seal::UNSIGNED,
            },
        );
        let r = r.expect_err("a second device at the same key is refused");
        assert_eq!(r.code, Code::Malformed);
        assert!(r.message.contains("stand beside"), "{}", r.message);
    }

    // Text over its limit.
    let r = refused(&mut insp, DocKind::Inspection, ip, LeadInspector, |d| {
        let o = obj(d, &["responses", "c1", "note"]);
        d.splice_text(&o, 0, 0, &"x".repeat(MAX_TEXT_CHARS + 1))
            .unwrap();
    });
    assert_eq!(code(r), Code::TooLong);

    // A photo the author never uploaded and cannot read.
    let h = "ef".repeat(32);
    let r = refused(&mut insp, DocKind::Inspection, ip, LeadInspector, |d| {
        let o = obj(d, &["responses", "c1", "photos"]);
        d.put(
            &o,
            h.as_str(),
            stamped(serde_json::to_value(photo(&h)).unwrap(), "ann"),
        )
        .unwrap();
    });
    assert_eq!(code(r), Code::UnearnedPhoto);

    // A trust lead writing the inspection; an inspector sharing it.
    let r = refused(&mut insp, DocKind::Inspection, ip, TrustLead, |d| {
        let o = obj(d, &["responses", "c3"]);
        d.put(
            &o,
            "answer",
            stamped(serde_json::json!({"kind": "met"}), "lead"),
        )
        .unwrap();
    });
    assert_eq!(code(r), Code::Forbidden);
    let r = refused(
        &mut submitted,
        DocKind::Inspection,
        State::Submitted,
        LeadInspector,
        |d| {
            let o = obj(d, &["meta"]);
            d.put(
                &o,
                "state",
                stamped(serde_json::json!("shared_with_trust"), "ann"),
            )
            .unwrap();
        },
    );
    assert_eq!(code(r), Code::IllegalTransition);
    // An answer after submission.
    let r = refused(
        &mut submitted,
        DocKind::Inspection,
        State::Submitted,
        LeadInspector,
        |d| {
            let o = obj(d, &["responses", "c3"]);
            d.put(
                &o,
                "answer",
                stamped(serde_json::json!({"kind": "met"}), "ann"),
            )
            .unwrap();
        },
    );
    assert_eq!(code(r), Code::WrongState);

    // A "resolution" to a value the field never held.
    let r = refused(&mut insp, DocKind::Inspection, ip, LeadInspector, |d| {
        let o = obj(d, &["responses", "c1"]);
        let v = serde_json::json!({"value": {"kind": "partly-met"}, "by": "ian",
            "at": "2026-11-01T10:00:00Z", "resolved": {"by": "ann", "at": "2026-11-01T10:00:00Z"}});
        d.put(&o, "answer", v.to_string()).unwrap();
    });
    assert_eq!(code(r), Code::Malformed);
}

#[test]
fn the_trust_response_and_review_documents_have_their_own_rows() {
    let insp_id = Uuid::from_u128(1);
    let mut resp = TrustResponse::create(insp_id, ActorId::random(), &stamp("server", 0)).unwrap();
    let mut review = Review::create(insp_id, ActorId::random(), &stamp("server", 0)).unwrap();
    let shared = State::SharedWithTrust;
    let check = |doc: &mut AutoCommit,
                 kind: DocKind,
                 role: Role,
                 f: &dyn Fn(&mut AutoCommit)|
     -> Result<Checked, Refusal> {
        let mut d = doc.fork();
        let before = d.get_heads();
        f(&mut d);
        d.commit();
        let bytes = d.save_after(&before);
        let change = Change::try_from(&bytes[..]).unwrap();
        let none = |_: &str| false;
        check_change(
            &d,
            &before,
            &change,
            &writer(role),
            &Context {
                kind,
                checklist: None,
                state: shared,
                earned: &none,
                seal: &wardcheck_core::seal::Seal::UNSIGNED,
            },
        )
    };
    let mut rdoc = AutoCommit::load(&resp.save()).unwrap();
    let respond = |by: &'static str| {
        move |d: &mut AutoCommit| {
            let o = obj(d, &["findings"]);
            d.put(
                &o,
                FINDING.to_string(),
                stamped(serde_json::json!("We will"), by),
            )
            .unwrap();
        }
    };
    assert!(
        check(
            &mut rdoc,
            DocKind::TrustResponse,
            Role::TrustLead,
            &respond("lead")
        )
        .is_ok()
    );
    assert_eq!(
        code(check(
            &mut rdoc,
            DocKind::TrustResponse,
            Role::Reviewer,
            &respond("rita")
        )),
        Code::Forbidden
    );
    assert_eq!(
        code(check(
            &mut rdoc,
            DocKind::TrustResponse,
            Role::TrustLead,
            &respond("rita")
        )),
        Code::ForgedAuthor
    );

    review
        .comment(
            Uuid::from_u128(5),
            CommentTarget::Inspection,
            "Windows 7 in imaging",
            None,
            &stamp("ann", 1),
        )
        .unwrap();
    let mut vdoc = AutoCommit::load(&review.save()).unwrap();
    let release = |id: u128, by: &'static str| {
        move |d: &mut AutoCommit| {
            let o = obj(d, &["released"]);
            let s = serde_json::json!({"by": by, "at": "2026-11-01T10:00:00Z"});
            d.put(&o, Uuid::from_u128(id).to_string(), s.to_string())
                .unwrap();
        }
    };
    assert!(
        check(
            &mut vdoc,
            DocKind::Review,
            Role::Reviewer,
            &release(5, "rita")
        )
        .is_ok()
    );
    assert_eq!(
        code(check(
            &mut vdoc,
            DocKind::Review,
            Role::LeadInspector,
            &release(5, "ann")
        )),
        Code::Forbidden
    );
    assert_eq!(
        code(check(
            &mut vdoc,
            DocKind::Review,
            Role::Reviewer,
            &release(6, "rita")
        )),
        Code::Malformed,
        "only a comment that exists is released"
    );
    assert_eq!(
        code(check(
            &mut vdoc,
            DocKind::Review,
            Role::TrustLead,
            &release(5, "lead")
        )),
        Code::Forbidden
    );
    let c = |d: &mut AutoCommit| {
        let o = obj(d, &["comments"]);
        let id = Uuid::from_u128(8);
        let v = serde_json::json!({"id": id, "target": {"kind": "inspection"}, "text": "ok",
            "by": "ian", "at": "2026-11-01T10:00:00Z"});
        d.put(&o, id.to_string(), v.to_string()).unwrap();
    };
    assert!(check(&mut vdoc, DocKind::Review, Role::Inspector, &c).is_ok());
    // Another author's comment is never replaced (the trust would read the replacement
    // as what was released), nor a value written beside it.
    let overwrite = |d: &mut AutoCommit| {
        let o = obj(d, &["comments"]);
        let id = Uuid::from_u128(5);
        let v = serde_json::json!({"id": id, "target": {"kind": "inspection"},
            "text": "Nothing to see", "by": "ian", "at": "2026-11-01T10:00:00Z"});
        d.put(&o, id.to_string(), v.to_string()).unwrap();
    };
    assert_eq!(
        code(check(
            &mut vdoc,
            DocKind::Review,
            Role::Inspector,
            &overwrite
        )),
        Code::Malformed
    );
    assert_eq!(
        code(check(&mut vdoc, DocKind::Review, Role::Admin, &c)),
        Code::Forbidden
    );
    let _ = resp.heads();
    let _ = vdoc.get_heads();
    let _ = rdoc.length(automerge::ROOT);
}
