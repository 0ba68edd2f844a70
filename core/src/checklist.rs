//! Checklists: TOML files under `checklists/`, validated and pinned.
//!
//! A checklist is what an inspector follows on site. It has sections of items; an item is
//! one question with the answer it takes ([`AnswerKind`]), the evidence it wants
//! ([`Evidence`]), where it comes from in the standards ([`References`]: NDG standard and
//! DSPT evidence item, NCSC CAF outcome, Cyber Essentials control, CIS benchmark section,
//! CQC key line of enquiry), how serious a 'not met' is ([`Severity`]) and, when central
//! telemetry can confirm or refute the answer, a named [`TelemetryCheck`]. A checklist's
//! items are answered once per inspection ([`Scope::Inspection`]) or once per sampled
//! device ([`Scope::Device`]); device items say how to observe the check on the device.
//!
//! A *template* writes no items of its own. Its `[[include]]` entries name other checklist
//! files, relative to the template's directory, and the sections taken from each. The
//! sections are combined by reference, not copied: a resolved [`Section`] keeps the id of
//! the checklist it was written in ([`Section::source`]) and that checklist's scope. The
//! CQC on-site template takes sections from the NDG, firewall and Windows checklists.
//!
//! The format, written for checklist authors, is `checklists/README.md`.
//!
//! # Validation
//!
//! [`load_file`] and [`load_str`] report *every* problem they find, each with file, line
//! and field ([`ChecklistErrors`]), so an author fixes a file in one pass. To get there the
//! text is first parsed into a loose, spanned TOML tree ([`toml::de::DeTable`]: every key
//! and value carries its byte range) and then checked field by field by hand. Deriving
//! `Deserialize` for the file would stop at the first missing or unknown field.
//!
//! # Pin
//!
//! An inspection records the checklist it follows as a [`ChecklistPin`]: id, version and
//! the lowercase hex SHA-256 of the file's bytes. For a template the hash runs over the
//! template's bytes followed by each included file's bytes, in include order (a file
//! included twice is hashed twice), so that editing any file an inspection depends on
//! changes the pin, and a later edit never changes an inspection already under way.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path};
use std::sync::LazyLock;

use crate::judge::{self, DeviceKind, Judge, Span, Tolerance};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A checklist as loaded and validated: a standalone file, or a template whose
/// sections were resolved from other checklists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checklist {
    pub id: String,
    pub version: String,
    pub title: String,
    pub applies_to: Vec<OrgType>,
    pub sections: Vec<Section>,
    /// Identity pinned into every inspection that uses this checklist.
    pub pin: ChecklistPin,
}

/// The id, version and SHA-256 that an inspection records, so a later edit of the
/// file never changes an inspection under way.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChecklistPin {
    pub id: String,
    pub version: String,
    /// Lowercase hex SHA-256 of the file's bytes (for a template: of the template and
    /// every file it includes, see the module docs).
    pub sha256: String,
}

/// Who answers a section's items: once per inspection, or once per sampled device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    Inspection,
    Device,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    pub id: String,
    pub title: String,
    /// The id of the checklist file the section was written in.
    pub source: String,
    pub scope: Scope,
    pub items: Vec<Item>,
    /// The organisation types the section is for; empty: every type its checklist
    /// applies to. An inspection of a trust of another type does not hold it.
    #[serde(default)]
    pub applies_to: Vec<OrgType>,
    /// Only for a trust that runs a major trauma centre.
    #[serde(default)]
    pub major_trauma_centre: bool,
}

/// The organisation an inspection is of, as far as checklists care: its type, and
/// whether it runs a major trauma centre (the trusts feed says both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    #[serde(rename = "type")]
    pub kind: OrgType,
    pub major_trauma_centre: bool,
}

impl Section {
    /// Whether an inspection of `org` holds this section; with no org known (a trust the
    /// trusts feed does not list), every section.
    pub fn applies(&self, org: Option<&Org>) -> bool {
        let Some(org) = org else {
            return true;
        };
        (self.applies_to.is_empty() || self.applies_to.contains(&org.kind))
            && (!self.major_trauma_centre || org.major_trauma_centre)
    }
}

impl OrgType {
    /// The name checklists and the trusts feed use: `acute`, `mental-health` ...
    pub fn name(self) -> &'static str {
        name_of(ORG_TYPES, &self)
    }

    pub fn from_name(name: &str) -> Option<OrgType> {
        ORG_TYPES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Stable id, unique within the checklist (and within a template).
    pub id: String,
    pub prompt: String,
    pub guidance: String,
    /// For device checks: how to observe it on the device (the setting or command).
    pub observe: Option<String>,
    pub answer: AnswerKind,
    pub evidence: Vec<Evidence>,
    pub refs: References,
    /// How serious a 'not met' is.
    pub severity: Severity,
    pub telemetry: Option<TelemetryCheck>,
    /// How the check judges the answer: the item's `judge` table, or the check's default
    /// ([`Judge::default_for`]). `None` without a check.
    #[serde(default)]
    pub judge: Option<Judge>,
}

/// The kind of answer an item takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum AnswerKind {
    /// met / partly met / not met / not applicable (with a reason).
    Compliance,
    Number {
        min: Option<f64>,
        max: Option<f64>,
        unit: Option<String>,
    },
    Date,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evidence {
    Photo,
    Note,
    SampledDevice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrgType {
    Acute,
    Ambulance,
    MentalHealth,
    Community,
}

/// Where an item comes from in the standards. Every field is optional; an item
/// carries those that apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct References {
    /// NDG data security standard, 1 to 10.
    pub ndg: Option<u8>,
    /// DSPT evidence item, e.g. "8.2.1".
    pub dspt: Option<String>,
    /// NCSC CAF contributing outcome, e.g. "B4.b".
    pub caf: Option<String>,
    /// Cyber Essentials control, e.g. "firewalls".
    pub cyber_essentials: Option<String>,
    /// CIS Microsoft Windows 10 benchmark section, e.g. "9.1".
    pub cis: Option<String>,
    /// CQC key line of enquiry, e.g. "W6.7".
    pub kloe: Option<String>,
}

/// The fixed, documented list of checks central telemetry can answer.
///
/// Each check names a condition that is *bad* when telemetry finds it (an unsupported
/// OS, SMBv1 on, an alert left unacknowledged), so an inspector's 'met' beside a non-zero
/// count is a contradiction. `checklists/README.md` documents each one for authors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TelemetryCheck {
    #[serde(rename = "endpoints.unsupported_os")]
    EndpointsUnsupportedOs,
    #[serde(rename = "endpoints.smb1_enabled")]
    EndpointsSmb1Enabled,
    #[serde(rename = "endpoints.not_onboarded")]
    EndpointsNotOnboarded,
    #[serde(rename = "firewalls.unsupported_firmware")]
    FirewallsUnsupportedFirmware,
    #[serde(rename = "alerts.unacknowledged_48h")]
    AlertsUnacknowledged48h,
    #[serde(rename = "endpoints.missing_security_updates")]
    EndpointsMissingSecurityUpdates,
    #[serde(rename = "endpoints.bitlocker_off")]
    EndpointsBitlockerOff,
    #[serde(rename = "endpoints.secure_boot_off")]
    EndpointsSecureBootOff,
    #[serde(rename = "endpoints.credential_guard_off")]
    EndpointsCredentialGuardOff,
    #[serde(rename = "endpoints.firewall_profile_off")]
    EndpointsFirewallProfileOff,
    #[serde(rename = "firewalls.admin_interface_exposed")]
    FirewallsAdminInterfaceExposed,
    #[serde(rename = "firewalls.rule_review_overdue")]
    FirewallsRuleReviewOverdue,
    #[serde(rename = "alerts.unremediated")]
    AlertsUnremediated,
}

impl TelemetryCheck {
    /// Every check, in the order `checklists/README.md` lists them.
    pub const ALL: [TelemetryCheck; 13] = [
        Self::EndpointsUnsupportedOs,
        Self::EndpointsSmb1Enabled,
        Self::EndpointsNotOnboarded,
        Self::EndpointsMissingSecurityUpdates,
        Self::EndpointsBitlockerOff,
        Self::EndpointsSecureBootOff,
        Self::EndpointsCredentialGuardOff,
        Self::EndpointsFirewallProfileOff,
        Self::FirewallsUnsupportedFirmware,
        Self::FirewallsAdminInterfaceExposed,
        Self::FirewallsRuleReviewOverdue,
        Self::AlertsUnacknowledged48h,
        Self::AlertsUnremediated,
    ];

    /// The name a checklist file uses (the same as the serde name).
    pub fn name(self) -> &'static str {
        match self {
            Self::EndpointsUnsupportedOs => "endpoints.unsupported_os",
            Self::EndpointsSmb1Enabled => "endpoints.smb1_enabled",
            Self::EndpointsNotOnboarded => "endpoints.not_onboarded",
            Self::EndpointsMissingSecurityUpdates => "endpoints.missing_security_updates",
            Self::EndpointsBitlockerOff => "endpoints.bitlocker_off",
            Self::EndpointsSecureBootOff => "endpoints.secure_boot_off",
            Self::EndpointsCredentialGuardOff => "endpoints.credential_guard_off",
            Self::EndpointsFirewallProfileOff => "endpoints.firewall_profile_off",
            Self::FirewallsUnsupportedFirmware => "firewalls.unsupported_firmware",
            Self::FirewallsAdminInterfaceExposed => "firewalls.admin_interface_exposed",
            Self::FirewallsRuleReviewOverdue => "firewalls.rule_review_overdue",
            Self::AlertsUnacknowledged48h => "alerts.unacknowledged_48h",
            Self::AlertsUnremediated => "alerts.unremediated",
        }
    }

    /// What the check counts, in one line (the README says more).
    pub fn description(self) -> &'static str {
        match self {
            Self::EndpointsUnsupportedOs => {
                "endpoints whose OS platform and build are past the end of security support"
            }
            Self::EndpointsSmb1Enabled => "endpoints with the SMBv1 protocol enabled",
            Self::EndpointsNotOnboarded => {
                "endpoints not onboarded to Defender for Endpoint, or whose sensor is not active"
            }
            Self::EndpointsMissingSecurityUpdates => {
                "endpoints missing one or more security updates"
            }
            Self::EndpointsBitlockerOff => {
                "endpoints whose system drive is not BitLocker-protected"
            }
            Self::EndpointsSecureBootOff => "endpoints with UEFI Secure Boot off",
            Self::EndpointsCredentialGuardOff => "endpoints where Credential Guard is not running",
            Self::EndpointsFirewallProfileOff => {
                "endpoints with a Windows firewall profile (domain, private, public) switched off"
            }
            Self::FirewallsUnsupportedFirmware => {
                "firewalls on firmware that the vendor no longer supports"
            }
            Self::FirewallsAdminInterfaceExposed => {
                "firewalls whose administrative interface is reachable from the internet"
            }
            Self::FirewallsRuleReviewOverdue => {
                "firewalls whose last recorded rule review is more than 12 months old"
            }
            Self::AlertsUnacknowledged48h => {
                "high-severity NHS cyber alerts not acknowledged within 48 hours of issue"
            }
            Self::AlertsUnremediated => {
                "high-severity NHS cyber alerts not closed (remediated) within the deadline"
            }
        }
    }

    /// The check with this name, if it is one of [`TelemetryCheck::ALL`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|check| check.name() == name)
    }
}

