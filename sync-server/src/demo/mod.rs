//! `wardcheck-server demo-data`: a believable data folder to show and try Wardcheck.
//!
//! - **Telemetry** for twenty real trusts ([`trusts`]): endpoint inventory (50,000 by
//!   default, up to 2.5 million), firewalls, a year of cyber alert responses and the trust
//!   list. It is written as CSV files into a scratch folder and read by the telemetry
//!   importer, exactly as NHS Digital's feeds are, so the demo exercises the real import
//!   path ([`telemetry`]).
//! - **Users**, all with the one password [`DEMO_PASSWORD`] (demo only: never on a server
//!   that holds real data): inspector `ann`, reviewer `rita`, trust leads `lead-rj1` (RJ1)
//!   and `lead-rth` (RTH), admin `admin`.
//! - **Inspections** in each state, written with core's typed operations ([`inspections`]),
//!   among them the seeded contradiction: RJ1 answered 'met' for "no unsupported systems"
//!   while its telemetry shows hundreds of Windows 7 devices.
//!
//! It is idempotent: users and inspections that exist are skipped (by name and by their
//! fixed ids), and telemetry is not imported again when a snapshot of that kind is already
//! held; each skip is reported.

mod inspections;
mod progress;
mod telemetry;
pub mod trusts;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::NaiveDate;

use crate::auth;
use crate::join::thousands;
use crate::storage::{Role, Storage};
use crate::telemetry::TelemetryStore;

pub use inspections::{CONTRADICTION_INSPECTION, CONTRADICTION_ITEM};

/// The password of every demo user. Demo only.
pub const DEMO_PASSWORD: &str = "wardcheck-demo";

/// Endpoints made when no `--endpoints` is given: about 2,500 per trust, a few seconds.
pub const DEFAULT_ENDPOINTS: u64 = 50_000;

/// Most endpoints `--endpoints` accepts: the national estate with headroom
/// (RELIABILITY §2: 2.1 million MDE devices plus 0.3 million more).
pub const MAX_ENDPOINTS: u64 = 5_000_000;

/// The demo users: name, display name, role.
pub fn users() -> Vec<(&'static str, &'static str, Role)> {
    vec![
        ("ann", "Ann Inspector (CQC)", Role::Inspector),
        ("rita", "Rita Reviewer (NHS Digital)", Role::Reviewer),
        (
            "lead-rj1",
            "Guy's and St Thomas' security lead",
            Role::TrustLead("RJ1".into()),
        ),
        (
            "lead-rth",
            "Oxford University Hospitals security lead",
            Role::TrustLead("RTH".into()),
        ),
        ("admin", "Demo administrator", Role::Admin),
    ]
}

/// What `demo-data` is asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub endpoints: u64,
    pub seed: u64,
    /// The snapshot date of the telemetry (today, normally).
    pub as_of: NaiveDate,
}

/// Makes the demo data in `data` (its record opened as `storage`, its telemetry as
/// `telemetry`), printing what it does; returns the one-line summary.
pub fn run(
    storage: &dyn Storage,
    telemetry: &dyn TelemetryStore,
    data: &Path,
    opts: &Options,
) -> Result<String> {
    anyhow::ensure!(
        opts.endpoints <= MAX_ENDPOINTS,
        "--endpoints may be at most {}",
        thousands(MAX_ENDPOINTS)
    );
    let started = Instant::now();

    let mut new_users = Vec::new();
    for (name, display, role) in users() {
        if storage.user_by_name(name)?.is_some() {
            println!("  user {name}: exists, skipped");
            continue;
        }
        let hash = auth::hash_password(DEMO_PASSWORD)?;
        storage
            .add_user(name, display, &role, &hash)
            .with_context(|| format!("adding the demo user {name}"))?;
        println!("  user {name}: added ({})", role.name());
        new_users.push(name);
    }

    let imported = self::telemetry::import_all(telemetry, data, opts)?;

    let outcome = inspections::create_all(storage, telemetry, opts.as_of)?;
    for (id, trust) in &outcome.skipped {
        println!("  inspection {id} ({trust}): exists, skipped");
    }
    for (id, trust, state) in &outcome.created {
        println!("  inspection {id} ({trust}): created, {state:?}");
    }

    Ok(format!(
        "demo-data: {} users ({} new), {}; {} inspections ({} new, {} photos) in {:.1} s",
        users().len(),
        new_users.len(),
        imported,
        outcome.created.len() + outcome.skipped.len(),
        outcome.created.len(),
        outcome.photos,
        started.elapsed().as_secs_f64()
    ))
}
