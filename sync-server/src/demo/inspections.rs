//! The demo inspections: five visits in different states, written with core's typed
//! operations exactly as the field app and the reviewers would write them, then stored
//! the way `inspections::create` stores a new one (a compacted snapshot and its heads).
//!
//! | trust | state | what it shows |
//! |---|---|---|
//! | RJ1 | shared with trust | **the seeded contradiction**: 'met' for "no unsupported systems" (`ndg8-no-unsupported`) at a trust with hundreds of Windows 7 devices; sampled devices matched, unmanaged, with a differing build, and stale; findings, comments, photos, a trust response |
//! | RTH | shared with trust | corroborations: 'not met' for unsupported systems and firewall firmware where telemetry agrees |
//! | RV5 | submitted | a mental-health trust, answered and signed off |
//! | RJ2 | in progress | part-answered, one sampled device |
//! | RHW | draft | created and assigned, nothing answered |
//!
//! Each has a fixed id, so a second run finds it and skips it.

use std::sync::Arc;

use anyhow::{Context, Result};
use automerge::ActorId;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use uuid::Uuid;
use wardcheck_core::checklist::{Checklist, Severity};
use wardcheck_core::inspection::{
    Answer, CommentTarget, Inspection, NewFinding, NewInspection, Observation, PhotoRef,
    SignoffRole, Stamp, State, TeamMember, TeamRole,
};
use wardcheck_core::photo;
use wardcheck_core::response::TrustResponse;
use wardcheck_core::review::Review;

use super::telemetry::anchors;
use crate::inspections::encode_heads;
use crate::storage::{DocKind, InspectionRecord, SERVER_AUTHOR, Storage, StoredDoc};
use crate::telemetry::TelemetryStore;

/// The checklist every demo inspection follows.
pub const CHECKLIST: &str = "cqc-onsite-cyber";

/// The seeded contradiction's inspection (RJ1) and item.
pub const CONTRADICTION_INSPECTION: Uuid = demo_id(1);
pub const CONTRADICTION_ITEM: &str = "ndg8-no-unsupported";

/// Demo ids: fixed, and recognisably the demo's (`d3e0...`).
const fn demo_id(n: u128) -> Uuid {
    Uuid::from_u128(0xd3e0_0000_0000_4000_8000_0000_0000_0000 | n)
}

/// What one demo inspection is.
struct Plan {
    id: Uuid,
    trust: &'static str,
    sites: &'static [&'static str],
    state: State,
    /// Days before the snapshot date the visit began.
    days_ago: i64,
    write: fn(&mut Writer) -> Result<()>,
}

const PLANS: &[Plan] = &[
    Plan {
        id: CONTRADICTION_INSPECTION,
        trust: "RJ1",
        sites: &["RJ121", "RJ122"],
        state: State::SharedWithTrust,
        days_ago: 21,
        write: rj1,
    },
    Plan {
        id: demo_id(2),
        trust: "RTH",
        sites: &["RTH08"],
        state: State::SharedWithTrust,
        days_ago: 35,
        write: rth,
    },
    Plan {
        id: demo_id(3),
        trust: "RV5",
        sites: &["RV505"],
        state: State::Submitted,
        days_ago: 12,
        write: rv5,
    },
    Plan {
        id: demo_id(4),
        trust: "RJ2",
        sites: &["RJ224"],
        state: State::InProgress,
        days_ago: 3,
        write: rj2,
    },
    Plan {
        id: demo_id(5),
        trust: "RHW",
        sites: &[],
        state: State::Draft,
        days_ago: -7,
        write: |_| Ok(()),
    },
];