impl fmt::Display for TelemetryCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Checklist {
    /// The item with this id, and the section it sits in.
    pub fn item(&self, id: &str) -> Option<(&Section, &Item)> {
        self.sections
            .iter()
            .find_map(|s| s.items.iter().find(|i| i.id == id).map(|i| (s, i)))
    }

    /// Every item, in order, with its section.
    pub fn items(&self) -> impl Iterator<Item = (&Section, &Item)> {
        self.sections
            .iter()
            .flat_map(|s| s.items.iter().map(move |i| (s, i)))
    }
}

// ---------------------------------------------------------------------------------------
// Limits

/// Largest checklist file read, in bytes. The largest shipped file is about 25 KiB; a
/// mebibyte leaves room to grow and refuses anything that is plainly not a checklist
/// before any of it is parsed.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Most sections in one checklist, a template's resolved sections included.
pub const MAX_SECTIONS: usize = 100;

/// Most items in one checklist, a template's resolved items included. An inspection is
/// designed around 300 items (ARCHITECTURE's speed targets); 1,000 is headroom, and bounds
/// what one inspection document has to hold.
pub const MAX_ITEMS: usize = 1_000;

/// Most `[[include]]` entries in a template; each one reads a file.
pub const MAX_INCLUDES: usize = 32;

/// Longest checklist, section or item id, in bytes. Ids are keys in every inspection
/// document and appear in URLs and reports.
pub const MAX_ID_LEN: usize = 64;

/// Longest version string, in bytes.
pub const MAX_VERSION_LEN: usize = 32;

/// Longest title, prompt, guidance or observe text, in bytes: a generous paragraph, not
/// a pasted document.
pub const MAX_TEXT_LEN: usize = 4 * 1024;

// ---------------------------------------------------------------------------------------
// Errors

/// One problem in a checklist file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {field}: {message}", line_suffix(.line))]
pub struct ChecklistError {
    /// The file as it was named to the loader; an included file is named by joining its
    /// path to the template's directory.
    pub file: String,
    /// 1-based line of the problem; 0 when it concerns the file as a whole (it cannot be
    /// read, or is too large), and the line is then left out of the message.
    pub line: usize,
    /// Where in the file, e.g. `sections[ndg1].items[ndg1-ico-registration].prompt`. An
    /// entry whose id is missing or invalid is named by position: `sections[#3]`.
    pub field: String,
    pub message: String,
}

fn line_suffix(line: &usize) -> String {
    if *line == 0 {
        String::new()
    } else {
        format!(":{line}")
    }
}

/// Every problem found while loading a checklist (never empty), one per line when
/// displayed, as `file:line: field: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", one_per_line(.0))]
pub struct ChecklistErrors(pub Vec<ChecklistError>);

