//! Many slow consumers (`BENCH_ONLY=slow_many`): many sockets subscribe to a
//! busy referral thread and never read, while one healthy socket keeps up,
//! and large events (thread messages of about 32 KB frames, the most a
//! message may be) are published. The server's RSS is sampled throughout and
//! compared with the documented bound: each socket's outgoing queue holds at
//! most `ws_outgoing_bytes` (8 MiB by default) before it is closed with 4008,
//! so the server grows by at most sockets × 8 MiB over its baseline (less in
//! practice: a frame fanned out is one shared buffer, not a copy per socket).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use futures_util::StreamExt as _;
use handoff_protocol::ws::StreamId;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{Target, World, start_ours};
use crate::fanout::ours_subscriber;
use crate::slow::{healthy_reader, post_all, thread};

/// Bytes queued per socket before close 4008 (`ws_outgoing_bytes`, default).
pub const OUTGOING_BYTES: u64 = 8 * 1024 * 1024;

/// What the run found.
#[derive(Debug, Clone, Serialize)]
pub struct SlowManyResult {
    /// Sockets that never read.
    pub stalled_sockets: usize,
    /// Messages posted.
    pub messages: usize,
    /// Bytes per event frame.
    pub frame_bytes: usize,
    /// Bytes of events each stalled socket was sent (messages × frame bytes).
    pub offered_per_socket: u64,
    /// Server RSS with every socket open, before the load, bytes.
    pub rss_before: u64,
    /// Peak server RSS while the consumers stalled.
    pub rss_peak: u64,
    /// RSS at the end.
    pub rss_after: u64,
    /// The documented bound: `rss_before` + sockets × `ws_outgoing_bytes`.
    pub bound_bytes: u64,
    /// Whether the peak stayed within the bound.
    pub within_bound: bool,
    /// Stalled sockets the server closed with 4008 (slow consumer).
    pub closed_slow: usize,
    /// Stalled sockets that ended otherwise (a description each, deduplicated with counts).
    pub other_outcomes: Vec<(String, usize)>,
    /// Messages the healthy socket received, of `messages`.
    pub healthy_received: usize,
    /// RSS samples (seconds, bytes).
    pub samples: Vec<(f64, u64)>,
}

/// Opens `sockets` stalled subscribers and one healthy one on a referral
/// thread, then posts `messages` messages of about `text_bytes` at `rate`/s.
pub async fn run(bin: &std::path::Path, sockets: usize, messages: usize, text_bytes: usize, rate: f64) -> Result<SlowManyResult> {
    let server = start_ours(bin, None, None).await?;
    let w = World::new(&server).await?;
    let moa = w.moa.live().await?;
    let (referral, sealed) = thread(&w, &moa, messages, text_bytes).await?;
    let mut lives = vec![Arc::new(moa)];
    for _ in 0..3 {
        lives.push(Arc::new(w.moa.live().await?));
    }
    let target = Target::ours(&server, &w.spec_token()?);
    let stream = StreamId::Referral(referral);
    let mut stalled = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        stalled.push(ours_subscriber(&target, None, stream, 0).await?.0);
    }
    let (healthy, _) = ours_subscriber(&target, None, stream, 0).await?;
    eprintln!("  slow_many: {sockets} stalled sockets open, {messages} messages sealed");
    let got = Arc::new(AtomicUsize::new(0));
    let frame_len = Arc::new(AtomicUsize::new(0));
    let reader = healthy_reader(healthy, messages, got.clone(), frame_len.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = server.rss();
    let samples = post_all(&server, &lives, referral, sealed, rate, &got).await;
    let rss_after = server.rss();
    let _ = reader.await;

    // Read every stalled socket to its end: what the kernel held, then how it ended.
    let mut ends = Vec::with_capacity(sockets);
    for mut ws in stalled {
        ends.push(tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                match tokio::time::timeout_at(deadline, ws.next()).await {
                    Err(_) => return "still open: never cut off".to_string(),
                    Ok(Some(Ok(Message::Close(Some(f))))) => return format!("closed with {}", u16::from(f.code)),
                    Ok(Some(Ok(Message::Close(None)))) => return "closed without a code".to_string(),
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(e))) => return format!("connection ended: {e}"),
                    Ok(None) => return "connection ended (EOF)".to_string(),
                }
            }
        }));
    }
    let mut closed_slow = 0;
    let mut other: Vec<(String, usize)> = Vec::new();
    let slow = format!("closed with {}", handoff_protocol::ws::close::SLOW_CONSUMER);
    for e in ends {
        let outcome = e.await.unwrap_or_else(|e| format!("reader failed: {e}"));
        if outcome == slow {
            closed_slow += 1;
        } else if let Some(o) = other.iter_mut().find(|(s, _)| *s == outcome) {
            o.1 += 1;
        } else {
            other.push((outcome, 1));
        }
    }
    let frame_bytes = frame_len.load(Ordering::Relaxed);
    let rss_peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let bound_bytes = rss_before + sockets as u64 * OUTGOING_BYTES;
    let r = SlowManyResult {
        stalled_sockets: sockets,
        messages,
        frame_bytes,
        offered_per_socket: (messages * frame_bytes) as u64,
        rss_before,
        rss_peak,
        rss_after,
        bound_bytes,
        within_bound: rss_peak <= bound_bytes,
        closed_slow,
        other_outcomes: other,
        healthy_received: got.load(Ordering::Relaxed),
        samples,
    };
    eprintln!(
        "  slow_many: {} stalled sockets, {} messages of {} B frames ({:.1} MiB offered to each); server RSS {:.1} → peak {:.1} MiB, \
         bound {:.1} MiB ({}); {} closed with 4008, others {:?}; healthy got {}",
        r.stalled_sockets,
        r.messages,
        r.frame_bytes,
        r.offered_per_socket as f64 / 1048576.0,
        r.rss_before as f64 / 1048576.0,
        r.rss_peak as f64 / 1048576.0,
        r.bound_bytes as f64 / 1048576.0,
        if r.within_bound { "within" } else { "EXCEEDED" },
        r.closed_slow,
        r.other_outcomes,
        r.healthy_received
    );
    Ok(r)
}
