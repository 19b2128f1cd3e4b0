//! Storage for Handoff. This crate is an API boundary: the [`Store`] trait is
//! everything the server may ask of storage, and every backend implements it.
//!
//! [`Store`] is the sum of one trait per concept, each with its own typed,
//! `#[non_exhaustive]` error enum:
//!
//! | trait | concept | errors |
//! |---|---|---|
//! | [`UserStore`] | accounts, sessions, server secrets, schema version | [`UserError`] |
//! | [`PracticeStore`] | practices, members, key grants, invites, notification preferences | [`PracticeError`] |
//! | [`TaxonomyStore`] | the specialty/category taxonomy and category requests | [`TaxonomyError`] |
//! | [`ReferralStore`] | referrals, event streams, idempotency, blobs | [`ReferralError`] |
//! | [`MlsStore`] | the MLS delivery service | [`MlsError`] |
//! | [`MailStore`] | the mail outbox | [`MailError`] |
//! | [`LimitStore`] | rate-limit lock-outs | [`LimitError`] |
//! | [`FreeStore`] | free referral drafts, sender blocks, practices' opt-out | [`FreeError`] |
//! | [`AuditStore`] | the tamper-evident audit log: one hash chain per practice and the platform's | [`AuditError`] |
//! | [`TermsStore`] | membership dates, delegates' sponsors | [`PracticeError`] |
//! | [`RoomStore`] | waiting rooms, their links and settings, guests' check-ins | [`RoomError`] |
//!
//! Every error enum keeps the backend's failure as a [`BackendError`] (with the
//! driver's error as its source); opening a store fails with an [`OpenError`].
//!
//! - [`sqlite::SqliteStore`] is the embedded default: one SQLite file in WAL
//!   mode with `synchronous=FULL`, so a write that returned is on disk.
//!   Schema migrations come from `migrations/sqlite/NNNN_*.sql`; each runs in
//!   one transaction together with the bump of `PRAGMA user_version`, so a
//!   crash never leaves the schema half-migrated.
//! - [`conformance`] is the suite every backend must pass, written once. The
//!   ScyllaDB backend is not built yet: no ScyllaDB server can be installed on
//!   the machines this project is built on, so it cannot be tested here.
//!
//! The store holds only ciphertext, public keys and one-way verifiers. It
//! never links the decrypting half of `handoff-crypto`.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

mod audit;
pub mod conformance;
mod error;
mod free;
mod limits;
mod mail;
mod mls;
mod model;
mod practices;
mod referrals;
mod rooms;
pub mod sqlite;
mod taxonomy;
mod terms;
mod users;

pub use audit::*;
pub use error::*;
pub use free::*;
pub use limits::*;
pub use mail::*;
pub use mls::*;
pub use model::*;
pub use practices::*;
pub use referrals::*;
pub use rooms::*;
pub use taxonomy::*;
pub use terms::*;
pub use users::*;

/// Everything the server stores: one trait per concept. Implementations must
/// make each call atomic: a call that returns `Ok` is durable, one that
/// returns `Err` changed nothing.
///
/// A backend implements the concept traits; this trait then comes with them,
/// so `Arc<dyn Store>` reaches every method. Code holding a concrete backend
/// (not `dyn Store`) imports the concept traits it calls.
pub trait Store:
    UserStore
    + PracticeStore
    + TaxonomyStore
    + ReferralStore
    + MlsStore
    + MailStore
    + LimitStore
    + FreeStore
    + AuditStore
    + TermsStore
    + RoomStore
{
}

impl<T> Store for T where
    T: UserStore
        + PracticeStore
        + TaxonomyStore
        + ReferralStore
        + MlsStore
        + MailStore
        + LimitStore
        + FreeStore
        + AuditStore
        + TermsStore
        + RoomStore
{
}
