//! A child process for the crash test: it opens the store, then edits notes in a
//! loop, saving each edit durably and only then reporting it on stdout as
//! `done <seq> <item> <change hash>`. The test kills it with SIGKILL at random
//! moments and checks every reported write survived.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use uuid::Uuid;
use wardcheck_core::inspection::{Inspection, NewInspection, Stamp};
use wardcheck_core::store::{Store, StoreError};
use wardcheck_tests::{crash_checklist, crash_items, store_key};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(db), Some(start)) = (args.next(), args.next()) else {
        bail!("usage: store-writer DB START_SEQ");
    };
    let db = PathBuf::from(db);
    let mut seq: u64 = start.parse().context("START_SEQ")?;
    let checklist = Arc::new(crash_checklist());
    let items = crash_items(&checklist);
    let id = Uuid::from_u128(0xC0FFEE);
    let mut store = Store::open(&db, &store_key())?;
    let mut insp = match store.load_inspection(id, checklist.clone()) {
        Ok(i) => i,
        Err(StoreError::UnknownDocument(_)) => {
            let new = NewInspection {
                id,
                trust: "RJ1".into(),
                sites: vec!["RJ121".into()],
                team: vec![],
                visit_start: None,
                visit_end: None,
                org: None,
            };
            let mut i = Inspection::create(new, checklist, store.actor(), &stamp())?;
            store.insert_inspection(&mut i, Utc::now())?;
            i
        }
        Err(e) => return Err(e.into()),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "ready")?;
    out.flush()?;
    loop {
        seq += 1;
        let item = &items[(seq as usize) % items.len()];
        insp.edit_note(item, &format!("write {seq}"), &stamp())?;
        store.save_inspection(&mut insp, Utc::now())?;
        let heads: Vec<String> = insp.heads().iter().map(ToString::to_string).collect();
        writeln!(out, "done {seq} {item} {}", heads.join(","))?;
        out.flush()?;
    }
}

fn stamp() -> Stamp {
    Stamp::new("writer", Utc::now())
}
