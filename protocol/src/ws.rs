//! The live protocol on `GET /ws?v=1`: JSON text frames, commands up, events down.
//!
//! - The socket is authenticated by the session (cookie, or `Authorization:
//!   Bearer` for native clients). Unauthenticated upgrades get HTTP 401.
//! - The first frame from the server is [`ServerFrame::Hello`] with the
//!   protocol version.
//! - Every client frame carries a request id `id` (echoed in the answer) and,
//!   for commands that change state, an idempotency key `idem`. A retried
//!   command with the same `idem` never acts twice: the server answers with the
//!   first result and `duplicate: true`.
//! - Events belong to streams ([`StreamId`]): a practice's inbox or a
//!   referral's history and thread. Each stream numbers its events 1, 2, 3...
//!   `subscribe` with `after_seq` replays the missed events from the store, in
//!   order, then the subscription carries on live. An `after_seq` past the
//!   stream's head is refused (`seq_ahead`).
//! - When the user loses access to a stream they follow (removed from a
//!   practice, or the practice deleted), the server cuts the subscription and
//!   sends an `error` frame with `id: null` and code `access_ended`, whose
//!   message names the stream; nothing more arrives on it.
//! - Every state change is persisted before it is acknowledged or pushed.
//!
//! Limits: a client frame is at most [`MAX_FRAME`] bytes; larger frames close
//! the socket with [`close::TOO_BIG`]. Attachments travel over HTTP as
//! encrypted blobs (at most [`MAX_BLOB`] bytes) and are referenced here by id.

use serde::{Deserialize, Serialize};

use crate::{B64, ErrorCode, PracticeId, UnixMillis, UserId};

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The query of `GET /ws` ([`crate::api::OpenLive`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WsQuery {
    /// The protocol version the client speaks; absent means the server's.
    pub v: Option<u32>,
    /// A waiting-room guest's token (from `POST /rooms/{link}/check-in`): the
    /// socket is that guest's, in that room, and accepts only guest commands.
    /// Without it the socket is authenticated by the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<String>,
}
/// Largest client frame, bytes.
pub const MAX_FRAME: usize = 256 * 1024;
/// Largest encrypted attachment blob, bytes.
pub const MAX_BLOB: usize = 8 * 1024 * 1024;
/// Largest sealed referral content, bytes.
pub const MAX_CONTENT: usize = 192 * 1024;
/// Largest sealed thread message or note, bytes.
pub const MAX_MESSAGE: usize = 32 * 1024;
/// Most events one `subscribe` replays. A longer gap is paged: the answer says
/// `more: true` with `head_seq` at the last replayed event, and the client
/// subscribes again after it. Kept well under the per-connection buffer so a
/// replay never trips the slow-consumer limit.
pub const MAX_REPLAY: u32 = 500;
/// Largest sealed check-in (`POST /rooms/{link}/check-in`, `guest_check_in`), bytes.
pub const MAX_CHECK_IN: usize = 4 * 1024;
/// Largest sealed waiting-room message (`room_message`), bytes.
pub const MAX_ROOM_MESSAGE: usize = 4 * 1024;
/// Largest sealed signalling message (`room_signal`, `guest_signal`), bytes.
pub const MAX_SIGNAL: usize = 16 * 1024;
/// Largest sealed admission (`room_admit`), bytes.
pub const MAX_ADMISSION: usize = 4 * 1024;

/// WebSocket close codes the server uses (RFC 6455 §7.4 and the 4000 private range).
pub mod close {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Server shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A binary frame, or a frame that is not valid UTF-8.
    pub const UNSUPPORTED: u16 = 1003;
    /// A frame larger than [`super::MAX_FRAME`].
    pub const TOO_BIG: u16 = 1009;
    /// The session expired or was revoked while connected; sign in again.
    pub const SESSION_ENDED: u16 = 4001;
    /// The session went unused past the server's idle timeout and is ended;
    /// sign in again (the web client shows its "signed out for inactivity" screen).
    pub const SESSION_IDLE: u16 = 4002;
    /// The client stopped reading: its outgoing buffer filled up. Reconnect and resume.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// No pong within the timeout.
    pub const PING_TIMEOUT: u16 = 4009;
    /// A host removed this waiting-room guest: its token is dead.
    pub const GUEST_REMOVED: u16 = 4010;
}

pub use crate::ids::{BlobId, GuestId, IdemKey, MessageId, ReferralId, RoomId};

/// A stream of events. On the wire: `"practice:<uuid>"` or `"referral:<uuid>"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum StreamId {
    /// A practice's inbox: every referral it sent or received, and their changes.
    Practice(PracticeId),
    /// One referral's history and thread.
    Referral(ReferralId),
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamId::Practice(p) => write!(f, "practice:{p}"),
            StreamId::Referral(r) => write!(f, "referral:{r}"),
        }
    }
}