fn one_per_line(errors: &[ChecklistError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ChecklistErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, ChecklistError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a ChecklistErrors {
    type Item = &'a ChecklistError;
    type IntoIter = std::slice::Iter<'a, ChecklistError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

// ---------------------------------------------------------------------------------------
// Loading

/// Load and validate a checklist file. A template's includes are read relative to the
/// template's own directory.
pub fn load_file(path: &Path) -> Result<Checklist, ChecklistErrors> {
    let name = path.display().to_string();
    let text = read_limited(path).map_err(|message| {
        ChecklistErrors(vec![ChecklistError {
            file: name.clone(),
            line: 0,
            field: "file".to_owned(),
            message,
        }])
    })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    load(&name, &text, &IncludeSource::Dir(dir))
}

/// Validate checklist text. `name` is used in error messages; `dir` is where a template's
/// includes are read from (a template loaded without one reports that it cannot be
/// resolved).
pub fn load_str(name: &str, text: &str, dir: Option<&Path>) -> Result<Checklist, ChecklistErrors> {
    let source = match dir {
        Some(dir) => IncludeSource::Dir(dir),
        None => IncludeSource::Unavailable,
    };
    load(name, text, &source)
}

/// Validate a checklist whose includes are supplied in memory: `files[0]` is the
/// checklist or template, the rest are the files it may include, by name. This is how
/// the server reloads a checklist it was given with `checklist publish`.
pub fn load_files(files: &[(String, String)]) -> Result<Checklist, ChecklistErrors> {
    let Some((name, text)) = files.first() else {
        return Err(ChecklistErrors(vec![ChecklistError {
            file: "-".to_owned(),
            line: 0,
            field: "file".to_owned(),
            message: "no checklist file was supplied".to_owned(),
        }]));
    };
    load(name, text, &IncludeSource::Files(&files[1..]))
}

/// Directory the bundled files are named under in messages.
const BUNDLED_DIR: &str = "checklists";

/// The checklist files shipped in this build, by file name, embedded at compile time.
pub const BUNDLED_FILES: [(&str, &str); 6] = [
    (
        "dspt-ndg.toml",
        include_str!("../../checklists/dspt-ndg.toml"),
    ),
    (
        "windows10-endpoint.toml",
        include_str!("../../checklists/windows10-endpoint.toml"),
    ),
    (
        "firewall-boundary.toml",
        include_str!("../../checklists/firewall-boundary.toml"),
    ),
    (
        "trust-governance.toml",
        include_str!("../../checklists/trust-governance.toml"),
    ),
    (
        "legacy-medical-workstation.toml",
        include_str!("../../checklists/legacy-medical-workstation.toml"),
    ),
    (
        "cqc-onsite-cyber.toml",
        include_str!("../../checklists/cqc-onsite-cyber.toml"),
    ),
];

/// The bundled checklists, loaded once. A shipped file that does not validate is a bug in
/// this build (a test loads them all), so it panics with every problem listed.
static BUNDLED: LazyLock<Vec<Checklist>> = LazyLock::new(|| {
    BUNDLED_FILES
        .iter()
        .map(|(file, text)| {
            load(
                &format!("{BUNDLED_DIR}/{file}"),
                text,
                &IncludeSource::Bundled,
            )
            .unwrap_or_else(|errors| panic!("shipped checklist {file} is invalid:\n{errors}"))
        })
        .collect()
});

/// The checklists bundled into this build, in [`BUNDLED_FILES`] order; the template's
/// includes are resolved against the other bundled files.
pub fn bundled() -> Vec<Checklist> {
    BUNDLED.clone()
}

/// The files of the bundled checklist `id`, in the order its pin hashes them (a template
/// first, then each file it includes): what a server stores so that an inspection pinned
/// to this build's checklist can still be read after an upgrade ships another version.
pub fn bundled_files(id: &str) -> Option<Vec<(String, String)>> {
    let at = BUNDLED.iter().position(|c| c.id == id)?;
    let (name, text) = BUNDLED_FILES[at];
    let mut files = vec![(name.to_owned(), text.to_owned())];
    let doc: toml::Table = text.parse().ok()?;
    if let Some(includes) = doc.get("include").and_then(|i| i.as_array()) {
        for inc in includes {
            let file = inc.get("file")?.as_str()?;
            let (n, t) = BUNDLED_FILES.iter().find(|(n, _)| *n == file)?;
            files.push(((*n).to_owned(), (*t).to_owned()));
        }
    }
    Some(files)
}

/// `id@version` of each checklist bundled into this build.
pub fn bundled_summaries() -> Vec<String> {
    BUNDLED
        .iter()
        .map(|c| format!("{}@{}", c.id, c.version))
        .collect()
}

/// Where a template's includes are read from.
enum IncludeSource<'a> {
    /// Text loaded with no directory: includes cannot be found.
    Unavailable,
    /// Files relative to this directory.
    Dir(&'a Path),
    /// The embedded [`BUNDLED_FILES`].
    Bundled,
    /// Files held in memory, by name (e.g. a checklist published to the server).
    Files(&'a [(String, String)]),
}

impl IncludeSource<'_> {
    /// The included file's name for messages, and its text or why it could not be read.
    fn read(&self, relative: &str) -> (String, Result<String, String>) {
        match self {
            Self::Unavailable => (
                relative.to_owned(),
                Err("the template was loaded from text with no directory to find it in".to_owned()),
            ),
            Self::Dir(dir) => {
                let path = dir.join(relative);
                (path.display().to_string(), read_limited(&path))
            }
            Self::Files(files) => (
                relative.to_owned(),
                files
                    .iter()
                    .find(|(name, _)| name == relative)
                    .map(|(_, text)| text.clone())
                    .ok_or_else(|| format!("no file {relative:?} was supplied with the template")),
            ),
            Self::Bundled => {
                let text = BUNDLED_FILES
                    .iter()
                    .find(|(file, _)| *file == relative)
                    .map(|(_, text)| (*text).to_owned())
                    .ok_or_else(|| "no bundled checklist has that file name".to_owned());
                (format!("{BUNDLED_DIR}/{relative}"), text)
            }
        }
    }
}

/// Read a file of at most [`MAX_FILE_BYTES`] as UTF-8 text.
fn read_limited(path: &Path) -> Result<String, String> {
    let file = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    // `take` bounds the read even if the file grows after we looked at its length.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

fn too_large() -> String {
    format!("file is larger than the {MAX_FILE_BYTES}-byte limit for a checklist")
}

/// Parse, validate and (for a template) resolve one checklist's text.
fn load(name: &str, text: &str, source: &IncludeSource) -> Result<Checklist, ChecklistErrors> {
    let mut check = FileCheck::new(name, text);
    if text.len() > MAX_FILE_BYTES {
        check.report_file(too_large());
        return Err(ChecklistErrors(check.into_errors()));
    }
    let mut hasher = Sha256::new();
    hasher.update(text.as_bytes());
    let mut included_errors = Vec::new();
    let draft = parse_draft(&mut check, text);
    let sections = match &draft {
        Some(draft) if draft.is_template => {
            resolve_includes(draft, &mut check, source, &mut hasher, &mut included_errors)
        }
        Some(draft) => draft.sections.iter().map(|s| s.to_section(draft)).collect(),
        None => Vec::new(),
    };
    let mut errors = check.into_errors();
    errors.append(&mut included_errors);
    match draft {
        Some(draft) if errors.is_empty() => {
            // Every required field was present, or an error would have been reported.
            let id = draft.id.unwrap_or_default();
            let version = draft.version.unwrap_or_default();
            Ok(Checklist {
                pin: ChecklistPin {
                    id: id.clone(),
                    version: version.clone(),
                    sha256: hex::encode(hasher.finalize()),
                },
                id,
                version,
                title: draft.title.unwrap_or_default(),
                applies_to: draft.applies_to,
                sections,
            })
        }
        _ => Err(ChecklistErrors(errors)),
    }
}

// ---------------------------------------------------------------------------------------
// Checking one file

/// The fields each table may hold; anything else is reported as unknown.
const ROOT_FIELDS: &[&str] = &[
    "id",
    "version",
    "title",
    "applies_to",
    "scope",
    "sections",
    "include",
];
const SECTION_FIELDS: &[&str] = &["id", "title", "items", "applies_to", "major_trauma_centre"];
const ITEM_FIELDS: &[&str] = &[
    "id",
    "prompt",
    "guidance",
    "observe",
    "answer",
    "evidence",
    "severity",
    "telemetry",
    "judge",
    "refs",
];
const JUDGE_FIELDS: &[&str] = &[
    "devices",
    "discovered",
    "tolerance",
    "coverage",
    "window",
    "deadline",
];
const ANSWER_FIELDS: &[&str] = &["kind", "min", "max", "unit"];
const REF_FIELDS: &[&str] = &["ndg", "dspt", "caf", "cyber_essentials", "cis", "kloe"];
const INCLUDE_FIELDS: &[&str] = &["file", "sections"];

const ORG_TYPES: &[(&str, OrgType)] = &[
    ("acute", OrgType::Acute),
    ("ambulance", OrgType::Ambulance),
    ("mental-health", OrgType::MentalHealth),
    ("community", OrgType::Community),
];
const DEVICE_KINDS: &[(&str, DeviceKind)] = &[
    ("end-user", DeviceKind::EndUser),
    ("server", DeviceKind::Server),
    ("medical", DeviceKind::Medical),
    ("other", DeviceKind::Other),
];
const SCOPES: &[(&str, Scope)] = &[("inspection", Scope::Inspection), ("device", Scope::Device)];
const EVIDENCE: &[(&str, Evidence)] = &[
    ("photo", Evidence::Photo),
    ("note", Evidence::Note),
    ("sampled-device", Evidence::SampledDevice),
];
const SEVERITIES: &[(&str, Severity)] = &[
    ("low", Severity::Low),
    ("medium", Severity::Medium),
    ("high", Severity::High),
    ("critical", Severity::Critical),
];
const ANSWER_KINDS: &[&str] = &["compliance", "number", "date", "text"];

/// The five Cyber Essentials technical controls, as a checklist names them.
const CYBER_ESSENTIALS_CONTROLS: &[&str] = &[
    "firewalls",
    "secure-configuration",
    "security-update-management",
    "user-access-control",
    "malware-protection",
];

type Value<'i> = Spanned<DeValue<'i>>;

/// Checks the shape of a reference string, with the message to report if it is wrong.
type ShapeCheck = fn(&str) -> Result<(), String>;

/// A checklist file as far as it could be read: what was valid, kept so that a template
/// can check its includes against an included file that has problems of its own.
#[derive(Debug)]
struct Draft {
    id: Option<String>,
    version: Option<String>,
    title: Option<String>,
    applies_to: Vec<OrgType>,
    scope: Scope,
    /// Sections with a valid id (only those can be included or reported by id).
    sections: Vec<DraftSection>,
    includes: Vec<Include>,
    is_template: bool,
}

#[derive(Debug)]
struct DraftSection {
    id: String,
    line: usize,
    title: String,
    /// Items that were complete; `item_ids` also has the ids of those that were not.
    items: Vec<Item>,
    item_ids: Vec<(String, usize)>,
    applies_to: Vec<OrgType>,
    major_trauma_centre: bool,
}

impl DraftSection {
    fn to_section(&self, checklist: &Draft) -> Section {
        Section {
            id: self.id.clone(),
            title: self.title.clone(),
            source: checklist.id.clone().unwrap_or_default(),
            scope: checklist.scope,
            items: self.items.clone(),
            applies_to: self.applies_to.clone(),
            major_trauma_centre: self.major_trauma_centre,
        }
    }
}

#[derive(Debug)]
struct Include {
    /// `include[#n]`, for error fields.
    label: String,
    offset: usize,
    /// The relative path and its offset, if valid.
    file: Option<(String, usize)>,
    selection: Option<Selection>,
}

#[derive(Debug)]
enum Selection {
    All,
    /// Section ids with the offset of each, for "no such section" errors.
    Only(Vec<(String, usize)>),
}

/// One file being checked: its name, where its lines start, and its problems so far.
struct FileCheck {
    file: String,
    line_starts: Vec<usize>,
    problems: Vec<ChecklistError>,
}

impl FileCheck {
    fn new(file: &str, text: &str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            file: file.to_owned(),
            line_starts,
            problems: Vec::new(),
        }
    }

    /// 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        // The number of lines that start at or before the offset.
        self.line_starts.partition_point(|&start| start <= offset)
    }

    fn report(&mut self, offset: usize, field: &str, message: impl Into<String>) {
        self.problems.push(ChecklistError {
            file: self.file.clone(),
            line: self.line(offset),
            field: field.to_owned(),
            message: message.into(),
        });
    }

    fn report_file(&mut self, message: impl Into<String>) {
        self.problems.push(ChecklistError {
            file: self.file.clone(),
            line: 0,
            field: "file".to_owned(),
            message: message.into(),
        });
    }

    /// The problems in line order (the TOML tree is visited in key order, not file order).
    fn into_errors(mut self) -> Vec<ChecklistError> {
        self.problems.sort_by_key(|p| p.line);
        self.problems
    }

    fn unknown_fields(&mut self, table: &DeTable, path: &str, allowed: &[&str]) {
        for (key, _) in table.iter() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                self.report(
                    key.span().start,
                    &join(path, key.get_ref()),
                    format!("unknown field; expected one of: {}", allowed.join(", ")),
                );
            }
        }
    }

    /// The value of a required field, or a report that it is missing. `at` is the offset
    /// of the table's header, where a missing field is reported.
    fn required<'a, 'i>(
        &mut self,
        table: &'a DeTable<'i>,
        at: usize,
        path: &str,
        key: &str,
    ) -> Option<&'a Value<'i>> {
        let value = table.get(key);
        if value.is_none() {
            self.report(at, &join(path, key), "missing required field");
        }
        value
    }

    fn string<'a>(&mut self, value: &'a Value, field: &str) -> Option<&'a str> {
        match value.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            other => {
                self.wrong_type(value, field, "a string", other);
                None
            }
        }
    }

    fn wrong_type(&mut self, value: &Value, field: &str, expected: &str, found: &DeValue) {
        self.report(
            value.span().start,
            field,
            format!("expected {expected}, found {}", type_name(found)),
        );
    }

    /// Human-written text: a non-blank string of at most [`MAX_TEXT_LEN`] bytes.
    fn text(&mut self, value: &Value, field: &str) -> Option<String> {
        let text = self.string(value, field)?;
        if text.trim().is_empty() {
            self.report(value.span().start, field, "must not be empty");
            None
        } else if text.len() > MAX_TEXT_LEN {
            self.report(
                value.span().start,
                field,
                format!("is {} bytes long; the limit is {MAX_TEXT_LEN}", text.len()),
            );
            None
        } else {
            Some(text.to_owned())
        }
    }

    fn id(&mut self, value: &Value, field: &str) -> Option<String> {
        let id = self.string(value, field)?;
        match check_id(id) {
            Ok(()) => Some(id.to_owned()),
            Err(message) => {
                self.report(value.span().start, field, message);
                None
            }
        }
    }

    /// One of a fixed set of names.
    fn choice<T: Copy>(
        &mut self,
        value: &Value,
        field: &str,
        options: &[(&str, T)],
        what: &str,
    ) -> Option<T> {
        let name = self.string(value, field)?;
        let found = options.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            self.report(
                value.span().start,
                field,
                format!(
                    "unknown {what} '{name}'; expected one of: {}",
                    names.join(", ")
                ),
            );
        }
        found
    }

    /// A list of names from a fixed set, each at most once.
    fn choices<T: Copy + PartialEq>(
        &mut self,
        value: &Value,
        field: &str,
        options: &[(&str, T)],
        what: &str,
    ) -> Vec<T> {
        let mut chosen = Vec::new();
        let DeValue::Array(array) = value.get_ref() else {
            self.wrong_type(value, field, "a list of strings", value.get_ref());
            return chosen;
        };
        for element in array.iter() {
            if let Some(v) = self.choice(element, field, options, what) {
                if chosen.contains(&v) {
                    self.report(element.span().start, field, "listed twice");
                } else {
                    chosen.push(v);
                }
            }
        }
        chosen
    }

    /// An array of tables (`[[header]]` entries), with the offset of each entry's header.
    fn tables<'a, 'i>(
        &mut self,
        value: &'a Value<'i>,
        field: &str,
        header: &str,
    ) -> Option<Vec<(&'a DeTable<'i>, usize)>> {
        let expected = format!("an array of tables ([[{header}]] entries)");
        let DeValue::Array(array) = value.get_ref() else {
            self.wrong_type(value, field, &expected, value.get_ref());
            return None;
        };
        let mut tables = Vec::with_capacity(array.len());
        for element in array.iter() {
            match element.get_ref() {
                DeValue::Table(table) => tables.push((table, element.span().start)),
                other => {
                    self.wrong_type(element, field, &expected, other);
                    return None;
                }
            }
        }
        Some(tables)
    }
}

