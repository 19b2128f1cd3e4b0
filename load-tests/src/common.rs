//! What every scenario shares: starting servers (ours and the baselines),
//! the benchmark world (two practices, one verified; built from the
//! `handoff-testkit` fixtures the integration tests use too), raw WebSocket
//! connections from chosen loopback source addresses, RSS readings and
//! percentiles.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use handoff_client::Client;
use handoff_crypto::ReferralContent;
use handoff_testkit::{ContentBuilder, Verifier, moa_account, referring_office, routing, specialist_account, verified_specialist};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Every account's password.
pub const PASSWORD: &str = "benchmark password 1";

/// A raw client socket.
pub type Ws = WebSocketStream<TcpStream>;

/// A server child process (ours or a baseline); killed on drop.
#[derive(Debug)]
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:port` (ours) or `ws://127.0.0.1:port/` (baselines).
    pub url: String,
    /// Listen address.
    pub addr: SocketAddr,
    /// Data directory (ours).
    pub data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// Our `handoff` binary.
    pub bin: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The server's resident set size, bytes.
    pub fn rss(&self) -> u64 {
        rss_of(self.child.id()).unwrap_or(0)
    }

    /// SIGKILLs the server (std's `Child::kill` sends SIGKILL on Unix).
    pub fn sigkill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

