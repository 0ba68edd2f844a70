//! `sync-bench --bombs`: the server's memory under the largest message a client may
//! send, made of chunks that inflate past every limit (`wardcheck_tests::hostile`), from
//! a reader (the trust's lead: its changes are dropped unread) and from a writer (the
//! inspector: refused while inflating, at the message's budget). The peer is the same
//! server at rest, with the inspection loaded, in the same run.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use automerge::AutoCommit;
use automerge::sync::{self, ChunkList, SyncDoc};
use chrono::Utc;
use wardcheck_server::auth;
use wardcheck_server::limits::{MAX_INFLATED_CHANGES, MAX_WS_MESSAGE};
use wardcheck_server::storage::{Role, SqliteStorage, Storage};

use crate::client::{Connection, Incoming, doc_id};
use crate::servers::{self, ServerProcess};

/// Each chunk inflates to this many bytes: 512 MiB of zeros in about half a megabyte.
const CHUNK_INFLATES_TO: usize = 512 << 20;
/// Connections of one writer sending the message at once.
const CROWD: usize = 8;
/// Room left in the message for its framing (CBOR envelope, sync message header).
const FRAMING: usize = 64 << 10;

pub async fn run(bin: &std::path::Path) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let data = scratch.path().join("data");
    let log = scratch.path().join("server.log");
    let made = {
        let data = data.clone();
        tokio::task::spawn_blocking(move || servers::OurData::create(&data, &[1], None)).await??
    };
    let inspection = made.inspections[0];
    // The trust's lead, who reads the inspection once shared, and never writes it.
    let lead_token = {
        let storage = SqliteStorage::open(&made.dir)?;
        let hash = auth::hash_password("benchmark password, never used to sign in")?;
        let uid = storage.add_user(
            "bench-lead",
            "Benchmark lead",
            &Role::TrustLead(servers::TRUST.into()),
            &hash,
        )?;
        let (token, token_hash) = auth::new_token();
        storage.add_device(uid, "bench-lead", &token_hash, Utc::now())?;
        storage.share(inspection, Utc::now())?;
        token
    };
    let server = servers::start_ours(bin, &made.dir, &log, None)?;
    let doc = doc_id(inspection);

    let chunk = wardcheck_tests::hostile::inflating_chunk(CHUNK_INFLATES_TO);
    let n = (MAX_WS_MESSAGE - FRAMING) / chunk.len();
    let mut bomb = AutoCommit::new()
        .sync()
        .generate_sync_message(&mut sync::State::new())
        .context("a first sync message")?;
    bomb.changes = ChunkList::from(vec![chunk.clone(); n]);
    let bomb = bomb.encode();
    let claimed = n as u64 * CHUNK_INFLATES_TO as u64;

    // The inspector and the lead each load the inspection first: the peak at rest
    // includes the loaded document and two connections.
    let mut writer = first_sync(&server.ws_url, &made.tokens[0], &doc).await?;
    let mut reader = first_sync(&server.ws_url, &lead_token, &doc).await?;
    let rest = peak(&server)?;

    let t = Instant::now();
    reader.send(false, &doc, bomb.clone()).await?;
    // The server owes a reader nothing for changes it drops: a fresh first message after
    // it is answered, and the server takes a connection's messages in order.
    reader.send(false, &doc, fresh_first()).await?;
    let answer = reply(&mut reader).await;
    let reader_took = t.elapsed();
    let after_reader = peak(&server)?;

    let t = Instant::now();
    writer.send(false, &doc, bomb.clone()).await?;
    let refused = reply(&mut writer).await;
    let writer_took = t.elapsed();
    let after_writer = peak(&server)?;

    // Eight of the writer's connections at once (a user may hold 16).
    let mut many = Vec::new();
    for _ in 0..CROWD {
        many.push(first_sync(&server.ws_url, &made.tokens[0], &doc).await?);
    }
    let t = Instant::now();
    let sent = many.into_iter().map(|mut c| {
        let bomb = bomb.clone();
        let doc = doc.clone();
        tokio::spawn(async move {
            let _ = c.send(false, &doc, bomb).await;
            let r = reply(&mut c).await;
            c.close().await;
            r
        })
    });
    let mut refusals = 0;
    for h in sent.collect::<Vec<_>>() {
        if h.await?.contains("refused") {
            refusals += 1;
        }
    }
    let crowd_took = t.elapsed();
    let after_crowd = peak(&server)?;

    // And the server still serves the inspection.
    let check = first_sync(&server.ws_url, &made.tokens[0], &doc).await;
    reader.close().await;
    writer.close().await;
    server.stop()?;

    println!("The largest message a client may send, of chunks that inflate past every limit");
    println!(
        "  message: {:.1} MiB on the wire ({} chunks), claiming {:.1} GiB inflated; the budget of one message is {} MiB",
        bomb.len() as f64 / (1 << 20) as f64,
        n,
        claimed as f64 / (1u64 << 30) as f64,
        MAX_INFLATED_CHANGES >> 20
    );
    println!("  server peak memory (VmHWM):");
    println!("    at rest, inspection loaded           {:>7.1} MiB", rest);
    println!(
        "    after the reader's message            {:>7.1} MiB (+{:.1}), answered in {:.0} ms: {}",
        after_reader,
        after_reader - rest,
        reader_took.as_secs_f64() * 1e3,
        answer
    );
    println!(
        "    after the writer's message            {:>7.1} MiB (+{:.1}), answered in {:.0} ms: {}",
        after_writer,
        after_writer - rest,
        writer_took.as_secs_f64() * 1e3,
        refused
    );
    println!(
        "    after {CROWD} of the writer's at once       {:>7.1} MiB (+{:.1}), {refusals} refused in {:.0} ms",
        after_crowd,
        after_crowd - rest,
        crowd_took.as_secs_f64() * 1e3,
    );
    println!(
        "  ratio to rest: reader {:.2}, writer {:.2}, {CROWD} writers {:.2}; the inspection still loads afterwards: {}",
        after_reader / rest,
        after_writer / rest,
        after_crowd / rest,
        if check.is_ok() { "yes" } else { "NO" }
    );
    if check.is_err() {
        bail!("the inspection did not load after the bombs: {check:?}");
    }
    Ok(())
}

/// A first sync message, as a client holding nothing sends.
fn fresh_first() -> Vec<u8> {
    AutoCommit::new()
        .sync()
        .generate_sync_message(&mut sync::State::new())
        .expect("a first message")
        .encode()
}

/// Connects and fetches the document once.
async fn first_sync(url: &str, token: &str, doc: &str) -> Result<Connection> {
    let mut c = Connection::connect(url, Some(token)).await?;
    c.send(true, doc, fresh_first()).await?;
    match tokio::time::timeout(Duration::from_secs(30), c.recv()).await?? {
        Incoming::Sync { .. } => Ok(c),
        other => bail!("no document: {other:?}"),
    }
}

/// What the server said next: a sync reply, or its error.
async fn reply(c: &mut Connection) -> String {
    match tokio::time::timeout(Duration::from_secs(60), c.recv()).await {
        Ok(Ok(Incoming::Sync { .. })) => "a sync reply (nothing stored)".into(),
        Ok(Ok(other)) => format!("{other:?}"),
        Ok(Err(e)) => format!("{e:#}").chars().take(160).collect(),
        Err(_) => "no answer in 60 s".into(),
    }
}

fn peak(server: &ServerProcess) -> Result<f64> {
    let (hwm, _) = server.memory_kib().context("the server's /proc status")?;
    Ok(hwm as f64 / 1024.0)
}