fn type_name(value: &DeValue) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `list[id]` for an entry with a valid id, else `list[#n]` (1-based position).
fn entry_label(list: &str, table: &DeTable, index: usize) -> String {
    let id = table.get("id").and_then(|v| match v.get_ref() {
        DeValue::String(s) if check_id(s).is_ok() => Some(s.as_ref()),
        _ => None,
    });
    match id {
        Some(id) => format!("{list}[{id}]"),
        None => format!("{list}[#{}]", index + 1),
    }
}

fn name_of<T: PartialEq>(options: &[(&'static str, T)], value: &T) -> &'static str {
    options
        .iter()
        .find(|(_, v)| v == value)
        .map_or("?", |(n, _)| *n)
}

/// Check one file's text, reporting every problem; `None` only if the TOML itself does not
/// parse (anything reported after a syntax error would be noise).
fn parse_draft(check: &mut FileCheck, text: &str) -> Option<Draft> {
    let (document, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for error in syntax_errors {
            let offset = error.span().map_or(0, |span| span.start);
            check.report(offset, "syntax", error.message().to_owned());
        }
        return None;
    }
    let root = document.get_ref();
    check.unknown_fields(root, "", ROOT_FIELDS);

    let id = check
        .required(root, 0, "", "id")
        .and_then(|v| check.id(v, "id"));
    let version = check.required(root, 0, "", "version").and_then(|v| {
        let version = check.string(v, "version")?;
        match check_version(version) {
            Ok(()) => Some(version.to_owned()),
            Err(message) => {
                check.report(v.span().start, "version", message);
                None
            }
        }
    });
    let title = check
        .required(root, 0, "", "title")
        .and_then(|v| check.text(v, "title"));
    let applies_to = match check.required(root, 0, "", "applies_to") {
        Some(v) => {
            let orgs = check.choices(v, "applies_to", ORG_TYPES, "organisation type");
            if orgs.is_empty() && matches!(v.get_ref(), DeValue::Array(a) if a.is_empty()) {
                check.report(
                    v.span().start,
                    "applies_to",
                    "must name at least one organisation type",
                );
            }
            orgs
        }
        None => Vec::new(),
    };

    let sections_value = root.get("sections");
    let include_value = root.get("include");
    let is_template = include_value.is_some();
    match (sections_value, include_value) {
        (Some(_), Some(include)) => check.report(
            include.span().start,
            "include",
            "a file has either [[sections]] (a checklist) or [[include]] (a template), not both",
        ),
        (None, None) => check.report(
            0,
            "sections",
            "missing: a checklist needs at least one [[sections]] entry, a template at least one [[include]] entry",
        ),
        _ => {}
    }

    let scope = match root.get("scope") {
        Some(v) if is_template => {
            check.report(
                v.span().start,
                "scope",
                "a template has no scope of its own: each included section keeps its checklist's scope",
            );
            Scope::Inspection
        }
        Some(v) => check
            .choice(v, "scope", SCOPES, "scope")
            .unwrap_or(Scope::Inspection),
        None => Scope::Inspection,
    };

    let sections = sections_value
        .map(|v| parse_sections(check, v, scope, &applies_to))
        .unwrap_or_default();
    let includes = include_value
        .map(|v| parse_includes(check, v))
        .unwrap_or_default();
    Some(Draft {
        id,
        version,
        title,
        applies_to,
        scope,
        sections,
        includes,
        is_template,
    })
}

fn parse_sections(
    check: &mut FileCheck,
    value: &Value,
    scope: Scope,
    file_applies_to: &[OrgType],
) -> Vec<DraftSection> {
    let Some(tables) = check.tables(value, "sections", "sections") else {
        return Vec::new();
    };
    if tables.is_empty() {
        check.report(
            value.span().start,
            "sections",
            "must have at least one section",
        );
    }
    if let Some((_, offset)) = tables.get(MAX_SECTIONS) {
        check.report(
            *offset,
            "sections",
            format!("too many sections: the limit is {MAX_SECTIONS}"),
        );
    }
    // Ids already used in this file, with the line of their first use.
    let mut section_lines: HashMap<String, usize> = HashMap::new();
    let mut item_lines: HashMap<String, usize> = HashMap::new();
    let mut item_count = 0;
    let mut sections = Vec::new();
    for (index, (table, offset)) in tables.into_iter().enumerate() {
        let label = entry_label("sections", table, index);
        check.unknown_fields(table, &label, SECTION_FIELDS);
        let id_field = join(&label, "id");
        let id = check.required(table, offset, &label, "id").and_then(|v| {
            let id = check.id(v, &id_field)?;
            let line = check.line(v.span().start);
            if let Some(first) = section_lines.get(&id) {
                check.report(
                    v.span().start,
                    &id_field,
                    format!("duplicate section id '{id}' (first used on line {first})"),
                );
                None
            } else {
                section_lines.insert(id.clone(), line);
                Some(id)
            }
        });
        let title = check
            .required(table, offset, &label, "title")
            .and_then(|v| check.text(v, &join(&label, "title")));
        // A section for some organisation types only: each one the file's own. Not for
        // device checks: every sampled device answers them, whatever the trust.
        if scope == Scope::Device {
            for key in ["applies_to", "major_trauma_centre"] {
                if let Some(v) = table.get(key) {
                    check.report(
                        v.span().start,
                        &join(&label, key),
                        "a device-scope section applies to every sampled device: only inspection-scope sections are chosen by trust",
                    );
                }
            }
        }
        let applies_to = match table.get("applies_to") {
            Some(v) => {
                let field = join(&label, "applies_to");
                let orgs = check.choices(v, &field, ORG_TYPES, "organisation type");
                if orgs.is_empty() && matches!(v.get_ref(), DeValue::Array(a) if a.is_empty()) {
                    check.report(
                        v.span().start,
                        &field,
                        "must name at least one organisation type, or be left out",
                    );
                }
                for o in &orgs {
                    if !file_applies_to.contains(o) {
                        check.report(
                            v.span().start,
                            &field,
                            format!("'{}' is not in the checklist's applies_to", o.name()),
                        );
                    }
                }
                orgs
            }
            None => Vec::new(),
        };
        let major_trauma_centre = match table.get("major_trauma_centre") {
            Some(v) => match v.get_ref() {
                DeValue::Boolean(b) => *b,
                other => {
                    check.wrong_type(
                        v,
                        &join(&label, "major_trauma_centre"),
                        "true or false",
                        other,
                    );
                    false
                }
            },
            None => false,
        };

        let mut items = Vec::new();
        let mut item_ids = Vec::new();
        let items_field = join(&label, "items");
        let empty = "empty section: add at least one [[sections.items]] entry";
        match table.get("items") {
            None => check.report(offset, &items_field, empty),
            Some(v) => {
                let tables = check
                    .tables(v, &items_field, "sections.items")
                    .unwrap_or_default();
                if tables.is_empty() && matches!(v.get_ref(), DeValue::Array(_)) {
                    check.report(v.span().start, &items_field, empty);
                }
                for (item_index, (item_table, item_offset)) in tables.into_iter().enumerate() {
                    item_count += 1;
                    if item_count == MAX_ITEMS + 1 {
                        check.report(
                            item_offset,
                            &items_field,
                            format!("too many items: the limit is {MAX_ITEMS}"),
                        );
                    }
                    let item_label = join(&label, &entry_label("items", item_table, item_index));
                    let (id, item) = parse_item(
                        check,
                        item_table,
                        item_offset,
                        &item_label,
                        scope,
                        &mut item_lines,
                    );
                    item_ids.extend(id);
                    items.extend(item);
                }
            }
        }
        if let Some(id) = id {
            let line = check.line(offset);
            sections.push(DraftSection {
                id,
                line,
                title: title.unwrap_or_default(),
                items,
                item_ids,
                applies_to,
                major_trauma_centre,
            });
        }
    }
    sections
}

/// Check one item: its id and line (if the id is valid and new) and the item (if every
/// required field was valid).
fn parse_item(
    check: &mut FileCheck,
    table: &DeTable,
    offset: usize,
    label: &str,
    scope: Scope,
    item_lines: &mut HashMap<String, usize>,
) -> (Option<(String, usize)>, Option<Item>) {
    check.unknown_fields(table, label, ITEM_FIELDS);
    let field = |key: &str| join(label, key);

    let id = check.required(table, offset, label, "id").and_then(|v| {
        let id = check.id(v, &field("id"))?;
        let line = check.line(v.span().start);
        if let Some(first) = item_lines.get(&id) {
            check.report(
                v.span().start,
                &field("id"),
                format!("duplicate item id '{id}' (first used on line {first})"),
            );
            None
        } else {
            item_lines.insert(id.clone(), line);
            Some((id, line))
        }
    });
    let prompt = check
        .required(table, offset, label, "prompt")
        .and_then(|v| check.text(v, &field("prompt")));
    let guidance = check
        .required(table, offset, label, "guidance")
        .and_then(|v| check.text(v, &field("guidance")));
    let observe = match table.get("observe") {
        Some(v) => check.text(v, &field("observe")),
        None if scope == Scope::Device => {
            check.report(
                offset,
                &field("observe"),
                "missing: a device-scope item must say how to observe it on the device (the setting or command)",
            );
            None
        }
        None => None,
    };
    let answer = check
        .required(table, offset, label, "answer")
        .and_then(|v| parse_answer(check, v, &field("answer")));
    let evidence = table
        .get("evidence")
        .map(|v| check.choices(v, &field("evidence"), EVIDENCE, "evidence kind"))
        .unwrap_or_default();
    let severity = check
        .required(table, offset, label, "severity")
        .and_then(|v| check.choice(v, &field("severity"), SEVERITIES, "severity"));
    let telemetry = table.get("telemetry").and_then(|v| {
        let name = check.string(v, &field("telemetry"))?;
        let found = TelemetryCheck::from_name(name);
        if found.is_none() {
            let names: Vec<&str> = TelemetryCheck::ALL.iter().map(|c| c.name()).collect();
            check.report(
                v.span().start,
                &field("telemetry"),
                format!(
                    "unknown telemetry check '{name}'; expected one of: {}",
                    names.join(", ")
                ),
            );
        }
        found
    });
    let judge = match (telemetry, table.get("judge")) {
        (Some(_), Some(v)) if scope == Scope::Device => {
            check.report(
                v.span().start,
                &field("judge"),
                "a device-scope item is judged device by device, each sampled device by its own record: a judge here would never be used",
            );
            None
        }
        (Some(t), Some(v)) => parse_judge(check, v, &field("judge"), t),
        (Some(t), None) => Some(Judge::default_for(t)),
        (None, Some(v)) => {
            if table.get("telemetry").is_none() {
                check.report(
                    v.span().start,
                    &field("judge"),
                    "a judge needs a telemetry check: give `telemetry` too",
                );
            }
            None
        }
        (None, None) => None,
    };
    let refs = table
        .get("refs")
        .map(|v| parse_refs(check, v, &field("refs")))
        .unwrap_or_default();

    let item = match (&id, prompt, guidance, answer, severity) {
        (Some((id, _)), Some(prompt), Some(guidance), Some(answer), Some(severity)) => Some(Item {
            id: id.clone(),
            prompt,
            guidance,
            observe,
            answer,
            evidence,
            refs,
            severity,
            telemetry,
            judge,
        }),
        _ => None,
    };
    (id, item)
}

/// `judge = { devices = ["end-user"], discovered = false, tolerance = "1%", coverage =
/// "80%", window = "12 months", deadline = "14 days" }`: every field optional, each one
/// not given taken from the check's default; a field the check cannot use is an error.
fn parse_judge(
    check: &mut FileCheck,
    value: &Value,
    field: &str,
    telemetry: TelemetryCheck,
) -> Option<Judge> {
    let DeValue::Table(table) = value.get_ref() else {
        check.wrong_type(value, field, "a table", value.get_ref());
        return None;
    };
    check.unknown_fields(table, field, JUDGE_FIELDS);
    let mut judge = Judge::default_for(telemetry);
    let sub = |key: &str| join(field, key);
    let refuse = |check: &mut FileCheck, v: &Value, key: &str, why: &str| {
        check.report(v.span().start, &sub(key), format!("{telemetry} {why}"));
    };
    if let Some(v) = table.get("devices") {
        if !judge::counts_endpoints(telemetry) {
            refuse(
                check,
                v,
                "devices",
                "does not count endpoints: only endpoint checks take devices",
            );
        } else {
            let kinds = check.choices(v, &sub("devices"), DEVICE_KINDS, "device kind");
            if kinds.is_empty() {
                check.report(
                    v.span().start,
                    &sub("devices"),
                    "name at least one kind of device",
                );
            } else {
                judge.devices = kinds;
            }
        }
    }
    if let Some(v) = table.get("discovered") {
        match v.get_ref() {
            DeValue::Boolean(true) if telemetry == TelemetryCheck::EndpointsNotOnboarded => refuse(
                check,
                v,
                "discovered",
                "cannot count discovered devices: no sensor can run on them, so they are never 'not onboarded'",
            ),
            DeValue::Boolean(b) if judge::counts_endpoints(telemetry) => judge.discovered = *b,
            DeValue::Boolean(_) => refuse(
                check,
                v,
                "discovered",
                "does not count endpoints: only endpoint checks take discovered",
            ),
            other => check.wrong_type(v, &sub("discovered"), "true or false", other),
        }
    }
    if let Some(v) = table.get("tolerance") {
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) if n >= 0 => judge.tolerance = Tolerance::Count(n as u64),
                _ => check.report(
                    v.span().start,
                    &sub("tolerance"),
                    "a count must be a whole number, 0 or more",
                ),
            },
            DeValue::String(s) => match Tolerance::parse_share(s) {
                Ok(t) => judge.tolerance = t,
                Err(m) => check.report(v.span().start, &sub("tolerance"), m),
            },
            other => check.wrong_type(
                v,
                &sub("tolerance"),
                "a count (e.g. 2) or a share (e.g. \"1%\")",
                other,
            ),
        }
    }
    if let Some(v) = table.get("coverage")
        && let Some(s) = check.string(v, &sub("coverage"))
    {
        match judge::percent(s) {
            Ok(p) => judge.coverage = p,
            Err(m) => check.report(v.span().start, &sub("coverage"), m),
        }
    }
    for key in ["window", "deadline"] {
        let Some(v) = table.get(key) else { continue };
        let allowed = match key {
            "window" => judge::takes_window(telemetry),
            _ => telemetry == TelemetryCheck::AlertsUnremediated,
        };
        if !allowed {
            let why = match key {
                "window" => "has no dates in its feed to apply a window to",
                _ => "has no deadline: only alerts.unremediated takes one",
            };
            refuse(check, v, key, why);
            continue;
        }
        if let Some(s) = check.string(v, &sub(key)) {
            match Span::parse(s) {
                Ok(span) if key == "window" => judge.window = Some(span),
                Ok(span) => judge.deadline = Some(span),
                Err(m) => check.report(v.span().start, &sub(key), m),
            }
        }
    }
    Some(judge)
}

