//! Errors shared by every concept: the backend's own failure, opening and
//! migrating a store, and [`StoreError`], the union for callers that only
//! report a failure (start-up, the admin CLI).
//!
//! Each concept trait has its own error enum next to it ([`UserError`],
//! [`PracticeError`], [`TaxonomyError`], [`ReferralError`], [`MlsError`],
//! [`MailError`], [`LimitError`], [`FreeError`]), so a caller matches typed variants, never string tags.

use crate::{AuditError, FreeError, LimitError, MailError, MlsError, PracticeError, ReferralError, RoomError, TaxonomyError, UserError};

/// The backend failed: I/O, corruption, a driver error, or a value on disk
/// that does not decode. The driver's error is kept as the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[error("storage backend failed: {source}")]
pub struct BackendError {
    #[source]
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl BackendError {
    /// Wraps a backend's error (or a message, for failures that have no error value).
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self { source: source.into() }
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The schema on disk is newer than this binary understands: an older
    /// binary was started on a store a newer one migrated.
    #[error("store schema version {found} is newer than this build's {supported}")]
    SchemaTooNew {
        /// The schema version found on disk.
        found: u32,
        /// The newest schema version this build knows.
        supported: u32,
    },
    /// A migration failed; it and its version bump were rolled back, so the
    /// store stays at the previous version.
    #[error("migration {version} failed: {source}")]
    Migration {
        /// The number of the migration that failed.
        version: u32,
        /// The backend's error.
        #[source]
        source: BackendError,
    },
    /// The backend failed while opening, outside any migration.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Any store failure, for callers that report rather than match (start-up,
/// the admin CLI). Request handlers match the concept errors instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Opening or migrating the store failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A user, session or server-secret call failed.
    #[error(transparent)]
    User(#[from] UserError),
    /// A practice or membership call failed.
    #[error(transparent)]
    Practice(#[from] PracticeError),
    /// A taxonomy or category-request call failed.
    #[error(transparent)]
    Taxonomy(#[from] TaxonomyError),
    /// A referral, stream or blob call failed.
    #[error(transparent)]
    Referral(#[from] ReferralError),
    /// An MLS delivery-service call failed.
    #[error(transparent)]
    Mls(#[from] MlsError),
    /// A mail outbox call failed.
    #[error(transparent)]
    Mail(#[from] MailError),
    /// A rate-limit lock-out call failed.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// A free referral draft, block or opt-out call failed.
    #[error(transparent)]
    Free(#[from] FreeError),
    /// An audit log call failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// A waiting-room call failed.
    #[error(transparent)]
    Room(#[from] RoomError),
}
