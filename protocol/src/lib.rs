//! Handoff's wire protocol: the types that cross the network, and nothing else.
//!
//! This crate is an API boundary. The server, the native client and the Yew
//! client all speak through these types, so it must build for
//! `wasm32-unknown-unknown` and must never depend on a runtime (tokio, actix),
//! a storage driver (scylla, rusqlite) or MLS. CI checks that with
//! `cargo tree -i`.
//!
//! Decisions:
//! - Ids are newtypes over UUIDs, so a `PracticeId` can never be passed where a
//!   `UserId` is expected.
//! - Binary values (keys, ciphertexts) travel as unpadded URL-safe base64 in a
//!   [`B64`] newtype.
//! - Every error the API returns is an [`ErrorCode`] with a fixed snake_case
//!   spelling; `tests/error_json.rs` pins the exact JSON.
//! - Versioned by module: [`v1`] is the current HTTP API under `/api/v1`.
//! - Every HTTP endpoint (method, path, request and response types) is
//!   defined once, in [`api`]; the server's route table and both clients use
//!   those definitions, never a path of their own.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod api;
pub mod audit;
mod bytes;
pub mod call;
mod error;
pub mod free;
mod ids;
pub mod mls;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod sessions;
pub mod two_factor;
pub mod v1;
pub mod ws;

pub use bytes::B64;
pub use error::{ErrorBody, ErrorCode};
pub use ids::{CategoryRequestId, GuestId, PracticeId, RoomId, UserId};

/// Milliseconds since the Unix epoch, UTC. Used for every timestamp on the wire.
pub type UnixMillis = i64;
