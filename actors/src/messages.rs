//! Every message the hub's actors exchange, in one module that imports no
//! actor: the actors depend on these types, never on each other's modules.
//!
//! The stream messages ([`Subscribe`], [`Unsubscribe`], [`Deliver`],
//! [`EndAccess`]) are handled by every stream actor (`StreamActor<K>`), whatever
//! its kind; [`Execute`], [`Create`] and [`AppendMls`] are each handled by
//! one kind of actor.

use actix::Message;

use handoff_protocol::UserId;
use handoff_protocol::free::DraftId;
use handoff_protocol::ws::{AckBody, Command, IdemKey, NewReferral};
use handoff_store::{MlsEntryRecord, MlsError, StoredEvent};

use crate::ApiResult;
use crate::conn::Conn;

/// Subscribes a connection to the receiving actor's stream: the events after
/// `after_seq` are replayed from the store, then delivery carries on live.
#[derive(Message)]
#[rtype(result = "ApiResult<AckBody>")]
pub(crate) struct Subscribe {
    pub conn: Conn,
    pub after_seq: u64,
}

/// Drops one connection's subscription (nothing happens if it had none).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Unsubscribe {
    pub conn_id: u64,
}

/// Persisted events of the receiving actor's stream, to deliver live in seq
/// order (gaps are filled from the store first).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Deliver {
    pub events: Vec<StoredEvent>,
}

/// Access ended at one of the practices the receiving stream's access depends
/// on (already recorded in `Env::revocations`): the actor checks every
/// subscriber it last checked before then against the store, by the stream's
/// access rule, and cuts those who may no longer see it. It answers once done.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct EndAccess;

/// A state-changing command on one referral, for that referral's actor. The
/// answer says whether it was a replay of an earlier command with the same
/// idempotency key.
#[derive(Message, Clone)]
#[rtype(result = "ApiResult<(bool, AckBody)>")]
pub(crate) struct Execute {
    pub user: UserId,
    pub idem: IdemKey,
    pub hash: Vec<u8>,
    pub cmd: Command,
    /// How many times this command was decided again (after an earlier
    /// change it was decided on failed to commit).
    pub redo: u8,
    /// The client address, when the action is to be recorded in the audit
    /// log (in its own commit; [`crate::audit`]).
    pub audit_from: Option<String>,
}

/// Who is creating a referral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Creator {
    /// A signed-in member, for one of their practices.
    Member(UserId),
    /// A free sender, through their verified draft.
    Free {
        /// The verified draft.
        draft: DraftId,
        /// Its verified email address, kept for the accept and decline emails.
        email: String,
    },
}

impl Creator {
    /// The id the creator's blobs and idempotency records are kept under: the
    /// user's, or the draft's (both random UUIDs, in the same columns).
    pub fn owner(&self) -> UserId {
        match self {
            Creator::Member(user) => *user,
            Creator::Free { draft, .. } => UserId::from_bytes(*draft.as_bytes()),
        }
    }

    /// Whether this creator may send to `p` at all (besides eligibility).
    pub(crate) fn may_send_to(&self, p: &handoff_store::PracticeRecord) -> bool {
        match self {
            Creator::Member(_) => true,
            // A practice that opted out of free referrals receives none.
            Creator::Free { .. } => p.accepts_free,
        }
    }
}

/// A new referral, for the routing actor, which decides each one against
/// every earlier decision (durable or still being committed).
#[derive(Message, Clone)]
#[rtype(result = "ApiResult<(bool, AckBody)>")]
pub(crate) struct Create {
    pub creator: Creator,
    pub idem: IdemKey,
    pub hash: Vec<u8>,
    pub referral: Box<NewReferral>,
    /// How many times this referral was decided again (after an earlier
    /// decision it built on failed, or a referral-number collision).
    pub redo: u8,
    /// The client address, when the sending is to be recorded in the audit
    /// log (in the referral's own commit; [`crate::audit`]).
    pub audit_from: Option<String>,
}

/// An accepted MLS commit (or the group's creation), for the practice's
/// actor to append to the practice's MLS log.
#[derive(Message)]
#[rtype(result = "Result<StoredEvent, MlsError>")]
pub(crate) struct AppendMls {
    pub entry: MlsEntryRecord,
    /// The group's public state after the entry (the server's observer snapshot).
    pub public_state: Vec<u8>,
}
