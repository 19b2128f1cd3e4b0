//! Fan-out: one thread message to a referral watched by N connected members,
//! stepping the message rate up until p99 passes 100 ms or a delivery is
//! missing. The same receiving code measures our server and the two baselines
//! (which relay, byte for byte, a copy of our event frame).
//!
//! Every message id encodes its index, so a receiver finds the send time of
//! each delivery from the frame itself without a JSON parse.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::stream;
use futures_util::{SinkExt as _, StreamExt};
use handoff_client::live::Live;
use handoff_crypto::referral::MessageBody;
use handoff_protocol::ws::{AckBody, Command, MessageId, ReferralId, ThreadMessage};
use handoff_protocol::{B64, ws::StreamId};
use serde::Serialize;
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{self, Baseline, Server, Target, World, Ws, pct, small_config};

/// Offered deliveries per second, stepped up in order.
pub const TARGETS: &[f64] = &[
    1_000.0, 2_500.0, 5_000.0, 10_000.0, 20_000.0, 30_000.0, 40_000.0, 50_000.0, 60_000.0, 70_000.0, 80_000.0, 90_000.0, 100_000.0,
    115_000.0, 130_000.0, 150_000.0, 175_000.0, 200_000.0, 250_000.0, 300_000.0,
];
/// Messages sent before the steps, not measured.
const WARM_UP: usize = 10;
/// Message indexes one server's runs may use (ours runs every N five times on one thread).
const SENT_SLOTS: usize = 2_000_000;
/// Seconds of sending per step.
pub const STEP_SECS: f64 = 2.0;
/// The latency bound a step must meet.
pub const P99_BOUND_MS: f64 = 100.0;
const MARK: &str = "\"message\":{\"id\":\"";
const ID_PREFIX: u128 = 0x4841_4e44 << 96;

fn msg_uuid(idx: u64) -> uuid::Uuid {
    uuid::Uuid::from_u128(ID_PREFIX | u128::from(idx))
}

fn parse_idx(t: &str) -> Option<usize> {
    let i = t.find(MARK)? + MARK.len();
    let u = t.get(i..i + 36)?;
    if !u.starts_with("48414e44") {
        return None;
    }
    usize::from_str_radix(&u[24..36], 16).ok()
}

/// One rate step.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Offered deliveries per second.
    pub offered_deliveries_per_s: f64,
    /// Messages per second sent.
    pub messages_per_s: f64,
    /// Deliveries expected (messages × N).
    pub expected: usize,
    /// Deliveries received.
    pub delivered: usize,
    /// p50, ms.
    pub p50_ms: f64,
    /// p99, ms (a missing delivery counts as infinitely late).
    pub p99_ms: f64,
    /// p99 over messages of each message's first delivery, ms: the server's
    /// per-message work before fan-out (for ours, the fsynced commit).
    pub first_delivery_p99_ms: f64,
}

/// One server at one N.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// `ours`, `baseline` or `node_ws`.
    pub server: String,
    /// How many sockets subscribed to the stream.
    pub subscribers: usize,
    /// Steps run.
    pub steps: Vec<Step>,
    /// Highest offered deliveries/s with every delivery made and p99 < 100 ms (0 when none).
    pub deliveries_per_s: f64,
    /// p99 at that step, ms.
    pub p99_ms: f64,
    /// Bytes per event frame.
    pub frame_bytes: usize,
}

struct Shared {
    t0: Instant,
    sent: Vec<AtomicU64>,
    delivered: AtomicU64,
}

type Lats = Arc<Mutex<Vec<(u32, u32)>>>;

async fn receiver(
    mut ws: Ws,
    shared: Arc<Shared>,
    lats: Lats,
    mut stop: watch::Receiver<bool>,
    mut capture: Option<oneshot::Sender<String>>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    if let Some(idx) = parse_idx(&t) {
                        let now = shared.t0.elapsed().as_nanos() as u64;
                        let s = shared.sent.get(idx).map(|a| a.load(Ordering::Relaxed)).unwrap_or(0);
                        if s > 0 {
                            let us = (now.saturating_sub(s) / 1000).min(u64::from(u32::MAX)) as u32;
                            if let Ok(mut l) = lats.lock() {
                                l.push((idx as u32, us));
                            }
                            shared.delivered.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(c) = capture.take() {
                            let _ = c.send(t.to_string());
                        }
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            },
        }
    }
    let _ = ws.close(None).await;
}