/// VmRSS of a process, bytes.
pub fn rss_of(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A free loopback port.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts our release server on `port` with data in `data` (a fresh
/// temporary directory when `None`), and waits for `/healthz`.
pub async fn start_ours(bin: &Path, data: Option<PathBuf>, port: Option<u16>) -> Result<Server> {
    start_ours_with(bin, data, port, "").await
}

/// As [`start_ours`], with `extra` (TOML lines) added to the server's configuration file.
pub async fn start_ours_with(bin: &Path, data: Option<PathBuf>, port: Option<u16>, extra: &str) -> Result<Server> {
    let port = match port {
        Some(p) => p,
        None => free_port()?,
    };
    let (tmp, data) = match data {
        Some(d) => (None, d),
        None => {
            let t = tempfile::tempdir()?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    // The benches open thousands of sockets as one user: lift the per-user
    // socket cap (16 by default), which would refuse them.
    std::fs::create_dir_all(&data)?;
    let config = data.join("bench-config.toml");
    std::fs::write(&config, format!("ws_sockets_per_user = 1000000\n{extra}"))?;
    let child = Proc::new(bin)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .env("HANDOFF_CONFIG", &config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting handoff")?;
    let url = format!("http://127.0.0.1:{port}");
    // Without SMTP the server writes mail to `<data>/mail`; registration
    // reads its confirmation link from there.
    handoff_testkit::deliver_to(&url, data.join("mail"));
    let server =
        Server { child, url: url.clone(), addr: SocketAddr::from(([127, 0, 0, 1], port)), data, _tmp: tmp, bin: bin.to_path_buf() };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/healthz")).await
            && r.status().is_success()
        {
            return Ok(server);
        }
        if Instant::now() > deadline {
            bail!("server did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Which baseline broadcast server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Baseline {
    /// `handoff-baseline`: tokio-tungstenite and a tokio broadcast channel.
    Rust,
    /// `load-tests/node/broadcast.js` on Node's `ws`.
    Node,
}

/// The folder of the Node baseline.
pub fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Installs the Node baseline's dependencies (`npm ci`) when they are missing.
pub fn ensure_node() -> Result<()> {
    let dir = node_dir();
    if dir.join("node_modules/ws/package.json").exists() {
        return Ok(());
    }
    eprintln!("installing the Node baseline (npm ci in {})", dir.display());
    let st = Proc::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).status().context("running npm ci")?;
    if !st.success() {
        bail!("npm ci failed in {}", dir.display());
    }
    Ok(())
}

/// Starts a baseline broadcast server and waits until it accepts connections.
pub async fn start_baseline(kind: Baseline, baseline_bin: &Path) -> Result<Server> {
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let child = match kind {
        Baseline::Rust => Proc::new(baseline_bin).arg(&addr).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?,
        Baseline::Node => {
            ensure_node()?;
            Proc::new("node")
                .arg(node_dir().join("broadcast.js"))
                .arg(port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting node")?
        }
    };
    let server = Server {
        child,
        url: format!("ws://{addr}/"),
        addr: addr.parse()?,
        data: PathBuf::new(),
        _tmp: None,
        bin: baseline_bin.to_path_buf(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(server.addr).await.is_err() {
        if Instant::now() > deadline {
            bail!("{kind:?} baseline did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(server)
}

/// Where and how a raw client connects.
#[derive(Clone, Debug)]
pub struct Target {
    /// Server address.
    pub addr: SocketAddr,
    /// `ws://…` URL.
    pub url: String,
    /// Bearer token (ours).
    pub bearer: Option<String>,
}

impl Target {
    /// Our `/ws` with a session token.
    pub fn ours(s: &Server, token: &str) -> Self {
        Self { addr: s.addr, url: format!("ws://{}/ws?v=1", s.addr), bearer: Some(token.to_string()) }
    }
    /// A baseline.
    pub fn baseline(s: &Server) -> Self {
        Self { addr: s.addr, url: s.url.clone(), bearer: None }
    }
}

/// Small buffers: a client holding many sockets must not reserve 128 KiB each.
pub fn small_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0)
}

/// Connects a raw WebSocket, from `src` when given (spreading source
/// addresses over 127.0.0.x so one address's port range does not cap the count).
pub async fn connect(t: &Target, src: Option<Ipv4Addr>, config: WebSocketConfig) -> Result<Ws> {
    let sock = TcpSocket::new_v4()?;
    if let Some(ip) = src {
        sock.bind(SocketAddr::from((ip, 0)))?;
    }
    let tcp = sock.connect(t.addr).await?;
    tcp.set_nodelay(true)?;
    let mut req = t.url.as_str().into_client_request()?;
    if let Some(b) = &t.bearer {
        req.headers_mut().insert("authorization", format!("Bearer {b}").parse()?);
    }
    let (ws, _) = tokio_tungstenite::client_async_with_config(req, tcp, Some(config)).await?;
    Ok(ws)
}

/// The i-th spread source address: 127.0.0.2, 127.0.0.3, … (`per` sockets each).
pub fn source_ip(i: usize, per: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, (2 + i / per.max(1)).min(254) as u8)
}

/// Raises this process's open-file limit with `prlimit`: the hard limit up to
/// `fs.nr_open` when the process may (root with CAP_SYS_RESOURCE), else the
/// soft limit up to the hard one. Children inherit it. Returns the soft limit
/// now in force.
pub fn raise_nofile(want: u64) -> u64 {
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(1 << 20);
    let n = want.min(nr_open);
    let pid = std::process::id().to_string();
    let set =
        |v: &str| Proc::new("prlimit").args(["--pid", &pid, &format!("--nofile={v}")]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !set(&format!("{n}:{n}")).is_ok_and(|s| s.success()) {
        let hard = nofile_hard();
        let _ = set(&format!("{hard}:{hard}"));
    }
    nofile()
}

/// This process's hard open-file limit.
pub fn nofile_hard() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Max open files")).and_then(|l| l.split_whitespace().nth(4)?.parse().ok()))
        .unwrap_or(0)
}

/// This process's soft open-file limit.
pub fn nofile() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Max open files")).and_then(|l| l.split_whitespace().nth(3)?.parse().ok()))
        .unwrap_or(0)
}

/// The value at quantile `p` of a sorted slice.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The median of some values.
pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    pct(&s, 0.5)
}

/// Referral content with `details` bytes of clinical details (and only a
/// name and a date of birth besides, so `details` sizes the payload).
pub fn content(i: usize, details: usize) -> ReferralContent {
    ContentBuilder::bare(&format!("Bench Patient {i}"))
        .date_of_birth("1970-01-01")
        .reason("benchmark")
        .clinical_details_bytes(details)
        .build()
}

/// A referring MOA and a verified specialist practice.
#[derive(Debug)]
pub struct World {
    /// The MOA (referring practice member).
    pub moa: Client,
    /// The specialist.
    pub spec: Client,
    /// The referring practice.
    pub from: handoff_protocol::PracticeId,
    /// The specialist practice.
    pub to: handoff_protocol::PracticeId,
}

impl World {
    /// Registers both users (Argon2id on both sides), creates the practices,
    /// and verifies the specialist's with the operator's CLI.
    pub async fn new(s: &Server) -> Result<Self> {
        let moa = moa_account().email("moa@bench.example").name("MOA").password(PASSWORD).register(&s.url).await?;
        let from = referring_office().name("Bench Family").region("fraser").create(&moa).await?.id;
        let spec = specialist_account().email("spec@bench.example").name("Spec").password(PASSWORD).register(&s.url).await?;
        let to = verified_specialist()
            .name("Bench Cardiology")
            .intake(["arrhythmia"])
            .create(&spec, Verifier::Operator { bin: &s.bin, data: &s.data })
            .await?
            .id;
        Ok(Self { moa, spec, from, to })
    }

    /// The specialist's session token.
    pub fn spec_token(&self) -> Result<String> {
        self.spec.token().map(str::to_string).context("specialist not signed in")
    }

    /// Sealed referrals, prepared before any clock starts (as a browser does before Send).
    pub async fn prepare(&self, n: usize, details: usize) -> Result<Vec<handoff_protocol::ws::NewReferral>> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            out.push(
                self.moa
                    .prepare_referral(
                        self.from,
                        handoff_client::referrals::To::Practice(self.to),
                        routing("arrhythmia"),
                        &content(i, details),
                        &[],
                    )
                    .await?
                    .0,
            );
        }
        Ok(out)
    }
}

/// The machine, for the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// CPU cores the machine offers.
    pub cores: usize,
    /// Memory, GiB.
    pub mem_gib: f64,
    /// The kernel release (`uname -r`).
    pub kernel: String,
}

/// Reads the machine facts.
pub fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()))
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default();
    Machine { cpu, cores, mem_gib, kernel }
}
