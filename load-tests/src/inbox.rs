//! The inbox benchmark (`BENCH_ONLY=inbox20k`, and `inbox2k` for the
//! comparison with issue 16's 11.3 s at 2,000): the release server serves
//! the built web client; the native client fills one specialist practice
//! with N referrals (sealed first, then sent over 16 sockets at once, as
//! fast as the server takes them); then `load-tests/node/inbox.mjs` opens
//! the practice in headless Chromium and measures sign-in → first 50 rows,
//! → search ready, the tab's heap (JS heap plus wasm memory), and search
//! ready after a reload.

use std::path::Path;
use std::process::Command as Proc;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use handoff_client::live::Live;
use handoff_protocol::ws::Command;
use serde::{Deserialize, Serialize};

use crate::common::{PASSWORD, World, node_dir, start_ours_with};

/// The targets of issue 16, part 1.
pub const FIRST_ROWS_TARGET_MS: f64 = 1000.0;
/// Search ready on a first visit.
pub const SEARCH_READY_TARGET_MS: f64 = 15_000.0;
/// Search ready after a reload.
pub const SEARCH_READY_RELOAD_TARGET_MS: f64 = 2000.0;
/// The tab's heap: its JS heap plus its WebAssembly memory.
pub const HEAP_TARGET_MB: f64 = 300.0;

/// What the browser measured (the JSON line `inbox.mjs` prints).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Browser {
    /// Referrals in the practice.
    pub n: usize,
    /// Sign-in pressed → 50 rows of Received shown.
    pub first_rows_ms: f64,
    /// Sign-in pressed → a search by patient name matches every referral.
    pub search_ready_ms: f64,
    /// The tab's heap after the first visit, MiB: [`Browser::js_heap_mb`]
    /// plus [`Browser::wasm_mb`].
    pub heap_mb: f64,
    /// The JS heap after a collection (CDP `Runtime.getHeapUsage`), MiB.
    pub js_heap_mb: f64,
    /// The WebAssembly memory (every `WebAssembly.Memory` of the page), MiB:
    /// the web client's Rust heap, which the JS heap figure leaves out.
    pub wasm_mb: f64,
    /// After a reload: Unlock pressed → 50 rows shown.
    pub first_rows_reload_ms: f64,
    /// After a reload: Unlock pressed → search ready.
    pub search_ready_reload_ms: f64,
}

/// One run at one size.
#[derive(Clone, Debug, Serialize)]
pub struct InboxResult {
    /// The key prefix (`inbox20k`, `inbox2k`).
    pub key: String,
    /// The browser's figures.
    pub browser: Browser,
    /// Seconds the fill took, and its rate.
    pub fill_s: f64,
    /// Referrals sent per second during the fill.
    pub fill_per_s: f64,
}

/// Fills a practice with `n` referrals and measures it in Chromium.
pub async fn run(bin: &Path, web_dir: &Path, n: usize, key: &str) -> Result<InboxResult> {
    if !web_dir.join("index.html").exists() {
        bail!("{} has no index.html: build the web client first (cargo xtask build-web)", web_dir.display());
    }
    let dir = web_dir.canonicalize()?;
    let extra = format!("static_dir = {}\n", serde_json::to_string(&dir.to_string_lossy())?);
    let server = start_ours_with(bin, None, None, &extra).await?;
    let w = World::new(&server).await?;
    eprintln!("  sealing {n} referrals");
    let batch = w.prepare(n, 400).await?;
    let mut sockets: Vec<Arc<Live>> = Vec::new();
    for _ in 0..16 {
        sockets.push(Arc::new(w.moa.live().await?));
    }
    let t0 = Instant::now();
    // At most 256 sends in flight (16 per socket), so none waits past the client's answer timeout.
    let sends = futures_util::stream::iter(batch.into_iter().enumerate().map(|(i, r)| {
        let s = sockets.get(i % sockets.len()).cloned();
        async move { s.context("no socket")?.command(Command::SendReferral { referral: r }).await.map_err(anyhow::Error::from) }
    }));
    let results: Vec<Result<_>> = futures_util::StreamExt::collect(futures_util::StreamExt::buffer_unordered(sends, 256)).await;
    for r in results {
        r.context("a referral was refused during the fill")?;
    }
    let fill_s = t0.elapsed().as_secs_f64();
    eprintln!("  filled {n} referrals in {fill_s:.1} s ({:.0}/s)", n as f64 / fill_s);
    drop(sockets);
    let script = node_dir().join("inbox.mjs");
    let (url, n_s) = (server.url.clone(), n.to_string());
    let profile = std::env::var("BENCH_PROFILE_DIR").ok().map(|d| format!("{d}/{key}.cpuprofile"));
    let out = tokio::task::spawn_blocking(move || {
        let mut c = Proc::new("node");
        c.arg(&script)
            .env("BENCH_URL", &url)
            .env("BENCH_EMAIL", "spec@bench.example")
            .env("BENCH_PASSWORD", PASSWORD)
            .env("BENCH_INBOX_N", &n_s);
        if let Some(p) = &profile {
            c.env("BENCH_PROFILE", p);
        }
        c.output()
    })
    .await?
    .context("running node load-tests/node/inbox.mjs")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("inbox.mjs failed: {}\n{}", stdout, String::from_utf8_lossy(&out.stderr));
    }
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).context("inbox.mjs printed no result")?;
    let browser: Browser = serde_json::from_str(line)?;
    eprintln!(
        "  {key}: first rows {:.0} ms, search ready {:.0} ms, after reload {:.0} ms (first rows {:.0} ms), heap {:.0} MiB (JS {:.1} + wasm {:.1})",
        browser.first_rows_ms,
        browser.search_ready_ms,
        browser.search_ready_reload_ms,
        browser.first_rows_reload_ms,
        browser.heap_mb,
        browser.js_heap_mb,
        browser.wasm_mb
    );
    Ok(InboxResult { key: key.into(), browser, fill_s, fill_per_s: n as f64 / fill_s })
}

