//! The built web client, served at `/` from `static_dir`.
//!
//! `cargo xtask build-web` writes the site: `index.html`, and every asset it
//! loads under a name carrying a hash of its content (`app.<hash>.css`,
//! `pkg/handoff_web_bg.<hash>.wasm`, ...), each beside a brotli (`.br`) and
//! a gzip (`.gz`) copy compressed at build time. Here:
//!
//! - **The files served are those found at start.** [`Site::load`] walks the
//!   directory once and keeps a map from URL path to file; a request is
//!   looked up in that map by its exact path, so no request can name a file
//!   outside the map (`..`, encoded dots, symlinks out of the directory,
//!   dot-files). Rebuilding the client therefore needs a restart.
//! - **Encoding** by `Accept-Encoding`: the acceptable coding with the
//!   highest q wins, ties going to brotli, then gzip, then identity; `q=0`
//!   refuses a coding (and `*` stands for every coding not named). A coding is
//!   only offered when its precompressed copy exists. A `Range` request gets
//!   the identity bytes (a range of a compressed copy means nothing to most
//!   clients). Every answer says `Vary: Accept-Encoding`.
//! - **Caching**: a hashed name never changes content, so it is
//!   `public, max-age=31536000, immutable`; anything else (`index.html`, the
//!   app shell served for client-side routes) is `no-cache`, so a new build is
//!   picked up on the next visit.
//! - **Misses**: a path whose last segment has an extension names a file, and
//!   an unknown one is `404 not_found` (an old asset after a deploy must not
//!   come back as HTML); any other path is a client-side route
//!   (`/invite/<token>`) and gets `index.html`. A path with a `..` or `.`
//!   segment, a dot-file, a backslash or an encoded dot, slash or backslash
//!   is refused with `404 not_found` and never falls back to the app shell.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use actix_web::http::header::{self, ContentEncoding, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;

/// `Cache-Control` of a file whose name carries its content hash.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything else (`index.html` and the app shell).
pub const NO_CACHE: &str = "no-cache";
/// At most this many files are served from `static_dir` (a guard against
/// pointing it at a build directory instead of the built site).
pub const MAX_FILES: usize = 1_000;

/// Why the static directory could not be loaded at start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SiteError {
    /// The directory (or a file in it) could not be read.
    #[error("static dir {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// The directory has no `index.html`: it is not a built web client.
    #[error("static dir {0} has no index.html; build the client with `cargo xtask build-web`")]
    NoIndex(PathBuf),
    /// The directory holds more than [`MAX_FILES`] files.
    #[error("static dir {0} holds more than {MAX_FILES} files; point it at the built client (target/web-dist)")]
    TooManyFiles(PathBuf),
}

/// A content coding the server can answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    /// `br`: the `.br` copy.
    Brotli,
    /// `gzip`: the `.gz` copy.
    Gzip,
    /// No coding: the file itself.
    Identity,
}

impl Coding {
    /// The server's order of preference when the client's q values tie.
    const PREFERENCE: [Coding; 3] = [Coding::Brotli, Coding::Gzip, Coding::Identity];

    fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
            Coding::Identity => "identity",
        }
    }
}

/// Chooses the coding for an `Accept-Encoding` value, among those `available`
/// (identity is always available). The highest q wins, ties go by
/// [`Coding::PREFERENCE`], and `q=0` refuses a coding; identity, unless
/// named, ranks below every coding the client names. No header: identity.
/// If the client refuses every available coding, identity is sent anyway (RFC
/// 9110 §12.5.3 allows it), as nothing else could be.
pub fn choose(accept_encoding: Option<&str>, available: impl Fn(Coding) -> bool) -> Coding {
    let Some(value) = accept_encoding else {
        return Coding::Identity;
    };
    let mut named: Vec<(String, f32)> = Vec::new();
    for item in value.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let mut q = 1.0f32;
        for param in parts {
            if let Some((k, v)) = param.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                // An unreadable q counts as 0: never send what the client may not want.
                q = v.trim().parse::<f32>().ok().filter(|q| q.is_finite()).map_or(0.0, |q| q.clamp(0.0, 1.0));
            }
        }
        named.push((name, q));
    }
    let q_of = |coding: Coding| -> f32 {
        let token = coding.token();
        if let Some((_, q)) = named.iter().find(|(n, _)| n == token || (coding == Coding::Gzip && n == "x-gzip")) {
            return *q;
        }
        if let Some((_, q)) = named.iter().find(|(n, _)| n == "*") {
            return *q;
        }
        // Identity is acceptable unless refused, but a client that names a
        // coding prefers it (RFC 9110 §12.5.3 gives unnamed identity no q): it
        // ranks below every named one. A coding not named is not acceptable.
        if coding == Coding::Identity { 0.001 } else { 0.0 }
    };
    let mut best = Coding::Identity;
    let mut best_q = 0.0f32;
    for coding in Coding::PREFERENCE {
        if !available(coding) {
            continue;
        }
        let q = q_of(coding);
        if q > best_q {
            best = coding;
            best_q = q;
        }
    }
    best
}

