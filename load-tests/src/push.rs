//! Referral push (submitted on the MOA's socket → received on the
//! specialist's socket) at stepped rates, and referral creation throughput.
//! Durable store: every referral is fsynced before it is acknowledged or pushed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use handoff_client::live::Live;
use handoff_protocol::ws::{Command, Event, NewReferral, ReferralId, StreamId};
use serde::Serialize;

use crate::common::{Server, World, pct, start_ours};

/// One rate step.
#[derive(Debug, Clone, Serialize)]
pub struct PushStep {
    /// Offered referrals per second.
    pub rate_per_s: u32,
    /// Referrals received.
    pub n: usize,
    /// Latencies, ms.
    pub p50_ms: f64,
    /// p99, ms.
    pub p99_ms: f64,
    /// p999, ms.
    pub p999_ms: f64,
}

/// Push steps and creation throughput.
#[derive(Debug, Clone, Serialize)]
pub struct PushResult {
    /// Each step.
    pub steps: Vec<PushStep>,
    /// Referrals created per second (8 sockets, as fast as they go).
    pub create_per_s: f64,
    /// How many were created.
    pub create_n: usize,
}

/// Sends `referrals` at `rate` per second; measures submit → specialist socket.
async fn push_at(moa: &Arc<Live>, spec: Live, referrals: Vec<NewReferral>, rate: u32) -> Result<(PushStep, Live)> {
    let n = referrals.len();
    let received: Arc<Mutex<HashMap<ReferralId, Instant>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = {
        let (received, stop) = (received.clone(), stop.clone());
        let mut spec = spec;
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(e) = spec.next_event(Duration::from_millis(100)).await
                    && let Event::ReferralSent { referral } = e.event
                    && let Ok(mut m) = received.lock()
                {
                    m.insert(referral.id, Instant::now());
                }
            }
            spec
        })
    };
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = Instant::now();
    let mut sent = HashMap::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    for (i, r) in referrals.into_iter().enumerate() {
        let due = start + interval * i as u32;
        let now = Instant::now();
        if due > now {
            tokio::time::sleep(due - now).await;
        }
        sent.insert(r.id, Instant::now());
        let moa = moa.clone();
        tasks.push(tokio::spawn(async move { moa.command(Command::SendReferral { referral: r }).await }));
    }
    for t in tasks {
        t.await??;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.lock().map(|m| m.len()).unwrap_or(0) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let spec = receiver.await?;
    let got = received.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut lat: Vec<f64> =
        sent.iter().filter_map(|(id, t0)| got.get(id).map(|t1| t1.duration_since(*t0).as_secs_f64() * 1000.0)).collect();
    lat.sort_by(f64::total_cmp);
    Ok((PushStep { rate_per_s: rate, n: lat.len(), p50_ms: pct(&lat, 0.5), p99_ms: pct(&lat, 0.99), p999_ms: pct(&lat, 0.999) }, spec))
}

/// Runs the push steps, then the creation throughput, on a fresh server.
pub async fn run(bin: &std::path::Path, rates: &[(u32, u32)], create_n: usize) -> Result<PushResult> {
    let server: Server = start_ours(bin, None, None).await?;
    let w = World::new(&server).await?;
    let moa = Arc::new(w.moa.live().await?);
    let spec = w.spec.live().await?;
    spec.subscribe(StreamId::Practice(w.to), 0).await?;

    // Warm-up, not recorded.
    let warm = w.prepare(50, 2000).await?;
    let (_, mut spec) = push_at(&moa, spec, warm, 100).await?;

    let mut steps = Vec::new();
    for &(rate, secs) in rates {
        let batch = w.prepare((rate * secs) as usize, 2000).await?;
        let (r, back) = push_at(&moa, spec, batch, rate).await?;
        spec = back;
        eprintln!("referral push at {rate}/s: n={} p50={:.2} ms p99={:.2} ms p999={:.2} ms", r.n, r.p50_ms, r.p99_ms, r.p999_ms);
        steps.push(r);
    }

    // Creation throughput: 8 sockets, as fast as they go.
    let batch = w.prepare(create_n, 2000).await?;
    let mut sockets: Vec<Arc<Live>> = Vec::new();
    for _ in 0..8 {
        sockets.push(Arc::new(w.moa.live().await?));
    }
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (i, r) in batch.into_iter().enumerate() {
        let s = sockets[i % sockets.len()].clone();
        tasks.push(tokio::spawn(async move { s.command(Command::SendReferral { referral: r }).await }));
    }
    for t in tasks {
        t.await??;
    }
    let create_per_s = create_n as f64 / t0.elapsed().as_secs_f64();
    eprintln!("referral creation: {create_per_s:.0}/s over {create_n}");
    Ok(PushResult { steps, create_per_s, create_n })
}
