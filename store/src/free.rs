//! Free referrals (sent from the public page without an account): drafts
//! with their emailed codes and verified tokens, staff blocks of senders, and
//! practices' opt-out.
//!
//! A draft's code is stored only as a keyed hash and its token only as a
//! hash, both made by the server; the store compares hashes and never sees a
//! code or a token. The email address is kept in plain text (the accept and
//! decline emails go to it) until the draft expires.

use async_trait::async_trait;

use handoff_protocol::free::{BlockKind, DraftId};
use handoff_protocol::ws::{BlobId, IdemKey, ReferralId};
use handoff_protocol::{PracticeId, UnixMillis};

use crate::BackendError;

/// A draft as [`FreeStore::create_draft`] stores it: its first code is out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDraft {
    /// The draft's id, made by the server.
    pub id: DraftId,
    /// The sender's address, normalised.
    pub email: String,
    /// The keyed hash of the emailed code.
    pub code_hash: Vec<u8>,
    /// When the code stops working.
    pub code_expires_at: UnixMillis,
    /// When the unverified draft may be deleted.
    pub expires_at: UnixMillis,
    /// When it was made.
    pub created_at: UnixMillis,
}

/// The one send of a draft, kept so that a replay answers the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraftSend {
    /// The send's idempotency key.
    pub idem: IdemKey,
    /// The referral it created.
    pub referral: ReferralId,
    /// JSON of the protocol `FreeSent` it was answered with.
    pub answer: String,
}

/// A stored draft (without its code's hash or its token's hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraftRecord {
    /// The draft's id.
    pub id: DraftId,
    /// The sender's address, normalised.
    pub email: String,
    /// When the current code stops working.
    pub code_expires_at: UnixMillis,
    /// Tries of the current code so far.
    pub tries: u32,
    /// Codes sent again after the first.
    pub resends: u32,
    /// When the right code was given, if it was.
    pub verified_at: Option<UnixMillis>,
    /// After this the draft (verified or not) is unusable, and the sweep deletes it.
    pub expires_at: UnixMillis,
    /// Its one send, if it was sent.
    pub sent: Option<DraftSend>,
    /// When it was made.
    pub created_at: UnixMillis,
}

/// What a verified draft becomes on the right code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// The hash of the verified draft's token.
    pub token_hash: Vec<u8>,
    /// When the verified draft stops working.
    pub expires_at: UnixMillis,
}

/// The outcome of [`FreeStore::try_code`]. Every outcome is committed: a wrong
/// code's try stays counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// The right code: the draft is verified now.
    Verified,
    /// A wrong code; this many tries are left for the current code.
    Wrong {
        /// Tries left (0: the next try is refused whatever the code).
        tries_left: u32,
    },
    /// The current code expired (not counted as a try).
    Expired,
    /// The draft was verified already: its code was used.
    Used,
    /// The current code's tries are used up: refused without comparing.
    Exhausted,
}

/// A staff block of a sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRecord {
    /// An email address or a client address.
    pub kind: BlockKind,
    /// The normalised value (lowercase email; IPv4 address or IPv6 `/64`).
    pub value: String,
    /// Why, for staff.
    pub reason: String,
    /// When it was made.
    pub created_at: UnixMillis,
}

/// Why a [`FreeStore`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FreeError {
    /// [`create_draft`](FreeStore::create_draft) was given an id that exists.
    #[error("already exists: draft")]
    DraftExists,
    /// The call named a draft that does not exist (or was swept).
    #[error("not found: draft")]
    NoSuchDraft,
    /// [`replace_code`](FreeStore::replace_code): the draft has had its resends.
    #[error("no more codes for this draft")]
    ResendsExhausted,
    /// [`replace_code`](FreeStore::replace_code): the draft is verified already.
    #[error("the draft is verified already")]
    AlreadyVerified,
    /// [`claim_send`](FreeStore::claim_send) or [`record_send`](FreeStore::record_send):
    /// the draft was sent (or is being sent) with another key, or is not verified.
    #[error("the draft was sent already")]
    DraftSent,
    /// [`begin_draft_blob`](FreeStore::begin_draft_blob): the draft holds its
    /// most blobs already.
    #[error("the draft holds the most attachments it may")]
    TooManyBlobs,
    /// [`begin_draft_blob`](FreeStore::begin_draft_blob) was given a blob id that exists.
    #[error("already exists: blob")]
    BlobExists,
    /// [`lift_block`](FreeStore::lift_block) named no block.
    #[error("not found: block")]
    NoSuchBlock,
    /// [`set_accepts_free`](FreeStore::set_accepts_free) named no practice.
    #[error("not found: practice")]
    NoSuchPractice,
    /// The backend failed; nothing was changed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Free referral drafts, sender blocks and practices' opt-out. Each call is