impl std::str::FromStr for StreamId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, id) = s.split_once(':').ok_or("expected kind:uuid")?;
        let id = uuid::Uuid::parse_str(id).map_err(|e| e.to_string())?;
        match kind {
            "practice" => Ok(StreamId::Practice(PracticeId(id))),
            "referral" => Ok(StreamId::Referral(ReferralId(id))),
            _ => Err(format!("unknown stream kind {kind}")),
        }
    }
}

impl Serialize for StreamId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How soon the patient should be seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Urgency {
    /// Within days.
    Urgent,
    /// Within weeks.
    Semi,
    /// Routine waitlist.
    Routine,
}

/// Where a referral stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Status {
    /// Sent, awaiting the specialist.
    Sent,
    /// The specialist practice accepted it.
    Accepted,
    /// The specialist practice rejected it (see the reason).
    Rejected,
    /// The referrer cancelled it.
    Cancelled,
}

/// Why a specialist rejected a referral (the Clinnect reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum RejectReason {
    /// Wrong category: the specialist does not do the correct category.
    WrongCategory,
    /// Wrong specialty.
    WrongSpecialty,
    /// Send to another specialist (named in the note).
    AnotherSpecialist,
    /// Other (explained in the note).
    Other,
}

/// The referral's content key `R`, HPKE-sealed to one practice's epoch key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct WrappedKey {
    /// The practice.
    pub practice: PracticeId,
    /// Its key epoch the wrap is for.
    pub epoch: u64,
    /// HPKE `enc || ciphertext`.
    pub sealed: B64,
}

/// An attachment: an encrypted blob and its encrypted name and type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Attachment {
    /// The uploaded ciphertext.
    pub blob: BlobId,
    /// File name and media type: sealed under `R` for a file sent with the
    /// referral; for one added later, under its own item key, whose wraps to
    /// the practices' epoch keys it carries (see the crypto crate's `item`).
    pub meta: B64,
}

/// Routing metadata: plaintext because the server routes on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Routing {
    /// Specialty slug.
    pub specialty: String,
    /// Category slug.
    pub category: String,
    /// Subcategory slug.
    #[serde(default)]
    pub subcategory: Option<String>,
    /// Region slug.
    pub region: String,
    /// How urgent the referral is.
    pub urgency: Urgency,
}

/// Where to send a referral.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Destination {
    /// To this practice (`to_keys` must hold a wrap for it).
    Practice {
        /// The specialist practice.
        practice: PracticeId,
    },
    /// "Choose for me": the server picks, among the practices `to_keys` holds
    /// wraps for, the eligible one that has received the fewest referrals in the
    /// category (and subcategory); the other wraps are discarded.
    ChooseForMe,
}

/// Who is sending a new referral.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum NewSender {
    /// A member, for their practice (the WebSocket's `create_referral`).
    Practice {
        /// The sending practice.
        practice: PracticeId,
        /// `R` wrapped to the sending practice's current epoch key.
        key: WrappedKey,
    },
    /// A sender without an account (`POST /free/referrals`): nobody on the
    /// sending side can open the referral once it is sent.
    Free,
}

/// Who sent a referral, as both parties see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum SentFrom {
    /// A member of a practice, for the practice.
    Practice {
        /// The referring practice.
        practice: PracticeId,
        /// The member who sent it.
        user: UserId,
        /// `R` wrapped to the referring practice.
        key: WrappedKey,
        /// For a delegate: the member they sent it on behalf of, stamped by
        /// the server from the delegate's membership (never from the client).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<UserId>,
    },
    /// A free sender without an account: who they are is sealed in the
    /// content (`free_sender`), for the receiver only; the server holds their
    /// email address, to send the accept and decline emails. No thread, no
    /// later attachment.
    Free,
}

