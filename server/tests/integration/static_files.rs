//! Static serving (issue 17, part 3): the built web client with its hashed,
//! precompressed assets, on a small fixture site made here the way
//! `cargo xtask build-web` makes the real one (a file, its `.br` at brotli
//! quality 11 and its `.gz` at gzip level 9). Each coding is chosen by
//! `Accept-Encoding` and decompresses to the original; cache headers follow
//! the name; an unknown file is a 404; no path leaves the site; and the
//! security headers (HSTS only over https, a CSP without inline styles).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use handoff_protocol::ErrorCode;
use handoff_protocol::api::{Endpoint as _, GetHealth};

use crate::harness::TestServer;

const CSS: &str = "app.0123456789abcdef.css";
const WASM: &str = "pkg/handoff_web_bg.fedcba9876543210.wasm";
/// A hashed file built without compressed copies (too small to gain from them).
const PLAIN_JS: &str = "pkg/tiny.00112233445566aa.js";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The fixture site's files and their bytes (compressible, as the real ones are).
fn fixture_files() -> Vec<(&'static str, Vec<u8>)> {
    let index = format!(
        "<!doctype html>\n<html><head><link rel=\"stylesheet\" href=\"/{CSS}\"><script type=\"module\" src=\"/{PLAIN_JS}\"></script></head><body></body></html>\n"
    );
    let css = ".card { border: 1px solid #ccc; padding: 1rem; }\n".repeat(200);
    let wasm: Vec<u8> = b"\0asm\x01\0\0\0".iter().copied().chain((0..40_000u32).map(|i| (i % 251) as u8 / 3)).collect();
    vec![("index.html", index.into_bytes()), (CSS, css.into_bytes()), (WASM, wasm), (PLAIN_JS, b"init();".to_vec())]
}

/// Writes the fixture site under `root/site`, with a secret beside it (outside
/// the site) and a symlink in it pointing at that secret. Returns the site's path.
fn fixture_site(root: &Path) -> PathBuf {
    let site = root.join("site");
    for (name, bytes) in fixture_files() {
        let path = site.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        if name != PLAIN_JS {
            std::fs::write(format!("{}.br", path.display()), brotli(&bytes)).unwrap();
            std::fs::write(format!("{}.gz", path.display()), gzip(&bytes)).unwrap();
        }
    }
    std::fs::write(root.join("secret.txt"), "outside the site").unwrap();
    std::fs::write(site.join(".env"), "a hidden file").unwrap();
    std::os::unix::fs::symlink(root.join("secret.txt"), site.join("link.txt")).unwrap();
    site
}

fn brotli(bytes: &[u8]) -> Vec<u8> {
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 22, ..Default::default() };
    let mut out = Vec::new();
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).unwrap();
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    w.write_all(bytes).unwrap();
    w.finish().unwrap()
}

/// How to undo a content coding.
type Undo = fn(&[u8]) -> Vec<u8>;

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 4096).read_to_end(&mut out).unwrap();
    out
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

/// A server serving the fixture site, with `public_url` as given.
fn serving(public_url: &str) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let site = fixture_site(dir.path());
    let url = public_url.to_string();
    let srv = TestServer::start_with(None, move |c| {
        c.static_dir = Some(site);
        c.public_url = Some(url);
    });
    (srv, dir)
}

fn original(name: &str) -> Vec<u8> {
    fixture_files().into_iter().find(|(n, _)| *n == name).map(|(_, b)| b).unwrap()
}

/// `GET path` with `Accept-Encoding: accept` (none if `None`).
async fn get(srv: &TestServer, path: &str, accept: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(format!("{}{path}", srv.url()));
    if let Some(a) = accept {
        req = req.header("accept-encoding", a);
    }
    req.send().await.unwrap()
}

fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers().get(name).map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn each_coding_is_chosen_by_accept_encoding_and_decodes_to_the_original() {
    let (srv, _dir) = serving("http://handoff.test");
    let wasm = original(WASM);
    // (Accept-Encoding, the coding expected, how to undo it)
    let cases: [(Option<&str>, Option<&str>, Undo); 7] = [
        (Some("gzip, deflate, br, zstd"), Some("br"), unbrotli),
        (Some("br"), Some("br"), unbrotli),
        (Some("gzip, deflate"), Some("gzip"), gunzip),
        (Some("br;q=0.5, gzip;q=0.9"), Some("gzip"), gunzip),
        (Some("identity"), None, <[u8]>::to_vec),
        (Some("deflate, zstd"), None, <[u8]>::to_vec),
        (None, None, <[u8]>::to_vec),
    ];
    for (accept, coding, undo) in cases {
        let res = get(&srv, &format!("/{WASM}"), accept).await;
        assert_eq!(res.status(), 200, "{accept:?}");
        assert_eq!(header(&res, "content-encoding").as_deref(), coding, "Accept-Encoding {accept:?}");
        assert_eq!(header(&res, "content-type").as_deref(), Some("application/wasm"), "{accept:?}");
        assert_eq!(header(&res, "vary").as_deref(), Some("Accept-Encoding"), "{accept:?}");
        let body = res.bytes().await.unwrap();
        if coding.is_some() {
            assert!(body.len() < wasm.len(), "the {coding:?} copy is smaller than the file");
        }
        assert_eq!(undo(&body), wasm, "Accept-Encoding {accept:?} decodes to the original");
    }
    // The stylesheet is text: its type says UTF-8, whatever the coding.
    let res = get(&srv, &format!("/{CSS}"), Some("gzip, br")).await;
    assert_eq!(header(&res, "content-type").as_deref(), Some("text/css; charset=utf-8"));
    assert_eq!(unbrotli(&res.bytes().await.unwrap()), original(CSS));
}

#[tokio::test]
async fn a_coding_refused_with_q_zero_is_never_sent() {
    let (srv, _dir) = serving("http://handoff.test");
    let wasm = original(WASM);
    let cases: [(&str, Option<&str>); 5] = [
        ("br;q=0, gzip", Some("gzip")),
        ("gzip, br;q=0.0", Some("gzip")),
        ("br;q=0, gzip;q=0", None),
        ("*;q=0, identity", None),
        ("gzip;q=0, *", Some("br")),
    ];
    for (accept, coding) in cases {
        let res = get(&srv, &format!("/{WASM}"), Some(accept)).await;
        assert_eq!(res.status(), 200, "{accept}");
        assert_eq!(header(&res, "content-encoding").as_deref(), coding, "Accept-Encoding {accept}");
        let body = res.bytes().await.unwrap().to_vec();
        let decoded = match coding {
            Some("br") => unbrotli(&body),
            Some("gzip") => gunzip(&body),
            _ => body,
        };
        assert_eq!(decoded, wasm, "Accept-Encoding {accept}");
    }
    // A file without compressed copies is sent as it is, whatever is accepted.
    let res = get(&srv, &format!("/{PLAIN_JS}"), Some("br, gzip")).await;
    assert_eq!(header(&res, "content-encoding"), None);
    assert!(header(&res, "content-type").unwrap().contains("javascript"));
    assert_eq!(res.bytes().await.unwrap().to_vec(), original(PLAIN_JS));
}

#[tokio::test]
async fn a_range_request_gets_the_bytes_of_the_file_itself() {
    let (srv, _dir) = serving("http://handoff.test");
    let res = reqwest::Client::new()
        .get(format!("{}/{WASM}", srv.url()))
        .header("accept-encoding", "br, gzip")
        .header("range", "bytes=0-3")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_ne!(header(&res, "content-encoding").as_deref(), Some("br"));
    assert_ne!(header(&res, "content-encoding").as_deref(), Some("gzip"));
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"\0asm");
}

#[tokio::test]
async fn hashed_names_are_immutable_and_the_app_shell_is_revalidated() {
    let (srv, _dir) = serving("http://handoff.test");
    for name in [CSS, WASM, PLAIN_JS] {
        let res = get(&srv, &format!("/{name}"), Some("br, gzip")).await;
        assert_eq!(res.status(), 200, "{name}");
        assert_eq!(header(&res, "cache-control").as_deref(), Some(IMMUTABLE), "{name}");
    }
    let shell = original("index.html");
    // The page itself, by name and as the app shell of client-side routes (pages, not API paths).
    let referral_page = "/referrals/0b6f2c1e-3c1a-4f5e-9d39-1a2b3c4d5e6f"; // path-literal-ok: a page route of the web client
    for path in ["/", "/index.html", "/invite/AbC-123_x", referral_page, "/inbox/"] {
        let res = get(&srv, path, Some("gzip")).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(header(&res, "cache-control").as_deref(), Some("no-cache"), "{path}");
        assert_eq!(header(&res, "content-type").as_deref(), Some("text/html; charset=utf-8"), "{path}");
        assert_eq!(header(&res, "content-encoding").as_deref(), Some("gzip"), "{path}");
        assert_eq!(gunzip(&res.bytes().await.unwrap()), shell, "{path}");
    }
}

