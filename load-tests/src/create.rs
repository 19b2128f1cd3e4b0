//! Referral creation throughput with many concurrent senders (issue 16): 64
//! senders, each sending its next referral as soon as its last one is
//! acknowledged, over 8 sockets of one MOA. Durable store: each referral is
//! acknowledged only once its own transaction is fsynced. Five runs with
//! group commit on (the default) and, on a second fresh server, five with
//! `group_commit = false` (one transaction and one fsync per referral, as
//! before group commit), in the same run, so the two compare.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use handoff_client::live::Live;
use handoff_protocol::ws::{Command, NewReferral};
use serde::Serialize;

use crate::common::{World, median, start_ours_with};

/// The creation runs of one server configuration.
#[derive(Debug, Clone, Serialize)]
pub struct CreateRuns {
    /// Whether group commit was on.
    pub group_commit: bool,
    /// Referrals per run.
    pub n: usize,
    /// Referrals acknowledged per second, per run, in run order.
    pub per_s: Vec<f64>,
    /// Their median.
    pub median_per_s: f64,
}

/// Creation throughput with and without group commit.
#[derive(Debug, Clone, Serialize)]
pub struct CreateResult {
    /// Concurrent senders.
    pub senders: usize,
    /// Sockets they share.
    pub sockets: usize,
    /// Group commit on, then off.
    pub runs: Vec<CreateRuns>,
}

impl CreateResult {
    /// The median of the runs with group commit on (`Some(true)`) or off.
    pub fn median(&self, grouped: bool) -> Option<f64> {
        self.runs.iter().find(|r| r.group_commit == grouped).map(|r| r.median_per_s)
    }
}

/// One run: `senders` closed-loop senders share `batch`; answers referrals acknowledged per second.
async fn one_run(sockets: &[Arc<Live>], senders: usize, batch: Vec<NewReferral>) -> Result<f64> {
    let n = batch.len();
    let queue = Arc::new(Mutex::new(batch));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(senders);
    for s in 0..senders {
        let (live, queue) = (sockets[s % sockets.len()].clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.pop();
                let Some(r) = next else { return anyhow::Ok(()) };
                live.command(Command::SendReferral { referral: r }).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

/// `runs` runs of `n` referrals each, with group commit on and then off, each setting on its own fresh server.
pub async fn run(bin: &std::path::Path, senders: usize, n: usize, n_ungrouped: usize, runs: usize) -> Result<CreateResult> {
    let sockets_n = 8;
    let mut out = Vec::new();
    for (grouped, n) in [(true, n), (false, n_ungrouped)] {
        let server = start_ours_with(bin, None, None, if grouped { "" } else { "group_commit = false\n" }).await?;
        let w = World::new(&server).await?;
        let mut sockets = Vec::with_capacity(sockets_n);
        for _ in 0..sockets_n {
            sockets.push(Arc::new(w.moa.live().await?));
        }
        // Warm-up, not recorded.
        one_run(&sockets, senders, w.prepare(200, 2000).await?).await?;
        let mut per_s = Vec::with_capacity(runs);
        for i in 0..runs {
            // Sealed before the clock starts, as a browser does before Send.
            let batch = w.prepare(n, 2000).await?;
            let r = one_run(&sockets, senders, batch).await?;
            eprintln!(
                "referral creation, {senders} senders, group commit {}: run {} {r:.0}/s over {n}",
                if grouped { "on" } else { "off" },
                i + 1
            );
            per_s.push(r);
        }
        let median_per_s = median(&per_s);
        out.push(CreateRuns { group_commit: grouped, n, per_s, median_per_s });
    }
    Ok(CreateResult { senders, sockets: sockets_n, runs: out })
}
