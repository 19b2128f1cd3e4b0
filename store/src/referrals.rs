//! Referrals, their event streams, idempotency records and blobs: the
//! records, the [`ReferralStore`] trait and its errors.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use handoff_protocol::ws::{BlobId, IdemKey, ReferralId, Status, StreamId};
use handoff_protocol::{PracticeId, UnixMillis, UserId};

use crate::{BackendError, NewMail};

/// Why a [`ReferralStore`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReferralError {
    /// A [`Commit`]'s idempotency record is stored already: the same command
    /// was committed before (typically by a concurrent retry).
    #[error("already exists: idempotency")]
    IdempotencyKeyUsed,
    /// A [`Commit`] inserts a referral whose id or number exists.
    #[error("already exists: referral")]
    ReferralExists,
    /// A [`Commit`] updates a referral that does not exist.
    #[error("not found: referral")]
    NoSuchReferral,
    /// A [`Commit`] attaches a blob that does not exist or is attached to another referral.
    #[error("not found: blob")]
    BlobUnavailable,
    /// [`put_blob`](ReferralStore::put_blob) or
    /// [`begin_blob`](ReferralStore::begin_blob) was given an id that exists.
    #[error("already exists: blob")]
    BlobExists,
    /// A chunk would take the owner's blobs (finished or still arriving) past
    /// their quota; the chunk was not stored.
    #[error("the owner's blob quota is used up")]
    QuotaExceeded,
    /// A chunk or the end of an upload names no upload in progress of that
    /// owner (unknown id, another owner's blob, or a finished blob).
    #[error("not found: upload")]
    NoSuchUpload,
    /// A [`Commit`] submitted on a [`Chain`] whose earlier commit failed: it
    /// was decided on top of a write that never happened, so it was not
    /// applied. The submitter decides it again against the stored state.
    #[error("an earlier commit of the same chain failed; this one was not applied")]
    ChainBroken,
    /// The backend failed; nothing was changed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The answer to a [`ReferralStore::submit`]: resolves once the commit is
/// durable (or has failed), with the appended events.
pub type Submitted = Pin<Box<dyn Future<Output = Result<Vec<StoredEvent>, ReferralError>> + Send>>;

/// A sequence of commits where each was decided on the state the earlier
/// ones leave (one actor's pipeline). Once one of them fails, every later
/// commit submitted on the same chain fails with [`ReferralError::ChainBroken`]
/// without being applied, even when it shares the earlier one's transaction;
/// the submitter starts a new chain once it has seen the failure.
#[derive(Clone, Debug, Default)]
pub struct Chain(Arc<AtomicBool>);