#[tokio::test]
async fn an_unknown_file_is_a_404_not_a_500_nor_the_app_shell() {
    let (srv, _dir) = serving("http://handoff.test");
    // An old build's asset (after a deploy), a misspelt name, a compressed copy asked for by name.
    for path in ["/pkg/handoff_web_bg.0000000000000000.wasm", "/app.css", "/favicon.ico", "/nowhere/file.js"] {
        let res = get(&srv, path, Some("br, gzip")).await;
        assert_eq!(res.status(), 404, "{path}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], serde_json::json!(ErrorCode::NotFound), "{path}: {body}");
    }
    // Only GET and HEAD reach the site.
    let res = reqwest::Client::new().post(format!("{}/{CSS}", srv.url())).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = reqwest::Client::new().head(format!("{}/{CSS}", srv.url())).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

/// The status of `GET path` sent as raw bytes, so no client library
/// normalises the dots away first.
fn raw_status(srv: &TestServer, path: &str) -> (u16, String) {
    let addr = srv.server.as_ref().unwrap().addr;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: handoff.test\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

#[tokio::test]
async fn paths_that_leave_the_site_or_reach_hidden_files_are_refused() {
    let (srv, _dir) = serving("http://handoff.test");
    let attempts = [
        "/../secret.txt",
        "/pkg/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/pkg/..%2f..%2fsecret.txt",
        "/pkg/..%5c..%5csecret.txt",
        "/..\\secret.txt",
        "/./app.0123456789abcdef.css",
        "/.env",
        "/pkg/%2e%2e",
        "/link.txt",
    ];
    for path in attempts {
        let (status, answer) = raw_status(&srv, path);
        assert_eq!(status, 404, "{path}: {answer}");
        assert!(!answer.contains("outside the site"), "{path} reached the secret: {answer}");
        assert!(!answer.contains("a hidden file"), "{path} reached a dot-file: {answer}");
        assert!(!answer.contains("<!doctype html>"), "{path} fell back to the app shell: {answer}");
    }
    // The same server still serves its own files.
    assert_eq!(raw_status(&srv, &format!("/{CSS}")).0, 200);
}

#[tokio::test]
async fn hsts_is_sent_only_when_the_public_url_is_https() {
    let (plain, _d1) = serving("http://handoff.test");
    let (tls, _d2) = serving("https://handoff.example");
    for path in ["/", &format!("/{CSS}"), GetHealth::PATH] {
        let res = get(&plain, path, None).await;
        assert_eq!(header(&res, "strict-transport-security"), None, "{path} over an http public URL");
        let res = get(&tls, path, None).await;
        assert_eq!(header(&res, "strict-transport-security").as_deref(), Some("max-age=31536000; includeSubDomains"), "{path}");
    }
    // An API error carries it too.
    let res = get(&tls, "/api/v1/nowhere", None).await; // path-literal-ok: a bogus route
    assert_eq!(res.status(), 404);
    assert!(header(&res, "strict-transport-security").is_some());
}

#[tokio::test]
async fn the_content_security_policy_allows_no_inline_style_or_script() {
    let (srv, _dir) = serving("http://handoff.test");
    for path in ["/", &format!("/{WASM}")] {
        let res = get(&srv, path, None).await;
        let csp = header(&res, "content-security-policy").unwrap();
        let directive =
            |name: &str| csp.split(';').map(str::trim).find(|d| d.split_whitespace().next() == Some(name)).unwrap_or_default().to_string();
        assert_eq!(directive("style-src"), "style-src 'self'", "{path}: {csp}");
        assert_eq!(directive("script-src"), "script-src 'self' 'wasm-unsafe-eval'", "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(header(&res, "x-content-type-options").as_deref(), Some("nosniff"));
    }
}

#[test]
fn a_static_dir_that_is_not_a_built_client_stops_the_server_at_start() {
    let data = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let config = handoff_server::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        data: data.path().to_path_buf(),
        static_dir: Some(empty.path().to_path_buf()),
        ..handoff_server::Config::default()
    };
    let err = handoff_server::spawn(config.clone()).expect_err("no index.html");
    assert!(err.to_string().contains("no index.html"), "{err}");
    let missing = handoff_server::Config { static_dir: Some(empty.path().join("absent")), ..config };
    let err = handoff_server::spawn(missing).expect_err("no such directory");
    assert!(err.to_string().contains("static dir"), "{err}");
}
