//! `cargo xtask run` and `cargo xtask test`.
//!
//! Everything a fresh machine needs is installed from here, never by hand:
//! the wasm32 target, wasm-bindgen-cli at Cargo.lock's version, Debian's
//! python3-aiosmtpd (the real SMTP server the mail tests start), chromium
//! (the browser tests) and poppler-utils (`pdftotext`/`pdfinfo`/`pdftoppm`,
//! which read back the referral PDFs), npm's playwright-core, binaryen (wasm-opt) and
//! swagger-ui-dist (the API reference at `/api/docs`) in `e2e/`, and PyPI's
//! schemathesis in a venv under `target/schemathesis`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod modgraph;
mod observer;
mod paths;
mod site;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("run") => run(&root, &args[1..]),
        Some("test") => test(&root),
        Some("bench") => bench(&root),
        Some("fuzz") => fuzz(&root),
        // Prints the actors' module graph (ARCHITECTURE.md keeps a copy) after checking it has no cycle.
        Some("modgraph") => modgraph::check_acyclic(&root.join("actors/src")),
        // The browser tests alone (after `cargo xtask test` has installed what they need).
        Some("e2e") => match e2e_alone(&root)? {
            (_, 0) => Ok(()),
            (_, failed) => bail!("{failed} browser tests failed"),
        },
        Some("build-web") => {
            ensure_wasm_target()?;
            ensure_wasm_bindgen(&root)?;
            build_web(&root)
        }
        _ => {
            eprintln!(
                "usage:\n  cargo xtask run [serve flags]   install what is missing, build, serve on the embedded store\n  \
                 cargo xtask test               every check: fmt, clippy, dependency rules, wasm build, tests\n  \
                 cargo xtask bench              benchmarks against the release server; writes BENCHMARKS.md\n  \
                 cargo xtask fuzz               every protocol decoder under libFuzzer, FUZZ_SECONDS each (default 60)\n  \
                 cargo xtask build-web          build the web client into target/web-dist\n  \
                 cargo xtask e2e                the browser tests alone\n  \
                 cargo xtask modgraph           print the actors' module graph (checked acyclic)"
            );
            bail!("unknown or missing task")
        }
    }
}

fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// How long each step of this run took, in order, for the summary
/// [`print_times`] prints at the end of `cargo xtask test`.
static TIMES: std::sync::Mutex<Vec<(String, std::time::Duration)>> = std::sync::Mutex::new(Vec::new());

/// Records that the step `name` took `took`, and prints it.
fn record_time(name: &str, took: std::time::Duration) {
    eprintln!("<== {name}: {:.1} s", took.as_secs_f64());
    if let Ok(mut t) = TIMES.lock() {
        t.push((name.to_string(), took));
    }
}

/// Runs `work` as the step `name`, printing and recording how long it took.
fn timed<T>(name: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = std::time::Instant::now();
    let out = work();
    record_time(name, start.elapsed());
    out
}

/// Prints every recorded step's time and their total.
fn print_times(total: std::time::Duration) {
    eprintln!("\n==> step times");
    if let Ok(t) = TIMES.lock() {
        for (name, took) in t.iter() {
            eprintln!("{:>8.1} s  {name}", took.as_secs_f64());
        }
    }
    eprintln!("{:>8.1} s  total", total.as_secs_f64());
}

fn step(name: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("\n==> {name}");
    timed(name, || {
        let status = cmd.status().with_context(|| format!("starting: {name}"))?;
        if !status.success() {
            bail!("{name} failed ({status})");
        }
        Ok(())
    })
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ensure_wasm_target() -> Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == "wasm32-unknown-unknown") {
        step("install the wasm32 target", Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    Ok(())
}

fn lock_version(root: &Path, package: &str) -> Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l.trim() == format!("name = \"{package}\"")
            && let Some(v) = lines.next().and_then(|v| v.trim().strip_prefix("version = \""))
        {
            return Ok(v.trim_end_matches('"').to_string());
        }
    }
    bail!("{package} is not in Cargo.lock")
}

