//! BENCHMARKS.md and the SVG plots, from one run's results.

use std::fmt::Write as _;

use crate::fanout::TARGETS;
use crate::fanout::target_ratio;
use crate::plot::{Series, bars, lines};
use crate::{Results, fan, fan_median, fan_ns, fan_reps, idle_of, push_at, ratio};

const MIB: f64 = 1024.0 * 1024.0;

fn f(v: f64, d: usize) -> String {
    if v.is_finite() { format!("{v:.d$}") } else { "—".into() }
}

fn ratio_s(a: f64, b: f64) -> String {
    ratio(a, b).map(|r| format!("{r:.2}×")).unwrap_or_else(|| "—".into())
}

fn servers() -> [(&'static str, &'static str); 3] {
    [("ours", "Handoff"), ("baseline", "tokio-tungstenite baseline"), ("node_ws", "Node ws")]
}

/// (file name, SVG) for each plot.
pub fn plots(res: &Results) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(p) = &res.push {
        let labels: Vec<String> = p.steps.iter().map(|s| format!("{}/s", s.rate_per_s)).collect();
        let mk = |name: &str, g: fn(&crate::push::PushStep) -> f64| Series {
            name: name.into(),
            points: p.steps.iter().enumerate().map(|(i, s)| (i as f64, g(s))).collect(),
        };
        out.push((
            "push.svg".into(),
            lines(
                "Referral push latency (durable store)",
                "offered referrals per second",
                "ms",
                &labels,
                &[mk("p50", |s| s.p50_ms), mk("p99", |s| s.p99_ms), mk("p999", |s| s.p999_ms)],
            ),
        ));
    }
    if !res.fanout.is_empty() {
        let mut ns: Vec<usize> = res.fanout.iter().map(|r| r.subscribers).collect();
        ns.sort_unstable();
        ns.dedup();
        let cats: Vec<String> = ns.iter().map(|n| format!("N = {n}")).collect();
        let series: Vec<Series> = servers()
            .iter()
            .map(|(k, name)| Series {
                name: (*name).into(),
                points: ns
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (i as f64, fan(res, k, *n).map(|r| r.deliveries_per_s).unwrap_or(0.0)))
                    .collect(),
            })
            .collect();
        out.push((
            "fanout.svg".into(),
            bars("Fan-out: deliveries/s with p99 < 100 ms", "subscribers", "deliveries per second", &cats, &series),
        ));
    }
    if let Some(o) = idle_of(res, "ours") {
        let labels: Vec<String> = o.samples.iter().map(|s| format!("{}k", s.0 / 1000)).collect();
        let series = [Series {
            name: "server RSS".into(),
            points: o.samples.iter().enumerate().map(|(i, s)| (i as f64, s.1 as f64 / MIB)).collect(),
        }];
        out.push(("idle.svg".into(), lines("Idle authenticated WebSockets: server RSS", "connections", "MiB", &labels, &series)));
    }
    if let Some(s) = &res.slow {
        let step = (s.samples.len() / 12).max(1);
        let pick: Vec<&(f64, u64)> = s.samples.iter().step_by(step).collect();
        let labels: Vec<String> = pick.iter().map(|p| format!("{:.0}s", p.0)).collect();
        let series = [
            Series { name: "server RSS".into(), points: pick.iter().enumerate().map(|(i, p)| (i as f64, p.1 as f64 / MIB)).collect() },
            Series {
                name: "RSS before + bound".into(),
                points: pick.iter().enumerate().map(|(i, _)| (i as f64, (s.rss_before + s.bound_bytes) as f64 / MIB)).collect(),
            },
        ];
        out.push(("slow_consumer.svg".into(), lines("Slow consumer: server RSS while one socket stalls", "time", "MiB", &labels, &series)));
    }
    out
}

/// What the slow-consumer figures say, in words.
fn slow_verdict(s: &crate::slow::SlowResult) -> String {
    let growth = s.rss_peak.saturating_sub(s.rss_before);
    let allowed = s.bound_bytes + s.control_growth;
    let head = if growth <= allowed {
        "The growth stays within the bound plus the control's growth: the stalled socket cost at most its 1024 queued frames.".to_string()
    } else {
        format!(
            "The growth exceeds the bound plus the control's growth by {:.1} MiB: the queue itself is capped at 1024 frames, \
             but RSS also counts allocator slack (glibc keeps freed frame buffers in its arenas rather than returning them, \
             and the control's peak and the stall's peak fall on different pages), so read the bound as the queue's share, \
             not an exact ceiling on RSS.",
            (growth - allowed) as f64 / MIB
        )
    };
    format!(
        "{head} The stalled socket was then closed, so its memory stops growing: RSS at the end was {:.1} MiB. The healthy \
         socket on the same thread got {} of {} messages.",
        s.rss_after as f64 / MIB,
        s.healthy_received,
        s.messages
    )
}

