//! Idle connections: how many authenticated WebSockets the server holds, and
//! its RSS per connection. Client sockets bind source addresses spread over
//! 127.0.0.2, 127.0.0.3, … so one address's ephemeral port range does not
//! cap the count. Each socket answers pings (the server closes a socket that
//! misses pongs for 45 s) and is counted once our server said `hello` (it
//! authenticated) or the baseline completed the upgrade.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt as _;
use futures_util::stream;
use serde::Serialize;
use tokio::sync::watch;

use crate::common::{Target, Ws, connect, rss_of, small_config, source_ip};
use crate::fanout::read_until;

/// Sockets per source address (below the 28k-port ephemeral range).
const PER_SOURCE: usize = 20_000;
/// Handshakes in flight at once.
const CONCURRENCY: usize = 128;

/// The next unused source slot: each run takes source addresses of its own,
/// so the previous run's closed sockets (in TIME_WAIT) do not hold its ports.
static NEXT_SOURCE: AtomicUsize = AtomicUsize::new(0);

/// What an idle run found.
#[derive(Debug, Clone, Serialize)]
pub struct IdleResult {
    /// `ours`, `baseline` or `node_ws`.
    pub server: String,
    /// Asked for.
    pub target: usize,
    /// Open at the end of the hold.
    pub connections: usize,
    /// Connected at the peak.
    pub connected: usize,
    /// Closed during the hold.
    pub closed_during_hold: usize,
    /// Server RSS before connecting, bytes.
    pub rss_before: u64,
    /// Server RSS after the hold, bytes.
    pub rss_after: u64,
    /// (RSS after − before) / connections.
    pub bytes_per_connection: f64,
    /// Seconds to connect them all.
    pub connect_secs: f64,
    /// Why it stopped short, if it did.
    pub stopped: Option<String>,
    /// (connections, server RSS bytes) samples while connecting.
    pub samples: Vec<(usize, u64)>,
}

async fn hold(mut ws: Ws, alive: Arc<AtomicUsize>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            // Reading answers pings (tungstenite queues and flushes the pong).
            m = ws.next() => if !matches!(m, Some(Ok(_))) { break },
        }
    }
    alive.fetch_sub(1, Ordering::Relaxed);
}

/// Opens up to `count` idle sockets to `target` (server process `pid`), holds them `hold_secs`, measures RSS.
pub async fn run(name: &str, pid: u32, target: &Target, count: usize, hello: bool, hold_secs: u64, rss_cap: u64) -> Result<IdleResult> {
    let rss_before = rss_of(pid).unwrap_or(0);
    let alive = Arc::new(AtomicUsize::new(0));
    let (stop, stop_rx) = watch::channel(false);
    let failures = Arc::new(AtomicUsize::new(0));
    let mut samples = vec![(0usize, rss_before)];
    let mut stopped = None;
    let first = NEXT_SOURCE.fetch_add(count.div_ceil(PER_SOURCE) * PER_SOURCE, Ordering::Relaxed);
    let t0 = Instant::now();
    let mut results = stream::iter(0..count)
        .map(|i| {
            let t = target.clone();
            async move {
                let r = tokio::time::timeout(Duration::from_secs(15), async {
                    let mut ws = connect(&t, Some(source_ip(first + i, PER_SOURCE)), small_config()).await?;
                    if hello {
                        read_until(&mut ws, "\"hello\"").await?;
                    }
                    anyhow::Ok(ws)
                })
                .await;
                match r {
                    Ok(Ok(ws)) => Ok(ws),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("handshake timed out after 15 s".to_string()),
                }
            }
        })
        .buffer_unordered(CONCURRENCY);
    let mut connected = 0usize;
    let mut last_error = String::new();
    while let Some(r) = results.next().await {
        match r {
            Ok(ws) => {
                connected += 1;
                alive.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(hold(ws, alive.clone(), stop_rx.clone()));
                if connected.is_multiple_of(5000) {
                    let rss = rss_of(pid).unwrap_or(0);
                    samples.push((connected, rss));
                    eprintln!("  idle {name}: {connected} connected, server RSS {:.0} MiB", rss as f64 / 1048576.0);
                    if rss > rss_cap {
                        stopped = Some(format!("stopped at the safety cap: server RSS over {} MiB", rss_cap >> 20));
                        break;
                    }
                }
            }
            Err(e) => {
                last_error = e;
                if failures.fetch_add(1, Ordering::Relaxed) + 1 >= 200 {
                    stopped = Some(format!("stopped after 200 failed handshakes at {connected} connected; last error: {last_error}"));
                    break;
                }
            }
        }
    }
    drop(results);
    let connect_secs = t0.elapsed().as_secs_f64();
    if stopped.is_none() && failures.load(Ordering::Relaxed) > 0 {
        stopped = Some(format!("{} handshakes failed; last error: {last_error}", failures.load(Ordering::Relaxed)));
    }
    eprintln!("  idle {name}: {connected} connected in {connect_secs:.1} s; holding {hold_secs} s");
    tokio::time::sleep(Duration::from_secs(hold_secs)).await;
    let held = alive.load(Ordering::Relaxed);
    let rss_after = rss_of(pid).unwrap_or(0);
    samples.push((held, rss_after));
    let bytes_per_connection = if held > 0 { rss_after.saturating_sub(rss_before) as f64 / held as f64 } else { f64::NAN };
    eprintln!(
        "  idle {name}: {held} held, RSS {:.0} → {:.0} MiB, {:.0} B per connection",
        rss_before as f64 / 1048576.0,
        rss_after as f64 / 1048576.0,
        bytes_per_connection
    );
    let _ = stop.send(true);
    // Let the holders close their sockets before the next scenario.
    let deadline = Instant::now() + Duration::from_secs(60);
    while alive.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(IdleResult {
        server: name.into(),
        target: count,
        connections: held,
        connected,
        closed_during_hold: connected.saturating_sub(held),
        rss_before,
        rss_after,
        bytes_per_connection,
        connect_secs,
        stopped,
        samples,
    })
}
