//! `handoff-bench [HANDOFF_BIN]`: starts the release `handoff` binary on
//! loopback with fresh embedded stores (durable: WAL, synchronous=FULL), drives
//! it through real WebSockets (the native client and real crypto where the
//! path needs it), runs the same fan-out and idle measurements against two
//! baselines (`handoff-baseline`, tokio-tungstenite; `load-tests/node`, Node's
//! `ws`), and writes `BENCHMARKS.md`, `load-tests/plots/*.svg` and
//! `target/bench/results.json`.
//!
//! Every scenario is bounded in count and time, stops by itself, and talks
//! only to 127.0.0.0/8. Crypto (sealing content, wraps, messages) is done
//! before any clock starts, as a browser does it before pressing Send.
//!
//! Options (environment):
//! - `BENCH_ONLY=push,create,fanout,idle,reconnect,crash,slow,slow_many,static,rooms,inbox20k,inbox2k` (or `--only fanout`):
//!   run only these; results go to `target/bench/partial.json` and the report
//!   is left alone.
//! - `BENCH_QUICK=1`: smaller counts, for development.
//! - `BENCH_IDLE_CONNECTIONS` (100000), `BENCH_FANOUT_N` (`10,100,1000`), `BENCH_FANOUT_REPS` (5: rounds of ours and the baseline, interleaved),
//!   `BENCH_RECONNECT_CLIENTS` (2000).
//! - `BENCH_WEB_DIR` (`target/web-dist`): the built web client whose first
//!   visit `static` measures (`cargo xtask bench` builds it).