/// `answer = "compliance"` (or "number", "date", "text"), or a table for a number with
/// bounds: `answer = { kind = "number", min = 0, max = 100, unit = "%" }`.
fn parse_answer(check: &mut FileCheck, value: &Value, field: &str) -> Option<AnswerKind> {
    let from_name = |check: &mut FileCheck, name: &str, at: usize| match name {
        "compliance" => Some(AnswerKind::Compliance),
        "number" => Some(AnswerKind::Number {
            min: None,
            max: None,
            unit: None,
        }),
        "date" => Some(AnswerKind::Date),
        "text" => Some(AnswerKind::Text),
        other => {
            check.report(
                at,
                field,
                format!(
                    "unknown answer kind '{other}'; expected one of: {}",
                    ANSWER_KINDS.join(", ")
                ),
            );
            None
        }
    };
    match value.get_ref() {
        DeValue::String(name) => from_name(check, name, value.span().start),
        DeValue::Table(table) => {
            check.unknown_fields(table, field, ANSWER_FIELDS);
            let kind_field = join(field, "kind");
            let kind = check
                .required(table, value.span().start, field, "kind")
                .and_then(|v| {
                    let name = check.string(v, &kind_field)?;
                    from_name(check, name, v.span().start)
                });
            let min = table
                .get("min")
                .and_then(|v| number(check, v, &join(field, "min")));
            let max = table
                .get("max")
                .and_then(|v| number(check, v, &join(field, "max")));
            let unit = table
                .get("unit")
                .and_then(|v| check.text(v, &join(field, "unit")));
            match kind? {
                AnswerKind::Number { .. } => {
                    if let (Some(lo), Some(hi)) = (min, max)
                        && lo > hi
                    {
                        check.report(
                            value.span().start,
                            field,
                            format!("min ({lo}) is greater than max ({hi})"),
                        );
                    }
                    Some(AnswerKind::Number { min, max, unit })
                }
                other => {
                    for key in ["min", "max", "unit"] {
                        if let Some(v) = table.get(key) {
                            check.report(
                                v.span().start,
                                &join(field, key),
                                "only a number answer takes min, max and unit",
                            );
                        }
                    }
                    Some(other)
                }
            }
        }
        other => {
            check.wrong_type(
                value,
                field,
                "a string such as \"compliance\" or a table",
                other,
            );
            None
        }
    }
}

fn number(check: &mut FileCheck, value: &Value, field: &str) -> Option<f64> {
    let parsed = match value.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(|n| n as f64),
        DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
        other => {
            check.wrong_type(value, field, "a number", other);
            return None;
        }
    };
    match parsed {
        Some(n) if n.is_finite() => Some(n),
        _ => {
            check.report(value.span().start, field, "must be a finite number");
            None
        }
    }
}

fn parse_refs(check: &mut FileCheck, value: &Value, field: &str) -> References {
    let mut refs = References::default();
    let DeValue::Table(table) = value.get_ref() else {
        check.wrong_type(
            value,
            field,
            "a table such as { ndg = 1, dspt = \"1.1.1\" }",
            value.get_ref(),
        );
        return refs;
    };
    check.unknown_fields(table, field, REF_FIELDS);

    if let Some(v) = table.get("ndg") {
        let ndg_field = join(field, "ndg");
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n @ 1..=10) => refs.ndg = Some(n as u8),
                _ => check.report(
                    v.span().start,
                    &ndg_field,
                    format!("NDG standard {i} does not exist; expected 1 to 10"),
                ),
            },
            other => check.wrong_type(v, &ndg_field, "an integer from 1 to 10", other),
        }
    }
    // Each string reference: its field, its shape check, and where it goes.
    let shaped: [(&str, ShapeCheck); 5] = [
        ("dspt", |s| check_dspt(s).map(|_| ())),
        ("caf", check_caf),
        ("cyber_essentials", check_cyber_essentials),
        ("cis", check_cis),
        ("kloe", check_kloe),
    ];
    for (key, shape) in shaped {
        let Some(v) = table.get(key) else { continue };
        let ref_field = join(field, key);
        let Some(s) = check.string(v, &ref_field) else {
            continue;
        };
        if let Err(message) = shape(s) {
            check.report(v.span().start, &ref_field, message);
            continue;
        }
        let slot = match key {
            "dspt" => &mut refs.dspt,
            "caf" => &mut refs.caf,
            "cyber_essentials" => &mut refs.cyber_essentials,
            "cis" => &mut refs.cis,
            _ => &mut refs.kloe,
        };
        *slot = Some(s.to_owned());
    }
    // A DSPT evidence item belongs to one standard; a different `ndg` is a typo in one.
    if let (Some(ndg), Some(dspt)) = (refs.ndg, &refs.dspt)
        && let Ok(standard) = check_dspt(dspt)
        && standard != ndg
        && let Some(v) = table.get("dspt")
    {
        check.report(
            v.span().start,
            &join(field, "dspt"),
            format!("DSPT item {dspt} belongs to standard {standard}, but ndg = {ndg}"),
        );
    }
    refs
}

