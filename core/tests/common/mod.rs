//! A small checklist built in code, so these tests do not depend on the shipped files.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use wardcheck_core::checklist::*;
use wardcheck_core::inspection::{NewInspection, Stamp, TeamMember, TeamRole};

pub fn item(id: &str, answer: AnswerKind) -> Item {
    Item {
        id: id.into(),
        prompt: format!("prompt for {id}"),
        guidance: "guidance".into(),
        observe: None,
        answer,
        evidence: vec![Evidence::Note],
        refs: References::default(),
        severity: Severity::High,
        telemetry: None,
        judge: None,
    }
}

/// Section `s1`: compliance items c1..c{n}, a number n1 (0..=100), a date d1, a text t1.
/// Section `dev` (device scope): w1, w2.
pub fn checklist_with(n: usize) -> Arc<Checklist> {
    let mut items: Vec<Item> = (1..=n)
        .map(|i| item(&format!("c{i}"), AnswerKind::Compliance))
        .collect();
    items.push(item(
        "n1",
        AnswerKind::Number {
            min: Some(0.0),
            max: Some(100.0),
            unit: Some("%".into()),
        },
    ));
    items.push(item("d1", AnswerKind::Date));
    items.push(item("t1", AnswerKind::Text));
    Arc::new(Checklist {
        id: "test".into(),
        version: "1".into(),
        title: "Test checklist".into(),
        applies_to: vec![OrgType::Acute],
        sections: vec![
            Section {
                id: "s1".into(),
                title: "Section one".into(),
                source: "test".into(),
                scope: Scope::Inspection,
                items,
                applies_to: Vec::new(),
                major_trauma_centre: false,
            },
            Section {
                id: "dev".into(),
                title: "Device".into(),
                source: "test".into(),
                scope: Scope::Device,
                applies_to: Vec::new(),
                major_trauma_centre: false,
                items: vec![
                    item("w1", AnswerKind::Compliance),
                    item("w2", AnswerKind::Compliance),
                ],
            },
        ],
        pin: ChecklistPin {
            id: "test".into(),
            version: "1".into(),
            sha256: "0".repeat(64),
        },
    })
}

pub fn checklist() -> Arc<Checklist> {
    checklist_with(5)
}

pub fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + secs, 0).unwrap()
}

pub fn stamp(by: &str, secs: i64) -> Stamp {
    Stamp::new(by, t(secs))
}

pub fn new_inspection(id: u128) -> NewInspection {
    NewInspection {
        id: uuid::Uuid::from_u128(id),
        trust: "RJ1".into(),
        sites: vec!["RJ121".into(), "RJ122".into()],
        team: vec![TeamMember {
            user: "ann".into(),
            name: "Ann Inspector".into(),
            role: TeamRole::LeadInspector,
        }],
        visit_start: None,
        visit_end: None,
        org: None,
    }
}
