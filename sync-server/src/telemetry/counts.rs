//! Endpoint counts per (trust, site, OS platform, OS build, edition, kind, sensor state),
//! written with each endpoint snapshot into `endpoint_counts`, so that a trust's figures
//! are a few hundred rows to read rather than a scan of every one of its devices
//! (225,000 for a large trust), and each check can still choose which devices it counts
//! (`judge` in a checklist: issue 12).
//!
//! A device's **kind** ([`kind`], [`KIND_SQL`]): `medical` when the row says it is a
//! medical device; else `server` for Windows Server and Linux; `other` for an unknown
//! platform; else `end-user` (Windows client, macOS, iOS, Android).
//!
//! Its **sensor** state ([`sensor`], [`SENSOR_SQL`]), from Defender for Endpoint's
//! onboarding and health status: `reporting` (onboarded, health `Active`); `inactive`
//! (onboarded, any other health: the sensor stopped reporting, e.g. `Inactive` after 7
//! days without a signal); `can-onboard` (`CanBeOnboarded`: a sensor could run there but
//! does not); `discovered` (`Unsupported` or `InsufficientInfo`: a device Defender only
//! found on the network, such as a printer, on which no sensor runs).
//!
//! Each device check counts its *bad* devices and its *unknown* ones (the feed does not
//! say: NULL), never taking unknown for good or bad. The join treats every device that
//! is not `reporting` as giving no configuration data, whatever its row holds:
//!
//! | column | bad | unknown column |
//! |---|---|---|
//! | `smb1_enabled` | SMBv1 on | `smb1_unknown` |
//! | `missing_updates` | one or more security updates missing | `missing_updates_unknown` |
//! | `bitlocker_off` | BitLocker off | `bitlocker_unknown` |
//! | `secure_boot_off` | Secure Boot off | `secure_boot_unknown` |
//! | `credential_guard_off` | Credential Guard not running | `credential_guard_unknown` |
//! | `firewall_off` | any of the domain, private, public profiles off | `firewall_unknown`: none off, one or more unknown |
//!
//! plus `devices`.

use std::collections::HashMap;

use rusqlite::{Transaction, params};

use super::fields::{HealthStatus, OnboardingStatus, OsPlatform};
use super::rows::Endpoint;

/// A device's kind, as [`kind`] derives it, in SQL over an endpoint table's columns.
pub(crate) const KIND_SQL: &str = "CASE WHEN is_medical_device = 1 THEN 'medical'
    WHEN os_platform LIKE 'WindowsServer%' OR os_platform = 'Linux' THEN 'server'
    WHEN os_platform IN ('Unknown', 'other') THEN 'other' ELSE 'end-user' END";

/// A device's sensor state, as [`sensor`] derives it, in SQL.
pub(crate) const SENSOR_SQL: &str = "CASE
    WHEN onboarding_status = 'onboarded' AND health_status = 'Active' THEN 'reporting'
    WHEN onboarding_status = 'onboarded' THEN 'inactive'
    WHEN onboarding_status = 'CanBeOnboarded' THEN 'can-onboard' ELSE 'discovered' END";

/// A device's kind (the names of `wardcheck_core::judge::DeviceKind`).
pub(crate) fn kind(e: &Endpoint) -> &'static str {
    if e.is_medical_device {
        "medical"
    } else if e.os_platform.as_str().starts_with("WindowsServer")
        || e.os_platform == OsPlatform::Linux
    {
        "server"
    } else if matches!(e.os_platform, OsPlatform::Unknown | OsPlatform::Other) {
        "other"
    } else {
        "end-user"
    }
}

/// A device's sensor state.
pub(crate) fn sensor(e: &Endpoint) -> &'static str {
    sensor_of(e.onboarding_status.as_str(), e.health_status.as_str())
}