fn parse_includes(check: &mut FileCheck, value: &Value) -> Vec<Include> {
    let Some(tables) = check.tables(value, "include", "include") else {
        return Vec::new();
    };
    if tables.is_empty() {
        check.report(
            value.span().start,
            "include",
            "must have at least one include",
        );
    }
    if let Some((_, offset)) = tables.get(MAX_INCLUDES) {
        check.report(
            *offset,
            "include",
            format!("too many includes: the limit is {MAX_INCLUDES}"),
        );
    }
    let mut includes = Vec::new();
    for (index, (table, offset)) in tables.into_iter().enumerate() {
        let label = format!("include[#{}]", index + 1);
        check.unknown_fields(table, &label, INCLUDE_FIELDS);
        let file_field = join(&label, "file");
        let file = check.required(table, offset, &label, "file").and_then(|v| {
            let path = check.string(v, &file_field)?;
            match check_include_path(path) {
                Ok(()) => Some((path.to_owned(), v.span().start)),
                Err(message) => {
                    check.report(v.span().start, &file_field, message);
                    None
                }
            }
        });
        let sections_field = join(&label, "sections");
        let selection = check
            .required(table, offset, &label, "sections")
            .and_then(|v| match v.get_ref() {
                DeValue::String(s) if s == "all" => Some(Selection::All),
                DeValue::Array(array) if array.is_empty() => {
                    check.report(
                        v.span().start,
                        &sections_field,
                        "names no sections; use \"all\" or list at least one section id",
                    );
                    None
                }
                DeValue::Array(array) => {
                    let mut ids: Vec<(String, usize)> = Vec::new();
                    for element in array.iter() {
                        let Some(id) = check.id(element, &sections_field) else {
                            continue;
                        };
                        if ids.iter().any(|(seen, _)| *seen == id) {
                            check.report(
                                element.span().start,
                                &sections_field,
                                format!("section '{id}' listed twice"),
                            );
                        } else {
                            ids.push((id, element.span().start));
                        }
                    }
                    Some(Selection::Only(ids))
                }
                other => {
                    check.wrong_type(
                        v,
                        &sections_field,
                        "\"all\" or a list of section ids",
                        other,
                    );
                    None
                }
            });
        includes.push(Include {
            label,
            offset,
            file,
            selection,
        });
    }
    includes
}

/// Read and check each file a template includes and take the sections it names. Problems
/// in the template (a missing file or section, an id used twice across files) are
/// reported on the template; problems inside an included file go to `included_errors`
/// under that file's name. Each included file's bytes are added to the pin's hash.
fn resolve_includes(
    template: &Draft,
    check: &mut FileCheck,
    source: &IncludeSource,
    hasher: &mut Sha256,
    included_errors: &mut Vec<ChecklistError>,
) -> Vec<Section> {
    // Each file is checked once even if included twice, so its problems are listed once.
    let mut loaded: HashMap<String, (String, Option<Draft>)> = HashMap::new();
    // Where each id in the resolved checklist came from, as "file:line".
    let mut section_origin: HashMap<String, String> = HashMap::new();
    let mut item_origin: HashMap<String, String> = HashMap::new();
    let mut sections = Vec::new();

    for include in &template.includes {
        let Some((relative, file_offset)) = &include.file else {
            continue;
        };
        let file_field = join(&include.label, "file");
        let sections_field = join(&include.label, "sections");
        let (name, text) = match source.read(relative) {
            (name, Ok(text)) => (name, text),
            (_, Err(why)) => {
                check.report(
                    *file_offset,
                    &file_field,
                    format!("cannot include '{relative}': {why}"),
                );
                continue;
            }
        };
        hasher.update(text.as_bytes());
        let (name, draft) = loaded.entry(relative.clone()).or_insert_with(|| {
            let mut included = FileCheck::new(&name, &text);
            let draft = parse_draft(&mut included, &text);
            included_errors.extend(included.into_errors());
            (name, draft)
        });
        // An included file with syntax errors has had them reported; nothing to take.
        let Some(draft) = draft else { continue };
        if draft.is_template {
            check.report(
                *file_offset,
                &file_field,
                format!("'{relative}' is itself a template: include the checklists it takes sections from"),
            );
            continue;
        }
        let not_covered: Vec<&str> = template
            .applies_to
            .iter()
            .filter(|org| !draft.applies_to.contains(org))
            .map(|org| name_of(ORG_TYPES, org))
            .collect();
        if !not_covered.is_empty() && !draft.applies_to.is_empty() {
            check.report(
                *file_offset,
                &file_field,
                format!(
                    "'{relative}' does not apply to {}, which this template does",
                    not_covered.join(", ")
                ),
            );
        }

        let Some(selection) = &include.selection else {
            continue;
        };
        let chosen: Vec<&DraftSection> = match selection {
            Selection::All => draft.sections.iter().collect(),
            Selection::Only(ids) => {
                let mut chosen = Vec::new();
                for (id, offset) in ids {
                    match draft.sections.iter().find(|s| s.id == *id) {
                        Some(section) => chosen.push(section),
                        None => {
                            let available: Vec<&str> =
                                draft.sections.iter().map(|s| s.id.as_str()).collect();
                            check.report(
                                *offset,
                                &sections_field,
                                format!(
                                    "'{relative}' has no section '{id}' (it has: {})",
                                    available.join(", ")
                                ),
                            );
                        }
                    }
                }
                chosen
            }
        };
        for section in chosen {
            let here = format!("{name}:{}", section.line);
            if let Some(first) = section_origin.get(&section.id) {
                check.report(
                    include.offset,
                    &sections_field,
                    format!(
                        "section '{}' at {here} has the same id as the section at {first}",
                        section.id
                    ),
                );
                continue;
            }
            section_origin.insert(section.id.clone(), here);
            for (item_id, line) in &section.item_ids {
                let here = format!("{name}:{line}");
                match item_origin.get(item_id) {
                    Some(first) => check.report(
                        include.offset,
                        &sections_field,
                        format!(
                            "item '{item_id}' at {here} has the same id as the item at {first}"
                        ),
                    ),
                    None => {
                        item_origin.insert(item_id.clone(), here);
                    }
                }
            }
            sections.push(section.to_section(draft));
        }
    }

    if sections.len() > MAX_SECTIONS {
        check.report(
            0,
            "include",
            format!(
                "resolves to {} sections; the limit is {MAX_SECTIONS}",
                sections.len()
            ),
        );
    }
    let item_count: usize = sections.iter().map(|s| s.items.len()).sum();
    if item_count > MAX_ITEMS {
        check.report(
            0,
            "include",
            format!("resolves to {item_count} items; the limit is {MAX_ITEMS}"),
        );
    }
    sections
}

// ---------------------------------------------------------------------------------------
// Shapes of ids and references

/// Ids: lowercase ASCII letters, digits, `-`, `_` and `.`, starting with a letter or
/// digit, at most [`MAX_ID_LEN`] bytes. They are stable keys in inspection documents.
fn check_id(id: &str) -> Result<(), String> {
    let starts_well = id
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let chars_ok = id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if starts_well && chars_ok && id.len() <= MAX_ID_LEN {
        Ok(())
    } else {
        Err(format!(
            "'{id}' is not a valid id: use lowercase letters, digits, '-', '_' and '.', starting with a letter or digit, at most {MAX_ID_LEN} characters"
        ))
    }
}

/// Versions: ASCII letters, digits, `.`, `-` and `+` (e.g. "2025.1"), at most
/// [`MAX_VERSION_LEN`] bytes.
fn check_version(version: &str) -> Result<(), String> {
    let ok = !version.is_empty()
        && version.len() <= MAX_VERSION_LEN
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{version}' is not a valid version: use letters, digits, '.', '-' and '+', at most {MAX_VERSION_LEN} characters"
        ))
    }
}

/// Dot-separated positive numbers of at most `max_digits` digits each, e.g. "8.2.1".
fn dotted_numbers(s: &str, max_digits: usize) -> Option<Vec<u32>> {
    s.split('.')
        .map(|part| {
            let ok = !part.is_empty()
                && part.len() <= max_digits
                && part.bytes().all(|b| b.is_ascii_digit())
                && !part.starts_with('0');
            if ok { part.parse().ok() } else { None }
        })
        .collect()
}

/// A DSPT evidence item, standard.assertion.item with the standard 1 to 10 (e.g. "8.2.1");
/// returns the standard.
fn check_dspt(s: &str) -> Result<u8, String> {
    match dotted_numbers(s, 2).as_deref() {
        Some(&[standard @ 1..=10, _, _]) => Ok(standard as u8),
        _ => Err(format!(
            "'{s}' is not a DSPT evidence item; expected standard.assertion.item with the standard 1 to 10, like '8.2.1'"
        )),
    }
}

/// The NCSC CAF principles and the last contributing-outcome letter of each (CAF 3.x):
/// A1.a to A1.c and so on.
/// The CAF-aligned DSPT's contributing outcomes: NCSC CAF v3.2's principles A1-D2
/// (REFERENCE §8.2), and the DSPT's own objective E, "Using and sharing information
/// appropriately" (E1.a; E2.a-c; E3.a-b; E4.a-b: found with the search tools in the DSPT's
/// assessment screens, Dec 2026; its principle titles are unconfirmed). Each principle
/// with its last outcome letter.
pub const CAF_PRINCIPLES: &[(&str, char)] = &[
    ("A1", 'c'),
    ("A2", 'b'),
    ("A3", 'a'),
    ("A4", 'a'),
    ("B1", 'b'),
    ("B2", 'd'),
    ("B3", 'e'),
    ("B4", 'd'),
    ("B5", 'c'),
    ("B6", 'b'),
    ("C1", 'e'),
    ("C2", 'b'),
    ("D1", 'c'),
    ("D2", 'b'),
    ("E1", 'a'),
    ("E2", 'c'),
    ("E3", 'b'),
    ("E4", 'b'),
];