fn ensure_wasm_bindgen(root: &Path) -> Result<()> {
    let want = lock_version(root, "wasm-bindgen")?;
    let have = output(Command::new("wasm-bindgen").arg("--version")).unwrap_or_default();
    if have.split_whitespace().nth(1) != Some(want.as_str()) {
        step(
            &format!("install wasm-bindgen-cli {want} (matches Cargo.lock; takes several minutes once)"),
            cargo().args(["install", "wasm-bindgen-cli", "--version", &want]),
        )?;
    }
    Ok(())
}

fn ensure_apt(module_check: &str, package: &str) -> Result<()> {
    // Debian's interpreter: apt installs python3-* modules for /usr/bin/python3 only.
    let present = Command::new("/usr/bin/python3").args(["-c", module_check]).output().map(|o| o.status.success()).unwrap_or(false);
    apt_install(present, package)
}

/// Debian's chromium, for the browser tests.
const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's poppler-utils' `pdftotext`: the PDF tests (`client/pdf`, e2e) read the PDFs back with it.
const PDFTOTEXT: &str = "/usr/bin/pdftotext";

fn apt_install(present: bool, package: &str) -> Result<()> {
    if present {
        return Ok(());
    }
    let sudo = if output(Command::new("id").arg("-u")).unwrap_or_default().trim() == "0" { vec![] } else { vec!["sudo"] };
    let apt = |args: &[&str]| {
        let mut c = Command::new(if sudo.is_empty() { "apt-get" } else { "sudo" });
        if !sudo.is_empty() {
            c.arg("apt-get");
        }
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    step("apt-get update", &mut apt(&["update", "-qq"]))?;
    step(&format!("install {package}"), &mut apt(&["install", "-y", "-qq", package]))
}

/// npm packages in `e2e/` (playwright-core, binaryen, swagger-ui-dist), from its lock file.
fn ensure_e2e_npm(root: &Path) -> Result<()> {
    let dir = root.join("e2e");
    if dir.join("node_modules/.bin/wasm-opt").exists()
        && dir.join("node_modules/playwright-core").exists()
        && dir.join(SWAGGER_UI).join("swagger-ui-bundle.js").exists()
    {
        return Ok(());
    }
    step(
        "npm ci in e2e/ (playwright-core, binaryen, swagger-ui-dist)",
        // swagger-ui-dist depends on @scarf/scarf, whose install script reports
        // the install to its vendor; this turns the report off.
        Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).env("SCARF_ANALYTICS", "false").current_dir(dir),
    )
}

/// npm swagger-ui-dist's folder under `e2e/`: what `handoff serve --api-docs-dir` serves at `/api/docs`.
const SWAGGER_UI: &str = "e2e/node_modules/swagger-ui-dist";

/// schemathesis from PyPI, pinned: 4.x reads OpenAPI 3.1 (the server's document).
const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// The schemathesis executable in its venv under `target/schemathesis`,
/// installed at [`SCHEMATHESIS_VERSION`] if it is missing or another version.
fn ensure_schemathesis(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/schemathesis");
    let bin = venv.join("bin/schemathesis");
    let have = output(Command::new(&bin).arg("--version")).unwrap_or_default();
    if have.split_whitespace().last() == Some(SCHEMATHESIS_VERSION) {
        return Ok(bin);
    }
    if !venv.join("bin/pip").exists() {
        let venv_ok = Command::new("/usr/bin/python3").args(["-m", "venv", "--help"]).output().map(|o| o.status.success()).unwrap_or(false);
        apt_install(venv_ok, "python3-venv")?;
        step("python3 -m venv target/schemathesis", Command::new("/usr/bin/python3").args(["-m", "venv"]).arg(&venv))?;
    }
    step(
        &format!("install schemathesis {SCHEMATHESIS_VERSION} (PyPI, into target/schemathesis)"),
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("schemathesis=={SCHEMATHESIS_VERSION}")),
    )?;
    Ok(bin)
}