impl Chain {
    /// A new, unbroken chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a commit of this chain has failed.
    pub fn is_broken(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Marks the chain broken: its later commits will not be applied.
    pub fn set_broken(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Referrals, streams and blobs. Every write goes through one atomic [`Commit`].
#[async_trait]
pub trait ReferralStore: Send + Sync + 'static {
    /// Applies one atomic write and returns the appended events with their
    /// seqs, once it is durable.
    async fn commit(&self, c: Commit) -> Result<Vec<StoredEvent>, ReferralError>;
    /// Queues one atomic write on `chain` and returns at once; the answer
    /// resolves when the write is durable. The write is queued when this is
    /// called, not when the answer is first polled: writes submitted one
    /// after another apply in that order, each atomically, and those queued
    /// behind one fsync may share its transaction (group commit), each in
    /// its own savepoint, so one write's failure fails only that write (and
    /// the later writes of its chain, see [`Chain`]). No answer resolves
    /// before its write is durable.
    fn submit(&self, c: Commit, chain: &Chain) -> Submitted;
    /// A referral.
    async fn referral(&self, id: ReferralId) -> Result<Option<ReferralRecord>, ReferralError>;
    /// Referrals a practice sent or received, newest first.
    async fn referrals_of(&self, practice: PracticeId, limit: u32) -> Result<Vec<ReferralRecord>, ReferralError>;
    /// How many referrals each practice has received in a category (and
    /// subcategory, when given), counted by the category at routing time,
    /// leaving out the referrals in `excluding` (those the caller has
    /// submitted but not yet seen durable: it counts them itself, so a
    /// commit landing meanwhile is counted exactly once).
    async fn routing_counts(
        &self,
        practices: &[PracticeId],
        category: &str,
        sub: Option<&str>,
        excluding: &[ReferralId],
    ) -> Result<Vec<(PracticeId, u64)>, ReferralError>;
    /// Events of a stream with seq in `(after, after + limit]`, in order.
    async fn events_after(&self, stream: StreamId, after: u64, limit: u32) -> Result<Vec<StoredEvent>, ReferralError>;
    /// The newest seq of a stream (0 if empty).
    async fn stream_head(&self, stream: StreamId) -> Result<u64, ReferralError>;
    /// An idempotency record.
    async fn idem(&self, user: UserId, key: IdemKey) -> Result<Option<IdemRecord>, ReferralError>;
    /// Deletes idempotency records made before `before`: a retry of a command
    /// older than that runs it again. Returns how many.
    async fn purge_idempotency(&self, before: UnixMillis) -> Result<u64, ReferralError>;

    /// Stores an encrypted blob. [`ReferralError::BlobExists`] if the id exists.
    async fn put_blob(&self, id: BlobId, owner: UserId, bytes: Vec<u8>, now: UnixMillis) -> Result<(), ReferralError>;
    /// A blob's metadata.
    async fn blob_meta(&self, id: BlobId) -> Result<Option<BlobRecord>, ReferralError>;
    /// A blob's bytes.
    async fn blob_bytes(&self, id: BlobId) -> Result<Option<Vec<u8>>, ReferralError>;

    /// Starts a streamed upload: an empty, unfinished blob of `owner`, which
    /// [`blob_meta`](ReferralStore::blob_meta) does not show and no commit can
    /// attach until [`finish_blob`](ReferralStore::finish_blob).
    /// [`ReferralError::BlobExists`] if the id exists.
    async fn begin_blob(&self, id: BlobId, owner: UserId, now: UnixMillis) -> Result<(), ReferralError>;
    /// Appends the next chunk to `owner`'s upload in progress, in its own short
    /// transaction, and returns the upload's size so far. The chunk counts
    /// towards the owner's quota at once: [`ReferralError::QuotaExceeded`] if
    /// the owner's blobs would then hold more than `quota` bytes.
    async fn append_blob_chunk(&self, id: BlobId, owner: UserId, bytes: Vec<u8>, quota: u64) -> Result<u64, ReferralError>;
    /// Ends `owner`'s upload in progress and returns its size; from now on it
    /// reads and attaches as any blob. [`ReferralError::NoSuchUpload`] if there is none.
    async fn finish_blob(&self, id: BlobId, owner: UserId) -> Result<u64, ReferralError>;
    /// Removes `owner`'s unfinished upload (an upload that failed midway), if there is one.
    async fn discard_upload(&self, id: BlobId, owner: UserId) -> Result<(), ReferralError>;
    /// Chunk `index` (from 0) of a finished blob; `None` past its last chunk.
    async fn blob_chunk(&self, id: BlobId, index: u32) -> Result<Option<Vec<u8>>, ReferralError>;
    /// Bytes of every blob `owner` holds, finished or still arriving.
    async fn blob_usage(&self, owner: UserId) -> Result<u64, ReferralError>;
    /// Removes every blob (and upload in progress) attached to no referral and
    /// created before `older_than`; returns how many.
    async fn purge_unattached_blobs(&self, older_than: UnixMillis) -> Result<u64, ReferralError>;

    // The inbox snapshot (issue 16, wt-inbox).
    /// One page of the referrals `practice` sent or received, newest first
    /// (by `created_at`, then id), older than `before` when given, at most
    /// `limit`; each with its referral stream's head and how many of that
    /// stream's events someone other than `me` made (the event's `by`, or a
    /// practice sender's `user` for `referral_sent`). Read in one transaction
    /// together with the practice stream's head, so the page reflects exactly
    /// the practice stream's events up to [`InboxSlice::head`].
    async fn inbox_page(
        &self,
        practice: PracticeId,
        me: UserId,
        before: Option<(UnixMillis, ReferralId)>,
        limit: u32,
    ) -> Result<InboxSlice, ReferralError>;
}

/// One row of [`ReferralStore::inbox_page`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxRecord {
    /// The referral as stored (its current metadata).
    pub referral: ReferralRecord,
    /// The head of the referral's own stream when the page was read.
    pub seq: u64,
    /// How many of the referral stream's events someone other than the reader made.
    pub foreign: u64,
}

/// A page of [`ReferralStore::inbox_page`] and the practice stream's head it reflects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxSlice {
    /// The rows, newest first.
    pub rows: Vec<InboxRecord>,
    /// The practice stream's head when the page was read.
    pub head: u64,
}