/// Every contributing outcome id, in order: "A1.a" ... "E4.b".
pub fn caf_outcomes() -> Vec<String> {
    CAF_PRINCIPLES
        .iter()
        .flat_map(|(p, last)| ('a'..=*last).map(move |l| format!("{p}.{l}")))
        .collect()
}

/// A CAF contributing outcome such as "B4.b".
fn check_caf(s: &str) -> Result<(), String> {
    let known = s.split_once('.').is_some_and(|(principle, outcome)| {
        let mut letters = outcome.chars();
        match (letters.next(), letters.next()) {
            (Some(letter), None) => CAF_PRINCIPLES
                .iter()
                .any(|(p, last)| *p == principle && ('a'..=*last).contains(&letter)),
            _ => false,
        }
    });
    if known {
        Ok(())
    } else {
        Err(format!(
            "'{s}' is not a CAF contributing outcome; expected a principle A1-A4, B1-B6, C1-C2, D1-D2 or the DSPT's E1-E4 and an outcome letter, like 'B4.b'"
        ))
    }
}

fn check_cyber_essentials(s: &str) -> Result<(), String> {
    if CYBER_ESSENTIALS_CONTROLS.contains(&s) {
        Ok(())
    } else {
        Err(format!(
            "unknown Cyber Essentials control '{s}'; expected one of: {}",
            CYBER_ESSENTIALS_CONTROLS.join(", ")
        ))
    }
}

/// A CIS Windows 10 benchmark section: a top-level section 1 to 19, then up to four
/// dot-separated sub-section numbers (e.g. "9", "2.3", "18.9.11").
fn check_cis(s: &str) -> Result<(), String> {
    match dotted_numbers(s, 3) {
        // Section 4 (Restricted Groups) holds no recommendations (REFERENCE §8.2).
        Some(parts) if parts[0] == 4 => Err(format!(
            "'{s}': CIS Windows 10 section 4 (Restricted Groups) holds no recommendations; cite the section that does"
        )),
        Some(parts) if (1..=19).contains(&parts[0]) && parts.len() <= 5 => Ok(()),
        _ => Err(format!(
            "'{s}' is not a CIS benchmark section; expected a section 1 to 19 with optional sub-sections, like '9' or '2.3.7'"
        )),
    }
}

/// The healthcare key lines of enquiry under each key question (Safe, Effective, Caring,
/// Responsive, Well-led) and how many each has.
const KLOE_QUESTIONS: &[(char, u32)] = &[('S', 6), ('E', 7), ('C', 3), ('R', 4), ('W', 8)];

/// A CQC key line of enquiry, "W6" or with a prompt number "W6.7".
fn check_kloe(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let known = chars.next().is_some_and(|question| {
        let rest = chars.as_str();
        let count = KLOE_QUESTIONS
            .iter()
            .find(|(q, _)| *q == question)
            .map(|(_, n)| *n);
        match (count, dotted_numbers(rest, 2).as_deref()) {
            (Some(count), Some(&[kloe])) | (Some(count), Some(&[kloe, _])) => {
                (1..=count).contains(&kloe)
            }
            _ => false,
        }
    });
    if known {
        Ok(())
    } else {
        Err(format!(
            "'{s}' is not a CQC key line of enquiry; expected S1-S6, E1-E7, C1-C3, R1-R4 or W1-W8 with an optional prompt number, like 'W6.7'"
        ))
    }
}