/// The schemathesis run (`server/tests/integration/openapi.rs`): a live server
/// with signed-in sessions, every operation of its OpenAPI document, bounded to
/// about two and a half minutes. It is an ignored test of the integration
/// binary, run here with `SCHEMATHESIS` set, from the build `cargo test` made.
fn schemathesis(root: &Path) -> Result<bool> {
    let bin = ensure_schemathesis(root)?;
    let name = "openapi::schemathesis_finds_no_server_error_and_no_answer_outside_the_spec";
    eprintln!("\n==> schemathesis over every operation ({name})");
    let status = cargo()
        .args(["test", "--workspace", "--all-targets", "--no-fail-fast", "--", "--ignored", "--exact", "--nocapture", name])
        .env("SCHEMATHESIS", bin)
        .status()?;
    Ok(status.success())
}

/// Wasm features rustc 1.95 enables by default for wasm32-unknown-unknown;
/// wasm-opt must accept them.
const WASM_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// The served web client: hashed, precompressed (`site.rs`). Not `target/web`,
/// which is cargo's host directory for the `web` profile (build scripts and
/// proc macros), and must not be served.
const WEB_DIST: &str = "target/web-dist";

fn build_web(root: &Path) -> Result<()> {
    ensure_e2e_npm(root)?;
    step(
        "build the web client (wasm32, profile web: size-optimised release)",
        cargo().args(["build", "--profile", "web", "-p", "handoff-web", "--target", "wasm32-unknown-unknown"]),
    )?;
    let out = root.join("target/web");
    let pkg = out.join("pkg");
    std::fs::create_dir_all(&pkg)?;
    let input = root.join("target/wasm32-unknown-unknown/web/handoff_web.wasm");
    let wasm = pkg.join("handoff_web_bg.wasm");
    // wasm-bindgen and wasm-opt (minutes on 2 cores) run again only when
    // cargo's wasm (or binaryen, or the flags) changed: `.built-from` holds
    // the SHA-256 of those and the size wasm-bindgen gave, written when both
    // finished and removed before they start.
    let stamp = pkg.join(".built-from");
    let input_hash = {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?);
        // binaryen's version (the lock file) and the flags decide wasm-opt's output too.
        h.update(std::fs::read(root.join("e2e/package-lock.json")).unwrap_or_default());
        h.update(WASM_FEATURES.concat());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let last = std::fs::read_to_string(&stamp).unwrap_or_default();
    let before = match last.split_once(' ') {
        Some((hash, size)) if hash == input_hash && wasm.exists() && pkg.join("handoff_web.js").exists() => {
            eprintln!("\n==> wasm-bindgen and wasm-opt: skipped, the wasm is the one they last processed");
            size.trim().parse::<u64>().unwrap_or(0)
        }
        _ => {
            // No stamp while the outputs are half made.
            let _ = std::fs::remove_file(&stamp);
            step(
                "wasm-bindgen",
                Command::new("wasm-bindgen").args(["--target", "web", "--no-typescript", "--out-dir"]).arg(&pkg).arg(&input),
            )?;
            let before = std::fs::metadata(&wasm)?.len();
            step(
                "wasm-opt -Oz (npm binaryen)",
                Command::new(root.join("e2e/node_modules/.bin/wasm-opt"))
                    .arg("-Oz")
                    .arg("--strip-debug")
                    .args(WASM_FEATURES)
                    .arg(&wasm)
                    .arg("-o")
                    .arg(&wasm),
            )?;
            std::fs::write(&stamp, format!("{input_hash} {before}\n"))?;
            before
        }
    };
    let after = std::fs::metadata(&wasm)?.len();
    let sizes = timed("hash and precompress the site (brotli 11, gzip 9)", || {
        site::assemble(&pkg, &root.join("client/web/static"), &root.join(WEB_DIST))
    })?;
    let (wasm_bytes, br, gz) = sizes.wasm;
    let report = format!(
        "{{\"wasm_bytes_before_wasm_opt\": {before}, \"wasm_bytes\": {wasm_bytes}, \"wasm_brotli_bytes\": {br}, \"wasm_gzip_bytes\": {gz}, \"js_bytes\": {}}}\n",
        sizes.js
    );
    std::fs::write(out.join("size.json"), &report)?;
    eprintln!(
        "web client: {WEB_DIST}: wasm {} KiB ({} KiB before wasm-opt, {} KiB brotli, {} KiB gzip)",
        after / 1024,
        before / 1024,
        br / 1024,
        gz / 1024
    );
    Ok(())
}

