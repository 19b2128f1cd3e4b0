//! Who sends a referral, and through what: the one thing that differs
//! between a signed-in member's send and any other. The wizard's steps
//! (routing, recipient, patient, attachments, review) and the send itself
//! ([`super::submit`]) are the same for every sender; they ask the
//! [`SenderContext`] where the directory comes from, how an encrypted blob
//! is uploaded, which practice key (if any) wraps `R` for the sender, and
//! how the sealed referral reaches Handoff.

use std::rc::Rc;

use handoff_crypto::referral::{FreeSender, ReferralContent, ReferralKey};
use handoff_protocol::PracticeId;
use handoff_protocol::api::PutBlob;
use handoff_protocol::v1::{DirectoryEntry, Taxonomy};
use handoff_protocol::ws::{AckBody, Attachment, Command, NewReferral, ReferralId, Routing};

use crate::Ctx;
use crate::api::{self, ApiError, ApiResult};
use crate::session::upload_sealed;

/// Where a send wizard gets what it needs, and how it sends.
#[derive(Clone, PartialEq)]
pub enum SenderContext {
    /// A signed-in member, for one of their practices: the signed-in
    /// directory, blobs owned by the account, `R` also wrapped to the sending
    /// practice's current key, and the live connection.
    Member(Ctx),
}

impl std::fmt::Debug for SenderContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SenderContext::Member(_) => f.write_str("SenderContext::Member"),
        }
    }
}

/// Handoff's answer to a send.
#[derive(Clone, Debug, PartialEq)]
pub enum Receipt {
    /// A member's referral, sent over the live connection.
    Member(ReferralId),
}

impl Receipt {
    /// The referral sent.
    pub fn referral(&self) -> ReferralId {
        match self {
            Receipt::Member(id) => *id,
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
        }
    }

    /// The label of the button that sends.
    pub fn send_label(&self) -> &'static str {
        match self {
            SenderContext::Member(_) => "Send referral",
        }
    }

    /// The specialist practices of `specialty` in `region` that can receive from this sender.
    pub async fn directory(&self, specialty: &str, region: &str) -> ApiResult<Vec<DirectoryEntry>> {
        match self {
            SenderContext::Member(_) => api::directory(specialty, region).await,
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
        }
    }

    /// Who the sender is, sealed in the content (a member's referral names
    /// its practice instead).
    pub fn free_sender(&self) -> Option<FreeSender> {
        match self {
            SenderContext::Member(_) => None,
        }
    }

    /// Sends the sealed referral.
    pub async fn send(&self, referral: NewReferral) -> ApiResult<Receipt> {
        match self {
            SenderContext::Member(ctx) => match ctx.live.command(Command::SendReferral { referral }).await? {
                AckBody::ReferralSent { referral, .. } => Ok(Receipt::Member(referral)),
                AckBody::Subscribed { .. } | AckBody::Unsubscribed { .. } | AckBody::Done { .. } => {
                    Err(ApiError::local("Unexpected answer from Handoff."))
                }
            },
        }
    }
}
