//! Handoff's live actors, on actix 0.13.
//!
//! - [`hub::Hub`]: the entry point the WebSocket endpoint talks to, and the
//!   one place a stream id meets its kind. Live actors sit in one registry,
//!   activate on demand from the store and passivate when idle, all on one
//!   dedicated arbiter.
//! - `StreamActor<K>` (`stream.rs`): one generic actor per live stream, of
//!   any kind: subscriptions, replay, ordered gapless fan-out, eviction and
//!   passivation. The kinds are `practice.rs` (a practice's inbox; with
//!   `mls.rs`, its MLS delivery service) and `referral.rs` (one referral's
//!   state machine, history and thread: every change is committed to the
//!   store, with its events on the referral's stream and both practices'
//!   streams, its idempotency record and any mail, before it is acknowledged
//!   or pushed).
//! - `RoutingActor` (`routing.rs`): creates referrals one at a time, so
//!   "choose for me" counts stay balanced under concurrency.
//! - [`mailer::Mailer`]: drains the persisted mail outbox with retries.
//!
//! The modules form a layered graph with no cycle (checked by `cargo xtask
//! test`): `clock`, `conn`, `messages`, `registry`, `fanout`, `idem`,
//! `access` at the bottom; `env`
//! (what every actor shares) above them; `stream`, then the kinds and
//! `routing`; `hub` at the top. This root only declares modules and
//! re-exports.
//!
//! Mailboxes are bounded; connections have bounded outgoing queues and are
//! dropped, not buffered, when they stop reading. Actor code stays behind our
//! own message types so that a move off actix stays cheap. Actors never
//! decrypt: this crate does not depend on `handoff-crypto`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod access;
pub mod audit;
pub mod clock;
pub mod conn;
mod env;
pub mod fanout;
pub mod hub;
mod idem;
pub mod mailer;
mod messages;
pub mod metrics;
pub mod mls;
mod practice;
mod referral;
mod registry;
mod room;
mod routing;
mod stream;

pub use clock::now_millis;
pub use handoff_error::{ApiError, ApiResult};
pub use idem::{command_hash, replayed};
pub use messages::Creator;
pub use routing::referral_number;