/// Reads text frames until one contains `needle` (or 10 s pass).
pub async fn read_until(ws: &mut Ws, needle: &str) -> Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains(needle) => return Ok(t.to_string()),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => bail!("socket error waiting for {needle}: {e}"),
            Ok(None) => bail!("socket closed waiting for {needle}"),
            Err(_) => bail!("timed out waiting for {needle}"),
        }
    }
}

/// Connects to our `/ws`, waits for hello, subscribes to `stream` after `after_seq` (paging through
/// a long replay as the protocol asks), waits for the last ack; returns the socket and that ack.
pub async fn ours_subscriber(t: &Target, src: Option<std::net::Ipv4Addr>, stream: StreamId, after_seq: u64) -> Result<(Ws, String)> {
    let mut ws = common::connect(t, src, small_config().read_buffer_size(16 * 1024)).await?;
    read_until(&mut ws, "\"hello\"").await?;
    let mut after = after_seq;
    loop {
        let sub = format!(r#"{{"id":1,"cmd":{{"type":"subscribe","stream":"{stream}","after_seq":{after}}}}}"#);
        ws.send(Message::Text(sub.into())).await?;
        let ack = read_until(&mut ws, "\"ack\"").await?;
        if !ack.contains(r#""more":true"#) {
            return Ok((ws, ack));
        }
        after = head_seq(&ack).context("ack without head_seq")?;
    }
}

/// The `head_seq` of a `subscribed` ack.
pub fn head_seq(ack: &str) -> Option<u64> {
    let i = ack.find(r#""head_seq":"#)? + 11;
    let rest = &ack[i..];
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

enum Publisher {
    Ours { lives: Vec<Arc<Live>>, referral: ReferralId, key: Box<handoff_crypto::referral::ReferralKey>, world: Arc<World> },
    Raw { ws: Box<Ws>, prefix: String, suffix: String },
}

/// Text of a thread message of about the size a clinician writes.
fn message_text(i: usize) -> String {
    format!("Bench message {i}: please see the attached results and call the office to book. ") + &"x".repeat(120)
}

impl Publisher {
    /// Sends `count` messages starting at index `first`, `rate` per second; returns how long the sending took.
    async fn publish(&mut self, shared: &Arc<Shared>, first: usize, count: usize, rate: f64) -> Result<Duration> {
        let interval = Duration::from_secs_f64(1.0 / rate);
        match self {
            Publisher::Ours { lives, referral, key, world } => {
                let me = world.moa.identity()?;
                let mut msgs = Vec::with_capacity(count);
                for i in first..first + count {
                    let id = MessageId(msg_uuid(i as u64));
                    let (body, sig) =
                        key.seal_message(*referral, id, &me.secrets, &MessageBody { text: message_text(i), written_at: 0 })?;
                    msgs.push(ThreadMessage { id, body: B64(body), signature: B64(sig.to_vec()) });
                }
                let start = Instant::now();
                let mut tasks = Vec::with_capacity(count);
                for (k, m) in msgs.into_iter().enumerate() {
                    let due = start + interval.mul_f64(k as f64);
                    let now = Instant::now();
                    if due > now {
                        tokio::time::sleep(due - now).await;
                    }
                    shared.sent[first + k].store(shared.t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    let live = lives[k % lives.len()].clone();
                    let referral = *referral;
                    tasks.push(tokio::spawn(async move { live.command(Command::PostMessage { referral, message: m }).await }));
                }
                let took = start.elapsed();
                let mut failed = 0;
                for t in tasks {
                    if !matches!(t.await, Ok(Ok(_))) {
                        failed += 1;
                    }
                }
                if failed > 0 {
                    eprintln!("  {failed} post_message commands failed");
                }
                Ok(took)
            }
            Publisher::Raw { ws, prefix, suffix } => {
                let start = Instant::now();
                for k in 0..count {
                    let due = start + interval.mul_f64(k as f64);
                    let now = Instant::now();
                    if due > now {
                        tokio::time::sleep(due - now).await;
                    }
                    let frame = format!("{prefix}{}{suffix}", msg_uuid((first + k) as u64));
                    shared.sent[first + k].store(shared.t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    ws.send(Message::Text(frame.into())).await?;
                }
                Ok(start.elapsed())
            }
        }
    }
}

/// Connected subscribers of one run.
struct Subs {
    lats: Vec<Lats>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Subs {
    async fn close(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

/// Waits until `total` deliveries have arrived, or `within` has passed.
async fn wait_delivered(shared: &Shared, total: usize, within: Duration) {
    let t = Instant::now();
    while (shared.delivered.load(Ordering::Relaxed) as usize) < total && t.elapsed() < within {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs the steps from message index `first`; returns the run and the next free index.
async fn steps(
    server: &str,
    n: usize,
    publisher: &mut Publisher,
    shared: &Arc<Shared>,
    subs: &Subs,
    frame_bytes: usize,
    first: usize,
) -> Result<(Run, usize)> {
    let mut next = first;
    // Warm-up, not measured: a few messages at a low rate, so that the first
    // step measures the server and not its cold start (Node's JIT, first-touch
    // allocations). Each server and each N gets the same.
    let before = shared.delivered.load(Ordering::Relaxed) as usize;
    publisher.publish(shared, next, WARM_UP, 10.0).await?;
    wait_delivered(shared, before + WARM_UP * n, Duration::from_secs(5)).await;
    for l in &subs.lats {
        l.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clear();
    }
    next += WARM_UP;
    let mut out = Vec::new();
    let mut best = (0.0, f64::NAN);
    for &d in TARGETS {
        let rate = d / n as f64;
        let count = ((rate * STEP_SECS).ceil() as usize).max(4);
        if next + count > shared.sent.len() {
            break;
        }
        let before = shared.delivered.load(Ordering::Relaxed) as usize;
        let expected = count * n;
        let sent_for = publisher.publish(shared, next, count, rate).await?;
        wait_delivered(shared, before + expected, Duration::from_secs(3)).await;
        let mut lat: Vec<f64> = Vec::with_capacity(expected);
        let mut first_us = vec![u32::MAX; count];
        for l in &subs.lats {
            let v = std::mem::take(&mut *l.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
            for (i, us) in v {
                let i = i as usize;
                if i >= next && i < next + count {
                    lat.push(f64::from(us) / 1000.0);
                    first_us[i - next] = first_us[i - next].min(us);
                }
            }
        }
        let mut first: Vec<f64> = first_us.iter().map(|&u| if u == u32::MAX { f64::INFINITY } else { f64::from(u) / 1000.0 }).collect();
        first.sort_by(f64::total_cmp);
        let first_p99 = pct(&first, 0.99);
        let delivered = lat.len();
        lat.resize(expected.max(delivered), f64::INFINITY);
        lat.sort_by(f64::total_cmp);
        let (p50, p99) = (pct(&lat, 0.5), pct(&lat, 0.99));
        eprintln!(
            "  fanout {server} N={n}: offered {d:.0} deliveries/s ({rate:.1} msg/s, sent in {:.2} s): delivered {delivered}/{expected}, p50 {p50:.1} ms, p99 {p99:.1} ms, first-delivery p99 {first_p99:.1} ms",
            sent_for.as_secs_f64()
        );
        out.push(Step {
            offered_deliveries_per_s: d,
            messages_per_s: rate,
            expected,
            delivered,
            p50_ms: p50,
            p99_ms: p99,
            first_delivery_p99_ms: first_p99,
        });
        next += count;
        // The sender itself could not keep the offered pace: this rate was not really offered.
        let kept_pace = sent_for.as_secs_f64() <= (count - 1) as f64 / rate * 1.25 + 0.05;
        if delivered < expected || p99 >= P99_BOUND_MS || !kept_pace {
            break;
        }
        best = (d, p99);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok((Run { server: server.into(), subscribers: n, steps: out, deliveries_per_s: best.0, p99_ms: best.1, frame_bytes }, next))
}

fn shared() -> Arc<Shared> {
    Arc::new(Shared { t0: Instant::now(), sent: (0..SENT_SLOTS).map(|_| AtomicU64::new(0)).collect(), delivered: AtomicU64::new(0) })
}

async fn spawn_subs(conns: Vec<Ws>, shared: &Arc<Shared>, capture: Option<oneshot::Sender<String>>) -> Subs {
    let (stop, stop_rx) = watch::channel(false);
    let mut lats = Vec::new();
    let mut tasks = Vec::new();
    let mut capture = capture;
    for ws in conns {
        let l: Lats = Arc::default();
        lats.push(l.clone());
        tasks.push(tokio::spawn(receiver(ws, shared.clone(), l, stop_rx.clone(), capture.take())));
    }
    Subs { lats, stop, tasks }
}

/// Our server, set up once (sign-ups, a referral, the publisher's sockets) and measured at any N, as often as asked.
pub struct Ours {
    _server: Server,
    world: Arc<World>,
    publisher: Publisher,
    target: Target,
    referral: ReferralId,
    /// One index space for every run: message ids must never repeat on the thread.
    shared: Arc<Shared>,
    next: usize,
    /// The last event frame received, relayed by the baselines.
    pub frame: String,
}

impl Ours {
    /// Starts our server and prepares the referral whose thread every run posts to.
    pub async fn start(bin: &std::path::Path) -> Result<Ours> {
        let server: Server = common::start_ours(bin, None, None).await?;
        let world = Arc::new(World::new(&server).await?);
        let moa_live = world.moa.live().await?;
        let r = world.prepare(1, 2000).await?.remove(0);
        let referral = match moa_live.command(Command::SendReferral { referral: r }).await? {
            AckBody::ReferralSent { referral, .. } => referral,
            other => bail!("unexpected answer {other:?}"),
        };
        let rec = world.moa.referral(referral).await?;
        let key = Box::new(world.moa.referral_key(&rec).await?);
        let mut lives = vec![Arc::new(moa_live)];
        for _ in 0..3 {
            lives.push(Arc::new(world.moa.live().await?));
        }
        let publisher = Publisher::Ours { lives, referral, key, world: world.clone() };
        let target = Target::ours(&server, &world.spec_token()?);
        Ok(Ours { _server: server, world, publisher, target, referral, shared: shared(), next: 0, frame: String::new() })
    }

    /// One run of the steps with `n` subscribers.
    pub async fn run(&mut self, n: usize) -> Result<Run> {
        let referral = self.referral;
        // Subscribe after the thread's head (the earlier runs' messages need no replay).
        let head = self.world.spec.live().await?.subscribe(StreamId::Referral(referral), 0).await?;
        let conns: Vec<Ws> = stream::iter(0..n)
            .map(|_| {
                let t = self.target.clone();
                async move { ours_subscriber(&t, None, StreamId::Referral(referral), head).await.map(|(ws, _)| ws) }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_>>()?;
        let (cap_tx, cap_rx) = oneshot::channel();
        let subs = spawn_subs(conns, &self.shared, Some(cap_tx)).await;
        // One message to capture the frame (and warm the path); not measured.
        self.publisher.publish(&self.shared, self.next, 1, 10.0).await?;
        let captured = tokio::time::timeout(Duration::from_secs(10), cap_rx).await.context("no event frame")??;
        tokio::time::sleep(Duration::from_millis(300)).await;
        for l in &subs.lats {
            l.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clear();
        }
        let (run, after) = steps("ours", n, &mut self.publisher, &self.shared, &subs, captured.len(), self.next + 1).await?;
        self.next = after;
        self.frame = captured;
        subs.close().await;
        Ok(run)
    }
}

/// One run of a baseline with `n` subscribers on a fresh server, relaying `frame` (our event frame with its
/// message id replaced per message).
pub async fn run_baseline(kind: Baseline, baseline_bin: &std::path::Path, n: usize, frame: &str) -> Result<Run> {
    let name = match kind {
        Baseline::Rust => "baseline",
        Baseline::Node => "node_ws",
    };
    let (prefix, suffix) = match frame.find(MARK) {
        Some(i) => (frame[..i + MARK.len()].to_string(), frame[i + MARK.len() + 36..].to_string()),
        None => {
            let pad = "A".repeat(600);
            (
                r#"{"type":"event","stream":"referral:x","seq":1,"event":{"type":"message_posted","message":{"id":""#.to_string(),
                format!(r#"","body":"{pad}"}}}}}}"#),
            )
        }
    };
    let frame_bytes = prefix.len() + 36 + suffix.len();
    let server = common::start_baseline(kind, baseline_bin).await?;
    let target = Target::baseline(&server);
    let shared = shared();
    let conns: Vec<Ws> = stream::iter(0..n)
        .map(|_| {
            let t = target.clone();
            async move { common::connect(&t, None, small_config().read_buffer_size(16 * 1024)).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let subs = spawn_subs(conns, &shared, None).await;
    let ws = common::connect(&target, None, small_config()).await?;
    let mut publisher = Publisher::Raw { ws: Box::new(ws), prefix, suffix };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (run, _) = steps(name, n, &mut publisher, &shared, &subs, frame_bytes, 0).await?;
    subs.close().await;
    drop(publisher);
    drop(server);
    Ok(run)
}

/// Issue 16's target at `n` subscribers: ours ÷ the tokio-tungstenite baseline, medians of the same run.
pub fn target_ratio(n: usize) -> Option<f64> {
    match n {
        10 => Some(0.5),
        100 | 1000 => Some(1.0),
        _ => None,
    }
}
