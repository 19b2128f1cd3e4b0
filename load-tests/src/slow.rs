//! Slow consumer: one socket subscribes to a busy referral thread and stops
//! reading, while a healthy socket keeps up. The server's RSS is sampled
//! throughout and compared with the documented bound: at most
//! `ws_outgoing_buffer` (1024) frames queued for the stalled socket, then
//! close 4008. The healthy socket must get every message.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::StreamExt as _;
use handoff_client::live::Live;
use handoff_crypto::referral::MessageBody;
use handoff_protocol::B64;
use handoff_protocol::ws::{AckBody, Command, MessageId, ReferralId, StreamId, ThreadMessage};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{Server, Target, World, Ws, start_ours};
use crate::fanout::ours_subscriber;

/// Frames queued per socket before close 4008 (`ws_outgoing_buffer`, default).
pub const OUTGOING_BUFFER: usize = 1024;

/// What the slow-consumer run found.
#[derive(Debug, Clone, Serialize)]
pub struct SlowResult {
    /// Messages posted.
    pub messages: usize,
    /// Bytes per event frame.
    pub frame_bytes: usize,
    /// The documented bound on what the stalled socket may hold in the server: 1024 frames.
    pub bound_bytes: u64,
    /// Server RSS before, bytes.
    pub rss_before: u64,
    /// Peak server RSS while the consumer stalled.
    pub rss_peak: u64,
    /// RSS at the end.
    pub rss_after: u64,
    /// How the stalled socket ended: a close code, or how the connection ended.
    pub stalled_outcome: String,
    /// Frames the stalled socket had received (kernel buffers included) when it read again.
    pub stalled_received: usize,
    /// Messages the healthy socket received, of `messages`.
    pub healthy_received: usize,
    /// Server RSS growth for the same messages with no stalled socket (the control run before), bytes.
    pub control_growth: u64,
    /// RSS samples (seconds, bytes).
    pub samples: Vec<(f64, u64)>,
}

/// A new referral and `messages` sealed thread messages for it.
pub(crate) async fn thread(w: &World, moa: &Live, messages: usize, text_bytes: usize) -> Result<(ReferralId, Vec<ThreadMessage>)> {
    let r = w.prepare(1, 500).await?.remove(0);
    let referral = match moa.command(Command::SendReferral { referral: r }).await? {
        AckBody::ReferralSent { referral, .. } => referral,
        other => bail!("unexpected answer {other:?}"),
    };
    let rec = w.moa.referral(referral).await?;
    let key = w.moa.referral_key(&rec).await?;
    let me = w.moa.identity()?;
    let mut sealed = Vec::with_capacity(messages);
    for i in 0..messages {
        let id = MessageId(uuid::Uuid::new_v4());
        let text = format!("{i} ") + &"y".repeat(text_bytes);
        let (body, sig) = key.seal_message(referral, id, &me.secrets, &MessageBody { text, written_at: 0 })?;
        sealed.push(ThreadMessage { id, body: B64(body), signature: B64(sig.to_vec()) });
    }
    Ok((referral, sealed))
}

