//! Records for referrals, streams, idempotency and blobs.

use handoff_protocol::ws::{BlobId, IdemKey, ReferralId, StreamId};
use handoff_protocol::{PracticeId, UnixMillis, UserId};

use crate::NewMail;

/// A stored referral: plaintext routing metadata plus the protocol JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferralRecord {
    /// Id.
    pub id: ReferralId,
    /// Number.
    pub number: String,
    /// Sender practice.
    pub from_practice: PracticeId,
    /// Receiver practice.
    pub to_practice: PracticeId,
    /// Category at routing time, for balancing.
    pub routed_category: String,
    /// Subcategory at routing time.
    pub routed_sub: Option<String>,
    /// The protocol `Referral`, serialized: its status, category and urgency
    /// are the current ones.
    pub body: String,
    /// Current status, as in the body (`sent`, `accepted`, ...).
    pub status: String,
    /// Sent.
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
    /// Insert this referral (`Conflict("referral")` if the id or number exists).
    pub insert: Option<ReferralRecord>,
    /// Replace this referral's body, status and first-opened time.
    pub update: Option<ReferralRecord>,
    /// Events to append, each to its stream at the next seq.
    pub events: Vec<(StreamId, String)>,
    /// Blobs to attach to the referral.
    pub attach: Vec<(BlobId, ReferralId)>,
    /// The command's idempotency record (`Conflict("idempotency")` if present).
    pub idem: Option<IdemRecord>,
    /// Mail to queue.
    pub mail: Vec<NewMail>,
    /// When.
    pub now: UnixMillis,
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Stream.
    pub stream: StreamId,
    /// Seq.
    pub seq: u64,
    /// JSON of the protocol `Event`.
    pub body: String,
}

/// A stored blob's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRecord {
    /// Id.
    pub id: BlobId,
    /// Uploader.
    pub owner: UserId,
    /// The referral it is attached to.
    pub referral: Option<ReferralId>,
    /// Size.
    pub size: u64,
}
