//! `handoff-bench`: starts the release `handoff` binary on loopback with a
//! fresh embedded store (durable: WAL, synchronous=FULL), drives it through
//! real WebSockets with the native client and real crypto, and writes
//! `BENCHMARKS.md` and `target/bench/results.json`.
//!
//! Scenarios (each bounded in count and time, loopback only):
//! - referral push: a referral submitted by the MOA's socket until the
//!   specialist's socket receives it, at stepped rates; p50/p99/p999.
//! - referral creation throughput: as fast as 8 sockets can submit.
//!
//! Crypto (sealing content and wraps) is done before the clock starts, as a
//! browser does it before pressing Send.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use handoff_client::Client;
use handoff_client::live::Live;
use handoff_client::referrals::To;
use handoff_crypto::ReferralContent;
use handoff_crypto::referral::Demographics;
use handoff_protocol::v1::{Intake, PracticeKind};
use handoff_protocol::ws::{Command, Event, NewReferral, ReferralId, Routing, StreamId, Urgency};

const PASSWORD: &str = "benchmark password 1";

struct Server {
    child: Child,
    url: String,
    data: tempfile::TempDir,
    bin: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(bin: &Path) -> Result<Server> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let data = tempfile::tempdir()?;
    let child = Proc::new(bin)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting handoff")?;
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/healthz")).await
            && r.status().is_success()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("server did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Server { child, url, data, bin: bin.to_path_buf() })
}

fn routing() -> Routing {
    Routing {
        specialty: "cardiology".into(),
        category: "arrhythmia".into(),
        subcategory: None,
        region: "fraser".into(),
        urgency: Urgency::Routine,
    }
}

fn content(i: usize) -> ReferralContent {
    ReferralContent {
        patient: Demographics { name: format!("Bench Patient {i}"), date_of_birth: "1970-01-01".into(), ..Default::default() },
        reason: "benchmark".into(),
        clinical_details: "x".repeat(2000),
    }
}

struct World {
    moa: Client,
    spec: Client,
    from: handoff_protocol::PracticeId,
    to: handoff_protocol::PracticeId,
}

async fn world(s: &Server) -> Result<World> {
    let mut moa = Client::new(&s.url);
    moa.register("moa@bench.example", "MOA", PASSWORD, None).await?;
    let from = moa.create_practice("Bench Family", PracticeKind::Referring, None, Some("fraser"), vec![]).await?.id;
    let mut spec = Client::new(&s.url);
    spec.register("spec@bench.example", "Spec", PASSWORD, None).await?;
    let to = spec
        .create_practice(
            "Bench Cardiology",
            PracticeKind::Specialist,
            Some("cardiology"),
            Some("fraser"),
            vec![Intake { category: "arrhythmia".into(), subcategory: None }],
        )
        .await?
        .id;
    let out = Proc::new(&s.bin).args(["admin", "--data"]).arg(s.data.path()).args(["verify-practice", &to.to_string()]).output()?;
    if !out.status.success() {
        bail!("verify failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(World { moa, spec, from, to })
}

async fn prepare(w: &World, n: usize) -> Result<Vec<NewReferral>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(w.moa.prepare_referral(w.from, To::Practice(w.to), routing(), &content(i), &[]).await?.0);
    }
    Ok(out)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[derive(Debug)]
struct PushResult {
    rate: u32,
    count: usize,
    p50: f64,
    p99: f64,
    p999: f64,
}

/// Sends `referrals` at `rate` per second; measures submit → specialist socket.
/// A separate task timestamps each receipt the moment it arrives.
async fn push_at(moa: &Arc<Live>, spec: Live, referrals: Vec<NewReferral>, rate: u32) -> Result<(PushResult, Live)> {
    let n = referrals.len();
    let received: Arc<Mutex<HashMap<ReferralId, Instant>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let receiver = {
        let (received, stop) = (received.clone(), stop.clone());
        let mut spec = spec;
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
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
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let spec = receiver.await?;
    let got = received.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut lat: Vec<f64> =
        sent.iter().filter_map(|(id, t0)| got.get(id).map(|t1| t1.duration_since(*t0).as_secs_f64() * 1000.0)).collect();
    lat.sort_by(f64::total_cmp);
    Ok((PushResult { rate, count: lat.len(), p50: pct(&lat, 0.5), p99: pct(&lat, 0.99), p999: pct(&lat, 0.999) }, spec))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let bin = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("target/release/handoff"));
    let out_dir = PathBuf::from("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let server = start(&bin).await?;
    let w = world(&server).await?;
    let moa = Arc::new(w.moa.live().await?);
    let spec = w.spec.live().await?;
    spec.subscribe(StreamId::Practice(w.to), 0).await?;

    // Warm-up, not recorded.
    let warm = prepare(&w, 50).await?;
    let (_, mut spec) = push_at(&moa, spec, warm, 100).await?;

    let mut pushes = Vec::new();
    for (rate, secs) in [(50u32, 6u32), (100, 6), (200, 6)] {
        let batch = prepare(&w, (rate * secs) as usize).await?;
        let (r, back) = push_at(&moa, spec, batch, rate).await?;
        spec = back;
        eprintln!("referral push at {rate}/s: n={} p50={:.2} ms p99={:.2} ms p999={:.2} ms", r.count, r.p50, r.p99, r.p999);
        pushes.push(r);
    }

    // Creation throughput: 8 sockets, as fast as they go.
    let n = 2000;
    let batch = prepare(&w, n).await?;
    let sockets: Vec<Arc<Live>> = {
        let mut v = Vec::new();
        for _ in 0..8 {
            v.push(Arc::new(w.moa.live().await?));
        }
        v
    };
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for (i, r) in batch.into_iter().enumerate() {
        let s = sockets[i % sockets.len()].clone();
        tasks.push(tokio::spawn(async move { s.command(Command::SendReferral { referral: r }).await }));
    }
    for t in tasks {
        t.await??;
    }
    let create_per_s = n as f64 / t0.elapsed().as_secs_f64();
    eprintln!("referral creation: {create_per_s:.0}/s over {n}");

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let main = pushes.iter().find(|p| p.rate == 200).or(pushes.last()).context("no results")?;
    let json = serde_json::json!({
        "machine": { "cpu": cpu, "cores": cores },
        "referral_push.rate_per_s": main.rate,
        "referral_push.p50_ms": main.p50,
        "referral_push.p99_ms": main.p99,
        "referral_push.p999_ms": main.p999,
        "referral_push.steps": pushes.iter().map(|p| serde_json::json!({"rate_per_s": p.rate, "n": p.count, "p50_ms": p.p50, "p99_ms": p.p99, "p999_ms": p.p999})).collect::<Vec<_>>(),
        "referral_create.per_s": create_per_s,
    });
    std::fs::write(out_dir.join("results.json"), serde_json::to_string_pretty(&json)?)?;
    let mut md = String::from("# Benchmarks\n\n");
    md.push_str(&format!(
        "Measured by `cargo xtask bench` (load-tests/src/main.rs) on {cores} cores ({cpu}), server and load generator on the same machine, loopback only. \
         The server is the release `handoff` binary on a fresh embedded store with durability on: SQLite WAL with `synchronous=FULL`, \
         so every referral is fsynced before it is acknowledged or pushed. Percentiles from one run; these machines are shared and noisy, so compare figures from the same run.\n\n"
    ));
    md.push_str("## Referral push: submitted on the MOA's socket → received on the specialist's socket\n\n| rate (referrals/s) | n | p50 ms | p99 ms | p999 ms |\n|---|---|---|---|---|\n");
    for p in &pushes {
        md.push_str(&format!("| {} | {} | {:.2} | {:.2} | {:.2} |\n", p.rate, p.count, p.p50, p.p99, p.p999));
    }
    md.push_str(&format!(
        "\n## Referral creation throughput\n\n{create_per_s:.0} referrals/s, {n} referrals over 8 sockets, each committed (referral, three stream events, idempotency record) in one fsynced transaction.\n\n\
         **What limits these figures:** one RoutingActor creates referrals one at a time (that is what keeps \"choose for me\" balanced), and each creation waits for \
         its own fsync; throughput is therefore bounded by the disk's fsync latency. Latency includes the client's own JSON parsing. \
         The fan-out, idle-connection, reconnect-storm and baseline comparisons of the load-test issue are not measured yet.\n"
    ));
    std::fs::write("BENCHMARKS.md", md)?;
    eprintln!("wrote BENCHMARKS.md and target/bench/results.json");
    drop(server);
    Ok(())
}