/// The report.
pub fn markdown(res: &Results) -> String {
    let mut md = String::from("# Benchmarks\n\n");
    let m = res.machine.clone().unwrap_or_else(crate::common::machine);
    let _ = write!(
        md,
        "Written by `cargo xtask bench` (load-tests/, binary `handoff-bench`) in one run of {:.0} s. \
         **Machine:** {} cores ({}), {:.0} GiB RAM, Linux {}; the server, the baselines and the load generator share these 2 cores, \
         on loopback only. The servers run one at a time. These machines are shared with other work and noisy: \
         compare figures from the same run, and read each figure as a floor. Open-file limit raised to {} for the bench and its servers.\n\n\
         **Our server** is the release `handoff` binary on a fresh embedded store (a new temporary directory per scenario) \
         with durability on: SQLite in WAL mode with `synchronous=FULL`, so every referral, status change and thread message is \
         fsynced before it is acknowledged or pushed (**fsync policy: group commit: the commands queued behind one fsync \
         share its transaction, each in its own savepoint; nothing acknowledged or pushed before its own transaction is durable**). Clients use real WebSockets, real Argon2id sign-up, \
         and real client-side encryption (done before each clock starts, as a browser does before Send).\n\n\
         **Baselines, run in the same run on the same frames:** `handoff-baseline` (load-tests/src/bin/baseline.rs: tokio with 2 workers, \
         tokio-tungstenite, one tokio broadcast channel; the practical limit) and Node's `ws` (load-tests/node/broadcast.js, \
         installed by `npm ci` from the committed lock file; the server a team would otherwise pick). They relay, byte for byte, \
         a copy of our own event frame, and they do no authentication, authorisation, storage or JSON.\n\n",
        res.seconds, m.cores, m.cpu, m.mem_gib, m.kernel, res.nofile
    );

    // Summary against the targets.
    md.push_str("## Targets\n\n| target | goal | measured | |\n|---|---|---|---|\n");
    let nmax = res.fanout.iter().map(|r| r.subscribers).max().unwrap_or(0);
    for n in fan_ns(res) {
        let Some(goal) = target_ratio(n) else { continue };
        let o = fan_median(res, "ours", n).unwrap_or(f64::NAN);
        let b = fan_median(res, "baseline", n).unwrap_or(f64::NAN);
        let runs = fan_reps(res, "ours", n).len();
        let ok = ratio(o, b).is_some_and(|r| r >= goal);
        let _ = writeln!(
            md,
            "| fan-out at {n} subscribers (`fanout.n{n}_ratio`) | ≥ {goal}× the tokio-tungstenite baseline | {} deliveries/s = {} of the baseline's {} (medians of {runs}) | {} |",
            f(o, 0),
            ratio_s(o, b),
            f(b, 0),
            if ok { "met" } else { "**missed**" }
        );
    }
    if let Some(o) = idle_of(res, "ours") {
        let _ = writeln!(
            md,
            "| RSS per idle authenticated connection | ≤ 16 KB | {:.1} KB | {} |",
            o.bytes_per_connection / 1000.0,
            if o.bytes_per_connection <= 16_000.0 { "met" } else { "**missed**" }
        );
        let _ = writeln!(
            md,
            "| idle connections held | 100,000 | {}{} | {} |",
            o.connections,
            if res.idle_asked > o.target {
                format!(" (all that one process's {} open files allow here; see §3)", res.nofile)
            } else {
                String::new()
            },
            if o.connections >= 100_000 { "met" } else { "**missed**" }
        );
    }
    if let Some(s) = push_at(res, 200) {
        let _ = writeln!(
            md,
            "| referral push p99 at 200 referrals/s | < 20 ms | {} ms{} | {} |",
            f(s.p99_ms, 2),
            {
                let reps: Vec<String> =
                    res.push.iter().flat_map(|p| &p.steps).filter(|s| s.rate_per_s == 200).map(|s| f(s.p99_ms, 2)).collect();
                if reps.len() > 1 { format!(" (median of {} runs: {})", reps.len(), reps.join(", ")) } else { String::new() }
            },
            if s.p99_ms < 20.0 { "met" } else { "**missed**" }
        );
    }
    if let Some(c) = &res.create
        && let Some(on) = c.median(true)
    {
        let _ = writeln!(
            md,
            "| referral creation, {} concurrent senders | ≥ 4,000/s | {}/s (median of {} runs; without group commit {}/s) | {} |",
            c.senders,
            f(on, 0),
            c.runs.first().map_or(0, |r| r.per_s.len()),
            c.median(false).map_or_else(|| "not measured".into(), |v| f(v, 0)),
            if on >= 4000.0 { "met" } else { "**missed**" }
        );
    }
    let mut lost = Vec::new();
    if let Some(r) = &res.reconnect {
        lost.push(format!("reconnect storm {}", r.lost_events));
    }
    if let Some(c) = &res.crash {
        lost.push(format!("SIGKILL runs {}", c.lost));
    }
    if !lost.is_empty() {
        let zero = res.reconnect.as_ref().is_none_or(|r| r.lost_events == 0) && res.crash.as_ref().is_none_or(|c| c.lost == 0);
        let _ = writeln!(md, "| lost events | 0 | {} | {} |", lost.join(", "), if zero { "met" } else { "**missed**" });
    }
    md.push('\n');

    if let Some(p) = &res.push {
        md.push_str("## 1. Referral push: submitted on the MOA's socket → received on the specialist's socket\n\n![push latency](load-tests/plots/push.svg)\n\n");
        md.push_str("| offered rate (referrals/s) | n | p50 ms | p99 ms | p999 ms |\n|---|---|---|---|---|\n");
        for s in &p.steps {
            let _ = writeln!(md, "| {} | {} | {} | {} | {} |", s.rate_per_s, s.n, f(s.p50_ms, 2), f(s.p99_ms, 2), f(s.p999_ms, 2));
        }
        if p.steps.iter().filter(|s| s.rate_per_s == 200).count() > 1 {
            md.push_str(
                "\nThe 200/s step, the target's, runs three times in a row on the same server; the target reads the median p99, \
                 since one scheduling stall on this shared machine moves a single run's p99 by several milliseconds.\n",
            );
        }
        md.push_str(
            "\nEach referral carries about 2 KB of sealed clinical content plus its key wraps. The clock starts when the MOA's \
             socket writes `send_referral` and stops when the specialist's socket has the `referral_sent` event, so it covers \
             routing, a durable SQLite transaction (referral, three stream events, idempotency record; group-committed with \
             whatever else is queued) and the push. \
             **What limits it:** the fsync (each referral waits for its batch's) and, at the higher steps, \
             the 2 shared cores: the generator and the server compete, so p99 and p999 show scheduling stalls. \
             The baselines have no store and no routing, so this figure has no baseline ratio.\n\n",
        );
        let _ = write!(
            md,
            "## 4. Referral creation throughput (durability on)\n\n**{:.0} referrals/s**: {} referrals from 8 sockets, as fast as the server \
             acknowledges them, each durable before it is acknowledged.\n\n**What limits it:** each socket's sender waits for its \
             acknowledgement before the next, so this is about 8 / (commit latency + routing work); §4b has 64 senders.\n\n",
            p.create_per_s, p.create_n
        );
    }

    if let Some(c) = &res.create {
        md.push_str(&create_section(c));
    }

    if !res.fanout.is_empty() {
        md.push_str("## 2. Fan-out: one thread message to a referral watched by N members\n\n![fan-out](load-tests/plots/fanout.svg)\n\n");
        md.push_str(
            "Figures are **deliveries per second at which p99 < 100 ms and every delivery arrived**: the message rate is stepped \
             up (2 s per step, after 10 unmeasured warm-up messages) until a step misses either, and the last passing step is reported.\n\n",
        );
        md.push_str(
            "Each N runs five times on ours and on the tokio-tungstenite baseline, interleaved (ours at N, the baseline at N, the \
             next N, then the next round), so that drift on this shared machine hits both alike; each figure below is the median \
             of its runs, and the ratio is the median of ours over the median of the baseline's. Node ws runs once per N, after.\n\n",
        );
        md.push_str(
            "| N | Handoff deliveries/s | p99 ms | baseline deliveries/s | Handoff ÷ baseline | target | | Node ws deliveries/s | Handoff ÷ Node ws |\n|---|---|---|---|---|---|---|---|---|\n",
        );
        let ns = fan_ns(res);
        for n in &ns {
            let o = fan(res, "ours", *n);
            let od = fan_median(res, "ours", *n).unwrap_or(f64::NAN);
            let b = fan_median(res, "baseline", *n).unwrap_or(f64::NAN);
            let nw = fan_median(res, "node_ws", *n).unwrap_or(f64::NAN);
            let goal = target_ratio(*n);
            let _ = writeln!(
                md,
                "| {n} | {} | {} | {} | {} | {} | {} | {} | {} |",
                f(od, 0),
                o.as_ref().map(|r| f(r.p99_ms, 1)).unwrap_or_default(),
                f(b, 0),
                ratio_s(od, b),
                goal.map(|g| format!("≥ {g}×")).unwrap_or_else(|| "—".into()),
                match goal {
                    Some(g) if ratio(od, b).is_some_and(|r| r >= g) => "met",
                    Some(_) => "**missed**",
                    None => "",
                },
                f(nw, 0),
                ratio_s(od, nw)
            );
        }
        md.push_str("\nAll runs, deliveries/s, in run order:\n\n");
        for n in &ns {
            let reps: Vec<String> = servers()
                .iter()
                .filter_map(|(k, name)| {
                    let r = fan_reps(res, k, *n);
                    (!r.is_empty()).then(|| format!("{name} {}", r.iter().map(|d| f(*d, 0)).collect::<Vec<_>>().join(", ")))
                })
                .collect();
            let o = fan_reps(res, "ours", *n);
            let b = fan_reps(res, "baseline", *n);
            let paired: Vec<String> = o.iter().zip(&b).map(|(a, b)| ratio_s(*a, *b)).collect();
            let _ = writeln!(
                md,
                "- N = {n}: {}; ratio per round {}.",
                reps.join("; "),
                if paired.is_empty() { "—".into() } else { paired.join(", ") }
            );
        }
        let frame = res.fanout.first().map(|r| r.frame_bytes).unwrap_or(0);
        let _ = write!(
            md,
            "\nEvery server gets the same N sockets and the same {frame}-byte event frame (ours: a real `message_posted` event, \
             body sealed and signed by the author's client; the baselines relay a byte-for-byte copy). The message id encodes \
             the send time's index, so each of the N receivers computes per-delivery latency the same way for all three. \
             **Subscribers:** the N sockets share one specialist session (one token, many sockets — as many tabs and devices \
             of one member do; the protocol allows it and the server authorises each socket's `subscribe` against the \
             referral's practices). Creating N real accounts would cost N Argon2id runs on both sides without changing the fan-out path. \
             Our messages are posted by the MOA over 4 sockets, and each is durable (group-committed) before it is pushed.\n\n\
             **What limits these figures:** at small N the message rate is high and ours is bound by the work each message costs \
             the server before its push: parsing, the access check, a durable commit (three stream events, the idempotency record, \
             its audit entry), where the baselines have no store; a `perf record --call-graph dwarf` of the server at N = 10 puts \
             about half of its CPU in the group-commit writer (SQLite's WAL writes and the fsync) and a quarter in thread switches. \
             A run fails at the first step where a message's delivery passes 100 ms, and ours shows single stalls of the first \
             delivery (the commit) of 100 to 200 ms at message rates as low as 50/s, which is why its runs at N = 100 and 1000 \
             range from far below to above the baseline: a stall, not throughput. The likely cause, not verified: SQLite's WAL \
             auto-checkpoint, which runs inside the writer's commit every 1000 pages. At N = 1000 \
             the work is writing frames: the referral actor queues a shared frame to each socket's bounded queue (a push that never \
             waits, and no copy: the frame's bytes are shared), and each socket's loop writes everything queued, flushing once; the generator's own receiving of N × rate frames competes for the same \
             2 cores, which caps all three servers alike. The N = 1000 ratio moves between runs on this shared machine \
             (single runs went from 0.5× to 1.5× of the baseline while this was written, hence five interleaved runs and their medians), so compare within one run. \
             \"First delivery\" is the p99 over messages of each message's earliest delivery: for ours it is the fsynced commit \
             plus one write, so where it approaches 100 ms the commit (the disk, and CPU shared with the generator), not the \
             fan-out, failed the step.\n"
        );
        // Where our p99 goes at the largest N: the commit (first delivery) and the spread after it, against the baseline's.
        let last_pass =
            |k: &str| fan(res, k, nmax).and_then(|r| r.steps.iter().rev().find(|s| s.delivered == s.expected && s.p99_ms < 100.0).cloned());
        if let (Some(o), Some(b)) = (last_pass("ours"), last_pass("baseline")) {
            let _ = write!(
                md,
                "\n**Where the time goes at N = {nmax}, measured:** at its last passing step (median run) our p99 of {} ms is a \
                 first-delivery p99 of {} ms, i.e. the durable commit and one write, plus {} ms of spread across the {nmax} \
                 sockets; the baseline's p99 of {} ms is {} ms of first delivery, since it stores nothing, plus {} ms of \
                 spread. The fan-out proper (the spread) is of the same order or shorter in ours; what ours adds is the \
                 commit's latency under load: each thread message's access is read concurrently, then the referral's \
                 actor decides the messages one at a time in arrival order and group-commits them, so the messages queued \
                 behind one fsync share it.{}\n",
                f(o.p99_ms, 1),
                f(o.first_delivery_p99_ms, 1),
                f(o.p99_ms - o.first_delivery_p99_ms, 1),
                f(b.p99_ms, 1),
                f(b.first_delivery_p99_ms, 1),
                f(b.p99_ms - b.first_delivery_p99_ms, 1),
                {
                    let top = TARGETS.last().copied().unwrap_or(0.0);
                    let at_top: Vec<&str> = servers()
                        .iter()
                        .filter(|(k, _)| fan(res, k, nmax).is_some_and(|r| r.deliveries_per_s >= top))
                        .map(|(_, name)| *name)
                        .collect();
                    if at_top.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " {} passed the ladder's top step ({} deliveries/s), so that figure is a floor, not a limit.",
                            at_top.join(" and "),
                            f(top, 0)
                        )
                    }
                }
            );
        }
        md.push_str("\nSteps (offered deliveries/s → delivered / expected, p99 ms):\n\n");
        for r in &res.fanout {
            let steps: Vec<String> = r
                .steps
                .iter()
                .map(|s| {
                    format!(
                        "{:.0} → {}/{}, p99 {} (first delivery {})",
                        s.offered_deliveries_per_s,
                        s.delivered,
                        s.expected,
                        f(s.p99_ms, 1),
                        f(s.first_delivery_p99_ms, 1)
                    )
                })
                .collect();
            let _ = writeln!(md, "- {} N={}: {}", r.server, r.subscribers, steps.join("; "));
        }
        md.push('\n');
    }

    if !res.idle.is_empty() {
        md.push_str("## 3. Idle connections\n\n![idle RSS](load-tests/plots/idle.svg)\n\n");
        md.push_str("| server | asked | held after the hold | RSS before MiB | RSS after MiB | bytes per connection | connect s | stopped early because |\n|---|---|---|---|---|---|---|---|\n");
        for r in &res.idle {
            let name = servers().iter().find(|s| s.0 == r.server).map(|s| s.1).unwrap_or("?");
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {:.1} | {:.1} | {:.0} | {:.1} | {} |",
                r.target,
                r.connections,
                r.rss_before as f64 / MIB,
                r.rss_after as f64 / MIB,
                r.bytes_per_connection,
                r.connect_secs,
                r.stopped.clone().unwrap_or_else(|| "—".into())
            );
        }
        if let Some(o) = idle_of(res, "ours") {
            let b = idle_of(res, "baseline").map(|r| r.bytes_per_connection).unwrap_or(f64::NAN);
            let nw = idle_of(res, "node_ws").map(|r| r.bytes_per_connection).unwrap_or(f64::NAN);
            let _ = writeln!(
                md,
                "\nHandoff's RSS per idle connection is {} of the tokio-tungstenite baseline's and {} of Node ws's.",
                ratio_s(o.bytes_per_connection, b),
                ratio_s(o.bytes_per_connection, nw)
            );
        }
        if let Some(o) = idle_of(res, "ours")
            && res.idle_asked > o.target
        {
            let _ = write!(
                md,
                "\n**Why not {asked}:** every socket costs one file descriptor in the server process (and one in the generator). \
                 Here the hard `RLIMIT_NOFILE` is {lim} and cannot be raised: the sandbox's root lacks `CAP_SYS_RESOURCE`, so \
                 `setrlimit`/`prlimit` refuse anything above it (`fs.nr_open` would allow 1,048,576). The bench therefore asks for \
                 {target}, what the limit leaves room for. Nothing else stopped it: at the measured {per:.1} KB per connection, \
                 {asked} sockets would take about {mib:.0} MiB of server RSS, well inside this machine's memory; on a host where \
                 the limit can be raised (`LimitNOFILE=` in the service unit, or `ulimit -n`), also raise actix-web's per-worker \
                 connection cap is already out of the way (`MAX_CONNECTIONS_PER_WORKER` in `server/src/app.rs`: 100,000 per worker, \
                 where actix's default is 25,000).\n",
                asked = res.idle_asked,
                lim = res.nofile,
                target = o.target,
                per = o.bytes_per_connection / 1000.0,
                mib = o.bytes_per_connection * res.idle_asked as f64 / MIB
            );
        }
        md.push_str(
            "\nEach socket of ours authenticated with a bearer session (one specialist session shared, as above) and received \
             `hello`; each then sits idle and answers the server's pings. Client sockets bind source addresses 127.0.0.2, \
             127.0.0.3, … (20,000 per address, and each server's run its own addresses, clear of the last run's closing sockets) so the ephemeral port range does not cap the count; the bench raises its \
             open-file limit (and its servers', which inherit it) with `prlimit`. Bytes per connection = (server RSS after \
             the hold − RSS before connecting) / connections held. The baselines are measured with fewer sockets, enough for \
             a per-connection figure. **Profiled, fixed, and what limits it now** (heaptrack on the release server \
             holding 3,000 idle sockets; `heaptrack -o prof target/release/handoff serve …`, then `heaptrack_print --print-peaks 1`): \
             the figure was 17.3 KB, over the 16 KB target. The peak-consumer report put 8 KiB + 8 KiB per socket in \
             actix-http's HTTP/1 dispatcher (`BytesMut::with_capacity(HW_BUFFER_SIZE)` for its read and write buffers, \
             kept for the socket's whole life because an actix-ws socket is a streaming response inside the dispatcher), \
             about 1.3 KiB in actix-ws's session channel, 1.3 KiB in a second task per socket, about 1.4 KiB in our \
             outgoing tokio channel (its first 32-slot block and channel state), and the access logger's formatted fields \
             held until the response ended, i.e. until the socket closed. Two changes: (1) the outgoing queue is a \
             `VecDeque` behind a mutex with a `Notify`, empty and heap-free while idle, frames are shared (written \
             without a copy), and sockets are out of the access log (17.3 → 15.9 KB); (2) `/ws` leaves the dispatcher at \
             the upgrade: actix-http's upgrade service hands it the TCP socket, the dispatcher and its buffers are \
             dropped, and tokio-tungstenite runs the socket inside the connection's own task, with the handshake's \
             futures boxed so the long-lived task keeps only the socket loop (15.9 → about 9 KB). What is left per socket: \
             tungstenite's 4 KiB read buffer (`READ_BUFFER` in `server/src/live.rs`; it grows only for a frame that \
             needs more), the connection task with the socket loop's state (about 1.5 KiB), the kernel-socket registration, \
             the outgoing queue's handle and the ping timer. The tokio-tungstenite baseline has the same 4 KiB read buffer \
             and nothing else, which is why it is the floor. A socket that once read or wrote a large frame keeps a buffer \
             that size (up to 256 KiB) until it closes.\n\n",
        );
    }

    if let Some(r) = &res.reconnect {
        let _ = write!(
            md,
            "## 5. Reconnect storm\n\n{} clients watch the specialist's inbox (`practice:<id>`) while referrals arrive at 20/s. \
             At one instant every client drops its socket, reconnects at once and resubscribes with the last seq it saw.\n\n\
             | clients | all resumed in s | median client s | events on the stream | lost events | duplicates | not resumed |\n|---|---|---|---|---|---|---|\n\
             | {} | {} | {} | {} | **{}** | {} | {} |\n\n\
             \"Resumed\" is the moment the server acknowledged the client's `subscribe`; each client then checks that its seqs \
             run 1, 2, 3, … with no gap and no repeat up to the stream's final head. **What limits it:** each resume is a \
             WebSocket upgrade with a session lookup in the store, then a replay read from the store by the practice actor, \
             one subscriber at a time. The baselines have no resume, so this figure has no baseline ratio.\n\n",
            r.clients,
            r.clients,
            f(r.seconds, 2),
            f(r.median_seconds, 2),
            r.events,
            r.lost_events,
            r.duplicate_events,
            r.not_resumed
        );
    }

    if let Some(c) = &res.crash {
        let _ = write!(
            md,
            "## Reliability: SIGKILL under load\n\nFour sockets submit referrals as fast as the server answers; after 4 s the \
             server is SIGKILLed and restarted on the same data, {} times. Afterwards the specialist's whole inbox stream is \
             replayed from seq 0 and every referral the server had acknowledged must be on it.\n\n| kills | acknowledged | unanswered at the kill | lost | events on the inbox stream | restart to healthy (median s) |\n|---|---|---|---|---|---|\n\
             | {} | {} | {} | **{}** | {} | {} |\n\nA command in flight at the kill may or may not have been committed (a real client \
             retries it with the same idempotency key, which acts once); the bench counts only acknowledged ones. (The short form of this test is \
             `server/tests/integration/hub.rs`.)\n\n",
            c.kills,
            c.kills,
            c.acknowledged,
            c.in_flight_at_kill,
            c.lost,
            c.stream_events,
            f(c.restart_secs, 2)
        );
    }

    if let Some(s) = &res.slow {
        let _ = write!(
            md,
            "## Reliability: slow consumer\n\n![slow consumer RSS](load-tests/plots/slow_consumer.svg)\n\n\
             One socket subscribes to a referral thread and stops reading; another keeps up. The MOA posts {} messages \
             ({}-byte event frames) at 300/s. **Documented bound:** a socket's outgoing queue holds at most `ws_outgoing_buffer` \
             = 1024 frames (here {:.1} MiB), then the socket is closed with 4008; the kernel's socket buffers hold a few MB more, \
             outside the server's RSS. A control run first posts the same messages with nobody stalled, to show what the \
             load itself costs.\n\n| server RSS before MiB | peak MiB | growth MiB | bound MiB | growth without a stall (control) MiB | stalled socket | frames it had read when it resumed | healthy socket got |\n|---|---|---|---|---|---|---|---|\n\
             | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} of {} |\n\n\
             {}\n\n",
            s.messages,
            s.frame_bytes,
            s.bound_bytes as f64 / MIB,
            s.rss_before as f64 / MIB,
            s.rss_peak as f64 / MIB,
            s.rss_peak.saturating_sub(s.rss_before) as f64 / MIB,
            s.bound_bytes as f64 / MIB,
            s.control_growth as f64 / MIB,
            s.stalled_outcome,
            s.stalled_received,
            s.healthy_received,
            s.messages,
            slow_verdict(s)
        );
    }

    if let Some(s) = &res.slow_many {
        let others = s.other_outcomes.iter().map(|(what, n)| format!("{n} × {what}")).collect::<Vec<_>>().join(", ");
        let _ = write!(
            md,
            "## Reliability: many slow consumers with large events\n\n\
             {} sockets of one user subscribe to a referral thread and never read; one more keeps up. The MOA posts {} messages \
             ({}-byte event frames), {:.1} MiB offered to each stalled socket. **Documented bound:** each socket's outgoing queue \
             holds at most `ws_outgoing_bytes` (8 MiB) as well as 1024 frames, then the socket is closed with 4008, so the server \
             grows by at most sockets × 8 MiB over its RSS before the load.\n\n\
             | stalled sockets | server RSS before MiB | peak MiB | after MiB | bound MiB | within | closed with 4008 | other endings | healthy socket got |\n\
             |---|---|---|---|---|---|---|---|---|\n\
             | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} of {} |\n\n",
            s.stalled_sockets,
            s.messages,
            s.frame_bytes,
            s.offered_per_socket as f64 / MIB,
            s.stalled_sockets,
            s.rss_before as f64 / MIB,
            s.rss_peak as f64 / MIB,
            s.rss_after as f64 / MIB,
            s.bound_bytes as f64 / MIB,
            if s.within_bound { "yes" } else { "**no**" },
            s.closed_slow,
            if others.is_empty() { "none".to_string() } else { others },
            s.healthy_received,
            s.messages,
        );
    }

    if !res.inbox.is_empty() {
        md.push_str(&crate::inbox::section(&res.inbox));
    }
    if let Some(s) = &res.statics {
        md.push_str(&static_section(s));
    }
    if let Some(r) = &res.rooms {
        md.push_str(&rooms_section(r));
    }

    md.push_str(
        "## Reproduce\n\n```sh\ncargo xtask bench                      # everything: ~10–15 min on 2 cores\n\
         BENCH_ONLY=fanout cargo xtask bench    # one scenario (push, fanout, idle, reconnect, crash, slow, slow_many, static); writes target/bench/partial.json\n\
         BENCH_QUICK=1 cargo xtask bench        # smaller counts while developing\n```\n\n\
         Knobs: `BENCH_IDLE_CONNECTIONS` (100000), `BENCH_IDLE_BASELINE_CONNECTIONS` (10000), `BENCH_FANOUT_N` (10,100,1000), `BENCH_FANOUT_REPS` (5: rounds of ours and the baseline at each N, interleaved; the figures read the medians), \
         `BENCH_RECONNECT_CLIENTS` (2000). The figures as data: `target/bench/results.json`. Fuzzing is separate: `cargo xtask fuzz`.\n\n\
         MLS membership changes in a 200-member practice (commit and processing times, message sizes) are measured by \
         `handoff-mls-bench` and reported in [load-tests/MLS.md](load-tests/MLS.md).\n",
    );
    md
}

