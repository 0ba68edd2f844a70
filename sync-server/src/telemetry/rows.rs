//! One typed struct per feed row, each with its columns and a strict parser.
//!
//! A parser takes the row's fields in the order of its `COLUMNS` (the reader maps a
//! CSV header or JSON keys onto that order) and checks every field, so that a row with
//! three mistakes is reported with all three.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::fields::{
    self, ExposureLevel, HealthStatus, OnboardingStatus, OsPlatform, RiskScore, TrustType,
};

/// The fields of one row, in column order, and the problems found so far.
struct Cells<'a> {
    names: &'static [&'static str],
    values: &'a [&'a str],
    problems: Vec<String>,
    /// Values kept as `other`: a vocabulary value this build does not know (issue 12: one
    /// new platform name must not refuse a whole real export).
    warnings: Vec<String>,
}

impl<'a> Cells<'a> {
    fn new(names: &'static [&'static str], values: &'a [&'a str]) -> Self {
        debug_assert_eq!(names.len(), values.len());
        Cells {
            names,
            values,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// A vocabulary value that must be there; one this build does not know is kept as
    /// `other`, with a warning naming the column and the value.
    fn vocab<T>(
        &mut self,
        col: usize,
        parse: fn(&str) -> Result<T, String>,
        other: T,
    ) -> Option<T> {
        let v = self.values[col];
        if v.is_empty() {
            self.problem(col, "missing".into());
            return None;
        }
        Some(parse(v).unwrap_or_else(|m| {
            self.warnings
                .push(format!("{}: {m}; kept as 'other'", self.names[col]));
            other
        }))
    }

    fn problem(&mut self, col: usize, message: String) {
        self.problems
            .push(format!("{}: {message}", self.names[col]));
    }

    /// A value that must be there.
    fn required<T>(
        &mut self,
        col: usize,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let v = self.values[col];
        if v.is_empty() {
            self.problem(col, "missing".into());
            return None;
        }
        parse(v).map_err(|m| self.problem(col, m)).ok()
    }

    /// A value that may be empty (no value).
    fn optional<T>(
        &mut self,
        col: usize,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<Option<T>> {
        let v = self.values[col];
        if v.is_empty() {
            return Some(None);
        }
        parse(v).map(Some).map_err(|m| self.problem(col, m)).ok()
    }

    fn text(&mut self, col: usize) -> Option<String> {
        self.required(col, |s| Ok(s.to_owned()))
    }

    fn optional_text(&mut self, col: usize) -> Option<String> {
        let v = self.values[col];
        (!v.is_empty()).then(|| v.to_owned())
    }

    /// A value taken from a machine tag for column `col`, checked like the column.
    fn tagged<T>(
        &mut self,
        col: usize,
        v: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        parse(v)
            .map_err(|m| self.problem(col, format!("from the machine tag: {m}")))
            .ok()
    }

    /// Trust and site, the site checked against the trust.
    fn trust_and_site(&mut self, trust: usize, site: usize) -> (Option<String>, Option<String>) {
        let t = self.required(trust, fields::trust_code);
        let s = match &t {
            Some(t) => self.required(site, |s| fields::site_code(s, t)),
            // Without a valid trust the site cannot be checked against it: it is only
            // required.
            None => self.text(site),
        };
        (t, s)
    }

    fn finish<T>(self, row: Option<T>) -> Result<T, String> {
        match row {
            Some(row) if self.problems.is_empty() => Ok(row),
            _ => Err(self.problems.join("; ")),
        }
    }
}

/// One device from the endpoint inventory (after Defender for Endpoint's machine export,
/// REFERENCE §7.1 and §7.5). Device checks that telemetry may not know (a device that is
/// not onboarded reports no configuration) are `None`: unknown, never "off".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub device_id: String,
    /// Host name or FQDN, as the feed gives it.
    pub device_name: String,
    pub os_platform: OsPlatform,
    /// e.g. `22H2`.
    pub os_version: Option<String>,
    /// e.g. 19045.
    pub os_build: Option<u32>,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: DateTime<Utc>,
    pub onboarding_status: OnboardingStatus,
    pub health_status: HealthStatus,
    pub exposure_level: ExposureLevel,
    pub missing_security_updates: Option<u32>,
    pub smb1_enabled: Option<bool>,
    pub bitlocker_on: Option<bool>,
    pub firewall_domain: Option<bool>,
    pub firewall_private: Option<bool>,
    pub firewall_public: Option<bool>,
    pub credential_guard_running: Option<bool>,
    pub secure_boot_on: Option<bool>,
    pub is_medical_device: bool,
    pub trust: String,
    pub site: String,
    /// The Windows edition class ([`fields::edition_class`]), from the optional
    /// `os_edition` column (or a machine tag `edition:<EditionID>`); `None` when the feed
    /// does not say.
    pub os_edition: Option<&'static str>,
    /// Defender for Endpoint's machine fields (REFERENCE §7.1), when the feed has them.
    pub risk_score: Option<RiskScore>,
    pub last_ip_address: Option<std::net::IpAddr>,
    pub last_external_ip_address: Option<std::net::IpAddr>,
    pub rbac_group_name: Option<String>,
    pub aad_device_id: Option<String>,
    /// The machine's tags, `;`-separated.
    pub machine_tags: Option<String>,
}

impl Endpoint {
    pub const COLUMNS: &'static [&'static str] = &[
        "device_id",
        "device_name",
        "os_platform",
        "os_version",
        "os_build",
        "first_seen",
        "last_seen",
        "onboarding_status",
        "health_status",
        "exposure_level",
        "missing_security_updates",
        "smb1_enabled",
        "bitlocker_on",
        "firewall_domain",
        "firewall_private",
        "firewall_public",
        "credential_guard_running",
        "secure_boot_on",
        "is_medical_device",
        "trust",
        "site",
        "os_edition",
        "risk_score",
        "last_ip_address",
        "last_external_ip_address",
        "rbac_group_name",
        "aad_device_id",
        "machine_tags",
    ];

    /// Defender for Endpoint's machine export names (REFERENCE §7.1), read as these
    /// columns: a file in the shape the API and portal produce is read as it is.
    pub const ALIASES: &'static [(&'static str, &'static str)] = &[
        ("id", "device_id"),
        ("computerDnsName", "device_name"),
        ("osPlatform", "os_platform"),
        ("version", "os_version"),
        ("osBuild", "os_build"),
        ("firstSeen", "first_seen"),
        ("lastSeen", "last_seen"),
        ("onboardingStatus", "onboarding_status"),
        ("healthStatus", "health_status"),
        ("exposureLevel", "exposure_level"),
        ("riskScore", "risk_score"),
        ("lastIpAddress", "last_ip_address"),
        ("lastExternalIpAddress", "last_external_ip_address"),
        ("rbacGroupName", "rbac_group_name"),
        ("aadDeviceId", "aad_device_id"),
        ("machineTags", "machine_tags"),
    ];

    /// Machine export fields read and not kept (nothing here judges by them).
    pub const IGNORED: &'static [&'static str] = &[
        "osProcessor",
        "osArchitecture",
        "agentVersion",
        "rbacGroupId",
        "isAadJoined",
        "managedBy",
        "managedByStatus",
        "deviceValue",
        "ipAddresses",
        "vmMetadata",
        "isPotentialDuplication",
        "isExcluded",
        "exclusionReason",
        "defenderAvStatus",
        "osVersion",
        "@odata.etag",
    ];

    /// Columns a file may leave out (read as empty): the configuration, which the machine
    /// export does not carry (unknown, never off); trust, site and the medical flag, which
    /// a machine tag can give instead; and Defender's own fields.
    pub const OPTIONAL: &'static [&'static str] = &[
        "os_edition",
        "missing_security_updates",
        "smb1_enabled",
        "bitlocker_on",
        "firewall_domain",
        "firewall_private",
        "firewall_public",
        "credential_guard_running",
        "secure_boot_on",
        "is_medical_device",
        "trust",
        "site",
        "risk_score",
        "last_ip_address",
        "last_external_ip_address",
        "rbac_group_name",
        "aad_device_id",
        "machine_tags",
    ];

    /// Parses one row given in [`Self::COLUMNS`] order.
    pub fn parse(values: &[&str]) -> Result<Self, String> {
        Self::parse_with_warnings(values).map(|(row, _)| row)
    }

    /// Parses one row; a vocabulary value this build does not know (a new OS platform,
    /// onboarding or health status, exposure level) is kept as `other` and named in the
    /// warnings, not refused.
    pub fn parse_with_warnings(values: &[&str]) -> Result<(Self, Vec<String>), String> {
        let mut c = Cells::new(Self::COLUMNS, values);
        let device_id = c.text(0);
        let device_name = c.text(1);
        let os_platform = c.vocab(2, OsPlatform::parse, OsPlatform::Other);
        let os_version = c.optional_text(3);
        let os_build = c.optional(4, fields::count);
        let first_seen = c.optional(5, fields::datetime);
        let last_seen = c.required(6, fields::datetime);
        let onboarding_status = c.vocab(7, OnboardingStatus::parse, OnboardingStatus::Other);
        let health_status = c.vocab(8, HealthStatus::parse, HealthStatus::Other);
        let exposure_level = c.vocab(9, ExposureLevel::parse, ExposureLevel::Other);
        let missing_security_updates = c.optional(10, fields::count);
        let mut flags = [None; 7];
        for (i, flag) in flags.iter_mut().enumerate() {
            *flag = c.optional(11 + i, fields::boolean);
        }
        let risk_score = c.optional(22, |s| Ok(RiskScore::parse(s).unwrap_or(RiskScore::Other)));
        if let Some(Some(RiskScore::Other)) = risk_score
            && RiskScore::parse(values[22]).is_err()
        {
            c.warnings.push(format!(
                "risk_score: {} is not a known risk score; kept as 'other'",
                fields::shown(values[22])
            ));
        }
        let last_ip_address = c.optional(23, fields::ip_address);
        let last_external_ip_address = c.optional(24, fields::ip_address);
        let rbac_group_name = c.optional_text(25);
        let aad_device_id = c.optional_text(26);
        let machine_tags = c.optional_text(27);
        // Trust, site, medical flag and edition from the machine tags when the columns
        // are not given (the machine export's shape): `site:<ODS site code>` (the trust
        // is the site code's first three characters), `medical-device`, `edition:<ID>`.
        let tags: Vec<&str> = machine_tags
            .as_deref()
            .map(|t| {
                t.split(';')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        // Every tag with a prefix, its value after it.
        let tagged_values = |prefix: &str| -> Vec<String> {
            let mut found: Vec<String> = tags
                .iter()
                .filter_map(|t| {
                    t.get(..prefix.len())
                        .filter(|p| p.eq_ignore_ascii_case(prefix))
                        .map(|_| t[prefix.len()..].trim().to_owned())
                })
                .collect();
            found.dedup();
            found
        };
        let tag = |prefix: &str| tagged_values(prefix).into_iter().next();
        let site_tags = tagged_values("site:");
        if site_tags.len() > 1 {
            c.problem(
                27,
                format!(
                    "machine tags name {} sites ({}): which is the device's?",
                    site_tags.len(),
                    site_tags.join(", ")
                ),
            );
        }
        let site_tag = site_tags.first().cloned();
        // A site tag that disagrees with the site column: which one is right?
        if let Some(t) = &site_tag
            && !values[20].is_empty()
            && !t.eq_ignore_ascii_case(values[20])
        {
            c.problem(
                27,
                format!(
                    "the machine tag site:{t} disagrees with the site column {}",
                    values[20]
                ),
            );
        }
        let is_medical_device = if values[18].is_empty() && machine_tags.is_some() {
            Some(
                tags.iter()
                    .any(|t| t.eq_ignore_ascii_case("medical-device")),
            )
        } else {
            c.required(18, fields::boolean)
        };
        let (trust, site) = match (&site_tag, values[19].is_empty() && values[20].is_empty()) {
            (Some(s), true) if s.len() >= 3 && s.is_char_boundary(3) => {
                let t = c.tagged(19, &s[..3], fields::trust_code);
                let site = match &t {
                    Some(t) => c.tagged(20, s, |v| fields::site_code(v, t)),
                    None => None,
                };
                (t, site)
            }
            _ => c.trust_and_site(19, 20),
        };
        let os_edition = c
            .optional_text(21)
            .or_else(|| tag("edition:"))
            .map(|e| fields::edition_class(&e));
        if let (Some(Some(first)), Some(last)) = (first_seen, last_seen)
            && first > last
        {
            c.problem(5, "first_seen is after last_seen".into());
        }
        let row = (|| {
            let [
                smb1,
                bitlocker,
                fw_domain,
                fw_private,
                fw_public,
                cred_guard,
                secure_boot,
            ] = flags;
            Some(Endpoint {
                device_id: device_id?,
                device_name: device_name?,
                os_platform: os_platform?,
                os_version,
                os_build: os_build?,
                first_seen: first_seen?,
                last_seen: last_seen?,
                onboarding_status: onboarding_status?,
                health_status: health_status?,
                exposure_level: exposure_level?,
                missing_security_updates: missing_security_updates?,
                smb1_enabled: smb1?,
                bitlocker_on: bitlocker?,
                firewall_domain: fw_domain?,
                firewall_private: fw_private?,
                firewall_public: fw_public?,
                credential_guard_running: cred_guard?,
                secure_boot_on: secure_boot?,
                is_medical_device: is_medical_device?,
                trust: trust?,
                site: site?,
                os_edition,
                risk_score: risk_score?,
                last_ip_address: last_ip_address?,
                last_external_ip_address: last_external_ip_address?,
                rbac_group_name,
                aad_device_id,
                machine_tags,
            })
        })();
        let warnings = std::mem::take(&mut c.warnings);
        c.finish(row).map(|r| (r, warnings))
    }
}

/// One row of Defender Vulnerability Management's secure configuration assessment
/// (REFERENCE §8.4; advanced hunting's `DeviceTvmSecureConfigurationAssessment`): whether
/// one device complies with one configuration (`scid-...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigAssessment {
    pub device_id: String,
    pub configuration_id: String,
    pub applicable: bool,
    pub compliant: bool,
    pub timestamp: Option<DateTime<Utc>>,
}

