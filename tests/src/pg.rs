//! PostgreSQL for the tests: a database of its own for each test, in the throwaway
//! cluster `scripts/test` starts (`scripts/pg-cluster`), whose socket folder it exports as
//! `WARDCHECK_TEST_PG`.
//!
//! Run on their own, the tests that need PostgreSQL say how to get one: they are not
//! skipped, because a suite that passes without its database proves nothing about it.

use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the cluster's socket folder.
pub const CLUSTER_ENV: &str = "WARDCHECK_TEST_PG";

/// The cluster's socket folder; panics with how to start one if none is set.
pub fn cluster() -> String {
    match std::env::var(CLUSTER_ENV) {
        Ok(dir) if !dir.is_empty() => dir,
        _ => panic!(
            "this test needs PostgreSQL: run scripts/test, or start a throwaway cluster \
             with `d=$(mktemp -d); scripts/pg-cluster start $d/pg` and set \
             {CLUSTER_ENV}=$d/pg (README, \"The server\")"
        ),
    }
}

/// The connection string of `database` in the cluster.
pub fn url(database: &str) -> String {
    format!("host={} user=wardcheck dbname={database}", cluster())
}

/// Makes an empty database in the cluster and returns its connection string.
pub fn fresh_database() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "t_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    crate::off_runtime(|| {
        let mut admin = postgres::Client::connect(&url("wardcheck"), postgres::NoTls)
            .unwrap_or_else(|e| panic!("connecting to the test cluster in {}: {e}", cluster()));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("creating the test database {name}: {e}"));
    });
    url(&name)
}

/// Runs SQL in a database: what a test does behind the server's back (an attacker with
/// the database, or damage).
pub fn execute(url: &str, sql: &str) -> Result<u64, postgres::Error> {
    crate::off_runtime(|| {
        let mut c = postgres::Client::connect(url, postgres::NoTls)?;
        c.execute(sql, &[])
    })
}

/// The first row of a query, each column as text (PostgreSQL's own text forms).
pub fn first_row(url: &str, sql: &str) -> Result<Option<Vec<Option<String>>>, postgres::Error> {
    crate::off_runtime(|| {
        let mut c = postgres::Client::connect(url, postgres::NoTls)?;
        for m in c.simple_query(sql)? {
            if let postgres::SimpleQueryMessage::Row(r) = m {
                return Ok(Some(
                    (0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect(),
                ));
            }
        }
        Ok(None)
    })
}

/// Everything a database holds, as `pg_dump` writes it (plain SQL; bytes as hex): what
/// someone who copied the database would read.
pub fn dump(url: &str) -> Vec<u8> {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's programs are installed (scripts/setup)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin/pg_dump")))
        .filter(|p| p.exists())
        .max()
        .expect("pg_dump is installed");
    let out = std::process::Command::new(bin)
        .args(["--dbname", url, "--no-owner"])
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