/// A device's sensor state from its onboarding and health status as stored: one
/// definition for the counts and for a sampled device's own record (the join).
pub fn sensor_of(onboarding: &str, health: &str) -> &'static str {
    let onboarded = OnboardingStatus::Onboarded.as_str();
    match (onboarding, health) {
        (o, h) if o == onboarded && h == HealthStatus::Active.as_str() => "reporting",
        (o, _) if o == onboarded => "inactive",
        (o, _) if o == OnboardingStatus::CanBeOnboarded.as_str() => "can-onboard",
        _ => "discovered",
    }
}

/// One group's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    devices: u64,
    smb1_enabled: u64,
    smb1_unknown: u64,
    missing_updates: u64,
    missing_updates_unknown: u64,
    bitlocker_off: u64,
    bitlocker_unknown: u64,
    secure_boot_off: u64,
    secure_boot_unknown: u64,
    credential_guard_off: u64,
    credential_guard_unknown: u64,
    firewall_off: u64,
    firewall_unknown: u64,
}

/// Adds 1 to `bad` when the check is off, to `unknown` when it is not known.
fn off(value: Option<bool>, bad: &mut u64, unknown: &mut u64) {
    match value {
        Some(false) => *bad += 1,
        None => *unknown += 1,
        Some(true) => {}
    }
}

impl Counts {
    fn add(&mut self, e: &Endpoint) {
        self.devices += 1;
        match e.smb1_enabled {
            Some(true) => self.smb1_enabled += 1,
            None => self.smb1_unknown += 1,
            Some(false) => {}
        }
        match e.missing_security_updates {
            Some(n) if n > 0 => self.missing_updates += 1,
            None => self.missing_updates_unknown += 1,
            Some(_) => {}
        }
        off(
            e.bitlocker_on,
            &mut self.bitlocker_off,
            &mut self.bitlocker_unknown,
        );
        off(
            e.secure_boot_on,
            &mut self.secure_boot_off,
            &mut self.secure_boot_unknown,
        );
        off(
            e.credential_guard_running,
            &mut self.credential_guard_off,
            &mut self.credential_guard_unknown,
        );
        let profiles = [e.firewall_domain, e.firewall_private, e.firewall_public];
        if profiles.contains(&Some(false)) {
            self.firewall_off += 1;
        } else if profiles.contains(&None) {
            self.firewall_unknown += 1;
        }
    }
}

/// A group's key within a site: platform, build, edition class, kind, sensor state.
type GroupKey = (
    OsPlatform,
    Option<u32>,
    Option<&'static str>,
    &'static str,
    &'static str,
);

/// One site's counts: its trust, and its counts by group.
type SiteCounts = (String, HashMap<GroupKey, Counts>);

/// The counts of one snapshot as its rows are read: by site (which names its trust),
/// then by group.
#[derive(Debug, Default)]
pub(crate) struct EndpointCounts {
    by_site: HashMap<String, SiteCounts>,
}

impl EndpointCounts {
    pub(crate) fn add(&mut self, e: &Endpoint) {
        // Looked up by reference: a key is allocated once per site, not once per row.
        if !self.by_site.contains_key(&e.site) {
            self.by_site
                .insert(e.site.clone(), (e.trust.clone(), HashMap::new()));
        }
        let (_, groups) = self.by_site.get_mut(&e.site).expect("inserted above");
        groups
            .entry((e.os_platform, e.os_build, e.os_edition, kind(e), sensor(e)))
            .or_default()
            .add(e);
    }