impl ConfigAssessment {
    pub const COLUMNS: &'static [&'static str] = &[
        "device_id",
        "configuration_id",
        "is_applicable",
        "is_compliant",
        "timestamp",
    ];

    /// The advanced hunting table's own names.
    pub const ALIASES: &'static [(&'static str, &'static str)] = &[
        ("DeviceId", "device_id"),
        ("ConfigurationId", "configuration_id"),
        ("IsApplicable", "is_applicable"),
        ("IsCompliant", "is_compliant"),
        ("Timestamp", "timestamp"),
    ];

    /// The table's other columns: read and not kept.
    pub const IGNORED: &'static [&'static str] = &[
        "DeviceName",
        "OSPlatform",
        "ConfigurationCategory",
        "ConfigurationSubcategory",
        "ConfigurationImpact",
        "Context",
        "IsExpectedUserImpact",
        "TimeGenerated",
        "TenantId",
        "SourceSystem",
        "Type",
    ];

    pub const OPTIONAL: &'static [&'static str] = &["timestamp"];

    pub fn parse(values: &[&str]) -> Result<Self, String> {
        let mut c = Cells::new(Self::COLUMNS, values);
        let device_id = c.text(0);
        let configuration_id = c.required(1, |s| {
            let ok = s
                .strip_prefix("scid-")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if ok {
                Ok(s.to_owned())
            } else {
                Err(format!(
                    "{} is not a configuration id like scid-2090",
                    fields::shown(s)
                ))
            }
        });
        let applicable = c.required(2, fields::boolean);
        let compliant = c.required(3, fields::boolean);
        let timestamp = c.optional(4, fields::datetime);
        let row = (|| {
            Some(ConfigAssessment {
                device_id: device_id?,
                configuration_id: configuration_id?,
                applicable: applicable?,
                compliant: compliant?,
                timestamp: timestamp?,
            })
        })();
        c.finish(row)
    }
}

