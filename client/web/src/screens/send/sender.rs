//! Who sends a referral, and through what: the one thing that differs
//! between a signed-in member's send and any other. The wizard's steps
//! (routing, recipient, patient, attachments, review) and the send itself
//! ([`super::submit`]) are the same for every sender; they ask the
//! [`SenderContext`] where the directory comes from, how an encrypted blob
//! is uploaded, which practice key (if any) wraps `R` for the sender, and
//! how the sealed referral reaches Handoff.

use std::cell::RefCell;
use std::rc::Rc;

use handoff_client_core::referral::seal_referral;
use handoff_crypto::referral::{FreeSender, ReferralContent, ReferralKey};
use handoff_protocol::api::{GetFreeDirectory, GetFreeSignerKeys, PutBlob, PutFreeBlob, SendFreeReferral};
use handoff_protocol::free::{FreeSend, FreeSent};
use handoff_protocol::v1::{DirectoryEntry, DirectoryQuery, Taxonomy};
use handoff_protocol::ws::{AckBody, Attachment, Command, Destination, IdemKey, NewReferral, ReferralId, Routing};
use handoff_protocol::{ErrorCode, PracticeId};

use crate::Ctx;
use crate::api::{self, ApiError, ApiResult};
use crate::session::{new_uuid, upload_sealed};

/// Checks a directory entry's published key against its signer's account
/// key, as a free sender (no account) can fetch it.
async fn verify_free_entry(e: &DirectoryEntry) -> ApiResult<()> {
    let signer = api::call::<GetFreeSignerKeys>(&e.public_key.signer, &()).await?;
    handoff_client_core::account::verify_directory_entry(e, signer.sign_pub.as_slice())
        .map_err(|_| ApiError::local(format!("{}'s published key is not signed by one of its members. It was not used.", e.name)))
}

/// Where a referral to `targets` goes: the one named practice, or "choose
/// for me" among them all.
pub fn destination(targets: &[DirectoryEntry], choose_for_me: bool) -> ApiResult<Destination> {
    match targets.first() {
        None => Err(ApiError::local("No specialist practice to send to.")),
        Some(first) if !choose_for_me => Ok(Destination::Practice { practice: first.id }),
        Some(_) => Ok(Destination::ChooseForMe),
    }
}

/// Where a send wizard gets what it needs, and how it sends.
#[derive(Clone, PartialEq)]
pub enum SenderContext {
    /// A signed-in member, for one of their practices: the signed-in
    /// directory, blobs owned by the account, `R` also wrapped to the sending
    /// practice's current key, and the live connection.
    Member(Ctx),
    /// A free sender without an account, through their verified draft (its
    /// cookie travels with every `/free` call): the free directory, blobs
    /// owned by the draft, `R` wrapped to the receiver (or each
    /// choose-for-me candidate) only, and one idempotent `POST /free/referrals`.
    Free(Rc<FreeContext>),
}

/// What a free send needs beyond the form: who sends (sealed in the
/// content), and the send's idempotency key, kept across retries.
#[derive(Debug)]
pub struct FreeContext {
    /// The taxonomy (public).
    pub taxonomy: Rc<Taxonomy>,
    /// The sender's details, sealed in the content for the receiver.
    pub sender: FreeSender,
    /// The one send's idempotency key: every retry of this draft's send uses it.
    pub idem: IdemKey,
    /// The last referral sealed and uploaded, with what it was made from: a
    /// retry of the same referral sends the very same bytes again (so the
    /// key's replay answers it), a changed one is sealed anew.
    pub sealed: RefCell<Option<(String, NewReferral)>>,
}

impl PartialEq for FreeContext {
    fn eq(&self, o: &Self) -> bool {
        Rc::ptr_eq(&self.taxonomy, &o.taxonomy) && self.sender == o.sender && self.idem == o.idem
    }
}

impl std::fmt::Debug for SenderContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SenderContext::Member(_) => f.write_str("SenderContext::Member"),
            SenderContext::Free(_) => f.write_str("SenderContext::Free"),
        }
    }
}

/// Handoff's answer to a send.
#[derive(Clone, Debug, PartialEq)]
pub enum Receipt {
    /// A member's referral, sent over the live connection.
    Member(ReferralId),
    /// A free referral: its number and receiver, to keep.
    Free(FreeSent),
}

impl Receipt {
    /// The referral sent.
    pub fn referral(&self) -> ReferralId {
        match self {
            Receipt::Member(id) => *id,
            Receipt::Free(f) => f.referral,
        }
    }
}

/// What was sent, and Handoff's answer: enough for the screen that follows
/// (a free sender's download needs the plaintext, which exists only here).
#[derive(Clone, Debug, PartialEq)]
pub struct Sent {
    /// Handoff's answer.
    pub receipt: Receipt,
    /// The content, as sealed.
    pub content: ReferralContent,
    /// The routing.
    pub routing: Routing,
    /// The attached files' names.
    pub attachments: Vec<String>,
}

impl SenderContext {
    /// The specialties, categories and regions to choose from.
    pub fn taxonomy(&self) -> Rc<Taxonomy> {
        match self {
            SenderContext::Member(ctx) => Rc::new(ctx.session.taxonomy.clone()),
            SenderContext::Free(f) => f.taxonomy.clone(),
        }
    }