impl Referral {
    /// The referring practice, unless the sender had no account.
    pub fn from_practice(&self) -> Option<PracticeId> {
        match &self.from {
            SentFrom::Practice { practice, .. } => Some(*practice),
            SentFrom::Free => None,
        }
    }

    /// The member who sent it, unless the sender had no account.
    pub fn sent_by(&self) -> Option<UserId> {
        match &self.from {
            SentFrom::Practice { user, .. } => Some(*user),
            SentFrom::Free => None,
        }
    }

    /// `R` wrapped to `practice`, if it is one of the two parties.
    pub fn key_for(&self, practice: PracticeId) -> Option<&WrappedKey> {
        match &self.from {
            _ if self.to_key.practice == practice => Some(&self.to_key),
            SentFrom::Practice { key, .. } if key.practice == practice => Some(key),
            SentFrom::Practice { .. } | SentFrom::Free => None,
        }
    }

    /// Whether it is a free referral (no account on the sending side).
    pub fn is_free(&self) -> bool {
        matches!(self.from, SentFrom::Free)
    }
}

/// A new referral, as the sending client builds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct NewReferral {
    /// Client-generated id.
    pub id: ReferralId,
    /// Who sends it: a practice (over the WebSocket) or a free sender (`POST /free/referrals`).
    pub from: NewSender,
    /// Where it goes.
    pub destination: Destination,
    /// Routing metadata.
    pub routing: Routing,
    /// Demographics, reason and clinical details sealed under `R`.
    pub content: B64,
    /// `R` wrapped to the receiver (or to each candidate for choose-for-me).
    pub to_keys: Vec<WrappedKey>,
    /// Attachments uploaded beforehand.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// A referral as both practices see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Referral {
    /// The referral's id (chosen by the sending client).
    pub id: ReferralId,
    /// Human-readable number, e.g. `HR-7K3F-9Q2M`.
    pub number: String,
    /// Who sent it.
    pub from: SentFrom,
    /// The specialist practice that received it.
    pub to_practice: PracticeId,
    /// Routing metadata (current category and urgency).
    pub routing: Routing,
    /// Where it is in its lifecycle.
    pub status: Status,
    /// With `rejected`.
    pub reject_reason: Option<RejectReason>,
    /// Sealed content.
    pub content: B64,
    /// `R` for the receiver.
    pub to_key: WrappedKey,
    /// Files attached to it, each an encrypted blob.
    pub attachments: Vec<Attachment>,
    /// When it was sent.
    pub created_at: UnixMillis,
    /// When a member of the receiving practice first opened it.
    pub first_opened_at: Option<UnixMillis>,
}

/// A signed, encrypted thread message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ThreadMessage {
    /// Client-generated id.
    pub id: MessageId,
    /// Body sealed under its own item key, whose wraps to both practices'
    /// current epoch keys it carries (older messages: under `R`).
    pub body: B64,
    /// Ed25519 signature by the author over the crypto crate's `message_signing_bytes`.
    pub signature: B64,
}

