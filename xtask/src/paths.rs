//! The check that every HTTP path is written once, in `protocol::api`: a
//! string literal that looks like an API path anywhere else fails the build.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Files where a string literal may look like an API path: the web client's
/// own page routes (`/practices`, `/admin`, ... are pages there, not API
/// calls) and this file (the matcher's tests).
const PATH_LITERAL_FILES: &[&str] = &["client/web/src/ui.rs", "xtask/src/paths.rs"];
/// A comment that allows a path literal on its line or the next (tests that
/// deliberately request a bogus path).
const PATH_LITERAL_MARKER: &str = "path-literal-ok";

/// The first segments of every endpoint path (`/api`, `/healthz`, `/ws`),
/// and of every path under the API prefix (`/auth`, `/practices`, ...).
fn path_prefixes() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (_, pattern) in handoff_protocol::api::ALL {
        let under = pattern.strip_prefix(handoff_protocol::api::API_PREFIX).into_iter();
        for p in std::iter::once(*pattern).chain(under) {
            if let Some(first) = p.trim_start_matches('/').split('/').next().filter(|s| !s.is_empty()) {
                let prefix = format!("/{first}");
                if !out.contains(&prefix) {
                    out.push(prefix);
                }
            }
        }
    }
    out
}

/// The string literals on `line` that start with one of `prefixes` as a whole
/// segment (`"/practices/{id}"`, `"/ws?v=1"`, but not `"/invite/"` for `/invites`).
fn path_literals_in(line: &str, prefixes: &[String]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("\"/") {
        let lit = &rest[at + 1..];
        for p in prefixes {
            if let Some(after) = lit.strip_prefix(p.as_str())
                && after.chars().next().is_none_or(|c| matches!(c, '/' | '?' | '"' | '{' | '#'))
            {
                hits.push(lit.split('"').next().unwrap_or(lit).to_string());
                break;
            }
        }
        rest = lit;
    }
    hits
}

/// Fails if an HTTP path is written as a string literal outside `protocol`:
/// every endpoint's path lives in `handoff_protocol::api`, and callers name
/// the endpoint type instead.
pub fn path_literals(root: &Path) -> Result<()> {
    eprintln!("\n==> no API path literals outside protocol");
    let prefixes = path_prefixes();
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            if path.is_dir() {
                if !matches!(rel.as_str(), "target" | "protocol" | ".git") && !rel.ends_with("node_modules") {
                    dirs.push(path);
                }
            } else if rel.ends_with(".rs") && !PATH_LITERAL_FILES.contains(&rel.as_str()) {
                files.push((rel, path));
            }
        }
    }
    files.sort();
    let mut found = Vec::new();
    for (rel, path) in files {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {rel}"))?;
        let mut allowed = false;
        for (n, line) in text.lines().enumerate() {
            let allow_here = allowed || line.contains(PATH_LITERAL_MARKER);
            allowed = line.trim_start().starts_with("//") && line.contains(PATH_LITERAL_MARKER);
            if line.trim_start().starts_with("//") || allow_here {
                continue;
            }
            for lit in path_literals_in(line, &prefixes) {
                found.push(format!("{rel}:{}: {lit:?}", n + 1));
            }
        }
    }
    if !found.is_empty() {
        bail!(
            "API paths written as string literals (name the endpoint from handoff_protocol::api instead, \
             or mark a deliberately bogus path with `// {PATH_LITERAL_MARKER}`):\n  {}",
            found.join("\n  ")
        );
    }
    eprintln!("no API path literals outside protocol (prefixes {})", prefixes.join(" "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes() -> Vec<String> {
        path_prefixes()
    }

    #[test]
    fn prefixes_come_from_the_protocol_list() {
        let p = prefixes();
        for want in ["/api", "/healthz", "/ws", "/auth", "/practices", "/admin", "/mls", "/invites", "/blobs"] {
            assert!(p.iter().any(|x| x == want), "{want} missing from {p:?}");
        }
    }

    #[test]
    fn api_paths_are_found() {
        let p = prefixes();
        assert_eq!(path_literals_in(r#"c.raw("POST", "/api/v1/auth/login", None)"#, &p), ["/api/v1/auth/login"]);
        assert_eq!(path_literals_in(r#"api::get(&format!("/practices/{id}/members"))"#, &p), ["/practices/{id}/members"]);
        assert_eq!(path_literals_in(r#"get("/me").await; get("/taxonomy")"#, &p), ["/me", "/taxonomy"]);
        assert_eq!(path_literals_in(r#"upgrade("/ws?v=1&x=2")"#, &p), ["/ws?v=1&x=2"]);
        assert_eq!(path_literals_in(r#"x("/ws")"#, &p), ["/ws"]);
    }

    #[test]
    fn the_workspace_has_no_path_literals() {
        path_literals(&crate::root()).unwrap();
    }

    #[test]
    fn other_paths_are_not() {
        let p = prefixes();
        for line in [
            r#"Cookie::build(COOKIE, "").path("/")"#,
            r#"mail.find("/invite/")"#,
            r#"Command::new("/usr/bin/python3")"#,
            r#"read_to_string("/proc/self/limits")"#,
            r#"dir.join("/index.html"); "/pkg/handoff_web.js""#,
            r#"let x = "/mesh"; let y = "/administrator";"#,
            r##"r#"<rect/>"#"##,
        ] {
            assert!(path_literals_in(line, &p).is_empty(), "{line}");
        }
    }
}