/// One network device (a firewall) from the network feed (REFERENCE §5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkDevice {
    pub device_id: String,
    pub trust: String,
    pub site: String,
    pub vendor: String,
    pub model: String,
    pub firmware: String,
    /// Whether the vendor still supports this firmware (security fixes).
    pub vendor_supported: bool,
    /// When the rule base was last reviewed; `None`: never, or not known.
    pub last_rule_review: Option<NaiveDate>,
    /// Whether the administration interface is reachable from the internet.
    pub admin_interface_exposed: bool,
}

impl NetworkDevice {
    pub const COLUMNS: &'static [&'static str] = &[
        "device_id",
        "trust",
        "site",
        "vendor",
        "model",
        "firmware",
        "vendor_supported",
        "last_rule_review",
        "admin_interface_exposed",
    ];

    pub fn parse(values: &[&str]) -> Result<Self, String> {
        let mut c = Cells::new(Self::COLUMNS, values);
        let device_id = c.text(0);
        let (trust, site) = c.trust_and_site(1, 2);
        let vendor = c.text(3);
        let model = c.text(4);
        let firmware = c.text(5);
        let vendor_supported = c.required(6, fields::boolean);
        let last_rule_review = c.optional(7, fields::date);
        let admin_interface_exposed = c.required(8, fields::boolean);
        let row = (|| {
            Some(NetworkDevice {
                device_id: device_id?,
                trust: trust?,
                site: site?,
                vendor: vendor?,
                model: model?,
                firmware: firmware?,
                vendor_supported: vendor_supported?,
                last_rule_review: last_rule_review?,
                admin_interface_exposed: admin_interface_exposed?,
            })
        })();
        c.finish(row)
    }
}

