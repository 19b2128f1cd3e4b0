//! Storage for Handoff. This crate is an API boundary: the [`Store`] trait is
//! everything the server may ask of storage, and every backend implements it.
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

pub mod conformance;
mod mls;
mod model;
mod referrals;
pub mod sqlite;

use async_trait::async_trait;

pub use mls::*;
pub use model::*;
pub use referrals::*;

use handoff_protocol::v1::{Role, Taxonomy, TaxonomyEdit};
use handoff_protocol::ws::{BlobId, IdemKey, ReferralId, StreamId};
use handoff_protocol::{CategoryRequestId, PracticeId, UnixMillis, UserId};

/// Errors at the storage boundary. Backend errors are wrapped once, here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness constraint failed: the object exists already.
    #[error("already exists: {0}")]
    Conflict(&'static str),
    /// The object the write refers to does not exist.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// The schema on disk is newer than this binary understands.
    #[error("store schema version {found} is newer than this build's {supported}")]
    SchemaTooNew {
        /// Found on disk.
        found: u32,
        /// Known to this build.
        supported: u32,
    },
    /// The backend failed (I/O, corruption, driver error).
    #[error("storage backend failed: {0}")]
    Backend(String),
}

/// Result alias.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the server stores. Implementations must make each call atomic:
/// a call that returns `Ok` is durable, one that returns `Err` changed nothing.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Schema version currently applied.
    async fn schema_version(&self) -> StoreResult<u32>;

    /// A named server secret, created with `init` on first use.
    async fn server_secret(&self, name: &str, init: Vec<u8>) -> StoreResult<Vec<u8>>;

    // ---- users and sessions ----

    /// Creates a user. `Conflict("email")` if the email is taken.
    async fn create_user(&self, user: UserRecord) -> StoreResult<()>;
    /// Finds a user by lower-cased email.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>>;
    /// Finds a user by id.
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>>;
    /// Replaces the password material and revokes every session of the user, atomically.
    async fn reset_password(&self, id: UserId, change: PasswordChange) -> StoreResult<()>;
    /// Grants or revokes platform staff rights. `NotFound("user")` if no such email.
    async fn set_staff(&self, email: &str, staff: bool) -> StoreResult<()>;
    /// Stores a new session.
    async fn create_session(&self, s: SessionRecord) -> StoreResult<()>;
    /// Finds a session by token hash (expired ones too: the caller decides).
    async fn session(&self, token_hash: &[u8]) -> StoreResult<Option<SessionRecord>>;
    /// Deletes one session.
    async fn delete_session(&self, token_hash: &[u8]) -> StoreResult<()>;
    /// Deletes sessions that expired before `now`. Returns how many.
    async fn purge_sessions(&self, now: UnixMillis) -> StoreResult<u64>;

    // ---- practices ----

    /// Creates a practice with its creator as admin and the creator's key grant.
    /// `Conflict("practice")` if the id exists.
    async fn create_practice(&self, p: PracticeRecord, creator_grant: GrantRecord) -> StoreResult<()>;
    /// A practice by id.
    async fn practice(&self, id: PracticeId) -> StoreResult<Option<PracticeRecord>>;
    /// Practices the user belongs to, with the user's role, oldest first.
    async fn practices_of(&self, user: UserId) -> StoreResult<Vec<(PracticeRecord, Role)>>;
    /// Every practice, for staff, with member counts.
    async fn all_practices(&self) -> StoreResult<Vec<(PracticeRecord, u32)>>;
    /// Verified, unpaused specialist practices, optionally filtered.
    async fn directory(&self, specialty: Option<&str>, region: Option<&str>) -> StoreResult<Vec<PracticeRecord>>;
    /// Deletes a practice and everything that hangs off it.
    async fn delete_practice(&self, id: PracticeId) -> StoreResult<()>;
    /// Sets the verified flag. `NotFound("practice")` if absent.
    async fn set_verified(&self, id: PracticeId, verified: bool) -> StoreResult<()>;
    /// Sets the paused flag. `NotFound("practice")` if absent.
    async fn set_paused(&self, id: PracticeId, paused: bool) -> StoreResult<()>;

    // ---- members, grants, invites ----

    /// The user's role in the practice, if a member.
    async fn role(&self, practice: PracticeId, user: UserId) -> StoreResult<Option<Role>>;
    /// Members with their user records, in joining order.
    async fn members(&self, practice: PracticeId) -> StoreResult<Vec<MemberRecord>>;
    /// Adds a member; `Conflict("member")` if already one.
    async fn add_member(&self, practice: PracticeId, user: UserId, role: Role, now: UnixMillis) -> StoreResult<()>;
    /// Removes a member and their key grants. Refuses (`Conflict("last_admin")`)
    /// to remove the last admin. `NotFound("member")` if not a member.
    async fn remove_member(&self, practice: PracticeId, user: UserId) -> StoreResult<()>;
    /// Stores a key grant (replacing one for the same member and epoch).
    async fn put_grant(&self, g: GrantRecord) -> StoreResult<()>;
    /// A member's grant for an epoch.
    async fn grant(&self, practice: PracticeId, user: UserId, epoch: u64) -> StoreResult<Option<GrantRecord>>;
    /// Creates an invite.
    async fn create_invite(&self, i: InviteRecord) -> StoreResult<()>;
    /// An invite by token hash.
    async fn invite(&self, token_hash: &[u8]) -> StoreResult<Option<InviteRecord>>;
    /// Invites not yet accepted for a practice.
    async fn invites_of(&self, practice: PracticeId) -> StoreResult<Vec<InviteRecord>>;
    /// Accepts an invite: adds the member and deletes the invite, atomically.
    /// `NotFound("invite")` if it was already used.
    async fn accept_invite(&self, token_hash: &[u8], user: UserId, now: UnixMillis) -> StoreResult<()>;

    // ---- taxonomy ----

    /// Loads the taxonomy if the store has none yet. Returns whether it seeded.
    async fn seed_taxonomy(&self, t: &Taxonomy) -> StoreResult<bool>;
    /// The whole taxonomy, in display order.
    async fn taxonomy(&self) -> StoreResult<Taxonomy>;
    /// Adds or renames one node. `NotFound` if its parent does not exist.
    async fn edit_taxonomy(&self, e: &TaxonomyEdit) -> StoreResult<()>;
    /// Records a category request.
    async fn create_category_request(&self, r: CategoryRequestRecord) -> StoreResult<()>;
    /// All category requests, newest first.
    async fn category_requests(&self) -> StoreResult<Vec<CategoryRequestRecord>>;
    /// Sets a request's status. `NotFound("category_request")` if absent.
    async fn resolve_category_request(&self, id: CategoryRequestId, status: &str, now: UnixMillis) -> StoreResult<()>;

    // ---- mail outbox ----

    /// Queues an email; it is durable before this returns.
    async fn enqueue_mail(&self, m: NewMail) -> StoreResult<i64>;
    /// Unsent mail due at `now`, oldest first.
    async fn due_mail(&self, now: UnixMillis, limit: u32) -> StoreResult<Vec<MailRecord>>;
    /// Marks mail sent and clears its body.
    async fn mail_sent(&self, id: i64, now: UnixMillis) -> StoreResult<()>;
    /// Records a failed attempt and when to retry.
    async fn mail_failed(&self, id: i64, next_attempt_at: UnixMillis, error: &str) -> StoreResult<()>;

    // ---- notification preferences ----

    /// Sets whether a member gets status emails for the practice. `NotFound("member")` if not a member.
    async fn set_notify_email(&self, practice: PracticeId, user: UserId, on: bool) -> StoreResult<()>;
    /// Emails of the practice's members who opted in to status emails.
    async fn email_recipients(&self, practice: PracticeId) -> StoreResult<Vec<String>>;

    // ---- referrals and streams ----

    /// Applies one atomic write and returns the appended events with their seqs.
    async fn commit(&self, c: Commit) -> StoreResult<Vec<StoredEvent>>;
    /// A referral.
    async fn referral(&self, id: ReferralId) -> StoreResult<Option<ReferralRecord>>;
    /// Referrals a practice sent or received, newest first.
    async fn referrals_of(&self, practice: PracticeId, limit: u32) -> StoreResult<Vec<ReferralRecord>>;
    /// How many referrals each practice has received in a category (and
    /// subcategory, when given), counted by the category at routing time.
    async fn routing_counts(&self, practices: &[PracticeId], category: &str, sub: Option<&str>) -> StoreResult<Vec<(PracticeId, u64)>>;
    /// Events of a stream with seq in `(after, after + limit]`, in order.
    async fn events_after(&self, stream: StreamId, after: u64, limit: u32) -> StoreResult<Vec<StoredEvent>>;
    /// The newest seq of a stream (0 if empty).
    async fn stream_head(&self, stream: StreamId) -> StoreResult<u64>;
    /// An idempotency record.
    async fn idem(&self, user: UserId, key: IdemKey) -> StoreResult<Option<IdemRecord>>;

    // ---- blobs ----

    /// Stores an encrypted blob. `Conflict("blob")` if the id exists.
    async fn put_blob(&self, id: BlobId, owner: UserId, bytes: Vec<u8>, now: UnixMillis) -> StoreResult<()>;
    /// A blob's metadata.
    async fn blob_meta(&self, id: BlobId) -> StoreResult<Option<BlobRecord>>;
    /// A blob's bytes.
    async fn blob_bytes(&self, id: BlobId) -> StoreResult<Option<Vec<u8>>>;

    // ---- MLS delivery service ----

    /// Stores key packages `(sha256, bytes)` for `user`, all or none.
    /// `Conflict("key_package")` if any was ever stored before (key packages are single-use).
    /// Returns how many unclaimed ones the user now has.
    async fn publish_key_packages(&self, user: UserId, kps: Vec<(Vec<u8>, Vec<u8>)>, now: UnixMillis) -> StoreResult<u32>;
    /// Hands out one of `user`'s unclaimed key packages (oldest first), at most once each.
    async fn claim_key_package(&self, user: UserId, by: UserId, now: UnixMillis) -> StoreResult<Option<Vec<u8>>>;
    /// Unclaimed key packages of `user`.
    async fn key_package_count(&self, user: UserId) -> StoreResult<u32>;
    /// A user's sealed MLS state and its version.
    async fn mls_state(&self, user: UserId) -> StoreResult<Option<(u64, Vec<u8>)>>;
    /// Compare-and-swap of the sealed state: `Conflict("stale_state")` unless the
    /// stored version (0 if none) is `expected`. Returns the new version.
    async fn put_mls_state(&self, user: UserId, expected: u64, sealed: Vec<u8>, now: UnixMillis) -> StoreResult<u64>;
    /// Appends an entry if its epoch is the practice's current epoch + 1
    /// (`Conflict("stale_epoch")` otherwise), in one transaction with: the
    /// welcomes of the added users, the roster update, the practice's current
    /// key epoch and public key, and `event` appended to the practice's stream.
    async fn mls_append(&self, e: MlsEntryRecord, event: String) -> StoreResult<StoredEvent>;
    /// The practice's current MLS epoch (0 before its group exists).
    async fn mls_epoch(&self, practice: PracticeId) -> StoreResult<u64>;
    /// Entries with epoch > `after`, oldest first.
    async fn mls_log(&self, practice: PracticeId, after: u64, limit: u32) -> StoreResult<Vec<MlsEntryRecord>>;
    /// The latest welcome addressed to `user` in `practice`: (epoch, bytes).
    async fn mls_welcome(&self, practice: PracticeId, user: UserId) -> StoreResult<Option<(u64, Vec<u8>)>>;
    /// Users in the practice's MLS group as the accepted entries declared it.
    async fn mls_roster(&self, practice: PracticeId) -> StoreResult<Vec<UserId>>;
}
