//! The check that the server side stays an MLS *external observer*: it
//! verifies public handshake messages and holds the public tree, never a
//! group secret. `server`, `actors` and `store` may use mls-rs's
//! `ExternalClient` / `ExternalGroup` (and its codec), but no API that holds
//! or derives a member's secrets: `Client` and its `ClientBuilder`,
//! `Group<…>`, the `MlsConfig` of a member client, the group-state and
//! key-package storage traits, creating or joining a group, exporting a
//! secret. Comments are not scanned.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Source trees of the server side.
const SERVER_SIDE: &[&str] = &["server/src", "actors/src", "store/src"];

/// Identifiers that only a group member's (secret-holding) MLS client uses.
const SECRET_APIS: &[&str] = &[
    "ClientBuilder",
    "client_builder",
    "MlsConfig",
    "GroupStateStorage",
    "KeyPackageStorage",
    "create_group",
    "create_group_with_id",
    "join_group",
    "export_secret",
    "apply_pending_commit",
];

/// The identifiers on `code` with the byte offset just after each.
fn identifiers(code: &str) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in code.char_indices().chain(std::iter::once((code.len(), ' '))) {
        let ident = c.is_alphanumeric() || c == '_';
        match (start, ident) {
            (None, true) => start = Some(i),
            (Some(s), false) => {
                if let Some(word) = code.get(s..i) {
                    out.push((word, i));
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// The secret-holding mls-rs API a line of Rust uses, if any: one of
/// [`SECRET_APIS`], or a bare `Client` / `Group` (not `ExternalClient` /
/// `ExternalGroup`) used as a type or path (`Group<`, `Client::`) or imported
/// from `mls_rs`.
pub fn secret_api_in(line: &str) -> Option<String> {
    let code = line.split("//").next().unwrap_or_default();
    let mentions_mls = code.contains("mls_rs");
    for (word, end) in identifiers(code) {
        if SECRET_APIS.contains(&word) {
            return Some(word.to_string());
        }
        if word == "Client" || word == "Group" {
            let after = code.get(end..).unwrap_or_default().trim_start();
            if mentions_mls || after.starts_with('<') || after.starts_with("::") {
                return Some(word.to_string());
            }
        }
    }
    None
}

/// Fails if the server, actors or store source uses a secret-holding mls-rs API.
pub fn no_group_secrets(root: &Path) -> Result<()> {
    eprintln!("\n==> the server is an MLS external observer (no group secret)");
    let mut hits = Vec::new();
    let mut dirs: Vec<_> = SERVER_SIDE.iter().map(|d| root.join(d)).collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                let shown = path.strip_prefix(root).unwrap_or(&path).display().to_string();
                for (n, line) in text.lines().enumerate() {
                    if let Some(api) = secret_api_in(line) {
                        hits.push(format!("{shown}:{}: {api}: {}", n + 1, line.trim()));
                    }
                }
            }
        }
    }
    if !hits.is_empty() {
        hits.sort();
        bail!(
            "the server side uses a secret-holding MLS API:\n  {}\nit may only observe groups (mls_rs::external_client::ExternalClient / ExternalGroup)",
            hits.join("\n  ")
        );
    }
    eprintln!("server, actors and store use only mls-rs's external observer");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_client_apis_are_found() {
        for line in [
            "use mls_rs::{CipherSuite, Client, ExtensionList};",
            "use mls_rs::Client;",
            "fn client(&self) -> Client<impl MlsConfig> {",
            "    let c = Client::builder().build();",
            "let g: Group<C> = todo!();",
            "use mls_rs::client_builder::MlsConfig;",
            "let b = ClientBuilder::new();",
            "impl GroupStateStorage for Store {}",
            "let (g, _) = client.join_group(None, &msg, None)?;",
            "g.export_secret(b\"x\", b\"\", 32)?;",
        ] {
            assert!(secret_api_in(line).is_some(), "{line}");
        }
    }

    #[test]
    fn the_external_observer_and_comments_are_allowed() {
        for line in [
            "use mls_rs::external_client::{ExternalClient, ExternalReceivedMessage, ExternalSnapshot};",
            "let g: ExternalGroup<C> = todo!();",
            "ExternalClient::builder().identity_provider(keys).build()",
            "use mls_rs::{MlsMessage, MlsMessageDescription};",
            "// a Client<…> holds secrets; the server never builds one",
            "let client = state.client(); // Client-side routes get the app shell",
            "/// Client's Argon2id salt.",
        ] {
            assert_eq!(secret_api_in(line), None, "{line}");
        }
    }

    #[test]
    fn the_server_side_of_this_repository_passes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        no_group_secrets(root).unwrap();
    }
}
