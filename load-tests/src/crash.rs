//! Crash under load (the long form of the short SIGKILL test in
//! server/tests/integration/hub.rs): sockets submit referrals as fast as the
//! server takes them; the server is SIGKILLed mid-stream and restarted on the
//! same data, several times. Every referral acknowledged before a kill must
//! be there afterwards: in the practice's listing and on its inbox stream.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use handoff_protocol::ws::{AckBody, Command, Event, ReferralId, StreamId};
use serde::Serialize;

use crate::common::{World, free_port, start_ours};

/// What the crash runs found.
#[derive(Debug, Clone, Serialize)]
pub struct CrashResult {
    /// SIGKILLs.
    pub kills: usize,
    /// Referrals acknowledged before a kill.
    pub acknowledged: usize,
    /// Submitted but unanswered when the server died (may or may not exist).
    pub in_flight_at_kill: usize,
    /// Acknowledged and then missing after restart.
    pub lost: usize,
    /// Events on the specialist's inbox stream after the last restart.
    pub stream_events: u64,
    /// Seconds from restart to healthy, median.
    pub restart_secs: f64,
}

/// `kills` cycles of `load_secs` of load then SIGKILL.
pub async fn run(bin: &std::path::Path, kills: usize, load_secs: f64) -> Result<CrashResult> {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let mut server = start_ours(bin, Some(dir.path().to_path_buf()), Some(port)).await?;
    let w = Arc::new(World::new(&server).await?);
    let acked: Arc<Mutex<HashSet<ReferralId>>> = Arc::default();
    let mut in_flight = 0usize;
    let mut restarts = Vec::new();
    for cycle in 0..kills {
        let refs = w.prepare(2500, 500).await?;
        let mut lives = Vec::new();
        for _ in 0..4 {
            lives.push(Arc::new(w.moa.live().await?));
        }
        let queue = Arc::new(Mutex::new(refs));
        let mut tasks = Vec::new();
        for live in lives {
            let (queue, acked) = (queue.clone(), acked.clone());
            tasks.push(tokio::spawn(async move {
                let mut unanswered = 0usize;
                while let Some(r) = queue.lock().ok().and_then(|mut q| q.pop()) {
                    match live.command(Command::SendReferral { referral: r }).await {
                        Ok(AckBody::ReferralSent { referral, .. }) => {
                            if let Ok(mut a) = acked.lock() {
                                a.insert(referral);
                            }
                        }
                        _ => {
                            unanswered += 1;
                            break;
                        }
                    }
                }
                unanswered
            }));
        }
        tokio::time::sleep(Duration::from_secs_f64(load_secs)).await;
        server.sigkill()?;
        for t in tasks {
            in_flight += t.await.unwrap_or(0);
        }
        let n = acked.lock().map(|a| a.len()).unwrap_or(0);
        eprintln!("  crash {}: SIGKILL after {load_secs} s of load; {n} acknowledged so far", cycle + 1);
        let t0 = Instant::now();
        let data = server.data.clone();
        drop(server);
        server = start_ours(bin, Some(data), Some(port)).await?;
        restarts.push(t0.elapsed().as_secs_f64());
    }
    // Everything acknowledged must be there: replay the specialist's whole inbox stream.
    let mut spec = w.spec.live().await?;
    let head = spec.subscribe(StreamId::Practice(w.to), 0).await.context("resubscribing after the crashes")?;
    let mut present: HashSet<ReferralId> = HashSet::new();
    while let Some(e) = spec.next_event(Duration::from_secs(2)).await {
        if let Event::ReferralSent { referral } = e.event {
            present.insert(referral.id);
        }
        if e.seq >= head {
            break;
        }
    }
    let acked = acked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let lost = acked.difference(&present).count();
    let r = CrashResult {
        kills,
        acknowledged: acked.len(),
        in_flight_at_kill: in_flight,
        lost,
        stream_events: head,
        restart_secs: crate::common::median(&restarts),
    };
    eprintln!(
        "  crash: {} kills, {} acknowledged, {} lost, {} in flight at the kills",
        r.kills, r.acknowledged, r.lost, r.in_flight_at_kill
    );
    drop(server);
    Ok(r)
}