/// The first-visit section of BENCHMARKS.md (printed too by `BENCH_ONLY=static`).
/// The waiting room's section (issue 15).
pub fn rooms_section(r: &crate::rooms::RoomsResult) -> String {
    format!(
        "## Waiting room: {} guests, {} hosts\n\n\
         One room; every guest checks in over HTTP and opens its guest socket first (untimed). Then each guest in turn sends \
         `guest_check_in` (a {}-byte sealed check-in): the clock runs from just before the send to the `guest_waiting` event on \
         each host socket (one sample per host). Then one host admits each guest in turn: from just before `room_admit` to the \
         `admitted` event on that guest's own socket. The tokio-tungstenite baseline relays a frame of the same size from one \
         client to another in the same run: its one hop is the floor.\n\n\
         | path | p50 | p99 |\n|---|---|---|\n\
         | check-in → every host socket | {:.2} ms | {:.2} ms |\n\
         | admit → the guest's socket | {:.2} ms | {:.2} ms |\n\
         | baseline one hop | {:.2} ms | {:.2} ms |\n\n",
        r.guests,
        r.hosts,
        300,
        r.checkin_to_hosts_p50_ms,
        r.checkin_to_hosts_p99_ms,
        r.admit_to_guest_p50_ms,
        r.admit_to_guest_p99_ms,
        r.baseline_one_hop_p50_ms,
        r.baseline_one_hop_p99_ms
    )
}