mod common;
mod crash;
mod create;
mod fanout;
mod idle;
mod inbox;
mod plot;
mod push;
mod reconnect;
mod report;
mod rooms;
mod slow;
mod slow_many;
mod statics;

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use crate::common::{Baseline, Target, World, start_baseline, start_ours};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// Everything one run measured (each part absent when not run).
#[derive(Debug, Default)]
pub struct Results {
    /// Machine facts.
    pub machine: Option<common::Machine>,
    /// Push and creation.
    pub push: Option<push::PushResult>,
    /// Fan-out runs (ours and baselines).
    pub fanout: Vec<fanout::Run>,
    /// Idle runs (ours and baselines).
    pub idle: Vec<idle::IdleResult>,
    /// Reconnect storm.
    pub reconnect: Option<reconnect::ReconnectResult>,
    /// Crash runs.
    pub crash: Option<crash::CrashResult>,
    /// Slow consumer.
    pub slow: Option<slow::SlowResult>,
    /// Many slow consumers, large events: RSS against the byte bound.
    pub slow_many: Option<slow_many::SlowManyResult>,
    /// The bytes of a first visit to the web client, before and after compression.
    pub statics: Option<statics::StaticResult>,
    /// The waiting room: 500 guests, 3 hosts (issue 15).
    pub rooms: Option<rooms::RoomsResult>,
    /// Referral creation with 64 concurrent senders, group commit on and off (issue 16).
    pub create: Option<create::CreateResult>,
    /// Inbox runs in Chromium (issue 16, wt-inbox).
    pub inbox: Vec<inbox::InboxResult>,
    /// Open-file limit in force.
    pub nofile: u64,
    /// Idle connections asked for (before the open-file limit capped it).
    pub idle_asked: usize,
    /// Seconds the whole run took.
    pub seconds: f64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut bin = PathBuf::from("target/release/handoff");
    let mut only: Option<String> = std::env::var("BENCH_ONLY").ok().filter(|s| !s.is_empty());
    while let Some(a) = args.next() {
        if a == "--only" {
            only = args.next();
        } else if let Some(v) = a.strip_prefix("--only=") {
            only = Some(v.to_string());
        } else {
            bin = PathBuf::from(a);
        }
    }
    let baseline_bin = std::env::current_exe()?.with_file_name("handoff-baseline");
    let quick = std::env::var("BENCH_QUICK").map(|v| v == "1").unwrap_or(false);
    let wants = |s: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x.trim() == s));
    let started = std::time::Instant::now();
    let nofile = common::raise_nofile(400_000);
    eprintln!("open-file limit: {nofile}");
    let out_dir = PathBuf::from("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    let mut res = Results { machine: Some(common::machine()), nofile, ..Default::default() };

    if wants("push") {
        eprintln!("\n== referral push and creation");
        // The target's step (200/s) runs three times; the target reads the median.
        let rates: &[(u32, u32)] = if quick { &[(50, 3), (200, 3)] } else { &[(50, 6), (100, 6), (200, 6), (200, 6), (200, 6), (300, 6)] };
        res.push = Some(push::run(&bin, rates, if quick { 500 } else { 2000 }).await?);
    }
    if wants("create") {
        eprintln!("\n== referral creation, 64 concurrent senders (group commit on, then off)");
        let (n, n_off, runs) = if quick { (1000, 500, 3) } else { (4000, 1500, 5) };
        res.create = Some(create::run(&bin, 64, n, n_off, runs).await?);
    }
    if wants("fanout") {
        eprintln!("\n== fan-out");
        // Each N runs BENCH_FANOUT_REPS times (five) on ours and on the tokio-tungstenite baseline, the two
        // interleaved (ours N, baseline N, next N, ..., then the next round), so that drift on this shared
        // machine hits both alike; the figures and ratios read the medians. Node ws runs once per N after.
        let default_ns = if quick { "10,100" } else { "10,100,1000" };
        let ns: Vec<usize> = std::env::var("BENCH_FANOUT_N")
            .unwrap_or_else(|_| default_ns.into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        let reps = env_usize("BENCH_FANOUT_REPS", if quick { 1 } else { 5 }).max(1);
        let servers = std::env::var("BENCH_FANOUT_SERVERS").unwrap_or_else(|_| "ours,baseline,node_ws".into());
        let mut ours = fanout::Ours::start(&bin).await?;
        for rep in 0..reps {
            for &n in &ns {
                eprintln!("  round {} of {reps}, N = {n}", rep + 1);
                res.fanout.push(ours.run(n).await?);
                if servers.contains("baseline") {
                    res.fanout.push(fanout::run_baseline(Baseline::Rust, &baseline_bin, n, &ours.frame).await?);
                }
            }
        }
        if servers.contains("node_ws") {
            for &n in &ns {
                match fanout::run_baseline(Baseline::Node, &baseline_bin, n, &ours.frame).await {
                    Ok(r) => res.fanout.push(r),
                    Err(e) => eprintln!("node ws baseline failed: {e:#}"),
                }
            }
        }
    }
    if wants("slow") {
        eprintln!("\n== slow consumer");
        res.slow = Some(slow::run(&bin, if quick { 2500 } else { 3000 }, 16 * 1024, 300.0).await?);
    }
    if wants("slow_many") {
        eprintln!("\n== many slow consumers (byte bound)");
        res.slow_many = Some(slow_many::run(&bin, if quick { 16 } else { 64 }, if quick { 300 } else { 500 }, 24_000, 250.0).await?);
    }
    if wants("reconnect") {
        eprintln!("\n== reconnect storm");
        res.reconnect = Some(reconnect::run(&bin, env_usize("BENCH_RECONNECT_CLIENTS", if quick { 500 } else { 2000 }), 20).await?);
    }
    if wants("crash") {
        eprintln!("\n== crash (SIGKILL under load)");
        res.crash = Some(crash::run(&bin, if quick { 2 } else { 3 }, 4.0).await?);
    }
    if wants("idle") {
        eprintln!("\n== idle connections");
        // Each socket costs a descriptor on both sides; the limit caps what one process can hold.
        let fd_room = (nofile as usize).saturating_sub(500);
        let asked = env_usize("BENCH_IDLE_CONNECTIONS", if quick { 10_000 } else { 100_000 });
        let count = asked.min(fd_room);
        if count < asked {
            eprintln!("  idle: asked for {asked}, but the open-file limit is {nofile} and cannot be raised here: trying {count}");
        }
        res.idle_asked = asked;
        let base_count = env_usize("BENCH_IDLE_BASELINE_CONNECTIONS", if quick { 5_000 } else { 10_000 }).min(fd_room);
        let cap: u64 = 12 << 30;
        {
            let server = start_ours(&bin, None, None).await?;
            let w = World::new(&server).await?;
            let t = Target::ours(&server, &w.spec_token()?);
            res.idle.push(idle::run("ours", server.child.id(), &t, count, true, 20, cap).await?);
        }
        for (kind, name) in [(Baseline::Rust, "baseline"), (Baseline::Node, "node_ws")] {
            match start_baseline(kind, &baseline_bin).await {
                Ok(server) => {
                    let t = Target::baseline(&server);
                    res.idle.push(idle::run(name, server.child.id(), &t, base_count, false, 10, cap).await?);
                }
                Err(e) => eprintln!("{name} baseline failed: {e:#}"),
            }
        }
    }
    if wants("static") {
        eprintln!("\n== first-visit bytes of the web client");
        let web = std::env::var("BENCH_WEB_DIR").unwrap_or_else(|_| "target/web-dist".into());
        let r = statics::run(&bin, std::path::Path::new(&web)).await?;
        eprintln!("\n{}", report::static_section(&r));
        res.statics = Some(r);
    }
    if wants("rooms") {
        eprintln!("\n== waiting room (500 guests, 3 hosts)");
        res.rooms = Some(rooms::run(&bin, &baseline_bin, env_usize("BENCH_ROOM_GUESTS", 500)).await?);
    }
    // The inbox in the browser (issue 16, wt-inbox).
    for (key, n) in [("inbox2k", 2_000), ("inbox20k", 20_000)] {
        if only.as_deref().is_some_and(|o| o.split(',').any(|x| x.trim() == key)) || (only.is_none() && key == "inbox20k") {
            eprintln!("\n== inbox in the browser, {n} referrals");
            let web = std::env::var("BENCH_WEB_DIR").unwrap_or_else(|_| "target/web-dist".into());
            let n = if quick { n / 10 } else { n };
            res.inbox.push(inbox::run(&bin, std::path::Path::new(&web), n, key).await?);
        }
    }
    res.seconds = started.elapsed().as_secs_f64();

    let json = results_json(&res);
    if only.is_some() {
        std::fs::write(out_dir.join("partial.json"), serde_json::to_string_pretty(&json)?)?;
        std::fs::write(out_dir.join("partial.md"), report::markdown(&res))?;
        eprintln!("\nwrote target/bench/partial.json and partial.md (a partial run leaves BENCHMARKS.md alone)");
    } else {
        std::fs::write(out_dir.join("results.json"), serde_json::to_string_pretty(&json)?)?;
        let plots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plots");
        std::fs::create_dir_all(&plots)?;
        for (name, svg) in report::plots(&res) {
            std::fs::write(plots.join(name), svg)?;
        }
        std::fs::write("BENCHMARKS.md", report::markdown(&res))?;
        eprintln!("\nwrote BENCHMARKS.md, load-tests/plots/*.svg and target/bench/results.json in {:.0} s", res.seconds);
    }
    Ok(())
}

/// The deliveries/s of every run of `server` at `n` subscribers, in run order.
fn fan_reps(res: &Results, server: &str, n: usize) -> Vec<f64> {
    res.fanout.iter().filter(|r| r.server == server && r.subscribers == n).map(|r| r.deliveries_per_s).collect()
}

/// The median of `items` by `key` (the lower middle one of an even count).
fn median_by<'a, T: Clone + 'a>(items: impl Iterator<Item = &'a T>, key: impl Fn(&T) -> f64) -> Option<T> {
    let mut v: Vec<&T> = items.collect();
    v.sort_by(|a, b| key(a).total_cmp(&key(b)));
    v.get(v.len().saturating_sub(1) / 2).map(|t| (*t).clone())
}

/// The N the fan-out ran at, ascending.
fn fan_ns(res: &Results) -> Vec<usize> {
    let mut ns: Vec<usize> = res.fanout.iter().map(|r| r.subscribers).collect();
    ns.sort_unstable();
    ns.dedup();
    ns
}

/// The median deliveries/s of `server`'s runs at `n` (the mean of the two middle ones for an even count).
fn fan_median(res: &Results, server: &str, n: usize) -> Option<f64> {
    let mut v = fan_reps(res, server, n);
    v.sort_by(f64::total_cmp);
    let k = v.len();
    match k {
        0 => None,
        _ if k % 2 == 1 => v.get(k / 2).copied(),
        _ => Some((v.get(k / 2 - 1)? + v.get(k / 2)?) / 2.0),
    }
}

/// The run of `server` at `n` subscribers; when it ran more than once, the median run by deliveries/s.
fn fan(res: &Results, server: &str, n: usize) -> Option<fanout::Run> {
    median_by(res.fanout.iter().filter(|r| r.server == server && r.subscribers == n), |r| r.deliveries_per_s)
}

/// The push step at `rate`; when it ran more than once, the one with the median p99.
fn push_at(res: &Results, rate: u32) -> Option<push::PushStep> {
    median_by(res.push.as_ref()?.steps.iter().filter(|s| s.rate_per_s == rate), |s| s.p99_ms)
}

fn idle_of(res: &Results, server: &str) -> Option<idle::IdleResult> {
    res.idle.iter().find(|r| r.server == server).cloned()
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (a.is_finite() && b.is_finite() && b > 0.0).then(|| a / b)
}

/// The figures as data: the keys the issue names, then the detail.
fn results_json(res: &Results) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("machine".into(), json!(res.machine));
    m.insert("nofile_limit".into(), json!(res.nofile));
    m.insert("run_seconds".into(), json!(res.seconds));
    for r in &res.inbox {
        let b = &r.browser;
        m.insert(format!("{}.first_rows_ms", r.key), json!(b.first_rows_ms));
        m.insert(format!("{}.search_ready_ms", r.key), json!(b.search_ready_ms));
        m.insert(format!("{}.search_ready_reload_ms", r.key), json!(b.search_ready_reload_ms));
        m.insert(format!("{}.heap_mb", r.key), json!(b.heap_mb));
        m.insert(format!("{}.detail", r.key), json!(r));
    }
    if let Some(p) = &res.push {
        let main = push_at(res, 200).or_else(|| p.steps.last().cloned());
        if let Some(s) = main {
            m.insert("referral_push.rate_per_s".into(), json!(s.rate_per_s));
            m.insert("referral_push.p50_ms".into(), json!(s.p50_ms));
            m.insert("referral_push.p99_ms".into(), json!(s.p99_ms));
            m.insert("referral_push.p999_ms".into(), json!(s.p999_ms));
        }
        m.insert("referral_push.steps".into(), json!(p.steps));
        m.insert("referral_create.per_s".into(), json!(p.create_per_s));
        m.insert("referral_create.n".into(), json!(p.create_n));
    }
    if let Some(c) = &res.create {
        m.insert("create.per_s_64".into(), json!(c.median(true)));
        m.insert("create.per_s_64_target".into(), json!(4000));
        m.insert("create.per_s_64_without_group_commit".into(), json!(c.median(false)));
        m.insert("create.runs".into(), json!(c));
    }
    if !res.fanout.is_empty() {
        // The keys: at each N, the median of our runs over the median of the baseline's (same run, interleaved).
        for n in fan_ns(res) {
            let (o, b) = (fan_median(res, "ours", n), fan_median(res, "baseline", n));
            m.insert(format!("fanout.n{n}_ratio"), json!(o.zip(b).and_then(|(a, b)| ratio(a, b))));
            m.insert(format!("fanout.n{n}_ours_deliveries_per_s"), json!(o));
            m.insert(format!("fanout.n{n}_baseline_deliveries_per_s"), json!(b));
            m.insert(format!("fanout.n{n}_node_ws_deliveries_per_s"), json!(fan_median(res, "node_ws", n)));
            m.insert(format!("fanout.n{n}_target"), json!(fanout::target_ratio(n)));
            m.insert(format!("fanout.n{n}_runs"), json!(fan_reps(res, "ours", n).len()));
        }
        let n = res.fanout.iter().map(|r| r.subscribers).max().unwrap_or(0);
        let get = |s: &str| fan_median(res, s, n);
        m.insert("fanout.subscribers".into(), json!(n));
        m.insert("fanout.ours_deliveries_per_s".into(), json!(get("ours")));
        m.insert("fanout.baseline_deliveries_per_s".into(), json!(get("baseline")));
        m.insert("fanout.node_ws_deliveries_per_s".into(), json!(get("node_ws")));
        m.insert("fanout.ours_p99_ms".into(), json!(fan(res, "ours", n).map(|r| r.p99_ms)));
        m.insert("fanout.ratio_to_baseline".into(), json!(get("ours").zip(get("baseline")).and_then(|(a, b)| ratio(a, b))));
        m.insert("fanout.ratio_to_node_ws".into(), json!(get("ours").zip(get("node_ws")).and_then(|(a, b)| ratio(a, b))));
        m.insert("fanout.runs".into(), json!(res.fanout));
    }
    if let Some(o) = idle_of(res, "ours") {
        m.insert("idle.connections".into(), json!(o.connections));
        m.insert("idle.bytes_per_connection".into(), json!(o.bytes_per_connection));
        m.insert("idle.target".into(), json!(o.target));
        m.insert("idle.stopped".into(), json!(o.stopped));
    }
    for name in ["baseline", "node_ws"] {
        if let Some(b) = idle_of(res, name) {
            m.insert(format!("idle.{name}_bytes_per_connection"), json!(b.bytes_per_connection));
            m.insert(format!("idle.{name}_connections"), json!(b.connections));
        }
    }
    if !res.idle.is_empty() {
        m.insert("idle.runs".into(), json!(res.idle));
    }
    if let Some(r) = &res.reconnect {
        m.insert("reconnect.clients".into(), json!(r.clients));
        m.insert("reconnect.seconds".into(), json!(r.seconds));
        m.insert("reconnect.lost_events".into(), json!(r.lost_events));
        m.insert("reconnect.detail".into(), json!(r));
    }
    if let Some(c) = &res.crash {
        m.insert("crash.kills".into(), json!(c.kills));
        m.insert("crash.acknowledged".into(), json!(c.acknowledged));
        m.insert("crash.lost".into(), json!(c.lost));
        m.insert("crash.detail".into(), json!(c));
    }
    if let Some(s) = &res.slow {
        m.insert("slow_consumer.rss_growth_bytes".into(), json!(s.rss_peak.saturating_sub(s.rss_before)));
        m.insert("slow_consumer.bound_bytes".into(), json!(s.bound_bytes));
        m.insert("slow_consumer.outcome".into(), json!(s.stalled_outcome));
        m.insert("slow_consumer.detail".into(), json!(s));
    }
    if let Some(s) = &res.slow_many {
        m.insert("slow_many.stalled_sockets".into(), json!(s.stalled_sockets));
        m.insert("slow_many.rss_growth_bytes".into(), json!(s.rss_peak.saturating_sub(s.rss_before)));
        m.insert("slow_many.bound_bytes".into(), json!(s.bound_bytes));
        m.insert("slow_many.within_bound".into(), json!(s.within_bound));
        m.insert("slow_many.closed_slow".into(), json!(s.closed_slow));
        m.insert("slow_many.detail".into(), json!(s));
    }
    if let Some(s) = &res.statics {
        m.insert("static.first_visit_bytes".into(), json!(s.first_visit_bytes));
        m.insert("static.first_visit_bytes_uncompressed".into(), json!(s.first_visit_bytes_uncompressed));
        m.insert("static.first_visit_bytes_gzip".into(), json!(s.first_visit_bytes_gzip));
        m.insert("static.files".into(), json!(s.files));
    }
    if let Some(r) = &res.rooms {
        m.insert("rooms.guests".into(), json!(r.guests));
        m.insert("rooms.hosts".into(), json!(r.hosts));
        m.insert("rooms.checkin_to_hosts_p50_ms".into(), json!(r.checkin_to_hosts_p50_ms));
        m.insert("rooms.checkin_to_hosts_p99_ms".into(), json!(r.checkin_to_hosts_p99_ms));
        m.insert("rooms.admit_to_guest_p50_ms".into(), json!(r.admit_to_guest_p50_ms));
        m.insert("rooms.admit_to_guest_p99_ms".into(), json!(r.admit_to_guest_p99_ms));
        m.insert("rooms.baseline_one_hop_p50_ms".into(), json!(r.baseline_one_hop_p50_ms));
        m.insert("rooms.baseline_one_hop_p99_ms".into(), json!(r.baseline_one_hop_p99_ms));
    }
    serde_json::Value::Object(m)
}
