//! Checklists: TOML files under `checklists/`, validated and pinned.
//!
//! (Types are the contract the rest of core relies on; the parser and validator fill them.)

use serde::{Deserialize, Serialize};

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
        self.sections.iter().flat_map(|s| s.items.iter().map(move |i| (s, i)))
    }
}

/// `id@version` of each checklist bundled into this build.
pub fn bundled_summaries() -> Vec<String> {
    Vec::new()
}
