//! The inspection report as a PDF that stands on its own (issue 14, item 5), and the
//! evidence pack ([`pack`]).
//!
//! The report holds the whole record as the caller may read it: every item of the
//! pinned checklist with every answer given (conflicting ones side by side), who gave it
//! and when, notes, not-applicable reasons, photos (embedded, each with its SHA-256),
//! the telemetry verdict with its figures and reason, sampled devices and how they
//! match, findings, comments, the trust's responses, corrective actions with every step,
//! and the sign-off chain with each link's hashes and signatory.
//!
//! The PDF is made with `pdf-writer` (typst's PDF writer): a small, well-kept crate that
//! writes PDF objects and nothing else, in pure Rust, with no system libraries and no
//! browser on the server. Text is set in the standard PDF fonts, so nothing is embedded
//! and every reader (and `pdftotext`) reads the text as written; the layout is
//! [`pdf::Layout`]. A character those fonts lack prints as `?`, and the report says how
//! many there were: the evidence pack's CSV holds the exact text.
//!
//! Rendering reads nothing: the service ([`crate::service::reports`]) gathers the views
//! and photos under the caller's rights, then calls [`render`] on the blocking pool.

pub mod metrics;
pub mod pack;
pub mod pdf;

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use wardcheck_core::actions::Action;
use wardcheck_core::checklist::{Checklist, Scope};
use wardcheck_core::inspection::{Answer, CommentTarget, Field, InspectionView, Stamped};
use wardcheck_core::response::ResponseView;

use crate::join::Join;
use crate::storage::InspectionRecord;
use pdf::{Image, ImageKind, Layout, Style};

/// The longest side of a photo the report re-encodes (PNG and unusual JPEGs); JPEGs the
/// PDF can carry as they are keep their own size.
const MAX_REENCODED_SIDE: u32 = 1600;
/// Most pixels one report decodes to re-encode (PNG and unusual JPEGs): 40 photos of
/// 12 megapixels. Photos past it are listed with their hash, not drawn.
pub const MAX_REENCODED_PIXELS: u64 = 480_000_000;

/// Whose rights a report was made under: what it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Inspectors and reviewers: every comment.
    Regulator,
    /// A trust lead: released comments only.
    Trust,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Regulator => "regulator",
            Audience::Trust => "trust",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "regulator" => Some(Audience::Regulator),
            "trust" => Some(Audience::Trust),
            _ => None,
        }
    }
}

/// A photo the report shows: its bytes, or why it cannot be shown.
#[derive(Debug)]
pub enum PhotoBytes {
    Image(Image),
    Missing(String),
}

/// Everything one report shows, gathered under the caller's rights.
#[derive(Debug)]
pub struct ReportInput<'a> {
    pub record: &'a InspectionRecord,
    pub trust_name: Option<&'a str>,
    pub view: &'a InspectionView,
    pub checklist: &'a Checklist,
    pub response: Option<&'a ResponseView>,
    pub join: Option<&'a Join>,
    /// Why there is no join, when it failed.
    pub join_error: Option<&'a str>,
    /// The actions raised in this inspection.
    pub actions: &'a [Action],
    pub made_by: &'a str,
    pub made_at: DateTime<Utc>,
    pub audience: Audience,
}

/// A rendered report.
#[derive(Debug)]
pub struct Rendered {
    pub pdf: Vec<u8>,
    pub pages: usize,
    /// Characters printed as `?`.
    pub replaced: usize,
}