/// `cargo xtask e2e`: builds the web client and the debug server, then runs
/// the browser tests.
fn e2e_alone(root: &Path) -> Result<(u64, u64)> {
    ensure_wasm_target()?;
    ensure_wasm_bindgen(root)?;
    build_web(root)?;
    step("build the server (debug)", cargo().args(["build", "-p", "handoff-server"]))?;
    browser_tests(root, &root.join("target/debug/handoff"))
}

/// The arguments of `cargo test` in `cargo xtask test`. [`tested_server`]
/// repeats them exactly, so it builds nothing.
const CARGO_TEST: &[&str] = &["test", "--workspace", "--all-targets"];

/// The `handoff` binary that `cargo test` (with [`CARGO_TEST`]'s arguments)
/// built for the integration tests: asked of cargo with `--no-run`, which
/// after that run only checks that everything is fresh (seconds), and
/// answers with the binary's path. The browser tests run it, instead of a
/// `cargo build -p handoff-server` that would build the server and its
/// dependencies once more with other features (the workspace's test build
/// unifies features over every member and dev-dependency; a build of one
/// package does not).
fn tested_server() -> Result<PathBuf> {
    let out = output(cargo().args(CARGO_TEST).args(["--no-run", "--message-format=json"]))?;
    server_binary(&out).ok_or_else(|| anyhow::anyhow!("cargo test built no `handoff` binary"))
}

/// The `handoff` server binary among cargo's JSON build messages: the bin
/// target built as a program, not its unit-test harness (also a `bin` target
/// named `handoff`, with `profile.test` set, which takes libtest's options and
/// not the server's; the order of the two messages varies between builds).
fn server_binary(messages: &str) -> Option<PathBuf> {
    messages.lines().find_map(|line| {
        let msg = serde_json::from_str::<serde_json::Value>(line).ok()?;
        let target = &msg["target"];
        let server = msg["reason"] == "compiler-artifact"
            && target["name"] == "handoff"
            && target["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin"))
            && msg["profile"]["test"] == false;
        if server { msg["executable"].as_str().map(PathBuf::from) } else { None }
    })
}

/// The browser tests: `server` (the debug `handoff`) serving the built web
/// client, driven in Debian's chromium by `e2e/run.mjs`. Prints
/// `e2e: N passed, N failed` and returns the counts.
fn browser_tests(root: &Path, server: &Path) -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    apt_install(Path::new(CHROMIUM).exists(), "chromium")?;
    apt_install(Path::new(PDFTOTEXT).exists(), "poppler-utils")?;
    eprintln!("\n==> browser tests (e2e/run.mjs in {CHROMIUM})");
    let mut child = Command::new("node")
        .arg(root.join("e2e/run.mjs"))
        .env("HANDOFF_BIN", server)
        .env("HANDOFF_WEB", root.join(WEB_DIST))
        .env("CHROMIUM", CHROMIUM)
        .env("SCREENSHOTS", root.join("target/screenshots"))
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let (mut passed, mut failed) = (0, 0);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("e2e: ") {
                let nums: Vec<u64> = rest.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect();
                if let [p, f] = nums[..] {
                    (passed, failed) = (p, f);
                }
            }
        }
    }
    let status = child.wait()?;
    if !status.success() && failed == 0 {
        failed = 1;
    }
    Ok((passed, failed))
}

fn run(root: &Path, extra: &[String]) -> Result<()> {
    ensure_wasm_target()?;
    ensure_wasm_bindgen(root)?;
    build_web(root)?;
    step("build the server (release)", cargo().args(["build", "--release", "-p", "handoff-server"]))?;
    let mut cmd = Command::new(root.join("target/release/handoff"));
    cmd.arg("serve").arg("--static-dir").arg(root.join(WEB_DIST)).arg("--api-docs-dir").arg(root.join(SWAGGER_UI)).args(extra);
    eprintln!("\n==> handoff serve (Ctrl-C to stop)");
    let status = cmd.status()?;
    if !status.success() {
        bail!("handoff exited with {status}");
    }
    Ok(())
}

