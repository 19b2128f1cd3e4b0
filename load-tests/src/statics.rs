//! First-visit bytes (`BENCH_ONLY=static`): the release server serves the
//! built web client (`target/web-dist`, or `BENCH_WEB_DIR`), and a first
//! visit is replayed as a browser makes it: `index.html`, then every file it
//! loads, followed through the files that load others (the stylesheet, the
//! boot script, wasm-bindgen's loader, its snippets and the wasm module).
//! Each is fetched on a cold cache with `Accept-Encoding: identity` (before
//! compression), with `Accept-Encoding: br, gzip` as Chromium and Firefox
//! send it (after), and with `gzip` alone (a client without brotli). The figure is the response bodies'
//! bytes as they arrive; headers (a few hundred bytes per file) are left out.
//! No clock: the result is a byte count, the same on any machine for one build.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::common::start_ours_with;

/// One file of the first visit.
#[derive(Clone, Debug, Serialize)]
pub struct FileRow {
    /// Its path on the server.
    pub path: String,
    /// Body bytes without compression.
    pub identity_bytes: u64,
    /// Body bytes as fetched with `Accept-Encoding: br, gzip`.
    pub compressed_bytes: u64,
    /// The `Content-Encoding` that fetch got (`identity` if none).
    pub encoding: String,
    /// Body bytes as fetched with `Accept-Encoding: gzip` (a client without brotli).
    pub gzip_bytes: u64,
}

/// What a first visit transfers.
#[derive(Clone, Debug, Serialize)]
pub struct StaticResult {
    /// Every file a first visit fetches, in the order found.
    pub files: Vec<FileRow>,
    /// Their bytes with `Accept-Encoding: br, gzip`.
    pub first_visit_bytes: u64,
    /// Their bytes with `Accept-Encoding: identity`.
    pub first_visit_bytes_uncompressed: u64,
    /// Their bytes with `Accept-Encoding: gzip`.
    pub first_visit_bytes_gzip: u64,
}

/// Replays a first visit of the site in `web_dir` served by `bin`.
pub async fn run(bin: &Path, web_dir: &Path) -> Result<StaticResult> {
    if !web_dir.join("index.html").exists() {
        bail!("{} has no index.html: build the web client first (cargo xtask build-web)", web_dir.display());
    }
    let dir = web_dir.canonicalize()?;
    let extra = format!("static_dir = {}\n", serde_json::to_string(&dir.to_string_lossy())?);
    let server = start_ours_with(bin, None, None, &extra).await?;
    // No cookie jar, no cache, no decompression: the bytes as they arrive.
    let http = reqwest::Client::new();
    let fetch = |path: String, accept: &'static str| {
        let http = http.clone();
        let url = format!("{}{path}", server.url);
        async move {
            let res = http.get(&url).header("accept-encoding", accept).send().await.with_context(|| format!("GET {url}"))?;
            if !res.status().is_success() {
                bail!("GET {url}: {}", res.status());
            }
            let encoding = res.headers().get("content-encoding").and_then(|v| v.to_str().ok()).unwrap_or("identity").to_string();
            let body = res.bytes().await?;
            Ok::<_, anyhow::Error>((encoding, body))
        }
    };
    // Walk the identity bodies to find what each file loads.
    let mut queue = vec!["/".to_string()];
    let mut seen: BTreeSet<String> = queue.iter().cloned().collect();
    let mut files = Vec::new();
    while let Some(path) = (!queue.is_empty()).then(|| queue.remove(0)) {
        let (_, plain) = fetch(path.clone(), "identity").await?;
        let (encoding, packed) = fetch(path.clone(), "br, gzip").await?;
        let (_, gzipped) = fetch(path.clone(), "gzip").await?;
        if path.ends_with(".html") || path.ends_with(".js") || path.ends_with(".css") || path == "/" {
            for next in references(&path, &String::from_utf8_lossy(&plain)) {
                if seen.insert(next.clone()) {
                    queue.push(next);
                }
            }
        }
        files.push(FileRow {
            path,
            identity_bytes: plain.len() as u64,
            compressed_bytes: packed.len() as u64,
            encoding,
            gzip_bytes: gzipped.len() as u64,
        });
    }
    if !files.iter().any(|f| f.path.ends_with(".wasm")) {
        bail!("the first visit found no wasm module: {:?}", files.iter().map(|f| &f.path).collect::<Vec<_>>());
    }
    let first_visit_bytes = files.iter().map(|f| f.compressed_bytes).sum();
    let first_visit_bytes_uncompressed = files.iter().map(|f| f.identity_bytes).sum();
    let first_visit_bytes_gzip = files.iter().map(|f| f.gzip_bytes).sum();
    for f in &files {
        eprintln!("  {:<60} {:>9} B  {:>9} B {:<8} {:>9} B gzip", f.path, f.identity_bytes, f.compressed_bytes, f.encoding, f.gzip_bytes);
    }
    eprintln!(
        "  first visit: {first_visit_bytes_uncompressed} B uncompressed, {first_visit_bytes} B with br/gzip, {first_visit_bytes_gzip} B with gzip only"
    );
    Ok(StaticResult { files, first_visit_bytes, first_visit_bytes_uncompressed, first_visit_bytes_gzip })
}