/// A value's name as the API writes it, for people: `partly_met` → "Partly met" (for
/// enums that serialise as a string).
pub fn label<T: Serialize>(v: &T) -> String {
    let raw = match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    };
    let spaced = raw.replace(['_', '-'], " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

/// An answer in words.
pub fn answer_text(a: &Answer) -> String {
    match a {
        Answer::NotApplicable { reason } => format!("Not applicable. Reason: {reason}"),
        Answer::Number { value } => format!("{value}"),
        Answer::Date { value } => value.to_string(),
        Answer::Text { value } => value.clone(),
        Answer::Met => "Met".into(),
        Answer::PartlyMet => "Partly met".into(),
        Answer::NotMet => "Not met".into(),
    }
}

/// A time as the report writes it (UTC, to the second).
pub fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn stamped<T>(s: &Stamped<T>) -> String {
    format!("{}, {}", s.by, when(s.at))
}

/// Every value a field holds: one, or a conflict's candidates side by side.
fn field_text<T>(f: &Field<T>, show: impl Fn(&T) -> String) -> String {
    let shown: Vec<String> = f
        .values
        .iter()
        .map(|c| format!("{} ({})", show(&c.value.value), stamped(&c.value)))
        .collect();
    if shown.len() > 1 {
        format!("CONFLICT, {} values: {}", shown.len(), shown.join(" | "))
    } else {
        shown.concat()
    }
}

/// A photo's stored bytes made ready for the PDF: a JPEG the PDF can carry as it is
/// (8-bit, one or three components, baseline or progressive) goes in unchanged; anything
/// else is decoded under the app's photo limits and re-encoded as compressed pixels, at
/// most [`MAX_REENCODED_SIDE`] on its longer side, while `pixels_left` (what one report
/// may decode) lasts.
pub fn prepare_photo(bytes: Vec<u8>, pixels_left: &mut u64) -> Result<Image, String> {
    if let Some((width, height, components)) = pdf::jpeg_frame(&bytes)
        && (components == 1 || components == 3)
        && width > 0
        && height > 0
    {
        return Ok(Image {
            width,
            height,
            kind: ImageKind::Jpeg {
                bytes,
                grey: components == 1,
            },
        });
    }
    let limits = wardcheck_core::photo::Limits::default();
    let reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let (w, h) = reader.into_dimensions().map_err(|e| e.to_string())?;
    let pixels = u64::from(w) * u64::from(h);
    if w > limits.max_width || h > limits.max_height || pixels > limits.max_pixels {
        return Err(format!("{w} x {h} pixels is more than a photo may have"));
    }
    if pixels > *pixels_left {
        return Err(
            "this report has decoded as many photos as one report may; the evidence pack holds it"
                .into(),
        );
    }
    *pixels_left -= pixels;
    let mut reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_width);
    l.max_image_height = Some(limits.max_height);
    l.max_alloc = Some(limits.max_alloc);
    reader.limits(l);
    let decoded = reader.decode().map_err(|e| e.to_string())?;
    let decoded = if decoded.width().max(decoded.height()) > MAX_REENCODED_SIDE {
        decoded.resize(
            MAX_REENCODED_SIDE,
            MAX_REENCODED_SIDE,
            image::imageops::FilterType::Triangle,
        )
    } else {
        decoded
    };
    let rgb = decoded.to_rgb8();
    Ok(Image {
        width: rgb.width(),
        height: rgb.height(),
        kind: ImageKind::Flate(pdf::deflate(rgb.as_raw())),
    })
}