/// One servable file and its precompressed copies.
#[derive(Debug, Clone)]
struct Entry {
    file: PathBuf,
    brotli: Option<PathBuf>,
    gzip: Option<PathBuf>,
    /// The file name's extension, which decides its `Content-Type`.
    ext: String,
    cache: &'static str,
}

impl Entry {
    fn copy(&self, coding: Coding) -> Option<&Path> {
        match coding {
            Coding::Brotli => self.brotli.as_deref(),
            Coding::Gzip => self.gzip.as_deref(),
            Coding::Identity => Some(&self.file),
        }
    }
}

/// The built web client: every servable file, found once at start.
#[derive(Debug)]
pub struct Site {
    files: HashMap<String, Entry>,
}

impl Site {
    /// Walks `dir` and keeps every regular file not under a dot-name, with its
    /// `.br`/`.gz` siblings as its compressed copies. Symlinks are not
    /// followed. Fails without `index.html`.
    pub fn load(dir: &Path) -> Result<Self, SiteError> {
        let read_err = |p: &Path, e: std::io::Error| SiteError::Read(p.to_path_buf(), e);
        let mut found: Vec<(String, PathBuf)> = Vec::new();
        let mut dirs = vec![(dir.to_path_buf(), String::new())];
        while let Some((path, prefix)) = dirs.pop() {
            for entry in std::fs::read_dir(&path).map_err(|e| read_err(&path, e))? {
                let entry = entry.map_err(|e| read_err(&path, e))?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
                if name.starts_with('.') || !is_safe_segment(&name) {
                    continue;
                }
                let kind = entry.file_type().map_err(|e| read_err(&entry.path(), e))?;
                let url = format!("{prefix}/{name}");
                if kind.is_dir() {
                    dirs.push((entry.path(), url));
                } else if kind.is_file() {
                    found.push((url, entry.path()));
                    if found.len() > MAX_FILES {
                        return Err(SiteError::TooManyFiles(dir.to_path_buf()));
                    }
                }
            }
        }
        let paths: HashMap<&str, &PathBuf> = found.iter().map(|(u, p)| (u.as_str(), p)).collect();
        let mut files = HashMap::new();
        for (url, file) in &found {
            if url.ends_with(".br") || url.ends_with(".gz") {
                continue;
            }
            let name = url.rsplit('/').next().unwrap_or_default();
            let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
            let entry = Entry {
                file: file.clone(),
                brotli: paths.get(format!("{url}.br").as_str()).map(|p| (*p).clone()),
                gzip: paths.get(format!("{url}.gz").as_str()).map(|p| (*p).clone()),
                ext: ext.to_owned(),
                cache: if is_hashed(name) { IMMUTABLE } else { NO_CACHE },
            };
            files.insert(url.clone(), entry);
        }
        if !files.contains_key("/index.html") {
            return Err(SiteError::NoIndex(dir.to_path_buf()));
        }
        Ok(Self { files })
    }

    /// What a request path names.
    fn lookup(&self, path: &str) -> Lookup<'_> {
        let segments: Vec<&str> = path.split('/').skip(1).collect();
        if segments.iter().any(|s| !is_safe_segment(s) || s.starts_with('.')) {
            return Lookup::Refused;
        }
        let last = segments.last().copied().unwrap_or_default();
        if last.contains('.') {
            return self.files.get(path).map_or(Lookup::Missing, Lookup::File);
        }
        match self.files.get("/index.html") {
            Some(index) => Lookup::Shell(index),
            None => Lookup::Missing,
        }
    }
}