/// Something that happened, as stored and pushed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Event {
    /// A referral was sent (on both practices' streams and the referral's).
    ReferralSent {
        /// The referral.
        referral: Box<Referral>,
    },
    /// A member of the receiving practice opened it for the first time.
    Opened {
        /// The referral this is about.
        referral: ReferralId,
        /// The user who did it.
        by: UserId,
        /// For a delegate: the member they acted on behalf of, stamped by the
        /// server from the delegate's membership at the time (never from the client).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<UserId>,
        /// When it happened.
        at: UnixMillis,
    },
    /// Accepted, rejected or cancelled.
    StatusChanged {
        /// The referral this is about.
        referral: ReferralId,
        /// Number, for notifications.
        number: String,
        /// New status.
        status: Status,
        /// With `rejected`.
        reason: Option<RejectReason>,
        /// With `rejected`: a note sealed under its own item key (older notes: under `R`).
        note: Option<B64>,
        /// The user who did it.
        by: UserId,
        /// For a delegate: the member they acted on behalf of, stamped by the
        /// server from the delegate's membership at the time (never from the client).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<UserId>,
        /// When it happened.
        at: UnixMillis,
    },
    /// The specialist re-filed the category.
    CategoryChanged {
        /// The referral this is about.
        referral: ReferralId,
        /// New category.
        category: String,
        /// New subcategory.
        subcategory: Option<String>,
        /// The user who did it.
        by: UserId,
        /// For a delegate: the member they acted on behalf of, stamped by the
        /// server from the delegate's membership at the time (never from the client).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<UserId>,
        /// When it happened.
        at: UnixMillis,
    },
    /// The specialist changed the urgency.
    UrgencyChanged {
        /// The referral this is about.
        referral: ReferralId,
        /// New urgency.
        urgency: Urgency,
        /// The user who did it.
        by: UserId,
        /// For a delegate: the member they acted on behalf of, stamped by the
        /// server from the delegate's membership at the time (never from the client).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<UserId>,
        /// When it happened.
        at: UnixMillis,
    },
    /// An attachment was added after sending.
    AttachmentAdded {
        /// The referral this is about.
        referral: ReferralId,
        /// The attachment.
        attachment: Attachment,
        /// The user who did it.
        by: UserId,
        /// For a delegate: the member they acted on behalf of, stamped by the
        /// server from the delegate's membership at the time (never from the client).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<UserId>,
        /// When it happened.
        at: UnixMillis,
    },
    /// A thread message.
    MessagePosted {
        /// The referral this is about.
        referral: ReferralId,
        /// The message.
        message: ThreadMessage,
        /// The user who wrote it.
        by: UserId,
        /// For a delegate: the member they acted on behalf of, stamped by the
        /// server from the delegate's membership at the time (never from the client).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_behalf_of: Option<UserId>,
        /// When it happened.
        at: UnixMillis,
    },
    /// The practice's MLS group moved to a new epoch (practice stream only).
    /// Members fetch the entry from `GET /practices/{id}/mls` and process it.
    EpochAdvanced {
        /// The practice.
        practice: PracticeId,
        /// The new epoch.
        epoch: u64,
        /// Who committed.
        committer: UserId,
        /// When it happened.
        at: UnixMillis,
    },
}