    /// The practices the sender may send from, by id and name (none for a
    /// sender without a practice).
    pub fn practices(&self) -> Vec<(PracticeId, String)> {
        match self {
            SenderContext::Member(ctx) => {
                let s = &ctx.session;
                s.practices().into_iter().filter(|p| s.has_key(p.id)).map(|p| (p.id, p.name)).collect()
            }
            SenderContext::Free(_) => Vec::new(),
        }
    }

    /// The label of the button that sends.
    pub fn send_label(&self) -> &'static str {
        match self {
            SenderContext::Member(_) => "Send referral",
            SenderContext::Free(_) => "Confirm & send",
        }
    }

    /// The specialist practices of `specialty` in `region` that can receive from this sender.
    pub async fn directory(&self, specialty: &str, region: &str) -> ApiResult<Vec<DirectoryEntry>> {
        match self {
            SenderContext::Member(_) => api::directory(specialty, region).await,
            SenderContext::Free(_) => {
                let q = DirectoryQuery { specialty: Some(specialty.into()), region: Some(region.into()) };
                Ok(api::call::<GetFreeDirectory>(&(), &q).await?.practices)
            }
        }
    }

    /// Makes `R`, seals `content` under it and wraps `R` to `targets` (and,
    /// for a member, to the sending practice `from`).
    pub async fn prepare(
        &self,
        from: Option<PracticeId>,
        targets: &[DirectoryEntry],
        choose_for_me: bool,
        routing: Routing,
        content: &ReferralContent,
    ) -> ApiResult<(NewReferral, ReferralKey)> {
        match self {
            SenderContext::Member(ctx) => {
                let from = from.ok_or_else(|| ApiError::local("Choose the practice to send from."))?;
                ctx.session.prepare_referral(from, targets, choose_for_me, routing, content).await
            }
            // Each target's published key is checked against its signer's
            // account key (asked through the verified draft) before `R` is
            // wrapped to it; `R` is wrapped to no sender.
            SenderContext::Free(_) => {
                for e in targets {
                    verify_free_entry(e).await?;
                }
                let id = ReferralId(new_uuid()?);
                let r = ReferralKey::generate()?;
                let destination = destination(targets, choose_for_me)?;
                let new = seal_referral(id, &r, None, targets, destination, routing, content, Vec::new())?;
                Ok((new, r))
            }
        }
    }

    /// Encrypts a file under `R` and uploads it, reporting (sent, total) bytes.
    pub async fn upload(
        &self,
        key: &ReferralKey,
        name: &str,
        media_type: &str,
        bytes: &[u8],
        progress: impl Fn(f64, f64) + 'static,
    ) -> ApiResult<Attachment> {
        match self {
            SenderContext::Member(_) => upload_sealed::<PutBlob>(key, name, media_type, bytes, progress).await,
            SenderContext::Free(_) => upload_sealed::<PutFreeBlob>(key, name, media_type, bytes, progress).await,
        }
    }

    /// Who the sender is, sealed in the content (a member's referral names
    /// its practice instead).
    pub fn free_sender(&self) -> Option<FreeSender> {
        match self {
            SenderContext::Member(_) => None,
            SenderContext::Free(f) => Some(f.sender.clone()),
        }
    }

    /// The referral sealed (and its files uploaded) for `made_from` by an
    /// earlier try of a free send that did not get its answer, to send again
    /// unchanged. A member's send is sealed anew each time.
    pub fn sealed_before(&self, made_from: &str) -> Option<NewReferral> {
        match self {
            SenderContext::Member(_) => None,
            SenderContext::Free(f) => f.sealed.borrow().as_ref().filter(|(m, _)| m == made_from).map(|(_, n)| n.clone()),
        }
    }

    /// Remembers a sealed, uploaded referral for [`SenderContext::sealed_before`].
    pub fn remember_sealed(&self, made_from: String, referral: &NewReferral) {
        match self {
            SenderContext::Member(_) => {}
            SenderContext::Free(f) => *f.sealed.borrow_mut() = Some((made_from, referral.clone())),
        }
    }

    /// Forgets the remembered referral when Handoff refused it for good (a
    /// changed key, a practice no longer eligible): the next try seals anew.
    /// A lost answer or a passing server failure keeps it, to send again.
    pub fn forget_sealed_after(&self, e: &ApiError) {
        let passing = matches!(e.code, None | Some(ErrorCode::Internal | ErrorCode::Unavailable | ErrorCode::RateLimited));
        if let SenderContext::Free(f) = self
            && !passing
        {
            *f.sealed.borrow_mut() = None;
        }
    }

    /// Sends the sealed referral.
    pub async fn send(&self, referral: NewReferral) -> ApiResult<Receipt> {
        match self {
            SenderContext::Member(ctx) => match ctx.live.command(Command::SendReferral { referral }).await? {
                AckBody::ReferralSent { referral, .. } => Ok(Receipt::Member(referral)),
                AckBody::Subscribed { .. }
                | AckBody::Unsubscribed { .. }
                | AckBody::Done { .. }
                | AckBody::RoomJoined { .. }
                | AckBody::GuestState { .. }
                | AckBody::RoomDone { .. } => Err(ApiError::local("Unexpected answer from Handoff.")),
            },
            SenderContext::Free(f) => {
                let sent = api::call::<SendFreeReferral>(&(), &FreeSend { idem: f.idem, referral }).await?;
                Ok(Receipt::Free(sent))
            }
        }
    }
}
