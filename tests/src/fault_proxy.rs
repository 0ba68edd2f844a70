//! A WebSocket proxy that stands between sync clients and the server and breaks the
//! network on purpose: it drops, duplicates and reorders sync messages at the rates it
//! is set to, partitions (passes nothing either way for a while, connections open), and
//! cuts every connection at once. Each client connection gets its own connection to the
//! server, with the client's `Authorization` header; when either side ends, so does the
//! other. Only binary messages (the sync protocol's) are faulted; control frames pass.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Message;

/// How often each fault strikes a sync message, from 0 to 1.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    pub drop: f64,
    pub duplicate: f64,
    pub reorder: f64,
}

/// What the proxy did, for the run's report.
#[derive(Debug, Default)]
pub struct Counts {
    pub passed: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
    pub cut: AtomicU64,
}

#[derive(Debug)]
struct Control {
    faults: Mutex<Faults>,
    partitioned_until: Mutex<Option<Instant>>,
    rng: Mutex<StdRng>,
    counts: Counts,
}

/// The running proxy; stops accepting when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// `ws://127.0.0.1:PORT/api/v1/sync`: where clients connect instead of the server.
    pub url: String,
    control: Arc<Control>,
    /// Bumped to cut every connection open now.
    cuts: watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`
    /// (`ws://HOST:PORT/api/v1/sync`); `seed` seeds its dice (shared by every
    /// connection, so which message a fault strikes also depends on timing).
    pub async fn start(upstream: &str, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let port = listener.local_addr().unwrap().port();
        let control = Arc::new(Control {
            faults: Mutex::new(Faults::default()),
            partitioned_until: Mutex::new(None),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            counts: Counts::default(),
        });
        let (cuts, _) = watch::channel(0u64);
        let accept = {
            let (control, cuts, upstream) = (control.clone(), cuts.clone(), upstream.to_owned());
            tokio::spawn(async move {
                while let Ok((tcp, _)) = listener.accept().await {
                    let (control, cut, upstream) =
                        (control.clone(), cuts.subscribe(), upstream.clone());
                    tokio::spawn(async move {
                        let _ = serve(tcp, &upstream, control, cut).await;
                    });
                }
            })
        };
        FaultProxy {
            url: format!("ws://127.0.0.1:{port}/api/v1/sync"),
            control,
            cuts,
            accept,
        }
    }

    /// Sets the rates of the message faults (all zero: a clean network).
    pub fn set(&self, faults: Faults) {
        *self.control.faults.lock().unwrap() = faults;
    }

    /// Passes nothing either way for `length`; connections stay open.
    pub fn partition(&self, length: Duration) {
        *self.control.partitioned_until.lock().unwrap() = Some(Instant::now() + length);
    }

    /// Ends the partition now.
    pub fn heal(&self) {
        *self.control.partitioned_until.lock().unwrap() = None;
        self.set(Faults::default());
    }

    /// Closes every connection open now, both sides.
    pub fn cut_all(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }

    pub fn counts(&self) -> &Counts {
        &self.control.counts
    }
}

impl Control {
    fn partitioned(&self) -> bool {
        self.partitioned_until
            .lock()
            .unwrap()
            .is_some_and(|until| Instant::now() < until)
    }

    /// What to do with one message: (drop, duplicate, hold it back behind the next).
    fn fate(&self) -> (bool, bool, bool) {
        if self.partitioned() {
            return (true, false, false);
        }
        let f = *self.faults.lock().unwrap();
        let mut rng = self.rng.lock().unwrap();
        let mut roll = |p: f64| p > 0.0 && rng.random::<f64>() < p;
        (roll(f.drop), roll(f.duplicate), roll(f.reorder))
    }
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;
type UpWs = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn serve(
    tcp: TcpStream,
    upstream: &str,
    control: Arc<Control>,
    mut cut: watch::Receiver<u64>,
) -> Result<(), String> {
    let auth: Arc<Mutex<Option<HeaderValue>>> = Arc::default();
    let seen = auth.clone();
    // The handshake callback's error type is tungstenite's (large, and not ours to change).
    #[allow(clippy::result_large_err)]
    let client: Ws =
        tokio_tungstenite::accept_hdr_async(tcp, move |req: &Request, res: Response| {
            *seen.lock().unwrap() = req.headers().get("authorization").cloned();
            Ok(res)
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut req = upstream.into_client_request().map_err(|e| e.to_string())?;
    if let Some(v) = auth.lock().unwrap().clone() {
        req.headers_mut().insert("authorization", v);
    }
    let server: UpWs = match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => ws,
        Err(e) => {
            // The server is down: the client's connection ends at once, as it would.
            let mut client = client;
            let _ = client.close(None).await;
            return Err(e.to_string());
        }
    };
    let (mut c_tx, mut c_rx) = client.split();
    let (mut s_tx, mut s_rx) = server.split();
    let up = {
        let control = control.clone();
        async move { pump(&mut c_rx, &mut s_tx, &control).await }
    };
    let down = async { pump(&mut s_rx, &mut c_tx, &control).await };
    cut.mark_unchanged();
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cut.changed() => {
            control.counts.cut.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Forwards messages from `rx` to `tx`, faulting them as `control` says, until either
/// side ends.
async fn pump<R, T>(rx: &mut R, tx: &mut T, control: &Control)
where
    R: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
    T: futures_util::Sink<Message> + Unpin,
{
    // A message held back to go after the next one (reordered); sent anyway if nothing
    // follows soon.
    let mut held: Option<Message> = None;
    loop {
        let next = match &held {
            Some(_) => match tokio::time::timeout(Duration::from_millis(50), rx.next()).await {
                Ok(m) => m,
                Err(_) => {
                    let m = held.take().expect("held");
                    if control.partitioned() {
                        control.counts.dropped.fetch_add(1, Ordering::Relaxed);
                    } else if tx.send(m).await.is_err() {
                        return;
                    }
                    continue;
                }
            },
            None => rx.next().await,
        };
        let Some(Ok(m)) = next else { return };
        // A partition passes nothing but a close: pings and pongs are lost too, so the
        // server's liveness checks meet it as they would a real one.
        if control.partitioned() && !matches!(m, Message::Close(_)) {
            control.counts.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if !matches!(m, Message::Binary(_)) {
            let close = matches!(m, Message::Close(_));
            if close && held.take().is_some() {
                // What was held back goes with the connection.
                control.counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
            if tx.send(m).await.is_err() || close {
                return;
            }
            continue;
        }
        let (drop, duplicate, reorder) = control.fate();
        let c = &control.counts;
        if drop {
            c.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if reorder && held.is_none() {
            c.reordered.fetch_add(1, Ordering::Relaxed);
            held = Some(m);
            continue;
        }
        c.passed.fetch_add(1, Ordering::Relaxed);
        let copies = if duplicate {
            c.duplicated.fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        for _ in 0..copies {
            if tx.send(m.clone()).await.is_err() {
                return;
            }
        }
        if let Some(h) = held.take()
            && tx.send(h).await.is_err()
        {
            return;
        }
    }
}