pub fn static_section(s: &crate::statics::StaticResult) -> String {
    let mut md = String::new();
    let _ = write!(
        md,
        "## Web client: bytes of a first visit\n\n\
         A first visit on a cold cache fetches `index.html` and every file it loads, followed through the files that load \
         others. Before: `Accept-Encoding: identity`. After: `Accept-Encoding: br, gzip`, as browsers send it; the server \
         answers with the copies `cargo xtask build-web` precompressed (brotli quality 11, gzip level 9). Response bodies \
         only. Every file but `index.html` carries its content hash in its name and is `immutable`, so a later visit \
         fetches `index.html` alone (revalidated, `no-cache`) until a new build.\n\n\
         **{} bytes before, {} bytes after ({:.1} %, {:.2}× smaller).** A client without brotli gets {} bytes (gzip).\n\n\
         | file | uncompressed B | sent B (br, gzip) | encoding | gzip only B |\n|---|---|---|---|---|\n",
        s.first_visit_bytes_uncompressed,
        s.first_visit_bytes,
        100.0 * s.first_visit_bytes as f64 / (s.first_visit_bytes_uncompressed.max(1) as f64),
        s.first_visit_bytes_uncompressed as f64 / (s.first_visit_bytes.max(1) as f64),
        s.first_visit_bytes_gzip,
    );
    for f in &s.files {
        let _ = writeln!(md, "| `{}` | {} | {} | {} | {} |", f.path, f.identity_bytes, f.compressed_bytes, f.encoding, f.gzip_bytes);
    }
    md.push('\n');
    md
}

