//! The Handoff server: the actix-web HTTP API under `/api/v1`, the static web
//! client at `/`, configuration, and the pieces of the `handoff` CLI.
//!
//! The server routes ciphertext. It never links the decrypting half of
//! `handoff-crypto` (CI checks this with `cargo tree`), and it never logs
//! request paths with ids or tokens in them: access logs show route patterns.
//!
//! Limits: rate-limit counts below their limit are in memory (lock-outs are
//! kept in the store and survive a restart); there is no built-in TLS, so put a TLS proxy in front and set `public_url` to https.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod config;
pub mod error;
pub mod free;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod mls;
pub mod observer;
pub mod origin;
pub mod practices;
pub mod ratelimit;
pub mod referrals;
pub mod rooms;
pub mod sessions;
pub mod state;
pub mod sweep;
pub mod terms;
pub mod two_factor;
pub mod validate;
// The OpenAPI document and the API reference (issue 17, wt-openapi).
pub mod api_docs;
// Issue 17 part 3: static serving and security headers.
pub mod headers;
pub mod static_files;

pub use app::{RunningServer, StartError, spawn};
pub use config::Config;
