//! Handoff's domain core: the rules every side applies the same way, as pure
//! functions over the wire types, with no I/O, no runtime and no storage.
//!
//! The server, the actors and both clients call these instead of writing the
//! rules again; each rule is unit-tested here directly.
//!
//! - [`taxonomy`]: lookups in the specialty → category → subcategory tree and
//!   the regions.
//! - [`routing`]: whether a referral's routing (or a re-filing, or a
//!   practice's intake) names real taxonomy nodes.
//! - [`status`]: the referral state machine.
//! - [`eligibility`]: which practices receive referrals, and which of those
//!   receive a given referral.
//! - [`access`]: who may see and act on a referral, and the [`access::Sender`]
//!   of a referral.
//! - [`limits`]: the size limits the routing rules enforce.
//! - [`sender`]: the free sender's MSP practitioner number check.
//! - [`replay`]: what one `subscribe` replays, and the refusal of a position
//!   past the stream's head.
//!
//! Builds for wasm32: the web client links it.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod access;
pub mod eligibility;
pub mod limits;
pub mod replay;
pub mod rights;
pub mod routing;
pub mod sender;
pub mod status;
pub mod taxonomy;