/// Includes stay inside the template's directory: relative, with no `..`.
fn check_include_path(path: &str) -> Result<(), String> {
    let inside = !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if inside {
        Ok(())
    } else {
        Err(format!(
            "'{path}' is not a path inside the template's directory: use a relative path with no '..'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small valid checklist; tests break one thing in it at a time.
    const MINIMAL: &str = r#"id = "mini"
version = "1"
title = "Minimal"
applies_to = ["acute"]

[[sections]]
id = "s1"
title = "Section one"

[[sections.items]]
id = "s1-a"
prompt = "Is it so?"
guidance = "Look."
answer = "compliance"
evidence = ["note"]
severity = "high"
refs = { ndg = 8, dspt = "8.2.1", kloe = "W6.7" }
"#;

    fn errors_of(text: &str) -> Vec<ChecklistError> {
        match load_str("t.toml", text, None) {
            Ok(c) => panic!("expected errors, loaded {}", c.id),
            Err(e) => e.0,
        }
    }

    fn has(errors: &[ChecklistError], line: usize, field: &str, message_part: &str) -> bool {
        errors
            .iter()
            .any(|e| e.line == line && e.field == field && e.message.contains(message_part))
    }

    #[test]
    fn minimal_checklist_loads_with_its_pin() {
        let c = load_str("t.toml", MINIMAL, None).unwrap();
        assert_eq!(c.id, "mini");
        assert_eq!(
            c.sections[0].source, "mini",
            "a section's source is its checklist"
        );
        assert_eq!(
            c.sections[0].scope,
            Scope::Inspection,
            "scope defaults to inspection"
        );
        let (_, item) = c.item("s1-a").unwrap();
        assert_eq!(item.refs.ndg, Some(8));
        assert_eq!(item.refs.dspt.as_deref(), Some("8.2.1"));
        assert_eq!(
            c.pin.sha256,
            hex::encode(Sha256::digest(MINIMAL.as_bytes()))
        );
        assert_eq!(c.pin.sha256.len(), 64);
    }

    #[test]
    fn line_numbers_are_one_based() {
        let check = FileCheck::new("f", "a\nbc\n\nd");
        assert_eq!(check.line(0), 1);
        assert_eq!(check.line(1), 1, "the newline belongs to its line");
        assert_eq!(check.line(2), 2);
        assert_eq!(check.line(5), 3);
        assert_eq!(check.line(6), 4);
        assert_eq!(check.line(100), 4);
    }

    #[test]
    fn error_display_is_file_line_field_message() {
        let e = ChecklistError {
            file: "a.toml".into(),
            line: 3,
            field: "id".into(),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "a.toml:3: id: bad");
        let whole = ChecklistError {
            line: 0,
            ..e.clone()
        };
        assert_eq!(whole.to_string(), "a.toml: id: bad", "line 0 is left out");
        let both = ChecklistErrors(vec![e, whole]);
        assert_eq!(both.to_string(), "a.toml:3: id: bad\na.toml: id: bad");
    }

    #[test]
    fn unknown_and_missing_fields_and_wrong_types_are_all_reported() {
        let text = MINIMAL
            .replace("title = \"Minimal\"\n", "titel = \"Minimal\"\n")
            .replace("severity = \"high\"", "severity = 3")
            .replace("guidance = \"Look.\"\n", "");
        let errors = errors_of(&text);
        assert!(has(&errors, 3, "titel", "unknown field"), "{errors:?}");
        assert!(
            has(&errors, 1, "title", "missing"),
            "missing root field on line 1: {errors:?}"
        );
        assert!(
            has(&errors, 10, "sections[s1].items[s1-a].guidance", "missing"),
            "missing item field on its header line: {errors:?}"
        );
        assert!(
            has(
                &errors,
                15,
                "sections[s1].items[s1-a].severity",
                "found an integer"
            ),
            "{errors:?}"
        );
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(
            errors.windows(2).all(|w| w[0].line <= w[1].line),
            "sorted by line"
        );
    }

    #[test]
    fn device_scope_items_need_observe() {
        let text = MINIMAL.replace("applies_to", "scope = \"device\"\napplies_to");
        let errors = errors_of(&text);
        assert!(
            has(
                &errors,
                11,
                "sections[s1].items[s1-a].observe",
                "device-scope"
            ),
            "{errors:?}"
        );
        let fixed = text.replace("answer =", "observe = \"Run `x`\"\nanswer =");
        let c = load_str("t.toml", &fixed, None).unwrap();
        assert_eq!(c.sections[0].scope, Scope::Device);
    }

    #[test]
    fn number_answers_take_bounds_and_others_do_not() {
        let text = MINIMAL.replace(
            "answer = \"compliance\"",
            "answer = { kind = \"number\", min = 0, max = 100.5, unit = \"%\" }",
        );
        let c = load_str("t.toml", &text, None).unwrap();
        assert_eq!(
            c.item("s1-a").unwrap().1.answer,
            AnswerKind::Number {
                min: Some(0.0),
                max: Some(100.5),
                unit: Some("%".into())
            }
        );
        let reversed = text.replace("min = 0", "min = 200");
        assert!(has(
            &errors_of(&reversed),
            14,
            "sections[s1].items[s1-a].answer",
            "greater than max"
        ));
        let date = MINIMAL.replace(
            "answer = \"compliance\"",
            "answer = { kind = \"date\", min = 1 }",
        );
        assert!(has(
            &errors_of(&date),
            14,
            "sections[s1].items[s1-a].answer.min",
            "only a number"
        ));
        let unknown = MINIMAL.replace("answer = \"compliance\"", "answer = \"yes-no\"");
        assert!(has(
            &errors_of(&unknown),
            14,
            "sections[s1].items[s1-a].answer",
            "unknown answer kind"
        ));
    }

    #[test]
    fn reference_shapes() {
        for good in ["1.1.1", "8.2.1", "10.2.1", "9.3.8"] {
            assert!(check_dspt(good).is_ok(), "{good}");
        }
        for bad in [
            "x.y", "8.2", "11.1.1", "0.1.1", "8.2.1.4", "08.2.1", "", "8..1",
        ] {
            assert!(check_dspt(bad).is_err(), "{bad} should be refused");
        }
        for good in ["B4.b", "A1.a", "C1.e", "D2.b", "E1.a", "E2.c", "E4.b"] {
            assert!(check_caf(good).is_ok(), "{good}");
        }
        for bad in ["B4", "B7.a", "A3.b", "E1.b", "E5.a", "b4.b", "B4.bb"] {
            assert!(check_caf(bad).is_err(), "{bad} should be refused");
        }
        for good in ["9", "2.3", "18.9.11", "1.2"] {
            assert!(check_cis(good).is_ok(), "{good}");
        }
        for bad in ["20", "0", "9.", "a.1", "1.2.3.4.5.6", "4", "4.1"] {
            assert!(check_cis(bad).is_err(), "{bad} should be refused");
        }
        for good in ["W6.7", "W6", "S1", "E7.2"] {
            assert!(check_kloe(good).is_ok(), "{good}");
        }
        for bad in ["W9", "W6.", "X1", "w6.7", "W", "C4.1"] {
            assert!(check_kloe(bad).is_err(), "{bad} should be refused");
        }
        assert!(check_cyber_essentials("firewalls").is_ok());
        assert!(check_cyber_essentials("patching").is_err());
    }

    #[test]
    fn ndg_out_of_range_and_dspt_from_another_standard_are_reported() {
        let text = MINIMAL.replace("ndg = 8, dspt = \"8.2.1\"", "ndg = 11, dspt = \"x.y\"");
        let errors = errors_of(&text);
        assert!(
            has(
                &errors,
                17,
                "sections[s1].items[s1-a].refs.ndg",
                "NDG standard 11"
            ),
            "{errors:?}"
        );
        assert!(
            has(&errors, 17, "sections[s1].items[s1-a].refs.dspt", "'x.y'"),
            "{errors:?}"
        );
        let mismatch = MINIMAL.replace("ndg = 8", "ndg = 7");
        assert!(has(
            &errors_of(&mismatch),
            17,
            "sections[s1].items[s1-a].refs.dspt",
            "standard 8"
        ));
    }

    #[test]
    fn ids_have_a_shape() {
        assert!(check_id("ndg1-ico-registration").is_ok());
        assert!(check_id("w10.os_build").is_ok());
        for bad in [
            "",
            "Upper",
            "-lead",
            "has space",
            "a@b",
            &"x".repeat(MAX_ID_LEN + 1),
        ] {
            assert!(check_id(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn empty_section_and_duplicate_ids_are_reported() {
        let text = format!(
            "{MINIMAL}\n[[sections]]\nid = \"s1\"\ntitle = \"Again\"\n\n[[sections]]\nid = \"s2\"\ntitle = \"Empty\"\n"
        );
        let errors = errors_of(&text);
        assert!(
            has(
                &errors,
                20,
                "sections[s1].id",
                "duplicate section id 's1' (first used on line 7)"
            ),
            "{errors:?}"
        );
        assert!(
            has(&errors, 23, "sections[s2].items", "empty section"),
            "{errors:?}"
        );
    }

    #[test]
    fn templates_need_a_directory_and_no_scope() {
        let text = "id = \"t\"\nversion = \"1\"\ntitle = \"T\"\napplies_to = [\"acute\"]\nscope = \"device\"\n\n[[include]]\nfile = \"x.toml\"\nsections = \"all\"\n";
        let errors = errors_of(text);
        assert!(
            has(&errors, 5, "scope", "template has no scope"),
            "{errors:?}"
        );
        assert!(
            has(&errors, 8, "include[#1].file", "no directory"),
            "{errors:?}"
        );
        let escaping = text.replace("x.toml", "../x.toml");
        assert!(has(
            &errors_of(&escaping),
            8,
            "include[#1].file",
            "inside the template's directory"
        ));
    }

    #[test]
    fn too_large_text_is_refused_before_parsing() {
        let text = format!("{MINIMAL}#{}\n", "x".repeat(MAX_FILE_BYTES));
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 0);
        assert!(errors[0].message.contains("limit"), "{errors:?}");
    }

    /// Only inspection-scope sections are chosen by trust: a device-scope one with
    /// `applies_to` or `major_trauma_centre` is refused.
    #[test]
    fn sections_choose_by_trust_only_in_inspection_scope() {
        let section = |extra: &str| {
            MINIMAL.replace(
                "title = \"Section one\"\n",
                &format!("title = \"Section one\"\n{extra}\n"),
            )
        };
        let c = load_str(
            "t.toml",
            &section("applies_to = [\"acute\"]\nmajor_trauma_centre = true"),
            None,
        )
        .unwrap();
        assert_eq!(c.sections[0].applies_to, [OrgType::Acute]);
        assert!(c.sections[0].major_trauma_centre);
        let errors = errors_of(&section("applies_to = [\"ambulance\"]"));
        assert!(
            errors.iter().any(|e| e
                .message
                .contains("'ambulance' is not in the checklist's applies_to")),
            "{errors:?}"
        );
        let device = section("applies_to = [\"acute\"]").replace(
            "applies_to = [\"acute\"]\n\n[[sections]]",
            "applies_to = [\"acute\"]\nscope = \"device\"\n\n[[sections]]",
        );
        let device = device.replace(
            "guidance = \"Look.\"",
            "guidance = \"Look.\"\nobserve = \"On screen.\"",
        );
        let errors = errors_of(&device);
        assert!(
            errors.iter().any(|e| e
                .message
                .contains("only inspection-scope sections are chosen by trust")),
            "{errors:?}"
        );
    }

    /// A judge is read next to its check; every field the check cannot use, and every
    /// value out of range, is reported with its line.
    #[test]
    fn judges_are_read_and_their_mistakes_reported() {
        let with = |telemetry: &str, judge: &str| {
            MINIMAL.replace(
                "severity = \"high\"\n",
                &format!("severity = \"high\"\n{telemetry}\n{judge}\n"),
            )
        };
        let good = with(
            "telemetry = \"endpoints.bitlocker_off\"",
            "judge = { devices = [\"end-user\"], tolerance = \"1%\", coverage = \"80%\" }",
        );
        let c = load_str("t.toml", &good, None).unwrap();
        let j = c.sections[0].items[0].judge.clone().unwrap();
        assert_eq!(j.devices, [DeviceKind::EndUser]);
        assert_eq!(j.tolerance, Tolerance::Share(1.0));
        assert!(!j.discovered, "the check's default kept");
        let plain = with("telemetry = \"alerts.unremediated\"", "");
        let c = load_str("t.toml", &plain, None).unwrap();
        assert_eq!(
            c.sections[0].items[0].judge,
            Some(Judge::default_for(TelemetryCheck::AlertsUnremediated)),
            "no judge: the default"
        );
        for (telemetry, judge, part) in [
            (
                "telemetry = \"endpoints.bitlocker_off\"",
                "judge = { window = \"12 months\" }",
                "has no dates in its feed",
            ),
            (
                "telemetry = \"alerts.unacknowledged_48h\"",
                "judge = { devices = [\"server\"] }",
                "only endpoint checks take devices",
            ),
            (
                "telemetry = \"alerts.unacknowledged_48h\"",
                "judge = { deadline = \"14 days\" }",
                "only alerts.unremediated takes one",
            ),
            (
                "telemetry = \"endpoints.bitlocker_off\"",
                "judge = { tolerance = -1 }",
                "0 or more",
            ),
            (
                "telemetry = \"endpoints.bitlocker_off\"",
                "judge = { tolerance = \"150%\" }",
                "outside 0% to 100%",
            ),
            (
                "telemetry = \"endpoints.bitlocker_off\"",
                "judge = { coverage = \"80\" }",
                "not a percentage",
            ),
            (
                "telemetry = \"endpoints.bitlocker_off\"",
                "judge = { devices = [] }",
                "at least one kind",
            ),
            (
                "telemetry = \"endpoints.bitlocker_off\"",
                "judge = { devices = [\"laptop\"] }",
                "unknown device kind",
            ),
            (
                "telemetry = \"alerts.unremediated\"",
                "judge = { window = \"0 days\" }",
                "between 1 and",
            ),
            (
                "telemetry = \"endpoints.bitlocker_off\"",
                "judge = { tolerence = 1 }",
                "unknown field",
            ),
            ("", "judge = { tolerance = 1 }", "needs a telemetry check"),
            (
                "telemetry = \"endpoints.not_onboarded\"",
                "judge = { discovered = true }",
                "never 'not onboarded'",
            ),
        ] {
            let errors = errors_of(&with(telemetry, judge));
            assert!(
                errors
                    .iter()
                    .any(|e| e.message.contains(part) && e.line == 18),
                "{judge}: {errors:?}"
            );
        }
    }

    #[test]
    fn bundled_files_reproduce_each_bundled_pin() {
        for c in bundled() {
            let files = bundled_files(&c.id).unwrap();
            let again = load_files(&files).unwrap();
            assert_eq!(again.pin, c.pin, "{}", c.id);
        }
        assert!(bundled_files("no-such-checklist").is_none());
    }

    #[test]
    fn telemetry_names_match_serde_and_parse_back() {
        for check in TelemetryCheck::ALL {
            let serde_name = serde_json::to_value(check).unwrap();
            assert_eq!(serde_name, check.name(), "serde and name() must agree");
            assert_eq!(TelemetryCheck::from_name(check.name()), Some(check));
            assert!(!check.description().is_empty());
        }
        assert_eq!(TelemetryCheck::from_name("endpoints.unknown"), None);
    }

    #[test]
    fn bundled_checklists_load() {
        let summaries = bundled_summaries();
        assert_eq!(
            summaries,
            [
                "dspt-ndg@2026.1",
                "windows10-endpoint@2026.1",
                "firewall-boundary@2026.1",
                "trust-governance@2026.1",
                "legacy-medical-workstation@2026.1",
                "cqc-onsite-cyber@2026.1"
            ]
        );
        let template = bundled()
            .into_iter()
            .find(|c| c.id == "cqc-onsite-cyber")
            .unwrap();
        assert!(
            template
                .sections
                .iter()
                .any(|s| s.source == "windows10-endpoint" && s.scope == Scope::Device)
        );
    }

    proptest::proptest! {
        /// Whatever the text, loading returns a result: it never panics.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
            let _ = load_str("fuzz.toml", &text, None);
        }

        /// Cutting a valid file anywhere gives a result with lines inside the file.
        #[test]
        fn truncated_checklist_reports_lines_inside_the_file(cut in 0usize..MINIMAL.len()) {
            let text = &MINIMAL[..cut];
            if let Err(errors) = load_str("cut.toml", text, None) {
                let lines = text.lines().count().max(1);
                for e in &errors {
                    proptest::prop_assert!(e.line <= lines + 1, "{e} beyond {lines} lines");
                }
            }
        }
    }
}
