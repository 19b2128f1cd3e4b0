//! Reconnect storm: N clients watch the specialist's inbox while referrals
//! keep arriving; at one instant every client drops its socket and resumes
//! (`subscribe` with the last seq it saw). Reports the time until every client
//! is resubscribed, and checks every client saw every event exactly once, in
//! order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use handoff_protocol::ws::{Command, StreamId};
use serde::Serialize;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{Target, Ws, connect, small_config, source_ip, start_ours};
use crate::fanout::read_until;

/// What the storm found.
#[derive(Debug, Clone, Serialize)]
pub struct ReconnectResult {
    /// How many clients reconnected at once.
    pub clients: usize,
    /// Seconds from the drop until the last client's resubscription was acknowledged.
    pub seconds: f64,
    /// Median client's time to resume, seconds.
    pub median_seconds: f64,
    /// Events that some client never received (summed over clients).
    pub lost_events: u64,
    /// Events a client received twice.
    pub duplicate_events: u64,
    /// Events on the stream during the run.
    pub events: u64,
    /// Clients that could not resume within the time limit.
    pub not_resumed: usize,
}

#[derive(Default)]
struct Tally {
    lost: AtomicU64,
    dup: AtomicU64,
}

fn seq_of(t: &str) -> Option<u64> {
    if !t.starts_with(r#"{"type":"event""#) {
        return None;
    }
    let i = t.find(r#""seq":"#)? + 6;
    let rest = &t[i..];
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

fn subscribe_frame(stream: StreamId, after: u64) -> Message {
    Message::Text(format!(r#"{{"id":1,"cmd":{{"type":"subscribe","stream":"{stream}","after_seq":{after}}}}}"#).into())
}

struct ClientCtx {
    target: Target,
    idx: usize,
    stream: StreamId,
    tally: Arc<Tally>,
    last: Arc<AtomicU64>,
    t_drop: Arc<std::sync::Mutex<Option<Instant>>>,
    resumed: Arc<std::sync::Mutex<Vec<f64>>>,
}

/// Reads one socket, accounting for every event; returns when `stop` fires or the socket ends.
async fn pump(ws: &mut Ws, c: &ClientCtx, stop: &mut watch::Receiver<u8>, level: u8, acked: &mut bool) -> bool {
    loop {
        tokio::select! {
            r = stop.wait_for(|v| *v >= level) => { let _ = r; return true; }
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    if let Some(seq) = seq_of(&t) {
                        let last = c.last.load(Ordering::Relaxed);
                        if seq <= last {
                            c.tally.dup.fetch_add(1, Ordering::Relaxed);
                        } else {
                            c.tally.lost.fetch_add(seq - last - 1, Ordering::Relaxed);
                            c.last.store(seq, Ordering::Relaxed);
                        }
                    } else if !*acked && t.contains(r#""type":"ack""#) {
                        *acked = true;
                        if let Some(t0) = *c.t_drop.lock().unwrap_or_else(|e| e.into_inner()) {
                            c.resumed.lock().unwrap_or_else(|e| e.into_inner()).push(t0.elapsed().as_secs_f64());
                        }
                    }
                }
                Some(Ok(_)) => {}
                _ => return false,
            }
        }
    }
}

async fn client(c: ClientCtx, ws: Ws, mut stop: watch::Receiver<u8>) -> Result<()> {
    let mut ws = ws;
    let mut acked = true;
    // Phase 1: live until the drop.
    pump(&mut ws, &c, &mut stop, 1, &mut acked).await;
    drop(ws);
    // Resume at once, retrying while the server is swamped.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut ws = loop {
        match connect(&c.target, Some(source_ip(c.idx, 20_000)), small_config()).await {
            Ok(mut ws) => {
                if read_until(&mut ws, "\"hello\"").await.is_ok() {
                    break ws;
                }
            }
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => bail!("could not reconnect: {e}"),
        }
        if Instant::now() > deadline {
            bail!("could not reconnect in 60 s");
        }
    };
    ws.send(subscribe_frame(c.stream, c.last.load(Ordering::Relaxed))).await?;
    let mut acked = false;
    // Phase 2: replay and live until the end.
    pump(&mut ws, &c, &mut stop, 2, &mut acked).await;
    Ok(())
}

/// Runs the storm with `clients` clients, referrals arriving at `rate` per second.
pub async fn run(bin: &std::path::Path, clients: usize, rate: u32) -> Result<ReconnectResult> {
    let server = start_ours(bin, None, None).await?;
    let w = crate::common::World::new(&server).await?;
    let stream = StreamId::Practice(w.to);
    let target = Target::ours(&server, &w.spec_token()?);
    let tally = Arc::new(Tally::default());
    let t_drop = Arc::new(std::sync::Mutex::new(None));
    let resumed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (stop, stop_rx) = watch::channel(0u8);
    let mut lasts = Vec::with_capacity(clients);
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let mut ws = connect(&target, Some(source_ip(i, 20_000)), small_config()).await?;
        read_until(&mut ws, "\"hello\"").await?;
        ws.send(subscribe_frame(stream, 0)).await?;
        read_until(&mut ws, "\"ack\"").await?;
        let last = Arc::new(AtomicU64::new(0));
        lasts.push(last.clone());
        let ctx = ClientCtx {
            target: target.clone(),
            idx: i,
            stream,
            tally: tally.clone(),
            last,
            t_drop: t_drop.clone(),
            resumed: resumed.clone(),
        };
        tasks.push(tokio::spawn(client(ctx, ws, stop_rx.clone())));
    }
    eprintln!("  reconnect: {clients} clients subscribed; referrals at {rate}/s");
    // Referrals keep arriving throughout.
    let refs = w.prepare((rate as usize) * 40, 200).await?;
    let moa = Arc::new(w.moa.live().await?);
    let sending = Arc::new(AtomicBool::new(true));
    let acked = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (moa, sending, acked) = (moa.clone(), sending.clone(), acked.clone());
        tokio::spawn(async move {
            let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
            let mut pending = Vec::new();
            for r in refs {
                if !sending.load(Ordering::Relaxed) {
                    break;
                }
                let moa = moa.clone();
                let acked = acked.clone();
                pending.push(tokio::spawn(async move {
                    if moa.command(Command::SendReferral { referral: r }).await.is_ok() {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                }));
                tokio::time::sleep(interval).await;
            }
            for p in pending {
                let _ = p.await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The storm.
    *t_drop.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    let _ = stop.send(1);
    let deadline = Instant::now() + Duration::from_secs(90);
    while resumed.lock().map(|r| r.len()).unwrap_or(0) < clients && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut times = resumed.lock().map(|r| r.clone()).unwrap_or_default();
    eprintln!("  reconnect: {} of {clients} resumed", times.len());
    tokio::time::sleep(Duration::from_secs(2)).await;
    sending.store(false, Ordering::Relaxed);
    sender.await?;
    let head = acked.load(Ordering::Relaxed) as u64;
    // Every client must reach the head.
    let deadline = Instant::now() + Duration::from_secs(30);
    while lasts.iter().any(|l| l.load(Ordering::Relaxed) < head) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(2);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let behind: u64 = lasts.iter().map(|l| head.saturating_sub(l.load(Ordering::Relaxed))).sum();
    times.sort_by(f64::total_cmp);
    let r = ReconnectResult {
        clients,
        seconds: times.last().copied().unwrap_or(f64::NAN),
        median_seconds: crate::common::pct(&times, 0.5),
        lost_events: tally.lost.load(Ordering::Relaxed) + behind,
        duplicate_events: tally.dup.load(Ordering::Relaxed),
        events: head,
        not_resumed: clients - times.len(),
    };
    eprintln!(
        "  reconnect: all resumed in {:.2} s (median {:.2} s); {} events, lost {}, duplicates {}",
        r.seconds, r.median_seconds, r.events, r.lost_events, r.duplicate_events
    );
    Ok(r)
}