fn bench(root: &Path) -> Result<()> {
    // The first-visit step serves the built web client.
    ensure_wasm_target()?;
    ensure_wasm_bindgen(root)?;
    build_web(root)?;
    step(
        "build the server, the load generator and the Rust baseline (release)",
        cargo().args(["build", "--release", "-p", "handoff-server", "-p", "handoff-load-tests"]),
    )?;
    // The Node `ws` baseline, from the committed lock file.
    if !Path::new("load-tests/node/node_modules/ws/package.json").exists() {
        step(
            "install the Node ws baseline (npm ci in load-tests/node)",
            Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir("load-tests/node"),
        )?;
    }
    step(
        "benchmarks (loopback only, bounded; BENCH_ONLY=fanout or BENCH_QUICK=1 for less)",
        Command::new("target/release/handoff-bench").arg("target/release/handoff"),
    )
}

/// The fuzz targets in `protocol/fuzz` (cargo-fuzz, nightly).
const FUZZ_TARGETS: &[&str] = &["client_frame", "stored_event", "server_frame", "frame_round_trip", "subscribe_replay"];

fn fuzz(root: &Path) -> Result<()> {
    let toolchains = output(Command::new("rustup").args(["toolchain", "list"])).unwrap_or_default();
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        step(
            "install the nightly toolchain (cargo fuzz needs it)",
            Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]),
        )?;
    }
    if !Command::new("cargo").args(["fuzz", "--version"]).output().map(|o| o.status.success()).unwrap_or(false) {
        step("install cargo-fuzz", cargo().args(["install", "cargo-fuzz"]))?;
    }
    let secs = std::env::var("FUZZ_SECONDS").unwrap_or_else(|_| "60".into());
    for t in FUZZ_TARGETS {
        step(
            &format!("fuzz {t} for {secs} s"),
            Command::new("cargo")
                .args(["+nightly", "fuzz", "run", "--fuzz-dir"])
                .arg(root.join("protocol/fuzz"))
                .arg(t)
                .arg("--")
                .arg(format!("-max_total_time={secs}")),
        )?;
    }
    Ok(())
}

/// Crates that must build for wasm32-unknown-unknown (they run in the browser).
const WASM_CRATES: &[&str] = &["handoff-protocol", "handoff-domain", "handoff-crypto", "handoff-client-core", "handoff-pdf", "handoff-web"];

/// Crates the wire protocol must never pull in (ARCHITECTURE.md, "Architecture invariants").
const PROTOCOL_FORBIDDEN: &[&str] = &["tokio", "actix", "actix-rt", "actix-web", "scylla", "mls-rs", "rusqlite"];
/// Crates that must never link the client-side crypto crate. The server does
/// link an MLS crypto provider (mls-rs-crypto-rustcrypto), only to verify
/// public handshake messages as an MLS external observer;
/// [`observer::no_group_secrets`] checks that these crates use none of
/// mls-rs's secret-holding APIs (a member's `Client`, `Group<…>`, ...).
const NO_CRYPTO: &[&str] = &["handoff-server", "handoff-store", "handoff-actors"];

fn dependency_rules() -> Result<()> {
    eprintln!("\n==> dependency rules");
    let tree = |pkg: &str| {
        output(cargo().args(["tree", "-p", pkg, "-e", "normal,build", "--target", "all", "--prefix", "none", "--format", "{p}"]))
    };
    let proto = tree("handoff-protocol")?;
    for line in proto.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if PROTOCOL_FORBIDDEN.contains(&name) {
            bail!("handoff-protocol depends on {name}: the wire types must not pull in a runtime, storage or MLS");
        }
    }
    for pkg in NO_CRYPTO {
        if tree(pkg)?.lines().any(|l| l.split_whitespace().next() == Some("handoff-crypto")) {
            bail!("{pkg} depends on handoff-crypto: the server side must never link client-side decryption");
        }
    }
    eprintln!("protocol pulls in none of {PROTOCOL_FORBIDDEN:?}; {NO_CRYPTO:?} do not link handoff-crypto");
    Ok(())
}