/// One trust's response to one NHS cyber alert (REFERENCE §2: acknowledge within 48
/// hours, then close).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    pub alert_id: String,
    pub trust: String,
    pub issued: DateTime<Utc>,
    pub acknowledged: Option<DateTime<Utc>>,
    pub closed: Option<DateTime<Utc>>,
}

impl Alert {
    pub const COLUMNS: &'static [&'static str] =
        &["alert_id", "trust", "issued", "acknowledged", "closed"];

    pub fn parse(values: &[&str]) -> Result<Self, String> {
        let mut c = Cells::new(Self::COLUMNS, values);
        let alert_id = c.text(0);
        let trust = c.required(1, fields::trust_code);
        let issued = c.required(2, fields::datetime);
        let acknowledged = c.optional(3, fields::datetime);
        let closed = c.optional(4, fields::datetime);
        if let Some(issued) = issued {
            if let Some(Some(a)) = acknowledged
                && a < issued
            {
                c.problem(3, "acknowledged before the alert was issued".into());
            }
            if let Some(Some(cl)) = closed
                && cl < issued
            {
                c.problem(4, "closed before the alert was issued".into());
            }
        }
        let row = (|| {
            Some(Alert {
                alert_id: alert_id?,
                trust: trust?,
                issued: issued?,
                acknowledged: acknowledged?,
                closed: closed?,
            })
        })();
        c.finish(row)
    }
}