/// A command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Command {
    /// Replay events after `after_seq`, then stream live ones. Refused with
    /// `not_found` if the user may not see the stream, and with `seq_ahead` if
    /// `after_seq` is past the stream's head.
    Subscribe {
        /// The stream.
        stream: StreamId,
        /// Last seq the client has (0 for everything; at most the stream's head).
        #[serde(default)]
        after_seq: u64,
    },
    /// Stop streaming.
    Unsubscribe {
        /// The stream.
        stream: StreamId,
    },
    /// Send a referral.
    SendReferral {
        /// The referral.
        referral: NewReferral,
    },
    /// Mark opened (receiving practice; only the first time makes an event).
    MarkOpened {
        /// The referral this is about.
        referral: ReferralId,
    },
    /// Accept (receiving practice).
    Accept {
        /// The referral this is about.
        referral: ReferralId,
    },
    /// Reject with a reason and a sealed note (receiving practice).
    Reject {
        /// The referral this is about.
        referral: ReferralId,
        /// The reason, from the fixed list.
        reason: RejectReason,
        /// Note sealed under its own item key, wrapped to both practices' current epoch keys.
        note: B64,
    },
    /// Re-file the category (receiving practice).
    ChangeCategory {
        /// The referral this is about.
        referral: ReferralId,
        /// Category slug within the specialty.
        category: String,
        /// Subcategory slug.
        #[serde(default)]
        subcategory: Option<String>,
    },
    /// Change the urgency (receiving practice).
    ChangeUrgency {
        /// The referral this is about.
        referral: ReferralId,
        /// New urgency.
        urgency: Urgency,
    },
    /// Cancel (referring practice).
    Cancel {
        /// The referral this is about.
        referral: ReferralId,
    },
    /// Add an attachment later (either practice).
    AddAttachment {
        /// The referral this is about.
        referral: ReferralId,
        /// The uploaded attachment.
        attachment: Attachment,
    },
    /// Post a thread message (either practice).
    PostMessage {
        /// The referral this is about.
        referral: ReferralId,
        /// The message.
        message: ThreadMessage,
    },
    // The telehealth waiting room (issue 15, wt-rooms-server). Host commands
    // come from a member socket; guest commands from a guest socket only.
    /// Host a room: the ack lists the waiting guests and the hosts, and from
    /// then on the socket receives the room's host events.
    RoomHost {
        /// The room.
        room: RoomId,
        /// The status the guests see.
        status: HostStatus,
    },
    /// Change the status the guests see.
    RoomHostStatus {
        /// The room.
        room: RoomId,
        /// The new status.
        status: HostStatus,
    },
    /// Stop hosting (the last host leaving ends the admitted guests' visits).
    RoomLeave {
        /// The room.
        room: RoomId,
    },
    /// Admit a waiting guest, with the meeting details sealed to its public key.
    RoomAdmit {
        /// The room.
        room: RoomId,
        /// The guest.
        guest: GuestId,
        /// HPKE-sealed to the guest's check-in key (at most [`MAX_ADMISSION`] bytes).
        sealed_admission: B64,
    },
    /// Return an admitted guest to the waiting list.
    RoomReturn {
        /// The room.
        room: RoomId,
        /// The guest.
        guest: GuestId,
    },
    /// Remove a guest: its socket is closed and its token is dead.
    RoomRemove {
        /// The room.
        room: RoomId,
        /// The guest.
        guest: GuestId,
    },
    /// Hand a guest to another host present in the room.
    RoomHandOver {
        /// The room.
        room: RoomId,
        /// The guest.
        guest: GuestId,
        /// The host who takes it.
        to: UserId,
    },
    /// A one-way message to the waiting guests, sealed under the room key.
    RoomMessage {
        /// The room.
        room: RoomId,
        /// At most [`MAX_ROOM_MESSAGE`] bytes.
        sealed: B64,
    },
    /// End the meeting for everyone: every guest is told, every host leaves.
    RoomEnd {
        /// The room.
        room: RoomId,
    },
    /// A sealed signalling message to a guest this host admitted.
    RoomSignal {
        /// The room.
        room: RoomId,
        /// The guest.
        guest: GuestId,
        /// At most [`MAX_SIGNAL`] bytes.
        sealed: B64,
    },
    /// (Guest) join the live waiting list with the sealed check-in; sent
    /// again after a reconnect. The order is the token's check-in time.
    GuestCheckIn {
        /// At most [`MAX_CHECK_IN`] bytes.
        sealed: B64,
    },
    /// (Guest) a sealed signalling message to the admitting host.
    GuestSignal {
        /// At most [`MAX_SIGNAL`] bytes.
        sealed: B64,
    },
    /// (Guest) leave the room.
    GuestLeave {},
}

/// Every command's wire name, in the order of [`Command`].
pub const COMMANDS: &[&str] = &[
    "subscribe",
    "unsubscribe",
    "send_referral",
    "mark_opened",
    "accept",
    "reject",
    "change_category",
    "change_urgency",
    "cancel",
    "add_attachment",
    "post_message",
    // The telehealth waiting room (issue 15, wt-rooms-server).
    "room_host",
    "room_host_status",
    "room_leave",
    "room_admit",
    "room_return",
    "room_remove",
    "room_hand_over",
    "room_message",
    "room_end",
    "room_signal",
    "guest_check_in",
    "guest_signal",
    "guest_leave",
];

/// Why a client frame was refused: the request id if it could be read, the
/// code, and a message.
pub type FrameError = (Option<u64>, ErrorCode, String);