/// A socket that reads every `message_posted` frame until it has `messages` of them (or 120 s pass).
pub(crate) fn healthy_reader(
    mut healthy: Ws,
    messages: usize,
    got: Arc<AtomicUsize>,
    frame_len: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while got.load(Ordering::Relaxed) < messages
            && let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, healthy.next()).await
        {
            if let Message::Text(t) = m
                && t.contains("message_posted")
            {
                frame_len.store(t.len(), Ordering::Relaxed);
                got.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

/// Posts at `rate` over the `lives`, sampling the server's RSS; waits until `got` reaches the count.
pub(crate) async fn post_all(
    server: &Server,
    lives: &[Arc<Live>],
    referral: ReferralId,
    sealed: Vec<ThreadMessage>,
    rate: f64,
    got: &AtomicUsize,
) -> Vec<(f64, u64)> {
    let messages = sealed.len();
    let t0 = Instant::now();
    let mut samples = vec![(0.0, server.rss())];
    let mut tasks = Vec::new();
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut next_sample = Instant::now();
    for (k, m) in sealed.into_iter().enumerate() {
        let due = t0 + interval.mul_f64(k as f64);
        let now = Instant::now();
        if due > now {
            tokio::time::sleep(due - now).await;
        }
        if Instant::now() >= next_sample {
            samples.push((t0.elapsed().as_secs_f64(), server.rss()));
            next_sample += Duration::from_millis(200);
        }
        let live = lives[k % lives.len()].clone();
        tasks.push(tokio::spawn(async move { live.command(Command::PostMessage { referral, message: m }).await }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.load(Ordering::Relaxed) < messages && Instant::now() < deadline {
        samples.push((t0.elapsed().as_secs_f64(), server.rss()));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    samples.push((t0.elapsed().as_secs_f64(), server.rss()));
    samples
}

/// Posts `messages` messages of about `text_bytes` at `rate` per second: first
/// with only a healthy socket (the control), then on another thread with a
/// stalled socket beside the healthy one.
pub async fn run(bin: &std::path::Path, messages: usize, text_bytes: usize, rate: f64) -> Result<SlowResult> {
    let server = start_ours(bin, None, None).await?;
    let w = World::new(&server).await?;
    let moa = w.moa.live().await?;
    let (control_ref, control_msgs) = thread(&w, &moa, messages, text_bytes).await?;
    let (referral, sealed) = thread(&w, &moa, messages, text_bytes).await?;
    let mut lives = vec![Arc::new(moa)];
    for _ in 0..3 {
        lives.push(Arc::new(w.moa.live().await?));
    }
    eprintln!("  slow consumer: 2 × {messages} messages sealed");
    let target = Target::ours(&server, &w.spec_token()?);

    // Control: the same load with nobody stalled.
    let (healthy, _) = ours_subscriber(&target, None, StreamId::Referral(control_ref), 0).await?;
    let got = Arc::new(AtomicUsize::new(0));
    let frame_len = Arc::new(AtomicUsize::new(0));
    let reader = healthy_reader(healthy, messages, got.clone(), frame_len.clone());
    let control = post_all(&server, &lives, control_ref, control_msgs, rate, &got).await;
    let _ = reader.await;
    let control_growth = control.iter().map(|s| s.1).max().unwrap_or(0).saturating_sub(control.first().map(|s| s.1).unwrap_or(0));
    eprintln!("  slow consumer: control run grew the server's RSS by {:.1} MiB", control_growth as f64 / 1048576.0);

    // The stall.
    let stream = StreamId::Referral(referral);
    let (stalled, _) = ours_subscriber(&target, None, stream, 0).await?;
    let (healthy, _) = ours_subscriber(&target, None, stream, 0).await?;
    let got = Arc::new(AtomicUsize::new(0));
    let reader = healthy_reader(healthy, messages, got.clone(), frame_len.clone());
    let rss_before = server.rss();
    let samples = post_all(&server, &lives, referral, sealed, rate, &got).await;
    let rss_after = server.rss();
    // Now read the stalled socket: what the kernel held, then how it ended.
    let mut stalled = stalled;
    let mut stalled_received = 0usize;
    let read_deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut quiet_since = tokio::time::Instant::now();
    let outcome = loop {
        if tokio::time::Instant::now() > read_deadline || quiet_since.elapsed() > Duration::from_secs(5) {
            break "still open: never cut off".to_string();
        }
        match tokio::time::timeout(Duration::from_secs(1), stalled.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => {
                stalled_received += 1;
                quiet_since = tokio::time::Instant::now();
            }
            Ok(Some(Ok(Message::Close(Some(f))))) => break format!("closed by the server with {}", u16::from(f.code)),
            Ok(Some(Ok(Message::Close(None)))) => break "closed by the server without a code".to_string(),
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(Some(Err(e))) => break format!("connection ended: {e}"),
            Ok(None) => break "connection ended (EOF)".to_string(),
        }
    };
    let _ = reader.await;
    let frame_bytes = frame_len.load(Ordering::Relaxed);
    let r = SlowResult {
        messages,
        frame_bytes,
        bound_bytes: (OUTGOING_BUFFER * frame_bytes) as u64,
        rss_before,
        rss_peak: samples.iter().map(|s| s.1).max().unwrap_or(0),
        rss_after,
        stalled_outcome: outcome,
        stalled_received,
        healthy_received: got.load(Ordering::Relaxed),
        control_growth,
        samples,
    };
    eprintln!(
        "  slow consumer: {} messages of {} B frames; server RSS {:.1} → peak {:.1} MiB (bound {:.1} MiB queued); stalled socket: {} after {} frames; healthy got {}",
        r.messages,
        r.frame_bytes,
        r.rss_before as f64 / 1048576.0,
        r.rss_peak as f64 / 1048576.0,
        r.bound_bytes as f64 / 1048576.0,
        r.stalled_outcome,
        r.stalled_received,
        r.healthy_received
    );
    Ok(r)
}