/// The site paths that the text of `from` (a page, script or stylesheet)
/// loads, as a browser reads them: `src="…"` and `href="…"` in HTML,
/// `import … from "…"`, `import("…")` and `new URL('…', import.meta.url)` in
/// JS, `url(…)` and `@import "…"` in CSS; only names of `.js`, `.css` or
/// `.wasm` files, resolved against `from`'s directory. (A string that merely
/// looks like a file name, such as the key naming a wasm import module, is
/// not a fetch.)
fn references(from: &str, text: &str) -> Vec<String> {
    const OPENERS: &[(&str, char)] = &[
        ("src=\"", '"'),
        ("href=\"", '"'),
        ("from \"", '"'),
        ("from '", '\''),
        ("import(\"", '"'),
        ("import('", '\''),
        ("new URL('", '\''),
        ("new URL(\"", '"'),
        ("url(\"", '"'),
        ("url('", '\''),
        ("url(", ')'),
        ("@import \"", '"'),
    ];
    let base = match from.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/"),
        None => "/".to_string(),
    };
    let mut found: Vec<(usize, String)> = Vec::new();
    for (opener, close) in OPENERS {
        for (at, _) in text.match_indices(opener) {
            let rest = text.get(at + opener.len()..).unwrap_or_default();
            let Some(s) = rest.split(*close).next() else { continue };
            let named = [".js", ".css", ".wasm"].iter().any(|e| s.ends_with(e));
            if named && !s.is_empty() && !s.contains(char::is_whitespace) && !s.contains("://") && !s.starts_with(['"', '\'']) {
                found.push((at, resolve(&base, s)));
            }
        }
    }
    found.sort();
    let mut out: Vec<String> = Vec::new();
    for (_, p) in found {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// `reference` resolved against the directory `base` (ending in `/`).
fn resolve(base: &str, reference: &str) -> String {
    let joined = if reference.starts_with('/') { reference.to_string() } else { format!("{base}{reference}") };
    let mut parts: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::references;

    #[test]
    fn a_visit_follows_what_each_file_loads() {
        let html = r#"<link rel="stylesheet" href="/app.1.css"><script type="module" src="/boot.2.js"></script>"#;
        assert_eq!(references("/", html), ["/app.1.css", "/boot.2.js"]);
        let loader =
            "import * as import1 from \"./snippets/x/inline0.3.js\"\n module_or_path = new URL('handoff_web_bg.4.wasm', import.meta.url);";
        assert_eq!(references("/pkg/handoff_web.5.js", loader), ["/pkg/snippets/x/inline0.3.js", "/pkg/handoff_web_bg.4.wasm"]);
        assert_eq!(references("/boot.2.js", "import init from '/pkg/handoff_web.5.js';"), ["/pkg/handoff_web.5.js"]);
        assert!(references("/a.css", ".x { color: red } /* not a file */").is_empty());
        assert_eq!(references("/a.css", ".x { background: url(img/x.css) }"), ["/img/x.css"]);
    }
}