/// Decodes a client text frame. Invalid JSON is `malformed_json`; a command
/// name not in [`COMMANDS`] is `unknown_command`; anything else that does not
/// fit (missing or wrong-typed fields, unknown fields) is `invalid_body`.
/// Never panics, whatever the input (fuzzed by `protocol/fuzz`).
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| (None, ErrorCode::MalformedJson, format!("not valid JSON: {e}")))?;
    let id = v.get("id").and_then(serde_json::Value::as_u64);
    let kind = v.pointer("/cmd/type").and_then(|t| t.as_str()).map(str::to_owned);
    serde_json::from_value(v).map_err(|e| match kind {
        Some(t) if !COMMANDS.contains(&t.as_str()) => (id, ErrorCode::UnknownCommand, format!("unknown command {t:?}")),
        _ => (id, ErrorCode::InvalidBody, format!("invalid frame: {e}")),
    })
}

impl Command {
    /// Whether this command changes stored state (and so needs an idempotency
    /// key). Room and guest commands act on live state only: they need none.
    pub fn mutates(&self) -> bool {
        !matches!(self, Command::Subscribe { .. } | Command::Unsubscribe { .. }) && self.room().is_none() && !self.is_guest()
    }

    /// The room a host command acts on; `None` for every other command.
    pub fn room(&self) -> Option<RoomId> {
        use Command::*;
        match self {
            RoomHost { room, .. }
            | RoomHostStatus { room, .. }
            | RoomLeave { room }
            | RoomAdmit { room, .. }
            | RoomReturn { room, .. }
            | RoomRemove { room, .. }
            | RoomHandOver { room, .. }
            | RoomMessage { room, .. }
            | RoomEnd { room }
            | RoomSignal { room, .. } => Some(*room),
            _ => None,
        }
    }

    /// Whether this is a guest command (accepted on a guest socket only).
    pub fn is_guest(&self) -> bool {
        matches!(self, Command::GuestCheckIn { .. } | Command::GuestSignal { .. } | Command::GuestLeave {})
    }
}

/// The status a host shows the waiting guests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum HostStatus {
    /// Ready for the next patient.
    Ready,
    /// With another patient.
    Busy,
    /// Away.
    Away,
}

/// Where a waiting-room guest stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum GuestState {
    /// In the waiting list (also after being returned).
    Waiting,
    /// Admitted by a host.
    Admitted,
    /// Removed by a host: its token is dead.
    Removed,
    /// It left (or its socket closed).
    Left,
}

/// A guest, as the hosts see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct GuestView {
    /// The guest.
    pub guest: GuestId,
    /// Its sealed check-in.
    pub sealed: B64,
    /// When it first checked in (the order of the list).
    pub checked_in_at: UnixMillis,
    /// Where it stands.
    pub state: GuestState,
    /// The host it is with (admitted) or handed to.
    pub host: Option<UserId>,
}

/// A host of a room, as the other hosts see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct HostView {
    /// The host.
    pub user: UserId,
    /// Its status.
    pub status: HostStatus,
}

/// Something that happened in a waiting room, pushed in [`ServerFrame::Room`].
/// Host events go to every host socket of the room; guest events only to
/// that guest's own socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum RoomEvent {
    /// (Hosts) a guest checked in, or checked in again after a reconnect.
    GuestWaiting {
        /// The guest.
        guest: GuestId,
        /// Its sealed check-in.
        sealed: B64,
        /// Its original check-in time.
        checked_in_at: UnixMillis,
    },
    /// (Hosts) a guest's state changed.
    GuestState {
        /// The guest.
        guest: GuestId,
        /// Its new state.
        state: GuestState,
        /// The host it is with, if any.
        host: Option<UserId>,
    },
    /// (Hosts) a host joined.
    HostJoined {
        /// The host.
        user: UserId,
        /// Its status.
        status: HostStatus,
    },
    /// (Hosts) a host changed its status.
    HostStatus {
        /// The host.
        user: UserId,
        /// Its new status.
        status: HostStatus,
    },
    /// (Hosts) a host left.
    HostLeft {
        /// The host.
        user: UserId,
    },
    /// (Hosts: the echo; waiting guests) a waiting-room message.
    Message {
        /// Sealed under the room key.
        sealed: B64,
        /// When the server relayed it.
        at: UnixMillis,
    },
    /// (The admitting host, or the admitted guest) a sealed signalling message.
    Signal {
        /// The guest of the call.
        guest: GuestId,
        /// Sealed under the call key.
        sealed: B64,
    },
    /// (Guest) its state and the hosts' statuses.
    State {
        /// Its state.
        state: GuestState,
        /// Each present host's status.
        hosts: Vec<HostStatus>,
    },
    /// (Guest) admitted: the meeting details sealed to its key.
    Admitted {
        /// HPKE-sealed by the host.
        sealed_admission: B64,
    },
    /// (Guest) returned to the waiting list.
    Returned {},
    /// (Guest) removed: the socket closes with [`close::GUEST_REMOVED`].
    Removed {},
    /// (Guest) the meeting ended, or the last host left.
    Ended {},
}