/// The answer to a request path.
enum Lookup<'a> {
    /// A file of the site.
    File(&'a Entry),
    /// A client-side route: the app shell (`index.html`), never cached.
    Shell(&'a Entry),
    /// A file name the site does not have.
    Missing,
    /// A path that tries to leave the site or reach a hidden file.
    Refused,
}

/// Whether one path segment may name something served: no backslash, no NUL,
/// no encoded dot, slash or backslash, and not `.` or `..` (empty segments
/// are fine: `/invite/x/` is a client-side route).
fn is_safe_segment(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    s != "."
        && s != ".."
        && !s.contains('\\')
        && !s.contains('\0')
        && !lower.contains("%2e")
        && !lower.contains("%2f")
        && !lower.contains("%5c")
        && !lower.contains("%00")
}

/// Whether a file name carries a content hash, as the build writes it:
/// `<stem>.<16 lowercase hex digits>.<ext>`.
pub fn is_hashed(name: &str) -> bool {
    let mut parts = name.rsplitn(3, '.');
    let (_ext, hash, stem) = (parts.next(), parts.next(), parts.next());
    match (hash, stem) {
        (Some(h), Some(stem)) => !stem.is_empty() && h.len() == 16 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        _ => false,
    }
}

/// Registers the site as the app's default service (after every route).
pub fn configure(cfg: &mut web::ServiceConfig, site: web::Data<Site>) {
    cfg.app_data(site).default_service(web::to(serve));
}

/// Serves a file of the site, or the app shell, by the rules of this module.
async fn serve(req: HttpRequest, site: web::Data<Site>) -> Result<HttpResponse, ApiError> {
    if req.method() != actix_web::http::Method::GET && req.method() != actix_web::http::Method::HEAD {
        return Err(ApiError::no_route());
    }
    let (entry, cache) = match site.lookup(req.path()) {
        Lookup::File(e) => (e, e.cache),
        Lookup::Shell(e) => (e, NO_CACHE),
        Lookup::Missing | Lookup::Refused => return Err(ApiError::not_found("file")),
    };
    let coding = if req.headers().contains_key(header::RANGE) {
        Coding::Identity
    } else {
        let accept = req.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok());
        choose(accept, |c| entry.copy(c).is_some())
    };
    let path = entry.copy(coding).unwrap_or(&entry.file);
    let file = actix_files::NamedFile::open_async(path).await.map_err(|e| {
        tracing::error!(error = %e, "a static file found at start is gone");
        ApiError::not_found("file")
    })?;
    let mut file = file.set_content_type(actix_files::file_extension_to_mime(&entry.ext)).disable_content_disposition().prefer_utf8(true);
    match coding {
        Coding::Brotli => file = file.set_content_encoding(ContentEncoding::Brotli),
        Coding::Gzip => file = file.set_content_encoding(ContentEncoding::Gzip),
        Coding::Identity => {}
    }
    let mut res = file.into_response(&req);
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::{Coding, choose, is_hashed};

    const ALL: fn(Coding) -> bool = |_| true;

    #[test]
    fn brotli_wins_a_tie_then_gzip() {
        assert_eq!(choose(Some("gzip, deflate, br, zstd"), ALL), Coding::Brotli);
        assert_eq!(choose(Some("gzip, deflate"), ALL), Coding::Gzip);
        assert_eq!(choose(Some("gzip, br"), |c| c != Coding::Brotli), Coding::Gzip);
        assert_eq!(choose(None, ALL), Coding::Identity);
        assert_eq!(choose(Some(""), ALL), Coding::Identity);
    }

    #[test]
    fn q_zero_refuses_a_coding_and_higher_q_wins() {
        assert_eq!(choose(Some("br;q=0, gzip"), ALL), Coding::Gzip);
        assert_eq!(choose(Some("br;q=0, gzip;q=0"), ALL), Coding::Identity);
        assert_eq!(choose(Some("*;q=0, identity"), ALL), Coding::Identity);
        assert_eq!(choose(Some("br;q=0.5, gzip;q=0.8"), ALL), Coding::Gzip);
        assert_eq!(choose(Some("*"), ALL), Coding::Brotli);
        assert_eq!(choose(Some("gzip;q=0, *"), ALL), Coding::Brotli);
        assert_eq!(choose(Some("br;q=nonsense"), ALL), Coding::Identity);
        assert_eq!(choose(Some("identity;q=0"), |c| c == Coding::Identity), Coding::Identity);
    }

    #[test]
    fn hashed_names_are_told_apart() {
        assert!(is_hashed("app.0123456789abcdef.css"));
        assert!(is_hashed("handoff_web_bg.0123456789abcdef.wasm"));
        assert!(!is_hashed("index.html"));
        assert!(!is_hashed("app.css"));
        assert!(!is_hashed(".0123456789abcdef.css"));
        assert!(!is_hashed("app.0123456789ABCDEF.css"));
        assert!(!is_hashed("app.0123456789abcde.css"));
    }
}
