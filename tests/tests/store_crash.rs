//! Crash safety of the local store: a writer process is killed with SIGKILL at random
//! moments, many times. After each kill, every write it reported as done must be in
//! the reopened store, and the integrity check must pass.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use automerge::ChangeHash;
use rand::RngExt;
use uuid::Uuid;
use wardcheck_core::store::Store;
use wardcheck_tests::{crash_checklist, store_key};

/// How many times the writer is killed. Each round costs a process start and a
/// store open; 40 rounds keep the test to seconds while killing it in every phase
/// of a write (transaction, WAL sync, compaction) many times over.
const ROUNDS: usize = 40;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_reported_write_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("field.db");
    let checklist = Arc::new(crash_checklist());
    let mut rng = rand::rng();
    // What the writer reported: the last sequence number per item, and every head.
    let mut reported: BTreeMap<String, u64> = BTreeMap::new();
    let mut reported_heads: Vec<ChangeHash> = Vec::new();
    let mut seq = 0u64;
    let mut total_done = 0usize;

    for round in 0..ROUNDS {
        let child = Command::new(env!("CARGO_BIN_EXE_store-writer"))
            .arg(&db)
            .arg(seq.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the writer");
        let mut child = Killed(child);
        let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
        assert_eq!(
            lines.next().unwrap().unwrap(),
            "ready",
            "round {round}: writer did not start"
        );
        // Let it write a random number of times, then kill it after a random pause,
        // which lands anywhere inside the next write.
        let writes = rng.random_range(1..40);
        for _ in 0..writes {
            let line = lines.next().expect("writer output").unwrap();
            let mut parts = line.split(' ');
            assert_eq!(parts.next(), Some("done"), "unexpected line {line:?}");
            let s: u64 = parts.next().unwrap().parse().unwrap();
            let item = parts.next().unwrap().to_string();
            for h in parts.next().unwrap().split(',') {
                reported_heads.push(h.parse().unwrap());
            }
            reported.insert(item, s);
            seq = seq.max(s);
            total_done += 1;
        }
        std::thread::sleep(Duration::from_micros(rng.random_range(0..3000)));
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        // Whatever the writer printed after our last read may also have landed: the
        // next writer starts past it so sequence numbers never repeat.
        let unread: Vec<String> = lines.map_while(Result::ok).collect();
        for line in &unread {
            if let Some(s) = line.split(' ').nth(1).and_then(|s| s.parse::<u64>().ok()) {
                seq = seq.max(s);
            }
        }

        let store = Store::open(&db, &store_key())
            .unwrap_or_else(|e| panic!("round {round}: store does not open after SIGKILL: {e}"));
        store
            .integrity_check()
            .unwrap_or_else(|e| panic!("round {round}: integrity check failed: {e}"));
        let mut insp = store
            .load_inspection(Uuid::from_u128(0xC0FFEE), checklist.clone())
            .unwrap_or_else(|e| panic!("round {round}: inspection does not load: {e}"));
        for h in &reported_heads {
            assert!(
                insp.has_change(h),
                "round {round}: reported change {h} is missing"
            );
        }
        let view = insp.view().unwrap();
        for (item, s) in &reported {
            let note = &view.responses[item].note;
            let stored: u64 = note
                .strip_prefix("write ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("round {round}: note on {item} is {note:?}"));
            assert!(
                stored >= *s,
                "round {round}: write {s} to {item} was reported done but the store has write {stored}"
            );
        }
    }
    assert!(
        total_done >= ROUNDS,
        "the writer reported {total_done} writes"
    );
}
