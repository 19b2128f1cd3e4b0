//! Free referrals: one referral sent from the public page, without an account.
//!
//! The flow (Clinnect's free referral, see ARCHITECTURE.md "Free referrals"):
//! 1. [`StartDraft`](crate::api::StartFreeDraft): the sender gives the email
//!    address updates go to; the server emails a [`CODE_DIGITS`]-digit code,
//!    valid for [`CODE_TTL_SECS`] seconds and [`CODE_TRIES`] tries.
//! 2. [`VerifyCode`]: the right code turns the draft into a *verified draft*,
//!    whose secret token travels as the `handoff_draft` cookie (HttpOnly,
//!    SameSite=Strict, path `/api/v1/free`) or as `Authorization: Draft <token>`
//!    for native clients. Only the token's hash is stored.
//! 3. With the verified draft: the directory of practices that take free
//!    referrals, attachment uploads (owned by the draft, not by an account),
//!    and one send ([`FreeSend`]), idempotent on its key.
//!
//! The server stores the sender's email address in plain text (to send the
//! accept and decline emails) and nothing else about the sender: their name,
//! MSP number and clinic are sealed inside the referral's content.

use serde::{Deserialize, Serialize};

use crate::PracticeId;
use crate::UnixMillis;
use crate::ws::{IdemKey, NewReferral, ReferralId};

/// How many digits an emailed code has.
pub const CODE_DIGITS: usize = 6;
/// How long an emailed code is valid, in seconds (10 minutes).
pub const CODE_TTL_SECS: u64 = 600;
/// How many tries one code allows; the next try is refused even with the right code.
pub const CODE_TRIES: u32 = 5;
/// How long a verified draft can be used to upload and send, in seconds (2 hours).
pub const DRAFT_TTL_SECS: u64 = 2 * 60 * 60;
/// The cookie that carries a verified draft's token.
pub const DRAFT_COOKIE: &str = "handoff_draft";
/// The `Authorization` scheme that carries a verified draft's token (`Draft <token>`).
pub const DRAFT_SCHEME: &str = "Draft";

pub use crate::ids::DraftId;

/// `POST /free/drafts`: starts a free referral by emailing a code to `email`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StartDraft {
    /// Where the code, and later the accept and decline emails, go.
    pub email: String,
}

/// The answer to [`StartDraft`] and to a resend: the draft and when its code expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CodeSent {
    /// The draft the code is for.
    pub draft: DraftId,
    /// When the code stops working.
    pub expires_at: UnixMillis,
    /// How many more codes this draft may ask for.
    pub resends_left: u32,
}

/// `POST /free/drafts/{id}/verify`: the code from the email.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerifyCode {
    /// The digits, as typed (spaces are ignored).
    pub code: String,
}

/// The answer to a right code: the draft is verified. The token is also set as
/// the [`DRAFT_COOKIE`] cookie.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DraftVerified {
    /// The draft.
    pub draft: DraftId,
    /// The verified email address.
    pub email: String,
    /// The draft's secret token (native clients send it as `Authorization: Draft <token>`).
    pub token: String,
    /// When the verified draft stops working.
    pub expires_at: UnixMillis,
}

/// `POST /free/referrals`: sends the draft's one referral. `referral.from` must
/// be [`NewSender::Free`](crate::ws::NewSender::Free).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FreeSend {
    /// Sending again with the same key answers the same [`FreeSent`] and sends nothing more.
    pub idem: IdemKey,
    /// The referral, sealed in the browser as any other.
    pub referral: NewReferral,
}

/// The answer to [`FreeSend`]: what the sender records in the patient's file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FreeSent {
    /// The referral.
    pub referral: ReferralId,
    /// Its number, quoted in every email about it.
    pub number: String,
    /// The practice that received it.
    pub to_practice: PracticeId,
    /// That practice's display name.
    pub to_practice_name: String,
    /// When it was sent.
    pub sent_at: UnixMillis,
}

/// What staff can block from sending free referrals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum BlockKind {
    /// An email address (compared case-insensitively).
    Email,
    /// A client address: an IPv4 address, or an IPv6 /64 given by any address in it.
    Address,
}

/// `POST /admin/free-blocks`: staff block a sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewBlock {
    /// What `value` is.
    pub kind: BlockKind,
    /// The email address or client address.
    pub value: String,
    /// Why, for the staff who read the list later.
    #[serde(default)]
    pub reason: String,
}

/// A block, as staff list them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Block {
    /// What `value` is.
    pub kind: BlockKind,
    /// The normalised email address or client address (`/64` for IPv6).
    pub value: String,
    /// Why.
    pub reason: String,
    /// When it was made.
    pub created_at: UnixMillis,
}

/// `GET /admin/free-blocks`: every block, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlockList {
    /// The blocks.
    pub blocks: Vec<Block>,
}

/// `DELETE /admin/free-blocks`: lifts a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LiftBlock {
    /// What `value` is.
    pub kind: BlockKind,
    /// The value as blocked (normalised the same way).
    pub value: String,
}

/// `PUT /practices/{id}/free-referrals`: whether the practice receives free
/// referrals (admins only; answered back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FreeIntake {
    /// `false`: choose-for-me skips the practice and a named free referral to it is refused.
    pub accepts: bool,
}

/// The opaque bytes a token is made of, for the native client's header.
pub fn draft_authorization(token: &str) -> String {
    format!("{DRAFT_SCHEME} {token}")
}