/// Renders the report. `photos` holds each photo the answers name, by SHA-256.
pub fn render(input: &ReportInput<'_>, mut photos: BTreeMap<String, PhotoBytes>) -> Rendered {
    let mut l = Layout::new();
    let rec = input.record;
    let view = input.view;
    let prompts: BTreeMap<&str, &str> = input
        .checklist
        .sections
        .iter()
        .flat_map(|s| s.items.iter().map(|i| (i.id.as_str(), i.prompt.as_str())))
        .collect();
    let prompt = |id: &str| prompts.get(id).copied().unwrap_or("(not in the checklist)");
    let devices: BTreeMap<uuid::Uuid, String> = view
        .devices
        .iter()
        .map(|d| (d.id, d.hostname.current().value.clone()))
        .collect();

    // Title and the facts of the record.
    l.heading(0, "Wardcheck inspection report");
    let trust = match input.trust_name {
        Some(name) => format!("{} ({})", name, rec.trust),
        None => rec.trust.clone(),
    };
    l.text(
        &format!("{trust}: {}", input.checklist.title),
        Style::STRONG,
    );
    l.space(6.0);
    l.field("Inspection", &rec.id.to_string(), Style::BODY);
    l.field("Trust", &trust, Style::BODY);
    l.field("Sites", &rec.sites.join(", "), Style::BODY);
    let visit = match (view.meta.visit_start, view.meta.visit_end) {
        (Some(a), Some(b)) if a != b => format!("{a} to {b}"),
        (Some(a), _) => a.to_string(),
        _ => "not set".into(),
    };
    l.field("Visit", &visit, Style::BODY);
    l.field("State", &label(&rec.state), Style::BODY);
    let team: Vec<String> = view
        .meta
        .team
        .iter()
        .map(|t| format!("{} ({}, {})", t.name, t.user, label(&t.role)))
        .collect();
    l.field("Team", &team.join("; "), Style::BODY);
    l.field(
        "Checklist",
        &format!(
            "{} version {}, SHA-256 {}",
            rec.checklist_id, rec.checklist_version, rec.checklist_sha256
        ),
        Style::BODY,
    );
    l.field(
        "Created",
        &format!("{}, {}", rec.created_by, when(rec.created_at)),
        Style::BODY,
    );
    if let Some(shared) = rec.shared_at {
        l.field("Shared with trust", &when(shared), Style::BODY);
    }
    if let Some(j) = input.join {
        let snap = |s: &Option<crate::join::SnapshotRef>| {
            s.as_ref().map_or("none".to_string(), |s| {
                format!("{} (SHA-256 {})", s.as_of, s.sha256)
            })
        };
        l.field(
            "Telemetry",
            &format!(
                "endpoints of {}; network of {}; alerts of {}",
                snap(&j.snapshots.endpoints),
                snap(&j.snapshots.network),
                snap(&j.snapshots.alerts)
            ),
            Style::BODY,
        );
    } else {
        let why = input.join_error.map_or("not joined".to_string(), |e| {
            format!("the telemetry could not be read when this report was made: {e}")
        });
        l.field("Telemetry", &why, Style::BODY);
    }
    l.field(
        "Report made",
        &format!(
            "{}, by {}, with what {} may read",
            when(input.made_at),
            input.made_by,
            match input.audience {
                Audience::Regulator => "inspectors and reviewers",
                Audience::Trust => "the trust",
            }
        ),
        Style::BODY,
    );
    l.space(4.0);
    l.text(
        "The server keeps this file and writes its SHA-256 in the audit log when it is made. \
         Each photo below is printed with its SHA-256, the id under which the evidence store \
         keeps it. The sign-off chain at the end pins the SHA-256 of what each signatory \
         signed; `wardcheck-server inspection verify` recomputes it from the server's record.",
        Style::SMALL,
    );

    // Summary.
    l.heading(1, "Summary");
    for p in &view.progress {
        let title = input
            .checklist
            .sections
            .iter()
            .find(|s| s.id == p.section)
            .map_or(p.section.as_str(), |s| s.title.as_str());
        l.field(
            title,
            &format!("{} of {} answered", p.answered, p.total),
            Style::BODY,
        );
    }
    if let Some(j) = input.join {
        let totals: Vec<String> = j
            .totals
            .iter()
            .map(|(v, n)| format!("{n} {}", label(v).to_lowercase()))
            .collect();
        l.field("Telemetry verdicts", &totals.join(", "), Style::BODY);
    }
    l.field("Findings", &view.findings.len().to_string(), Style::BODY);
    l.field(
        "Corrective actions",
        &input.actions.len().to_string(),
        Style::BODY,
    );
    if !view.conflicts.is_empty() {
        l.field(
            "Conflicts",
            &format!(
                "{} fields hold conflicting values (shown side by side)",
                view.conflicts.len()
            ),
            Style::BODY,
        );
    }

    // Every answer.
    l.heading(1, "Answers");
    let verdicts: BTreeMap<&str, &crate::join::ItemJoin> = input
        .join
        .map(|j| j.items.iter().map(|i| (i.item.as_str(), i)).collect())
        .unwrap_or_default();
    let mut photo_order: Vec<(
        String,
        String,
        Stamped<wardcheck_core::inspection::PhotoRef>,
    )> = Vec::new();
    for section in &input.checklist.sections {
        l.heading(2, &format!("{} ({})", section.title, section.source));
        for item in &section.items {
            l.need(4.0 * Style::BODY.leading());
            l.space(3.0);
            l.text(&format!("{}  {}", item.id, item.prompt), Style::STRONG);
            let body = Style::BODY.indented(12.0);
            match section.scope {
                Scope::Inspection => {
                    let response = view.responses.get(&item.id);
                    match response.and_then(|r| r.answer.as_ref()) {
                        Some(a) => l.field("Answer", &field_text(a, answer_text), body),
                        None => l.field("Answer", "not answered", body),
                    }
                    if let Some(r) = response {
                        if !r.note.is_empty() {
                            let edited = r
                                .note_edited
                                .as_ref()
                                .map(|s| format!(" ({}, {})", s.by, when(s.at)))
                                .unwrap_or_default();
                            l.field("Note", &format!("{}{edited}", r.note), body);
                        }
                        for p in &r.photos {
                            l.field(
                                "Photo",
                                &format!("SHA-256 {} {}", p.value.hash, p.value.caption),
                                body,
                            );
                            photo_order.push((item.id.clone(), p.value.hash.clone(), p.clone()));
                        }
                    }
                }
                Scope::Device => {
                    let mut any = false;
                    for d in &view.devices {
                        if let Some(o) = d.observations.get(&item.id) {
                            any = true;
                            let text = field_text(o, |o| {
                                if o.note.is_empty() {
                                    answer_text(&o.answer)
                                } else {
                                    format!("{}. Note: {}", answer_text(&o.answer), o.note)
                                }
                            });
                            l.field(&d.hostname.current().value, &text, body);
                        }
                    }
                    if !any {
                        l.field("Answer", "no sampled device answered", body);
                    }
                }
            }
            if let Some(j) = verdicts.get(item.id.as_str()) {
                l.field(
                    "Telemetry",
                    &format!("{}. {} {}", label(&j.verdict), j.summary, j.reason),
                    body,
                );
                for d in &j.judged_devices {
                    let verdict = d.verdict.as_ref().map_or("no verdict".into(), label);
                    l.field(
                        &d.hostname,
                        &format!("{verdict}. {}", d.reason),
                        body.indented(12.0),
                    );
                }
            }
        }
    }

    // Sampled devices.
    l.heading(1, "Sampled devices");
    if view.devices.is_empty() {
        l.text("None sampled.", Style::BODY);
    }
    let matches: BTreeMap<uuid::Uuid, &crate::join::DeviceMatch> = input
        .join
        .map(|j| j.devices.iter().map(|d| (d.device, d)).collect())
        .unwrap_or_default();
    for d in &view.devices {
        l.space(3.0);
        l.text(&d.hostname.current().value, Style::STRONG);
        let body = Style::BODY.indented(12.0);
        l.field("Host name", &field_text(&d.hostname, Clone::clone), body);
        l.field("Build seen", &field_text(&d.build_seen, Clone::clone), body);
        l.field(
            "Added",
            &format!("{}, {}", d.added.by, when(d.added.at)),
            body,
        );
        if let Some(m) = matches.get(&d.id) {
            l.field(
                "Telemetry",
                &format!("{}. {}", label(&m.status), m.summary),
                body,
            );
        }
    }

    // Findings, with the trust's response to each.
    l.heading(1, "Findings");
    if view.findings.is_empty() {
        l.text("No findings recorded.", Style::BODY);
    }
    for f in &view.findings {
        l.space(3.0);
        l.text(&f.text, Style::STRONG);
        let body = Style::BODY.indented(12.0);
        l.field("Severity", &field_text(&f.severity, label), body);
        if !f.recommendation.is_empty() {
            l.field("Recommendation", &f.recommendation, body);
        }
        for i in &f.items {
            l.field("Item", &format!("{i} {}", prompt(i)), body);
        }
        l.field(
            "Recorded",
            &format!("{}, {}", f.created.by, when(f.created.at)),
            body,
        );
        l.field(
            "Last edited",
            &format!("{}, {}", f.edited.by, when(f.edited.at)),
            body,
        );
        l.field("Finding id", &f.id.to_string(), body);
        match input.response.and_then(|r| r.findings.get(&f.id)) {
            Some(answer) => l.field("Trust's response", &field_text(answer, Clone::clone), body),
            None if input.response.is_some() => l.field("Trust's response", "none yet", body),
            None => {}
        }
    }

    // Comments.
    l.heading(1, "Comments");
    if view.comments.is_empty() {
        l.text("No comments.", Style::BODY);
    }
    for c in &view.comments {
        let about = match &c.target {
            CommentTarget::Inspection => "the inspection".to_string(),
            CommentTarget::Item(i) => format!("item {i} {}", prompt(i)),
            CommentTarget::Finding(f) => format!("finding {f}"),
            CommentTarget::Device(d) => format!(
                "device {}",
                devices.get(d).cloned().unwrap_or_else(|| d.to_string())
            ),
        };
        let released = c
            .released
            .as_ref()
            .map_or("not released to the trust".into(), |s| {
                format!("released by {}, {}", s.by, when(s.at))
            });
        l.space(3.0);
        l.text(
            &format!("{}, {}, on {about} ({released})", c.by, when(c.at)),
            Style::SMALL,
        );
        l.text(&c.text, Style::BODY.indented(12.0));
    }

    // The trust's response.
    l.heading(1, "The trust's response");
    match input.response {
        None => l.text("Not readable with this report's rights.", Style::BODY),
        Some(r) => {
            l.field(
                "Findings answered",
                &format!("{} of {}", r.findings.len(), view.findings.len()),
                Style::BODY,
            );
            if r.accuracy.is_empty() {
                l.text("No comments on factual accuracy.", Style::BODY);
            }
            for a in &r.accuracy {
                l.space(3.0);
                l.text(
                    &format!("{}, {}, on the accuracy of {}", a.by, when(a.at), a.about),
                    Style::SMALL,
                );
                l.text(&a.text, Style::BODY.indented(12.0));
            }
        }
    }

    // Corrective actions.
    l.heading(1, "Corrective actions");
    if input.actions.is_empty() {
        l.text("None raised in this inspection.", Style::BODY);
    }
    for a in input.actions {
        l.space(3.0);
        l.text(&a.what, Style::STRONG);
        let body = Style::BODY.indented(12.0);
        l.field("Status", &label(&a.status), body);
        l.field("Priority", &label(&a.priority), body);
        l.field("Due", &a.due.to_string(), body);
        let source = match &a.source {
            wardcheck_core::actions::Source::Finding { finding } => {
                let text = view
                    .findings
                    .iter()
                    .find(|f| f.id == *finding)
                    .map_or(String::new(), |f| format!(": {}", f.text));
                format!("finding {finding}{text}")
            }
            wardcheck_core::actions::Source::Item { item } => {
                format!("item {item} {}", prompt(item))
            }
        };
        l.field("From", &source, body);
        l.field("Action id", &a.id.to_string(), body);
        for step in &a.steps {
            l.field(
                &when(step.at),
                &format!("{}: {}", step.by, step_text(&step.step)),
                body,
            );
        }
    }

    // Photos.
    l.heading(1, "Photos");
    if photo_order.is_empty() {
        l.text("No photos.", Style::BODY);
    }
    for (item, hash, p) in photo_order {
        l.need(200.0);
        l.space(4.0);
        let caption = if p.value.caption.is_empty() {
            "Photo".to_string()
        } else {
            p.value.caption.clone()
        };
        l.text(
            &format!("{caption} ({item} {})", prompt(&item)),
            Style::STRONG,
        );
        l.text(
            &format!(
                "{}; {} x {} pixels, {} bytes, {}; taken {}",
                stamped(&p),
                p.value.width,
                p.value.height,
                p.value.size,
                p.value.mime,
                p.value
                    .captured_at
                    .map_or("(time not recorded)".into(), when)
            ),
            Style::SMALL,
        );
        l.text(&format!("SHA-256 {hash}"), Style::MONO);
        match photos.remove(&hash) {
            Some(PhotoBytes::Image(image)) => l.image(image, 300.0, 225.0),
            Some(PhotoBytes::Missing(why)) => l.text(&format!("Not shown: {why}"), Style::SMALL),
            // The same photo named twice: drawn the first time.
            None => l.text("Shown above.", Style::SMALL),
        }
    }

    // The sign-off chain.
    l.heading(1, "Sign-off chain");
    if view.signoffs.is_empty() {
        l.text("Not signed off.", Style::BODY);
    }
    for (i, s) in view.signoffs.iter().enumerate() {
        l.space(3.0);
        l.text(
            &format!(
                "{}. {} ({}), {}, {}",
                i + 1,
                label(&s.kind),
                label(&s.role),
                s.by,
                when(s.at)
            ),
            Style::STRONG,
        );
        let body = Style::BODY.indented(12.0);
        l.field("Statement", &s.statement, body);
        let mono = Style::MONO.indented(12.0);
        l.field(
            "Content SHA-256",
            s.content
                .as_deref()
                .unwrap_or("(made before sign-offs were sealed)"),
            mono,
        );
        l.field(
            "Previous link",
            s.prev.as_deref().unwrap_or("(first link)"),
            mono,
        );
        l.field("Link SHA-256", s.hash.as_deref().unwrap_or(""), mono);
        l.field("Heads", &s.heads.join(" "), mono);
    }

    l.space(8.0);
    if l.replaced > 0 {
        l.text(
            &format!(
                "{} characters of the record could not be printed in this report's font and are \
                 shown as '?'. The evidence pack's CSV holds the exact text.",
                l.replaced
            ),
            Style::SMALL,
        );
    }
    l.text("End of the report.", Style::SMALL);

    let replaced = l.replaced;
    let pages = l.page_count();
    let title = format!("Wardcheck inspection report {} {}", rec.trust, rec.id);
    let footer = format!(
        "Wardcheck inspection report, {}, inspection {}, made {}",
        rec.trust,
        rec.id,
        when(input.made_at)
    );
    let pdf = l.finish(&title, &footer, input.made_at);
    Rendered {
        pdf,
        pages,
        replaced,
    }
}