    /// Writes every group as a row of `endpoint_counts` for `snapshot`.
    pub(crate) fn write(&self, tx: &Transaction<'_>, snapshot: i64) -> rusqlite::Result<()> {
        let mut insert = tx.prepare(
            "INSERT INTO endpoint_counts (snapshot, trust, site, os_platform, os_build,
                os_edition, kind, sensor, devices, smb1_enabled, smb1_unknown, missing_updates,
                missing_updates_unknown, bitlocker_off, bitlocker_unknown, secure_boot_off,
                secure_boot_unknown, credential_guard_off, credential_guard_unknown,
                firewall_off, firewall_unknown)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                ?18, ?19, ?20, ?21)",
        )?;
        for (site, (trust, groups)) in &self.by_site {
            for ((platform, build, edition, kind, sensor), c) in groups {
                let n = |v: u64| v as i64;
                insert.execute(params![
                    snapshot,
                    trust,
                    site,
                    platform.as_str(),
                    build,
                    edition,
                    kind,
                    sensor,
                    n(c.devices),
                    n(c.smb1_enabled),
                    n(c.smb1_unknown),
                    n(c.missing_updates),
                    n(c.missing_updates_unknown),
                    n(c.bitlocker_off),
                    n(c.bitlocker_unknown),
                    n(c.secure_boot_off),
                    n(c.secure_boot_unknown),
                    n(c.credential_guard_off),
                    n(c.credential_guard_unknown),
                    n(c.firewall_off),
                    n(c.firewall_unknown),
                ])?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{NaiveDate, Utc};

    use super::super::store::{TelemetryDb, count_endpoints_sql};
    use super::super::{Format, ImportRequest, Kind, Outcome, import};

    /// Every combination of the values the counts look at, over a few groups.
    pub(crate) fn endpoints_csv() -> String {
        let mut out = super::super::Endpoint::COLUMNS.join(",");
        out.push('\n');
        let tri = ["true", "false", ""];
        let mut i = 0;
        for onboarding in ["onboarded", "CanBeOnboarded", "Unsupported"] {
            for updates in ["0", "3", ""] {
                for a in tri {
                    for b in tri {
                        for c in tri {
                            i += 1;
                            let (platform, build) = match i % 7 {
                                0 => ("WindowsServer2019", "17763"),
                                1 | 4 => ("Windows7", "7601"),
                                _ => ("Windows10", "19045"),
                            };
                            let site = if i % 2 == 0 { "RJ121" } else { "RJ122" };
                            let health = if i % 4 == 0 { "Inactive" } else { "Active" };
                            let edition =
                                ["EnterpriseS", "", "Professional", "IoTEnterpriseS"][i % 4];
                            out.push_str(&format!(
                                "d{i},h{i},{platform},,{build},,2026-11-28,{onboarding},{health},Low,\
                                 {updates},{a},{b},{a},{b},{c},{c},{a},{},RJ1,{site},{edition},,,,,,\n",
                                i % 5 == 0
                            ));
                        }
                    }
                }
            }
        }
        out
    }

    pub(crate) fn import_file(db: &TelemetryDb, kind: Kind, path: &std::path::Path) -> Outcome {
        import_file_on(
            db,
            kind,
            path,
            NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
        )
    }

    /// [`import_file`] as the snapshot of day `as_of`.
    pub(crate) fn import_file_on(
        db: &TelemetryDb,
        kind: Kind,
        path: &std::path::Path,
        as_of: NaiveDate,
    ) -> Outcome {
        let req = ImportRequest {
            kind,
            as_of,
            format: Format::Csv,
            path,
            sha256: None,
            by: "test",
            now: Utc::now(),
        };
        import::import(db, &req, &mut |_| {}).unwrap().outcome
    }

    /// A telemetry store in `dir` that knows one trust, RJ1.
    pub(crate) fn store_with_one_trust(dir: &std::path::Path) -> TelemetryDb {
        let db = TelemetryDb::open(dir).unwrap();
        let trusts = dir.join("t.csv");
        std::fs::write(
            &trusts,
            "ods_code,name,trust_type,major_trauma_centre,region\nRJ1,G,acute,yes,London\n",
        )
        .unwrap();
        import_file(&db, Kind::Trusts, &trusts);
        db
    }

    #[test]
    fn the_counts_made_while_reading_equal_the_counts_from_the_rows() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_one_trust(dir.path());
        let endpoints = dir.path().join("e.csv");
        std::fs::write(&endpoints, endpoints_csv()).unwrap();
        let Outcome::Imported { snapshot, .. } = import_file(&db, Kind::Endpoints, &endpoints)
        else {
            panic!("the endpoints import");
        };
        let conn = db.reader();
        let all = |conn: &rusqlite::Connection| -> Vec<Vec<rusqlite::types::Value>> {
            let mut stmt = conn
                .prepare("SELECT * FROM endpoint_counts ORDER BY site, os_platform, os_build, os_edition, kind, sensor")
                .unwrap();
            let n = stmt.column_count();
            stmt.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let read = all(&conn);
        assert!(
            read.len() > 40,
            "sites by platforms, editions, kinds and sensor states: {}",
            read.len()
        );
        conn.execute_batch("DELETE FROM endpoint_counts").unwrap();
        conn.execute_batch(&count_endpoints_sql(snapshot.id))
            .unwrap();
        assert_eq!(
            all(&conn),
            read,
            "counting the stored rows in SQL gives what the import counted while reading"
        );

        // A folder from before `endpoint_counts` (schema 1) gets its snapshots counted
        // when it is opened.
        // Schema 1 had neither `endpoint_counts`, the edition column, Defender's fields nor
        // the export beneath a merged snapshot.
        conn.execute_batch(&format!(
            "DROP TABLE endpoint_counts; PRAGMA user_version = 1;
             DROP VIEW endpoints;
             ALTER TABLE endpoints_none DROP COLUMN os_edition;
             ALTER TABLE {t} DROP COLUMN os_edition;
             ALTER TABLE endpoints_none DROP COLUMN risk_score;
             ALTER TABLE {t} DROP COLUMN risk_score;
             ALTER TABLE endpoints_none DROP COLUMN last_ip_address;
             ALTER TABLE {t} DROP COLUMN last_ip_address;
             ALTER TABLE endpoints_none DROP COLUMN last_external_ip_address;
             ALTER TABLE {t} DROP COLUMN last_external_ip_address;
             ALTER TABLE endpoints_none DROP COLUMN rbac_group_name;
             ALTER TABLE {t} DROP COLUMN rbac_group_name;
             ALTER TABLE endpoints_none DROP COLUMN aad_device_id;
             ALTER TABLE {t} DROP COLUMN aad_device_id;
             ALTER TABLE endpoints_none DROP COLUMN machine_tags;
             ALTER TABLE {t} DROP COLUMN machine_tags;
             ALTER TABLE telemetry_snapshots DROP COLUMN export_sha256;
             ALTER TABLE telemetry_snapshots DROP COLUMN export_imported_at;
             CREATE VIEW endpoints AS SELECT 1;",
            t = super::super::store::endpoint_table(snapshot.id)
        ))
        .unwrap();
        super::super::store::rebuild_endpoints_view(&conn).unwrap();
        drop(conn);
        drop(db);
        let db = TelemetryDb::open(dir.path()).unwrap();
        // Its rows had no edition column: the same counts, with the editions merged.
        use rusqlite::types::Value;
        let merged = |rows: Vec<Vec<Value>>| {
            let mut m: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
            for r in rows {
                let key = format!("{:?}", [&r[0..5], &r[6..8]].concat());
                let nums: Vec<i64> = r[8..]
                    .iter()
                    .map(|v| match v {
                        Value::Integer(i) => *i,
                        other => panic!("{other:?}"),
                    })
                    .collect();
                let e = m.entry(key).or_insert_with(|| vec![0; nums.len()]);
                for (a, b) in e.iter_mut().zip(nums) {
                    *a += b;
                }
            }
            m
        };
        let migrated = all(&db.reader());
        assert!(migrated.iter().all(|r| r[5] == Value::Null), "no edition");
        assert_eq!(merged(migrated), merged(read), "counted on migration");
    }
}