/// A stored referral: plaintext routing metadata plus the protocol JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferralRecord {
    /// The referral's id, chosen by the sender's client.
    pub id: ReferralId,
    /// The human-readable referral number (`HR-...`), unique.
    pub number: String,
    /// Sender practice; `None` for a free referral.
    pub from_practice: Option<PracticeId>,
    /// A free referral's sender address (for the accept and decline emails);
    /// `None` for a practice's referral. Exactly one of the two is set.
    pub free_email: Option<String>,
    /// Receiver practice.
    pub to_practice: PracticeId,
    /// Category at routing time, for balancing.
    pub routed_category: String,
    /// Subcategory at routing time.
    pub routed_sub: Option<String>,
    /// The protocol `Referral`, serialized: its status, category and urgency
    /// are the current ones.
    pub body: String,
    /// Current status, as in the body.
    pub status: Status,
    /// When it was sent.
    pub created_at: UnixMillis,
    /// First opened by the receiver.
    pub first_opened_at: Option<UnixMillis>,
}

/// A stored idempotency record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdemRecord {
    /// Who sent the command.
    pub user: UserId,
    /// The key.
    pub key: IdemKey,
    /// SHA-256 of the command JSON.
    pub command: Vec<u8>,
    /// JSON of the result.
    pub result: String,
}

/// One atomic write: a referral created or changed, its events, its
/// idempotency record and any mail. All or nothing.
#[derive(Clone, Debug, Default)]
pub struct Commit {
    /// Insert this referral ([`ReferralError::ReferralExists`] if the id or number exists).
    pub insert: Option<ReferralRecord>,
    /// Replace this referral's body, status and first-opened time.
    pub update: Option<ReferralRecord>,
    /// Events to append, each to its stream at the next seq.
    pub events: Vec<(StreamId, String)>,
    /// Blobs to attach to the referral ([`ReferralError::BlobUnavailable`] if one is
    /// missing or attached to another referral).
    pub attach: Vec<(BlobId, ReferralId)>,
    /// The command's idempotency record ([`ReferralError::IdempotencyKeyUsed`] if present).
    pub idem: Option<IdemRecord>,
    /// Mail to queue.
    pub mail: Vec<NewMail>,
    /// Audit entries to append, each to its chain (the action's record, in its own transaction).
    pub audit: Vec<crate::NewAuditEntry>,
    /// The time of the write, stored with its events and idempotency record.
    pub now: UnixMillis,
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// The stream the event belongs to.
    pub stream: StreamId,
    /// The event's position in its stream, dense from 1.
    pub seq: u64,
    /// JSON of the protocol `Event`.
    pub body: String,
}

/// A stored blob's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRecord {
    /// The blob's id, chosen by the uploader's client.
    pub id: BlobId,
    /// The user who uploaded it.
    pub owner: UserId,
    /// The referral it is attached to.
    pub referral: Option<ReferralId>,
    /// Its length in bytes (of the ciphertext).
    pub size: u64,
}