/// A client frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ClientFrame {
    /// Request id, echoed in the answer.
    pub id: u64,
    /// Idempotency key; required for commands that change state.
    #[serde(default)]
    pub idem: Option<IdemKey>,
    /// The command.
    pub cmd: Command,
}

/// What a successful command answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum AckBody {
    /// Subscribed; every event up to `head_seq` has been sent.
    Subscribed {
        /// The stream.
        stream: StreamId,
        /// Without `more`: the stream's newest seq, after which events come live.
        /// With `more`: the last replayed seq.
        head_seq: u64,
        /// The replay stopped at [`MAX_REPLAY`] events: subscribe again with
        /// `after_seq = head_seq` for the next page (live events wait until then).
        more: bool,
    },
    /// The socket no longer receives the stream's events.
    Unsubscribed {
        /// The stream.
        stream: StreamId,
    },
    /// A referral was created.
    ReferralSent {
        /// The new referral's id.
        referral: ReferralId,
        /// Its human-readable number.
        number: String,
        /// The chosen (or named) receiver.
        to_practice: PracticeId,
    },
    /// The change was made (or, for `mark_opened`, had been made before).
    Done {
        /// The referral this is about.
        referral: ReferralId,
    },
    // The telehealth waiting room (issue 15, wt-rooms-server).
    /// `room_host`: the socket hosts the room; its guests and hosts now.
    RoomJoined {
        /// The room.
        room: RoomId,
        /// Every guest present, in check-in order.
        guests: Vec<GuestView>,
        /// Every host present (this one included).
        hosts: Vec<HostView>,
    },
    /// `guest_check_in`: the guest's state and the hosts' statuses.
    GuestState {
        /// Its state.
        state: GuestState,
        /// Each present host's status.
        hosts: Vec<HostStatus>,
    },
    /// Any other room or guest command was done.
    RoomDone {
        /// The room.
        room: RoomId,
    },
}

/// A server frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ServerFrame {
    /// First frame on a new socket.
    Hello {
        /// Protocol version.
        protocol: u32,
        /// Who the socket is signed in as.
        user: UserId,
    },
    /// A command succeeded.
    Ack {
        /// The request id.
        id: u64,
        /// True when this answers a replayed idempotency key: nothing was done again.
        duplicate: bool,
        /// The result.
        body: AckBody,
    },
    /// A command failed. `id` is absent when the frame could not be parsed far enough.
    Error {
        /// The request id.
        id: Option<u64>,
        /// The code (see [`ErrorCode`]).
        error: ErrorCode,
        /// Human text.
        message: String,
    },
    /// An event on a subscribed stream.
    Event {
        /// The stream.
        stream: StreamId,
        /// Its seq in the stream.
        seq: u64,
        /// The event.
        event: Event,
    },
    // The telehealth waiting room (issue 15, wt-rooms-server).
    /// First frame on a guest socket (instead of `hello`).
    GuestHello {
        /// Protocol version.
        protocol: u32,
        /// The guest's room.
        room: RoomId,
        /// The guest.
        guest: GuestId,
    },
    /// A waiting-room event (live only: never stored, never replayed).
    Room {
        /// The room.
        room: RoomId,
        /// The event.
        event: RoomEvent,
    },
}

/// In the OpenAPI document: `practice:<uuid>` or `referral:<uuid>`.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for StreamId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^(practice|referral):[0-9a-fA-F-]{36}$"))
            .description(Some("A stream: `practice:<uuid>` or `referral:<uuid>`."))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for StreamId {}
