//! The served web client (`target/web-dist`), assembled from wasm-bindgen's
//! output and `client/web/static`.
//!
//! Every asset gets a name carrying the first 16 hex digits of its SHA-256
//! (`app.<hash>.css`, `boot.<hash>.js`, `pkg/handoff_web.<hash>.js`,
//! `pkg/handoff_web_bg.<hash>.wasm`, each wasm-bindgen snippet), so the
//! server can mark it immutable; the files that name others are rewritten
//! first (leaves before the files that load them), so a hash covers what the
//! file loads too. Every rewrite must find what it replaces, so a change in
//! wasm-bindgen's output fails the build instead of shipping a page that
//! loads nothing. Then every file is precompressed: brotli quality 11 (`.br`)
//! and gzip level 9 (`.gz`), kept only when smaller.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::Digest as _;

/// One file of the site: its path under the site and its bytes.
struct File {
    path: String,
    bytes: Vec<u8>,
}

/// The name `name` with `.<hash>` before its extension.
fn hashed_name(name: &str, bytes: &[u8]) -> String {
    let digest = sha2::Sha256::digest(bytes);
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{name}.{hash}"),
    }
}

/// Replaces every `from` in `text` with `to`; fails if there is none.
fn rewrite(text: &str, what: &str, from: &str, to: &str) -> Result<String> {
    if !text.contains(from) {
        bail!("{what} no longer mentions {from}: the web build's references changed, update xtask/src/site.rs");
    }
    Ok(text.replace(from, to))
}

/// Sizes of the assembled site, for `target/web/size.json`.
pub struct Sizes {
    /// The wasm module's bytes, and its brotli and gzip copies'.
    pub wasm: (u64, u64, u64),
    /// The wasm-bindgen JS loader's bytes.
    pub js: u64,
}

/// Assembles the site into `out` (emptied first) from wasm-bindgen's `pkg`
/// directory and the static files in `static_dir`.
pub fn assemble(pkg: &Path, static_dir: &Path, out: &Path) -> Result<Sizes> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let mut files = Vec::new();

    // Leaves first: the wasm module and wasm-bindgen's JS snippets.
    let wasm_bytes = read(&pkg.join("handoff_web_bg.wasm"))?;
    let wasm_name = hashed_name("handoff_web_bg.wasm", &wasm_bytes);
    let mut loader = String::from_utf8(read(&pkg.join("handoff_web.js"))?).context("handoff_web.js is not UTF-8")?;
    loader = rewrite(&loader, "handoff_web.js", "'handoff_web_bg.wasm'", &format!("'{wasm_name}'"))?;
    files.push(File { path: format!("pkg/{wasm_name}"), bytes: wasm_bytes });
    for snippet in walk(&pkg.join("snippets"))? {
        let rel = snippet.strip_prefix(pkg).context("snippet outside pkg")?.to_string_lossy().replace('\\', "/");
        let bytes = read(&snippet)?;
        let (dir, name) = rel.rsplit_once('/').context("snippet without a directory")?;
        let new = format!("{dir}/{}", hashed_name(name, &bytes));
        // Only the `import` names the file; the same string as a key of the
        // imports object is the wasm module's import name, and stays.
        loader = rewrite(&loader, "handoff_web.js", &format!("from \"./{rel}\""), &format!("from \"./{new}\""))?;
        files.push(File { path: format!("pkg/{new}"), bytes });
    }
    let js = loader.len() as u64;
    let loader_name = hashed_name("handoff_web.js", loader.as_bytes());
    files.push(File { path: format!("pkg/{loader_name}"), bytes: loader.into_bytes() });

    // Then ours: boot.js loads the loader; index.html loads boot.js and the stylesheet.
    let mut index = String::from_utf8(read(&static_dir.join("index.html"))?).context("index.html is not UTF-8")?;
    for entry in std::fs::read_dir(static_dir).with_context(|| format!("reading {}", static_dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).context("a static file name is not UTF-8")?.to_string();
        if name == "index.html" {
            continue;
        }
        let mut bytes = read(&path)?;
        if name == "boot.js" {
            let text = String::from_utf8(bytes).context("boot.js is not UTF-8")?;
            bytes = rewrite(&text, "boot.js", "'/pkg/handoff_web.js'", &format!("'/pkg/{loader_name}'"))?.into_bytes();
        }
        let new = hashed_name(&name, &bytes);
        index = rewrite(&index, "index.html", &format!("\"/{name}\""), &format!("\"/{new}\""))?;
        files.push(File { path: new, bytes });
    }
    files.push(File { path: "index.html".into(), bytes: index.into_bytes() });

    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("emptying {}", out.display()))?;
    }
    let mut wasm = (0, 0, 0);
    for f in &files {
        let path = out.join(&f.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, &f.bytes)?;
        // Both at once: brotli 11 on the wasm takes most of the time.
        let (br, gz) = std::thread::scope(|s| {
            let br = s.spawn(|| brotli(&f.bytes));
            let gz = gzip(&f.bytes);
            (br.join().map_err(|_| anyhow::anyhow!("brotli panicked")).and_then(|r| r), gz)
        });
        let (br, gz) = (br?, gz?);
        if f.path.ends_with(".wasm") {
            wasm = (f.bytes.len() as u64, br.len() as u64, gz.len() as u64);
        }
        for (ext, packed) in [("br", br), ("gz", gz)] {
            if packed.len() < f.bytes.len() {
                std::fs::write(with_suffix(&path, ext), packed)?;
            }
        }
    }
    Ok(Sizes { wasm, js })
}

/// `path` with `.ext` appended to its name.
fn with_suffix(path: &Path, ext: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Every file under `dir` (none if it does not exist).
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `bytes` compressed with brotli at quality 11 (the best), window 2^22.
pub fn brotli(bytes: &[u8]) -> Result<Vec<u8>> {
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 22, ..Default::default() };
    let mut out = Vec::new();
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params)?;
    Ok(out)
}

/// `bytes` compressed with gzip at level 9 (the best).
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    w.write_all(bytes)?;
    Ok(w.finish()?)
}