/// Store errors are typed per concept (`UserError::EmailTaken`, `MlsError::StaleEpoch`, ...).
/// Fails if a string-tagged one comes back: `StoreError::Conflict(...)`, or a bare
/// `Conflict("...")` / `NotFound("...")` / `Conflict(&'static str)` variant as in
/// `Err(Conflict("email"))`. Paths such as `ErrorCode::Conflict` or
/// `ApiError::not_found("x")` are not matched. This file is skipped: it names the patterns.
fn typed_store_errors(root: &Path) -> Result<()> {
    eprintln!("\n==> typed store errors");
    let mut hits = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if path.is_dir() {
                if name != "target" && name != "node_modules" && !name.starts_with('.') {
                    dirs.push(path);
                }
            } else if name.ends_with(".rs") && !path.ends_with("xtask/src/main.rs") {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                let shown = path.strip_prefix(root).unwrap_or(&path).display().to_string();
                for (n, line) in text.lines().enumerate() {
                    if is_string_tagged_store_error(line) {
                        hits.push(format!("{shown}:{}: {}", n + 1, line.trim()));
                    }
                }
            }
        }
    }
    if !hits.is_empty() {
        hits.sort();
        bail!(
            "string-tagged store errors are back:\n  {}\nuse (or add) a documented variant of the concept's error enum in handoff-store instead",
            hits.join("\n  ")
        );
    }
    eprintln!("no string-tagged store errors");
    Ok(())
}

/// Whether a line uses a string-tagged store error variant (see [`typed_store_errors`]).
fn is_string_tagged_store_error(line: &str) -> bool {
    ["Conflict", "NotFound"].iter().any(|variant| {
        let open = format!("{variant}(");
        if line.contains(&format!("StoreError::{open}")) {
            return true;
        }
        line.match_indices(&open).any(|(at, _)| {
            let before = line.get(..at).and_then(|b| b.chars().next_back());
            let bare = !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            let arg = line.get(at + open.len()..).unwrap_or_default().trim_start();
            bare && (arg.starts_with('"') || arg.starts_with("&'static"))
        })
    })
}

fn test(root: &Path) -> Result<()> {
    let start = std::time::Instant::now();
    let result = test_steps(root);
    print_times(start.elapsed());
    result
}