/// §4b: referral creation with many concurrent senders, with and without group commit.
fn create_section(c: &crate::create::CreateResult) -> String {
    let mut md = format!(
        "## 4b. Referral creation with {} concurrent senders (group commit)\n\n{} senders over {} sockets of one MOA, each sending \
         its next referral as soon as the last is acknowledged; each referral is acknowledged only once its own transaction is \
         durable. Named sends (they go through the RoutingActor, as choose-for-me does). Each setting on its own fresh server, \
         in this run.\n\n| group commit | referrals per run | runs, referrals/s | median |\n|---|---|---|---|\n",
        c.senders, c.senders, c.sockets
    );
    for r in &c.runs {
        let runs: Vec<String> = r.per_s.iter().map(|v| f(*v, 0)).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | **{}** |",
            if r.group_commit { "on (default)" } else { "off (`group_commit = false`)" },
            r.n,
            runs.join(", "),
            f(r.median_per_s, 0)
        );
    }
    md.push_str(CREATE_LIMITS);
    md.push_str("\n\n");
    md
}

/// What limits creation throughput, from the profile (`perf`) of a run.
const CREATE_LIMITS: &str = "\n**What limits it, from `perf record --call-graph dwarf` of the server:** before this issue's last \
     changes it was the audit entry each sent referral writes after its commit: an IMMEDIATE transaction with its own fsync on the \
     store's main connection, waiting (holding that connection's mutex, so every read waited too) for the group-commit writer's lock. \
     Audit entries now go through the group-commit writer, the referral's checks run concurrently (only the counting decision is \
     serial), the taxonomy is cached, and point lookups run on a pool of read-only connections on the calling thread. What is left \
     is CPU on the 2 shared cores: each referral is parsed, checked (about seven point lookups), serialised twice (body and event), \
     committed with its audit entry (referral, three stream events, idempotency record, audit entries), \
     while the generator, on the same cores, encrypts and sends. With group commit off every referral and every audit entry has \
     its own fsync, which is the difference between the two rows. Next: the three stream events store the event body three times \
     (once per stream); one shared body row would about halve the writer's work.";