/// A step of an action in words: its kind and every field it carries.
fn step_text(step: &wardcheck_core::actions::Step) -> String {
    let value = serde_json::to_value(step).unwrap_or_default();
    let serde_json::Value::Object(map) = value else {
        return label(step);
    };
    let kind = map
        .get("step")
        .and_then(|k| k.as_str())
        .map(|k| label(&k))
        .unwrap_or_default();
    let fields: Vec<String> = map
        .iter()
        .filter(|(k, v)| *k != "step" && !v.is_null())
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or(x.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            format!("{} {v}", label(k))
        })
        .collect();
    if fields.is_empty() {
        kind
    } else {
        format!("{kind}. {}", fields.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn pngs_are_re_encoded_within_the_report_budget() {
        let mut left = 3_000;
        let img = prepare_photo(png(40, 30), &mut left).unwrap();
        assert_eq!((img.width, img.height), (40, 30));
        assert!(matches!(img.kind, ImageKind::Flate(_)));
        assert_eq!(left, 3_000 - 1_200);
        // Past the budget: refused before decoding, the budget untouched.
        let err = prepare_photo(png(60, 40), &mut left).unwrap_err();
        assert!(err.contains("as many photos"), "{err}");
        assert_eq!(left, 1_800);
        assert!(prepare_photo(b"not an image".to_vec(), &mut left).is_err());
    }

    #[test]
    fn answers_read_as_words() {
        assert_eq!(answer_text(&Answer::PartlyMet), "Partly met");
        assert_eq!(
            answer_text(&Answer::NotApplicable {
                reason: "no such system".into()
            }),
            "Not applicable. Reason: no such system"
        );
        assert_eq!(answer_text(&Answer::Number { value: 91.0 }), "91");
        assert_eq!(
            label(&wardcheck_core::inspection::State::InProgress),
            "In progress"
        );
    }
}