fn test_steps(root: &Path) -> Result<()> {
    ensure_wasm_target()?;
    ensure_apt("import aiosmtpd", "python3-aiosmtpd")?;
    apt_install(Path::new(CHROMIUM).exists(), "chromium")?;
    apt_install(Path::new(PDFTOTEXT).exists(), "poppler-utils")?;
    step("rustfmt", cargo().args(["fmt", "--all", "--check"]))?;
    dependency_rules()?;
    timed("source rules (module graph, store errors, path literals, MLS observer)", || {
        modgraph::check_acyclic(&root.join("actors/src"))?;
        typed_store_errors(root)?;
        paths::path_literals(root)?;
        observer::no_group_secrets(root)
    })?;
    step("clippy (native)", cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
    let wasm = |verb: &str| {
        let mut c = cargo();
        c.args([verb, "--target", "wasm32-unknown-unknown"]);
        for p in WASM_CRATES {
            c.args(["-p", p]);
        }
        c
    };
    step("clippy (wasm32: protocol, crypto, pdf, web client)", wasm("clippy").args(["--", "-D", "warnings"]))?;
    // Every wasm crate builds for wasm32 (and links, into the one bundle that
    // ships): the web client's size-optimised build, which depends on all of
    // them. It is the build the browser tests serve, so it runs once; a
    // separate debug build for wasm32 would only repeat it.
    ensure_wasm_bindgen(root)?;
    build_web(root)?;
    step(
        "rustdoc -D warnings",
        cargo()
            .args([
                "doc",
                "--no-deps",
                "-p",
                "handoff-protocol",
                "-p",
                "handoff-domain",
                "-p",
                "handoff-error",
                "-p",
                "handoff-crypto",
                "-p",
                "handoff-store",
                "-p",
                "handoff-client-core",
                "-p",
                "handoff-client",
                "-p",
                "handoff-pdf",
            ])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    tests(root)
}

/// Runs every test (cargo's, then the browser tests), echoing their output,
/// and closes with one plain `tests: N passed, N failed` line summed over all.
fn tests(root: &Path) -> Result<()> {
    use std::io::{BufRead, BufReader};
    eprintln!("\n==> tests");
    // `--workspace`: the web client is not a default member (it is built for
    // wasm32), but its unit tests run natively and must run here too.
    let tests_start = std::time::Instant::now();
    let mut child = cargo().args(CARGO_TEST).arg("--no-fail-fast").stdout(std::process::Stdio::piped()).spawn()?;
    let (mut passed, mut failed) = (0u64, 0u64);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                let count = |word: &str| {
                    rest.split(';').find_map(|part| {
                        part.trim().trim_start_matches("ok. ").trim_start_matches("FAILED. ").strip_suffix(word)?.trim().parse::<u64>().ok()
                    })
                };
                passed += count(" passed").unwrap_or(0);
                failed += count(" failed").unwrap_or(0);
            }
        }
    }
    let status = child.wait()?;
    let cargo_ok = status.success();
    record_time("cargo test (build and run)", tests_start.elapsed());
    if cargo_ok {
        // The HTTP contract fuzzed on a live server (issue 17, wt-openapi).
        if timed("schemathesis (live server, signed in)", || schemathesis(root))? {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    let (bp, bf) = if cargo_ok {
        let server = timed("the server binary cargo test built (a freshness check)", tested_server)?;
        timed("browser tests", || browser_tests(root, &server))?
    } else {
        (0, 0)
    };
    passed += bp;
    failed += bf;
    println!("tests: {passed} passed, {failed} failed");
    if !cargo_ok || failed > 0 {
        bail!("tests failed ({status})");
    }
    if passed == 0 {
        bail!("no test ran");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_string_tagged_store_error as tagged;

    #[test]
    fn the_browser_tests_get_the_server_program_not_its_unit_test_harness() {
        let artifact = |exe: &str, test: bool| {
            serde_json::json!({
                "reason": "compiler-artifact",
                "target": {"name": "handoff", "kind": ["bin"]},
                "profile": {"test": test},
                "executable": exe,
            })
            .to_string()
        };
        let harness = artifact("/t/debug/deps/handoff-0123456789abcdef", true);
        let program = artifact("/t/debug/handoff", false);
        // Either order: cargo prints them as they finish.
        for messages in [format!("{harness}\n{program}\n"), format!("{program}\n{harness}\n")] {
            assert_eq!(super::server_binary(&messages), Some(std::path::PathBuf::from("/t/debug/handoff")));
        }
        assert_eq!(super::server_binary(&format!("{harness}\n")), None);
    }

    #[test]
    fn string_tagged_store_errors_are_caught() {
        let store_error = ["Store", "Error"].concat();
        assert!(tagged(&format!("Err({store_error}::Conflict(\"email\")) => {{}}")));
        assert!(tagged(&format!("Err({store_error}::NotFound(_)) => {{}}")));
        assert!(tagged(&format!("return Err({store_error}::NotFound(\"blob\"));")));
        assert!(tagged("Err(Conflict(\"idempotency\")) => retry(),"));
        assert!(tagged("    .ok_or(NotFound( \"invite\"))?;"));
        assert!(tagged("    Conflict(&'static str),"));
    }

    #[test]
    fn unrelated_code_is_not_caught() {
        assert!(!tagged("ApiError::new(ErrorCode::Conflict, \"you are already a member\")"));
        assert!(!tagged("ApiError::not_found(\"member\")"));
        assert!(!tagged("Err(PracticeError::NotMember) => {}"));
        assert!(!tagged("Err(HttpError::Conflict(\"x\".into()))"));
        assert!(!tagged("let code = StatusCode::NOT_FOUND;"));
        assert!(!tagged("MyConflict(\"x\")"));
    }
}