/// A trust (REFERENCE §7.6): reference data that the other feeds' rows must name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trust {
    /// ODS code, e.g. `RJ1`.
    pub ods_code: String,
    pub name: String,
    pub trust_type: TrustType,
    /// Whether one of the trust's hospitals is a major trauma centre.
    pub major_trauma_centre: bool,
    /// e.g. `London`.
    pub region: String,
}

impl Trust {
    pub const COLUMNS: &'static [&'static str] = &[
        "ods_code",
        "name",
        "trust_type",
        "major_trauma_centre",
        "region",
    ];

    pub fn parse(values: &[&str]) -> Result<Self, String> {
        let mut c = Cells::new(Self::COLUMNS, values);
        let ods_code = c.required(0, fields::trust_code);
        let name = c.text(1);
        let trust_type = c.required(2, TrustType::parse);
        let major_trauma_centre = c.required(3, fields::boolean);
        let region = c.text(4);
        let row = (|| {
            Some(Trust {
                ods_code: ods_code?,
                name: name?,
                trust_type: trust_type?,
                major_trauma_centre: major_trauma_centre?,
                region: region?,
            })
        })();
        c.finish(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint_values() -> Vec<&'static str> {
        vec![
            "abc123",
            "GSTT-LT-0042.gstt.nhs.uk",
            "Windows10",
            "22H2",
            "19045",
            "2024-01-02T03:04:05Z",
            "2026-11-28T10:00:00Z",
            "Onboarded",
            "Active",
            "Medium",
            "3",
            "no",
            "yes",
            "1",
            "1",
            "TRUE",
            "",
            "true",
            "false",
            "RJ1",
            "RJ121",
            "Windows 10 Enterprise LTSC 2021",
            "Medium",
            "10.1.2.3",
            "",
            "RJ1 RJ121 Laptops",
            "",
            "",
        ]
    }

    #[test]
    fn a_good_endpoint_row_parses() {
        let e = Endpoint::parse(&endpoint_values()).unwrap();
        assert_eq!(
            e.os_edition,
            Some("ltsc"),
            "the edition is kept as its class"
        );
        assert_eq!(e.os_platform, OsPlatform::Windows10);
        assert_eq!(e.onboarding_status, OnboardingStatus::Onboarded);
        assert_eq!(e.os_build, Some(19045));
        assert_eq!(e.credential_guard_running, None, "empty is unknown");
        assert_eq!(e.smb1_enabled, Some(false));
        assert_eq!(e.site, "RJ121");
    }

    #[test]
    fn every_problem_in_a_row_is_reported() {
        let mut v = endpoint_values();
        v[4] = "19045.3803";
        v[6] = "";
        v[11] = "maybe";
        v[20] = "RTH01";
        let e = Endpoint::parse(&v).unwrap_err();
        for part in [
            "os_build: \"19045.3803\" is not a whole number",
            "last_seen: missing",
            "smb1_enabled: \"maybe\" is not a boolean",
            "site: site \"RTH01\" does not belong to trust RJ1",
        ] {
            assert!(e.contains(part), "{part:?} in {e:?}");
        }
    }

    #[test]
    fn alerts_check_their_order_of_events() {
        let ok = Alert::parse(&[
            "HSA-2026-001",
            "RJ1",
            "2026-11-01T09:00:00Z",
            "2026-11-02",
            "",
        ]);
        assert!(ok.is_ok(), "{ok:?}");
        let e = Alert::parse(&[
            "HSA-2026-001",
            "RJ1",
            "2026-11-01T09:00:00Z",
            "2026-10-30",
            "",
        ])
        .unwrap_err();
        assert!(e.contains("acknowledged before"), "{e}");
    }

    #[test]
    fn trusts_and_network_devices_parse() {
        let t = Trust::parse(&["RJ1", "Guy's and St Thomas'", "acute", "yes", "London"]).unwrap();
        assert!(t.major_trauma_centre);
        let n = NetworkDevice::parse(&[
            "fw-1",
            "RJ1",
            "RJ122",
            "Palo Alto",
            "PA-5220",
            "10.1.9",
            "true",
            "",
            "no",
        ])
        .unwrap();
        assert_eq!(n.last_rule_review, None);
        assert!(
            NetworkDevice::parse(&["fw-1", "RJ1", "RJ122", "", "m", "f", "x", "", "no"]).is_err()
        );
    }
}