/// The report's section.
pub fn section(runs: &[InboxResult]) -> String {
    use std::fmt::Write as _;
    let mut md = String::from(
        "## Inbox: opening a big practice in the browser\n\n\
         The native client fills one specialist practice (16 sockets at once); then headless Chromium (playwright-core) \
         signs in as its specialist against the release server, from pressing Sign in (Argon2id and the unlock included). \
         The inbox opens from the snapshot (`GET /practices/{id}/inbox`): the first 50 rows decrypted and shown first, the \
         rest decrypted in time slices that yield to the event loop and merged into the tab's state in a few geometrically \
         growing batches (each merge re-renders the lists); after a reload the sealed search index in IndexedDB names \
         every row, so only new referrals are decrypted. The heap is the tab's JS heap (CDP `Runtime.getHeapUsage`, after \
         a collection) plus its WebAssembly memory (where the client's Rust heap lives, which the JS figure leaves out).\n\n\
         | figure | value | target |\n|---|---|---|\n",
    );
    for r in runs {
        let b = &r.browser;
        let ok = |v: f64, t: f64| if v < t { "met" } else { "**missed**" };
        let _ = writeln!(
            md,
            "| `{}.first_rows_ms` (n = {}) | {:.0} ms | < {:.0} ms ({}) |",
            r.key,
            b.n,
            b.first_rows_ms,
            FIRST_ROWS_TARGET_MS,
            ok(b.first_rows_ms, FIRST_ROWS_TARGET_MS)
        );
        let _ = writeln!(
            md,
            "| `{}.search_ready_ms` | {:.0} ms | < {:.0} ms ({}) |",
            r.key,
            b.search_ready_ms,
            SEARCH_READY_TARGET_MS,
            ok(b.search_ready_ms, SEARCH_READY_TARGET_MS)
        );
        let _ = writeln!(
            md,
            "| `{}.search_ready_reload_ms` | {:.0} ms | < {:.0} ms ({}) |",
            r.key,
            b.search_ready_reload_ms,
            SEARCH_READY_RELOAD_TARGET_MS,
            ok(b.search_ready_reload_ms, SEARCH_READY_RELOAD_TARGET_MS)
        );
        let _ = writeln!(
            md,
            "| `{}.heap_mb` (JS heap {:.1} + wasm memory {:.1}) | {:.0} MiB | < {:.0} MiB ({}) |",
            r.key,
            b.js_heap_mb,
            b.wasm_mb,
            b.heap_mb,
            HEAP_TARGET_MB,
            ok(b.heap_mb, HEAP_TARGET_MB)
        );
        let _ = writeln!(md, "| fill ({}) | {:.0} referrals/s over {:.1} s | |", r.key, r.fill_per_s, r.fill_s);
    }
    md.push('\n');
    md
}
