//! The one in-process test harness: a real server on a loopback port with a
//! real on-disk store, and a real SMTP server (Debian's aiosmtpd) on another;
//! the real `handoff` binary as a child process for crash tests; and the
//! testkit's [`World`] set up on either.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use handoff_client::Client;
use handoff_server::{Config, RunningServer};
pub use handoff_testkit::PASSWORD;
use handoff_testkit::{World, WorldBuilder};

/// A server with its data directory.
#[derive(Debug)]
pub struct TestServer {
    pub server: Option<RunningServer>,
    pub config: Config,
    pub data: tempfile::TempDir,
    /// Where this server's mail arrives (the SMTP server's Maildir, or the mail folder).
    pub mail_dir: PathBuf,
}

impl TestServer {
    /// Starts a server on a fresh data directory, with mail to `smtp` if given.
    pub fn start(smtp: Option<&Smtp>) -> Self {
        Self::start_with(smtp, |_| {})
    }

    /// As `start`, adjusting the configuration first.
    pub fn start_with(smtp: Option<&Smtp>, adjust: impl FnOnce(&mut Config)) -> Self {
        let data = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            data: data.path().to_path_buf(),
            public_url: Some("http://handoff.test".into()),
            smtp_url: smtp.map(|s| format!("smtp://127.0.0.1:{}", s.port)),
            mail_poll_ms: 100,
            mail_backoff_ms: 100,
            ..Config::default()
        };
        adjust(&mut config);
        let server = handoff_server::spawn(config.clone()).expect("server starts");
        let mail_dir = match smtp {
            Some(s) => s.dir.path().join("new"),
            None => data.path().join("mail"),
        };
        let s = Self { server: Some(server), config, data, mail_dir };
        handoff_testkit::deliver_to(&s.url(), &s.mail_dir);
        s
    }

    /// Stops and starts the server again on the same data directory.
    pub fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
        let mut config = self.config.clone();
        config.bind = "127.0.0.1:0".parse().unwrap();
        self.server = Some(handoff_server::spawn(config).expect("server restarts"));
        handoff_testkit::deliver_to(&self.url(), &self.mail_dir);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.server.as_ref().expect("running").addr)
    }

    pub fn client(&self) -> Client {
        Client::new(self.url())
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Runs `handoff admin --data <dir> TASK...` against this server's data directory.
    pub fn admin_cli(&self, task: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(["admin", "--data"])
            .arg(self.data_dir())
            .args(task)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run handoff")
    }

    /// Makes `email` platform staff, as an operator would.
    pub fn grant_staff(&self, email: &str) {
        let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(["admin", "--data"])
            .arg(self.data_dir())
            .args(["grant-staff", email])
            .output()
            .expect("run handoff");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// Every message in the mail folder under the data directory (where the
    /// server writes mail when it has no SMTP server), unfolded.
    pub fn folder_messages(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.data_dir().join("mail")) else { return Vec::new() };
        rd.flatten().filter_map(|e| std::fs::read_to_string(e.path()).ok()).map(|t| unfold(&t)).collect()
    }

    /// Waits for a message in the mail folder addressed `To: <to>` whose text contains `needle`.
    pub async fn wait_for_folder_mail(&self, to: &str, needle: &str) -> String {
        let header = format!("To: {to}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(m) = self.folder_messages().into_iter().find(|m| m.contains(&header) && m.contains(needle)) {
                return m;
            }
            assert!(Instant::now() < deadline, "no mail to {to} containing {needle:?} in {}", self.data_dir().join("mail").display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the invite to `email` in the mail folder and returns its token.
    pub async fn folder_invite_token(&self, email: &str) -> String {
        invite_token(&self.wait_for_folder_mail(email, "/invite/").await)
    }
}

/// The testkit's standard [`World`] on `srv`, with `n` specialist practices.
pub async fn world(srv: &TestServer, n: usize) -> World {
    world_at(&srv.url(), |e| srv.grant_staff(e), n).await
}

/// The testkit's standard [`World`] on the server at `url`, with `n`
/// specialist practices; `grant_staff` makes an email platform staff.
pub async fn world_at(url: &str, grant_staff: impl Fn(&str), n: usize) -> World {
    World::builder().specialists(n).build(url, grant_staff).await.expect("the world is set up")
}

/// A [`World`] from `builder` on `srv` (for a test that needs a known email or name).
pub async fn world_with(srv: &TestServer, builder: WorldBuilder) -> World {
    builder.build(&srv.url(), |e| srv.grant_staff(e)).await.expect("the world is set up")
}

/// A real SMTP server: `python3 -m aiosmtpd` with the Maildir handler.
#[derive(Debug)]
pub struct Smtp {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl Smtp {
    pub fn start() -> Self {
        Self::start_on(free_port(), tempfile::tempdir().expect("tempdir"))
    }

    /// Starts on a given port and maildir (to bring a stopped server back).
    pub fn start_on(port: u16, dir: tempfile::TempDir) -> Self {
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("maildir");
        }
        // Debian's interpreter, where python3-aiosmtpd is installed (not a pyenv one on PATH).
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (install python3-aiosmtpd; cargo xtask test does)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { port, dir, child }
    }

    /// Every message received so far, raw.
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(self.dir.path().join("new")) {
            let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for p in paths {
                if let Ok(t) = std::fs::read_to_string(&p) {
                    out.push(t);
                }
            }
        }
        out
    }

    /// Waits for a message to `to` whose text contains `needle`.
    pub async fn wait_for(&self, to: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(m) = self.messages().into_iter().map(|m| unfold(&m)).find(|m| m.contains(to) && m.contains(needle)) {
                return m;
            }
            assert!(Instant::now() < deadline, "no mail to {to} containing {needle:?}; got {:?}", self.messages());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the invite to `to` and returns its token.
    pub async fn invite_token(&self, to: &str) -> String {
        invite_token(&self.wait_for(to, "/invite/").await)
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Undoes quoted-printable soft line breaks so links can be found whole.
pub fn unfold(raw: &str) -> String {
    raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=")
}

/// The invite token from an invite email.
pub fn invite_token(mail: &str) -> String {
    let at = mail.find("/invite/").expect("an invite link") + "/invite/".len();
    mail[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

/// Every byte under a directory, for the privacy scans. A file the running
/// server removes between the listing and the read (a swept mail file, a
/// SQLite `-journal`) held nothing the scan could still find; any other
/// error fails the test.
pub fn all_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                match std::fs::read(&p) {
                    Ok(bytes) => out.push((p.clone(), bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => panic!("read {}: {e}", p.display()),
                }
            }
        }
    }
    out
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The real `handoff` binary as a child process, for crash tests.
#[derive(Debug)]
pub struct ProcessServer {
    pub port: u16,
    pub data: tempfile::TempDir,
    child: Option<Child>,
    /// Where the server's log (stderr, at `info`) goes, for a server started with [`ProcessServer::start_logged`].
    pub log: Option<PathBuf>,
}

impl ProcessServer {
    pub async fn start() -> Self {
        let mut s = Self { port: free_port(), data: tempfile::tempdir().expect("tempdir"), child: None, log: None };
        s.boot().await;
        handoff_testkit::deliver_to(&s.url(), s.data.path().join("mail"));
        s
    }

    /// As [`ProcessServer::start`], with the server's log (its access log
    /// included) captured at `info` in [`ProcessServer::log`], outside the data directory.
    pub async fn start_logged(log_dir: &Path) -> Self {
        let log = log_dir.join("handoff.log");
        let mut s = Self { port: free_port(), data: tempfile::tempdir().expect("tempdir"), child: None, log: Some(log) };
        s.boot().await;
        handoff_testkit::deliver_to(&s.url(), s.data.path().join("mail"));
        s
    }

    async fn boot(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(["serve", "--bind", &format!("127.0.0.1:{}", self.port), "--data"])
            .arg(self.data.path())
            .env("RUST_LOG", if self.log.is_some() { "info" } else { "warn" })
            .stdout(Stdio::null())
            .stderr(match &self.log {
                Some(path) => Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(path).expect("log file")),
                None => Stdio::null(),
            })
            .spawn()
            .expect("start handoff");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/healthz", self.url())).await
                && r.status().as_u16() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "handoff did not become healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no shutdown, no flush beyond what was already durable.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL");
            let _ = c.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.kill9();
        self.boot().await;
    }

    pub fn grant_staff(&self, email: &str) {
        let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(["admin", "--data"])
            .arg(self.data.path())
            .args(["grant-staff", email])
            .output()
            .expect("run handoff");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for ProcessServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