/// What was done, for the summary.
#[derive(Debug, Default)]
pub struct Outcome {
    pub created: Vec<(Uuid, &'static str, State)>,
    pub skipped: Vec<(Uuid, &'static str)>,
    pub photos: usize,
}

/// Creates each demo inspection that does not exist yet. `today` is the telemetry
/// snapshot's date: visits are placed in the weeks before it.
pub fn create_all(
    storage: &dyn Storage,
    telemetry: &dyn TelemetryStore,
    today: NaiveDate,
) -> Result<Outcome> {
    let checklist = crate::inspections::resolve_checklist(storage, CHECKLIST)
        .context("finding the demo checklist")?;
    let mut out = Outcome::default();
    for plan in PLANS {
        if storage.inspection(plan.id)?.is_some() {
            out.skipped.push((plan.id, plan.trust));
            continue;
        }
        let photos = create(storage, telemetry, plan, checklist.clone(), today)
            .with_context(|| format!("creating the demo inspection of {}", plan.trust))?;
        out.photos += photos;
        out.created.push((plan.id, plan.trust, plan.state));
    }
    Ok(out)
}

/// Writes one inspection through core's operations, with a clock that moves on a few
/// minutes per operation.
struct Writer {
    insp: Inspection,
    response: TrustResponse,
    review: Review,
    /// Each author's own actor (bound to them when the inspection is stored), as each
    /// would write on their own device.
    actors: std::collections::BTreeMap<String, ActorId>,
    clock: DateTime<Utc>,
    storage_photos: Vec<photo::ProcessedPhoto>,
    trust: &'static str,
}

impl Writer {
    fn at(&mut self, by: &str) -> Stamp {
        self.clock += Duration::minutes(7);
        let actor = self
            .actors
            .entry(by.to_owned())
            .or_insert_with(ActorId::random)
            .clone();
        self.insp.set_actor(actor.clone());
        self.response.set_actor(actor.clone());
        self.review.set_actor(actor);
        Stamp::new(by, self.clock)
    }

    fn answer(&mut self, item: &str, answer: Answer, note: &str) -> Result<()> {
        let s = self.at("ann");
        self.insp.set_answer(item, answer, &s)?;
        if !note.is_empty() {
            let s = self.at("ann");
            self.insp.edit_note(item, note, &s)?;
        }
        Ok(())
    }

    /// A photo made here (a JPEG of a console or a rack), processed as the app does,
    /// and attached to `item`.
    fn photo(&mut self, item: &str, caption: &str, seed: u32) -> Result<()> {
        let raw = demo_jpeg(1280, 960, seed)?;
        let p = photo::process(&raw, &photo::Limits::default())
            .map_err(|e| anyhow::anyhow!("processing a demo photo: {e}"))?;
        let s = self.at("ann");
        let r = PhotoRef {
            hash: p.id.clone(),
            size: p.bytes.len() as u64,
            width: p.width,
            height: p.height,
            mime: p.mime.to_owned(),
            caption: caption.to_owned(),
            captured_at: Some(s.at),
        };
        self.insp.attach_photo(item, r, &s)?;
        self.storage_photos.push(p);
        Ok(())
    }

    fn device(&mut self, n: u128, hostname: &str, build: &str) -> Result<Uuid> {
        let id = Uuid::from_u128(0xde71_0000_0000_4000_8000_0000_0000_0000 | n);
        let s = self.at("ann");
        self.insp.add_device(id, hostname, build, &s)?;
        Ok(id)
    }

    fn observe(&mut self, device: Uuid, item: &str, answer: Answer, note: &str) -> Result<()> {
        let s = self.at("ann");
        let o = Observation {
            answer,
            note: note.to_owned(),
        };
        self.insp.record_observation(device, item, o, &s)?;
        Ok(())
    }

    fn finding(
        &mut self,
        n: u128,
        severity: Severity,
        text: &str,
        items: &[&str],
        rec: &str,
    ) -> Result<Uuid> {
        let id = Uuid::from_u128(0xf1d0_0000_0000_4000_8000_0000_0000_0000 | n);
        let s = self.at("ann");
        self.insp.add_finding(
            NewFinding {
                id,
                severity,
                text: text.to_owned(),
                items: items.iter().map(|i| (*i).to_owned()).collect(),
                recommendation: rec.to_owned(),
            },
            &s,
        )?;
        Ok(id)
    }

    fn comment(&mut self, n: u128, by: &str, target: CommentTarget, text: &str) -> Result<()> {
        let id = Uuid::from_u128(0xc0e0_0000_0000_4000_8000_0000_0000_0000 | n);
        let s = self.at(by);
        let checklist = self.insp.checklist().clone();
        self.review
            .comment(id, target, text, Some(&checklist), &s)?;
        Ok(())
    }

    fn state(&mut self, to: State, by: &str) -> Result<()> {
        let s = self.at(by);
        self.insp.change_state(to, &s)?;
        Ok(())
    }

    fn sign_off(&mut self, n: u128, role: SignoffRole, by: &str, statement: &str) -> Result<()> {
        let id = Uuid::from_u128(0x5160_0000_0000_4000_8000_0000_0000_0000 | n);
        let s = self.at(by);
        self.insp.sign_off(id, role, statement, &s)?;
        Ok(())
    }

    /// Moves a finished visit through submission and sign-off.
    fn submit(&mut self, n: u128) -> Result<()> {
        self.state(State::Submitted, "ann")?;
        self.sign_off(
            n * 2,
            SignoffRole::LeadInspector,
            "ann",
            "The findings are a fair account of what we saw.",
        )?;
        self.sign_off(
            n * 2 + 1,
            SignoffRole::Reviewer,
            "rita",
            "Reviewed against NHS Digital telemetry.",
        )
    }

    fn lead(&self) -> String {
        format!("lead-{}", self.trust.to_ascii_lowercase())
    }
}

fn create(
    storage: &dyn Storage,
    telemetry: &dyn TelemetryStore,
    plan: &Plan,
    checklist: Arc<Checklist>,
    today: NaiveDate,
) -> Result<usize> {
    let start = today - Duration::days(plan.days_ago);
    let clock = start
        .and_hms_opt(9, 0, 0)
        .expect("9 o'clock exists")
        .and_utc()
        - Duration::days(7);
    let created = Stamp::new("rita", clock);
    let actor = ActorId::random();
    crate::inspections::keep_bundled(storage, &checklist)?;
    let insp = Inspection::create(
        NewInspection {
            id: plan.id,
            trust: plan.trust.to_owned(),
            sites: plan.sites.iter().map(|s| (*s).to_owned()).collect(),
            team: vec![
                TeamMember {
                    user: "ann".into(),
                    name: "Ann Inspector".into(),
                    role: TeamRole::LeadInspector,
                },
                TeamMember {
                    user: "rita".into(),
                    name: "Rita Reviewer".into(),
                    role: TeamRole::Reviewer,
                },
            ],
            visit_start: Some(start),
            visit_end: Some(start + Duration::days(1)),
            org: crate::inspections::org_of(telemetry, plan.trust)?,
        },
        checklist.clone(),
        actor.clone(),
        &created,
    )?;
    let response = TrustResponse::create(plan.id, actor.clone(), &created)?;
    let review = Review::create(plan.id, actor.clone(), &created)?;
    storage.bind_actor(actor.to_bytes(), SERVER_AUTHOR, None, created.at)?;
    let mut w = Writer {
        insp,
        response,
        review,
        actors: Default::default(),
        clock: start.and_hms_opt(8, 30, 0).expect("a time").and_utc(),
        storage_photos: Vec::new(),
        trust: plan.trust,
    };
    if plan.state != State::Draft {
        w.state(State::InProgress, "ann")?;
    }
    (plan.write)(&mut w)?;
    let view = w.insp.view()?;
    let state = view.meta.state.current().value;
    anyhow::ensure!(
        state == plan.state,
        "the demo inspection of {} ended {state:?}, not {:?}",
        plan.trust,
        plan.state
    );

    for p in &w.storage_photos {
        store_photo(storage, p)?;
    }
    let shared_at = (plan.state == State::SharedWithTrust).then_some(w.clock);
    let record = InspectionRecord {
        id: plan.id,
        trust: plan.trust.to_owned(),
        sites: plan.sites.iter().map(|s| (*s).to_owned()).collect(),
        checklist_id: checklist.pin.id.clone(),
        checklist_version: checklist.pin.version.clone(),
        checklist_sha256: checklist.pin.sha256.clone(),
        state,
        response_doc: Uuid::from_u128(
            plan.id.as_u128() ^ 0x0000_0000_0000_0000_0000_0000_0001_0000,
        ),
        shared_at,
        created_at: created.at,
        created_by: "demo-data".into(),
        assignees: vec!["ann".into()],
        review_doc: Uuid::from_u128(plan.id.as_u128() ^ 0x0000_0000_0000_0000_0000_0000_0002_0000),
        lead: Some("ann".into()),
        history_holds_comments: false,
    };
    for (user, actor) in &w.actors {
        storage.bind_actor(actor.to_bytes(), user, None, created.at)?;
    }
    let insp_doc = StoredDoc::new(w.insp.save(), encode_heads(&w.insp.heads()));
    let resp_doc = StoredDoc::new(w.response.save(), encode_heads(&w.response.heads()));
    let review_doc = StoredDoc::new(w.review.save(), encode_heads(&w.review.heads()));
    storage.create_inspection(
        &record,
        &[
            (record.id, DocKind::Inspection, &insp_doc),
            (record.response_doc, DocKind::TrustResponse, &resp_doc),
            (record.review_doc, DocKind::Review, &review_doc),
        ],
    )?;
    let mut hashes: Vec<String> = view
        .responses
        .values()
        .flat_map(|r| r.photos.iter().map(|p| p.value.hash.clone()))
        .collect();
    hashes.sort();
    hashes.dedup();
    storage.set_photo_refs(plan.id, &hashes)?;
    // The sign-offs go into the audit log's chain, as the sync path records those it takes.
    crate::sealed::audit_links(storage, plan.id, w.insp.doc())?;
    Ok(w.storage_photos.len())
}

/// Stores a processed photo as a complete blob, uploaded by the inspector (skipped
/// when the server already has it).
fn store_photo(storage: &dyn Storage, p: &photo::ProcessedPhoto) -> Result<()> {
    match storage.blob_status(&p.id)? {
        Some(s) if s.complete => {}
        Some(_) => {
            storage.discard_blob(&p.id)?;
            storage.append_blob(&p.id, 0, &p.bytes, "ann")?;
            storage.complete_blob(&p.id, &p.bytes, p.mime)?;
        }
        None => {
            storage.append_blob(&p.id, 0, &p.bytes, "ann")?;
            storage.complete_blob(&p.id, &p.bytes, p.mime)?;
        }
    }
    storage.add_blob_uploader(&p.id, "ann")?;
    Ok(())
}

/// A photo-like JPEG: a dim room, a lit screen with lines of "text", a rack of
/// blinking lights. Different seeds give different pictures (and ids).
fn demo_jpeg(width: u32, height: u32, seed: u32) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let noise =
            ((x.wrapping_mul(7919) ^ y.wrapping_mul(104_729) ^ seed.wrapping_mul(2_654_435_761))
                % 17) as u8;
        let (sx0, sy0, sx1, sy1) = (width / 8, height / 6, width / 2, height / 2);
        let in_screen = x > sx0 && x < sx1 && y > sy0 && y < sy1;
        let in_rack = x > width * 5 / 8 && x < width * 7 / 8 && y > height / 8;
        if in_screen {
            let line = (y - sy0) / 18;
            let text = (y - sy0) % 18 < 9
                && (x - sx0) % 11 < 7
                && ((x - sx0) / 11 + line * 3 + seed) % 13 > 3;
            if text {
                image::Rgb([20 + noise, 30 + noise, 40])
            } else {
                image::Rgb([210 + noise / 2, 225 + noise / 2, 240])
            }
        } else if in_rack {
            let unit = (y / 24) % 2;
            let led = x % 40 < 6 && y % 24 < 6 && (x / 40 + y / 24 + seed).is_multiple_of(3);
            if led {
                image::Rgb([40, 220, 90])
            } else {
                image::Rgb([30 + unit as u8 * 12 + noise, 32 + noise, 36 + noise])
            }
        } else {
            let shade = (y * 90 / height) as u8;
            image::Rgb([
                120 - shade / 2 + noise,
                110 - shade / 2 + noise,
                100 + noise,
            ])
        }
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .context("encoding a demo photo")?;
    Ok(out)
}

/// What an inspector notes when a Windows 10 22H2 device is 'met': the ESU licence
/// (REFERENCE §8.1; telemetry cannot show it).
const ESU_SEEN: &str =
    "ESU licence seen: slmgr /dlv shows the Windows 10 ESU year-2 add-on licensed.";

// ----- the visits -----

fn rj1(w: &mut Writer) -> Result<()> {
    let a = anchors("RJ1");
    // The seeded contradiction: the IT lead's word, not the estate.
    w.answer(
        CONTRADICTION_ITEM,
        Answer::Met,
        "IT lead says the last Windows 7 machines were retired in 2020; the asset register \
         lists none.",
    )?;
    w.answer(
        "ndg8-estate-survey",
        Answer::Met,
        "SCCM and MDE inventory, monthly.",
    )?;
    w.answer(
        "ndg8-patching",
        Answer::PartlyMet,
        "Patching policy exists; imaging and pathology systems are excluded and patched by \
         the suppliers.",
    )?;
    w.answer(
        "ndg6-antivirus-all-devices",
        Answer::PartlyMet,
        "Defender on the corporate estate; medical devices rely on supplier AV.",
    )?;
    w.answer(
        "ndg6-cyber-alerts-48h",
        Answer::NotMet,
        "Two high-severity alerts this year were acknowledged after the 48 hours.",
    )?;
    w.answer("ndg9-encryption", Answer::Met, "")?;
    w.answer(
        "fw-admin-interface",
        Answer::Met,
        "Management on a separate VLAN.",
    )?;
    w.answer(
        "fw-firmware-supported",
        Answer::Met,
        "All perimeter firewalls under vendor support.",
    )?;
    w.answer(
        "ndg3-training-rate",
        Answer::Number { value: 91.0 },
        "Below the 95% target.",
    )?;
    w.answer(
        "ndg7-plan-test-date",
        Answer::Date {
            value: NaiveDate::from_ymd_opt(2026, 3, 14).expect("a date"),
        },
        "",
    )?;
    w.answer(
        "ndg7-hard-copy-contacts",
        Answer::Met,
        "Printed list in the on-call folder, dated this quarter.",
    )?;
    w.photo(
        "ndg7-hard-copy-contacts",
        "Hard-copy incident contact list, IT on-call folder",
        1,
    )?;
    w.photo("fw-admin-interface", "Firewall management console", 2)?;

    // Sampled devices: one as telemetry has it, one it does not know (unmanaged), one
    // whose build differs from its record, one whose record is stale.
    let matched = w.device(1, &a.matched.to_ascii_lowercase(), a.matched_build_text)?;
    // Answers that agree with the devices (issue 12): 22H2 is met only with an ESU
    // licence seen on screen; 21H2 on a general-availability edition is not met.
    w.observe(matched, "w10-os-supported", Answer::Met, ESU_SEEN)?;
    w.observe(matched, "w10-smb1-disabled", Answer::Met, "")?;
    w.observe(matched, "w10-mde-onboarded", Answer::Met, "")?;
    let unmanaged = w.device(2, a.unmanaged, "Windows 10 Pro 21H2, build 19044.1288")?;
    w.observe(
        unmanaged,
        "w10-mde-onboarded",
        Answer::NotMet,
        "No Defender sensor service.",
    )?;
    w.observe(
        unmanaged,
        "w10-os-supported",
        Answer::NotMet,
        "Windows 10 Pro 21H2: out of support since June 2023.",
    )?;
    let differs = w.device(3, &format!("{}.{}", a.differs, a.domain), a.differs_seen)?;
    w.observe(
        differs,
        "w10-os-supported",
        Answer::NotMet,
        "Windows 10 Enterprise 21H2 (not LTSC): out of support since June 2024.",
    )?;
    let stale = w.device(4, a.stale, "Windows 10 Enterprise 22H2, build 19045.4894")?;
    w.observe(stale, "w10-os-supported", Answer::Met, ESU_SEEN)?;

    let late = w.finding(
        1,
        Severity::High,
        "High-severity cyber alerts were not acknowledged within 48 hours.",
        &["ndg6-cyber-alerts-48h"],
        "Name a deputy for alert acknowledgement and track each alert to closure.",
    )?;
    let unmanaged_finding = w.finding(
        2,
        Severity::Critical,
        "A pathology lab PC on the clinical network is not onboarded to Defender for Endpoint.",
        &["w10-mde-onboarded", "ndg6-antivirus-all-devices"],
        "Onboard it, and find other devices the inventory misses.",
    )?;
    w.comment(
        1,
        "rita",
        CommentTarget::Item(CONTRADICTION_ITEM.into()),
        "Telemetry shows hundreds of Windows 7 devices in imaging at this trust: please \
         recheck the asset register with the PACS team.",
    )?;
    w.comment(
        2,
        "ann",
        CommentTarget::Device(unmanaged),
        "Found under the bench in the pathology lab; asset tag missing.",
    )?;
    w.submit(1)?;
    w.state(State::SharedWithTrust, "rita")?;

    let lead = w.lead();
    let s = w.at(&lead);
    w.response.respond(
        late,
        "Agreed. The security team now has a rota for alert acknowledgement from 1 December.",
        &s,
    )?;
    let s = w.at(&lead);
    w.response.respond(
        unmanaged_finding,
        "The PC has been onboarded and the lab network scanned for others.",
        &s,
    )?;
    Ok(())
}

fn rth(w: &mut Writer) -> Result<()> {
    let a = anchors("RTH");
    w.answer(
        CONTRADICTION_ITEM,
        Answer::NotMet,
        "Windows 7 on CT and MRI consoles; risk documents held for each.",
    )?;
    w.answer(
        "ndg8-unsupported-risk-documents",
        Answer::Met,
        "Board accepted the risks in June.",
    )?;
    w.answer(
        "fw-firmware-supported",
        Answer::NotMet,
        "The Horton site's edge firewall is past end of support; replacement ordered.",
    )?;
    w.answer(
        "fw-legacy-isolated",
        Answer::PartlyMet,
        "Imaging VLAN has no internet route; two ultrasound carts on the ward VLAN.",
    )?;
    w.answer("ndg6-cyber-alerts-48h", Answer::Met, "")?;
    w.photo(
        "fw-firmware-supported",
        "Firewall dashboard showing the firmware version",
        3,
    )?;
    let d = w.device(11, a.matched, a.matched_build_text)?;
    w.observe(d, "w10-os-supported", Answer::Met, ESU_SEEN)?;
    w.finding(
        11,
        Severity::High,
        "A site firewall runs firmware the vendor no longer supports.",
        &["fw-firmware-supported"],
        "Complete the replacement before the next DSPT submission.",
    )?;
    w.submit(2)?;
    w.state(State::SharedWithTrust, "rita")?;
    Ok(())
}

fn rv5(w: &mut Writer) -> Result<()> {
    w.answer(CONTRADICTION_ITEM, Answer::Met, "")?;
    w.answer("ndg6-cyber-alerts-48h", Answer::Met, "")?;
    w.answer(
        "ndg6-antivirus-all-devices",
        Answer::PartlyMet,
        "A few ward PCs await onboarding.",
    )?;
    w.answer("ndg4-remote-mfa", Answer::Met, "")?;
    w.finding(
        21,
        Severity::Medium,
        "Some ward PCs were not yet onboarded to Defender for Endpoint.",
        &["ndg6-antivirus-all-devices"],
        "Finish onboarding and report the figure to the board.",
    )?;
    w.submit(3)
}

fn rj2(w: &mut Writer) -> Result<()> {
    let a = anchors("RJ2");
    w.answer("ndg1-ico-registration", Answer::Met, "")?;
    w.answer(
        "ndg7-continuity-plan",
        Answer::PartlyMet,
        "Plan lacks a telephony-loss scenario.",
    )?;
    let d = w.device(31, a.matched, a.matched_build_text)?;
    w.observe(d, "w10-os-supported", Answer::Met, ESU_SEEN)?;
    w.comment(
        31,
        "rita",
        CommentTarget::Inspection,
        "Please sample one device in the emergency department too.",
    )
}