/// atomic, as for every store trait.
#[async_trait]
pub trait FreeStore: Send + Sync + 'static {
    /// Stores a new draft. [`FreeError::DraftExists`] if the id exists.
    async fn create_draft(&self, d: NewDraft) -> Result<(), FreeError>;
    /// A draft by id (expired or not: callers compare `expires_at`).
    async fn draft(&self, id: DraftId) -> Result<Option<DraftRecord>, FreeError>;
    /// Replaces the draft's code with a new one (the old stops working, the
    /// tries start again) and counts a resend, refused past `max_resends`
    /// ([`FreeError::ResendsExhausted`]) or for a verified draft
    /// ([`FreeError::AlreadyVerified`]); check and change in one transaction.
    /// Returns the resends used now.
    async fn replace_code(&self, id: DraftId, code_hash: Vec<u8>, code_expires_at: UnixMillis, max_resends: u32) -> Result<u32, FreeError>;
    /// Tries a code: in one transaction, refuses a used code, a code whose
    /// `max_tries` are used up (without comparing) and an expired code; else
    /// counts the try and compares `code_hash`; the right one verifies the
    /// draft as `verify` says. Concurrent tries cannot exceed `max_tries`.
    async fn try_code(
        &self,
        id: DraftId,
        code_hash: Vec<u8>,
        max_tries: u32,
        verify: Verification,
        now: UnixMillis,
    ) -> Result<CodeCheck, FreeError>;
    /// The verified draft whose token hashes to `token_hash` (expired or not).
    async fn verified_draft(&self, token_hash: Vec<u8>) -> Result<Option<DraftRecord>, FreeError>;
    /// Claims the draft's one send for the key `idem`, before the referral is
    /// made: in one transaction, succeeds if no send was claimed or this key
    /// claimed it, so concurrent sends with different keys cannot both go
    /// ahead. [`FreeError::DraftSent`] if another key claimed it or the draft
    /// is not verified; [`FreeError::NoSuchDraft`] if absent.
    async fn claim_send(&self, id: DraftId, idem: IdemKey) -> Result<(), FreeError>;
    /// Gives back a claim whose send failed (no referral was made), so the
    /// draft can send again; a claim by another key, or one already recorded,
    /// stays.
    async fn release_send(&self, id: DraftId, idem: IdemKey) -> Result<(), FreeError>;
    /// Records the claimed send's referral and answer (again with the same
    /// referral is no error). [`FreeError::DraftSent`] if the send was not
    /// claimed with this key or recorded another referral;
    /// [`FreeError::NoSuchDraft`] if absent.
    async fn record_send(&self, id: DraftId, send: DraftSend) -> Result<(), FreeError>;
    /// Starts a streamed upload owned by the draft (the blob's owner is the
    /// draft id's bytes), as [`ReferralStore::begin_blob`](crate::ReferralStore::begin_blob)
    /// does, counting in the same transaction: [`FreeError::TooManyBlobs`] if
    /// the draft holds `max_blobs` blobs (finished or arriving) already.
    async fn begin_draft_blob(&self, id: BlobId, draft: DraftId, max_blobs: u32, now: UnixMillis) -> Result<(), FreeError>;
    /// Deletes drafts that expired at or before `now`. Returns how many.
    async fn purge_drafts(&self, now: UnixMillis) -> Result<u64, FreeError>;

    /// Stores a block, replacing the reason (and time) of the same kind and value.
    async fn put_block(&self, b: BlockRecord) -> Result<(), FreeError>;
    /// Lifts a block. [`FreeError::NoSuchBlock`] if there is none.
    async fn lift_block(&self, kind: BlockKind, value: String) -> Result<(), FreeError>;
    /// Every block, newest first.
    async fn blocks(&self) -> Result<Vec<BlockRecord>, FreeError>;
    /// Whether any of these (kind, normalised value) pairs is blocked.
    async fn is_blocked(&self, keys: Vec<(BlockKind, String)>) -> Result<bool, FreeError>;

    /// Sets whether a practice receives free referrals. [`FreeError::NoSuchPractice`] if absent.
    async fn set_accepts_free(&self, practice: PracticeId, accepts: bool) -> Result<(), FreeError>;
}
