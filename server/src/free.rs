//! Free referrals: one referral sent from the public page, without an
//! account (issue 13; the flow is in `handoff_protocol::free`).
//!
//! - **Codes.** [`CODE_DIGITS`] digits from the OS's CSPRNG, uniform, stored
//!   only as an HMAC under a server secret (`free_code_keys`): a 6-digit code
//!   has too little entropy for a plain hash. A code works for
//!   `free_code_ttl_secs` (10 minutes), [`CODE_TRIES`] tries and once: the
//!   store counts a try and compares in one transaction, so concurrent tries
//!   cannot exceed the limit, and the try after the last is refused even with
//!   the right code. A resend makes a new code (the old one dies), at most
//!   [`RESENDS`] per draft.
//! - **Verified drafts.** The right code makes a 256-bit random token, stored
//!   as SHA-256 like session tokens, returned in the body and as the
//!   [`DRAFT_COOKIE`] cookie (HttpOnly, SameSite=Strict, path `/api/v1/free`,
//!   Secure over HTTPS). [`VerifiedDraft`] reads it from
//!   `Authorization: Draft <token>` first, then the cookie. It works for
//!   `free_draft_ttl_secs` (2 hours) and no longer: the sweep deletes it.
//! - **Limits.** Codes per client address and per email per hour, sends per
//!   address and per email per day ([`RateLimiter::count_free`](crate::ratelimit::RateLimiter::count_free)),
//!   counted before the work, the address keyed as for the sign-in limits.
//! - **Blocks.** Staff block an email address or a client address (the IPv4
//!   address, or the IPv6 /64); a blocked sender is refused with
//!   `sender_blocked` on start, resend, verify and send.
//! - **Attachments** are owned by the draft (the blob's owner is the draft
//!   id's bytes), at most [`MAX_BLOB`] each and [`MAX_ATTACHMENTS`] per draft;
//!   the unattached-blob sweep removes those of a draft never sent.
//! - **One send** per draft ([`send`]): idempotent on its key, claimed in
//!   the store before the hub creates the referral (`Creator::Free`).
//! - These routes have no session; the same-origin rule (`origin.rs`) covers
//!   them as every state-changing request.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use handoff_domain::limits::MAX_ATTACHMENTS;
use handoff_protocol::api::{API_PREFIX, Endpoint, StartFreeDraft};
use handoff_protocol::free::*;
use handoff_protocol::v1::{Directory, DirectoryQuery};
use handoff_protocol::ws::{AckBody, BlobId, IdemKey, MAX_BLOB, NewSender, ReferralId};
use handoff_protocol::{ErrorCode, PracticeId, UserId};
use handoff_store::{CodeCheck, DraftRecord, DraftSend, FreeError, NewDraft, Verification};

use crate::auth::{Authed, client_ip, limited};
use crate::error::{ApiError, ApiResult};
use crate::practices::{admin_of, can_receive, directory_entry};
use crate::ratelimit::{FreeLimit, limit_prefix};
use crate::state::{AppState, now, random_bytes, random_token, sha256};
use crate::validate;

/// How many times a draft may ask for a new code after its first.
pub const RESENDS: u32 = 3;

/// A request made with a verified draft's token: the draft it names, still
/// within its time. Missing, unknown or expired: `draft_unverified`.
#[derive(Clone, Debug)]
pub struct VerifiedDraft {
    /// The draft.
    pub id: DraftId,
    /// Its verified email address (normalised).
    pub email: String,
    /// The referral it sent, if it did.
    pub sent: Option<ReferralId>,
    /// Its one send (key, referral, answer), for a replay.
    pub send: Option<DraftSend>,
}

impl VerifiedDraft {
    /// The owner the blob calls record for the draft's uploads: its id's bytes.
    pub fn blob_owner(&self) -> UserId {
        UserId::from_bytes(*self.id.as_bytes())
    }
}

fn unverified(message: &str) -> ApiError {
    ApiError::new(ErrorCode::DraftUnverified, message)
}

/// The draft token of a request: `Authorization: Draft …` first, then the
/// [`DRAFT_COOKIE`] cookie.
fn draft_token(headers: &actix_web::http::header::HeaderMap) -> Option<String> {
    crate::auth::credential(headers, DRAFT_SCHEME, DRAFT_COOKIE)
}

impl FromRequest for VerifiedDraft {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = draft_token(req.headers());
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("app state missing"))?;
            let token = token
                .filter(|t| !t.is_empty() && t.len() <= 128)
                .ok_or_else(|| unverified("verify your email address first: this needs the code we emailed you"))?;
            let d = state
                .store
                .verified_draft(sha256(token.as_bytes()))
                .await?
                .ok_or_else(|| unverified("this draft is unknown or its time is over; start again with your email address"))?;
            if d.expires_at <= now() {
                return Err(unverified("this draft's time is over; start again with your email address"));
            }
            Ok(VerifiedDraft { id: d.id, email: d.email, sent: d.sent.as_ref().map(|s| s.referral), send: d.sent })
        })
    }
}

/// A code: [`CODE_DIGITS`] digits, uniform (rejection sampling over `u32`).
fn new_code() -> ApiResult<String> {
    const SPACE: u32 = 1_000_000;
    const BOUND: u32 = u32::MAX - (u32::MAX % SPACE);
    loop {
        let b = random_bytes(4)?;
        let n = u32::from_be_bytes(b.try_into().map_err(|_| ApiError::internal("short random read"))?);
        if n < BOUND {
            return Ok(format!("{:0width$}", n % SPACE, width = CODE_DIGITS));
        }
    }
}

/// The keyed hash a code is stored and compared as: HMAC-SHA-256 over the
/// draft id and the code under the server's `free_code_keys` secret.
fn code_hash(state: &AppState, draft: DraftId, code: &str) -> ApiResult<Vec<u8>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&state.free_secret).map_err(ApiError::internal)?;
    mac.update(b"handoff free code v1");
    mac.update(draft.as_bytes());
    mac.update(code.as_bytes());
    Ok(mac.finalize().into_bytes().to_vec())
}

fn ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// A client address as blocks store it: an IPv4 address, or an IPv6 `/64`.
pub fn address_value(ip: IpAddr) -> String {
    match limit_prefix(ip) {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("{a}/64"),
    }
}

/// Normalises a block's value: an email lowercased and trimmed (and valid),
/// an address to its IPv4 address or IPv6 `/64` (given as any address in it,
/// with or without `/64`). `validation_failed` otherwise.
pub fn normalise_block(kind: BlockKind, value: &str) -> ApiResult<String> {
    match kind {
        BlockKind::Email => validate::email(value),
        BlockKind::Address => {
            let v = value.trim();
            let v = v.strip_suffix("/64").unwrap_or(v);
            let ip: IpAddr = v.parse().map_err(|_| ApiError::invalid("value: not an IPv4 or IPv6 address"))?;
            Ok(address_value(ip))
        }
    }
}

/// `sender_blocked` if staff blocked this email address or this client address.
async fn refuse_blocked(state: &AppState, email: &str, addr: IpAddr) -> ApiResult<()> {
    let keys = vec![(BlockKind::Email, email.to_string()), (BlockKind::Address, address_value(addr))];
    if state.store.is_blocked(keys).await? {
        return Err(ApiError::new(ErrorCode::SenderBlocked, "Handoff does not accept free referrals from this sender"));
    }
    Ok(())
}

/// Counts an emailed code against the per-address and per-email limits.
async fn count(state: &AppState, limit: FreeLimit, email: &str, addr: IpAddr) -> ApiResult<()> {
    state.limiter.count_free(limit, email, addr).await.map_err(limited)
}

/// Emails `code` to `email`: the code and how long it works, nothing else.
async fn mail_code(state: &AppState, email: &str, code: &str) -> ApiResult<()> {
    let minutes = state.config.free_code_ttl_secs.div_ceil(60);
    let url = state.config.public_url();
    let body = format!(
        "Your Handoff code is {code}.\n\n\
         Type it on the page where you are sending a referral without an account. \
         It expires in {minutes} minutes and works once.\n\n\
         If you did not ask for a code, ignore this email: nothing is sent without it.\n\n{url}/\n"
    );
    state.send_mail(email, &format!("Your Handoff code is {code}"), body).await
}

/// `POST /api/v1/free/drafts`: starts a draft and emails its first code.
pub async fn start(req: HttpRequest, state: web::Data<AppState>, body: web::Json<StartDraft>) -> ApiResult<HttpResponse> {
    let email = validate::email(&body.email)?;
    let addr = client_ip(&req, &state);
    count(&state, FreeLimit::Code, &email, addr).await?;
    refuse_blocked(&state, &email, addr).await?;
    let id = DraftId(uuid::Uuid::from_slice(&random_bytes(16)?).map_err(ApiError::internal)?);
    let code = new_code()?;
    let t = now();
    let code_expires_at = t.saturating_add(ms(state.config.free_code_ttl_secs));
    state
        .store
        .create_draft(NewDraft {
            id,
            email: email.clone(),
            code_hash: code_hash(&state, id, &code)?,
            code_expires_at,
            expires_at: t.saturating_add(ms(state.config.free_draft_ttl_secs)),
            created_at: t,
        })
        .await?;
    mail_code(&state, &email, &code).await?;
    tracing::info!(draft = %id, "free referral draft started; code emailed");
    Ok(HttpResponse::Created().insert_header(("Cache-Control", "no-store")).json(CodeSent {
        draft: id,
        expires_at: code_expires_at,
        resends_left: RESENDS,
    }))
}

/// The draft `id` while it is within its time; `not_found` otherwise.
async fn live_draft(state: &AppState, id: DraftId) -> ApiResult<DraftRecord> {
    match state.store.draft(id).await? {
        Some(d) if d.expires_at > now() => Ok(d),
        _ => Err(ApiError::not_found("draft")),
    }
}

/// `POST /api/v1/free/drafts/{id}/resend`: a new code (the old one dies).
pub async fn resend(req: HttpRequest, state: web::Data<AppState>, id: web::Path<DraftId>) -> ApiResult<HttpResponse> {
    let d = live_draft(&state, *id).await?;
    let addr = client_ip(&req, &state);
    count(&state, FreeLimit::Code, &d.email, addr).await?;
    refuse_blocked(&state, &d.email, addr).await?;
    let code = new_code()?;
    let code_expires_at = now().saturating_add(ms(state.config.free_code_ttl_secs));
    let used = state.store.replace_code(d.id, code_hash(&state, d.id, &code)?, code_expires_at, RESENDS).await?;
    mail_code(&state, &d.email, &code).await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(CodeSent {
        draft: d.id,
        expires_at: code_expires_at,
        resends_left: RESENDS.saturating_sub(used),
    }))
}

/// The cookie path: the free routes' common prefix (`/api/v1/free`).
fn cookie_path() -> &'static str {
    StartFreeDraft::PATH.rsplit_once('/').map(|(p, _)| p).unwrap_or(API_PREFIX)
}

/// `POST /api/v1/free/drafts/{id}/verify`: the emailed code verifies the draft.
pub async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<DraftId>,
    body: web::Json<VerifyCode>,
) -> ApiResult<HttpResponse> {
    let code: String = body.code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(format!("code: the {CODE_DIGITS} digits from the email")));
    }
    let d = live_draft(&state, *id).await?;
    refuse_blocked(&state, &d.email, client_ip(&req, &state)).await?;
    let token = random_token()?;
    let t = now();
    let expires_at = t.saturating_add(ms(state.config.free_draft_ttl_secs));
    let verification = Verification { token_hash: sha256(token.as_bytes()), expires_at };
    match state.store.try_code(d.id, code_hash(&state, d.id, &code)?, CODE_TRIES, verification, t).await? {
        CodeCheck::Verified => {
            let cookie = Cookie::build(DRAFT_COOKIE, token.clone())
                .path(cookie_path())
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(state.config.secure_cookies())
                .max_age(CookieDuration::seconds(i64::try_from(state.config.free_draft_ttl_secs).unwrap_or(i64::MAX)))
                .finish();
            tracing::info!(draft = %d.id, "free referral draft verified");
            Ok(HttpResponse::Ok().cookie(cookie).insert_header(("Cache-Control", "no-store")).json(DraftVerified {
                draft: d.id,
                email: d.email,
                token,
                expires_at,
            }))
        }
        CodeCheck::Wrong { tries_left } => {
            Err(ApiError::new(ErrorCode::CodeWrong, format!("that code is wrong; {tries_left} tries left for this code")))
        }
        CodeCheck::Expired => Err(ApiError::new(ErrorCode::CodeExpired, "this code has expired; ask for a new one")),
        CodeCheck::Used => Err(ApiError::new(ErrorCode::CodeExpired, "this code was used already; it works once")),
        CodeCheck::Exhausted => {
            Err(ApiError::new(ErrorCode::CodeTriesExhausted, format!("this code has had its {CODE_TRIES} tries; ask for a new one")))
        }
    }
}

/// `GET /api/v1/free/directory`: practices that receive free referrals now.
pub async fn directory(state: web::Data<AppState>, _draft: VerifiedDraft, q: web::Query<DirectoryQuery>) -> ApiResult<HttpResponse> {
    let ps = state.store.directory(q.specialty.as_deref(), q.region.as_deref()).await?;
    let practices = ps.into_iter().filter(|p| can_receive(p) && p.accepts_free).map(directory_entry).collect();
    Ok(HttpResponse::Ok().json(Directory { practices }))
}

/// `GET /api/v1/free/users/{id}/keys`: the account keys of the signer of a
/// practice key the free directory lists, for the free sender's check of
/// that signature; any other user is `not_found` (a draft does not browse
/// the user directory).
pub async fn signer_keys(state: web::Data<AppState>, _draft: VerifiedDraft, id: web::Path<UserId>) -> ApiResult<HttpResponse> {
    let signs_a_listed_key =
        state.store.directory(None, None).await?.iter().any(|p| can_receive(p) && p.accepts_free && p.public_key.signer == *id);
    if !signs_a_listed_key {
        return Err(ApiError::not_found("user"));
    }
    crate::referrals::user_keys_of(&state, *id).await
}

/// The bytes one draft's attachments may hold together.
pub const DRAFT_BLOB_BYTES: u64 = (MAX_ATTACHMENTS as u64) * (MAX_BLOB as u64);

/// `POST /api/v1/free/blobs/{id}`: an encrypted attachment owned by the draft,
/// streamed as account holders' are (`referrals::upload_begun`).
pub async fn put_blob(
    state: web::Data<AppState>,
    draft: VerifiedDraft,
    id: web::Path<BlobId>,
    body: web::Payload,
) -> ApiResult<HttpResponse> {
    if draft.sent.is_some() {
        return Err(FreeError::DraftSent.into());
    }
    let max = u32::try_from(MAX_ATTACHMENTS).unwrap_or(u32::MAX);
    state.store.begin_draft_blob(*id, draft.id, max, now()).await?;
    crate::referrals::upload_begun(&state, *id, draft.blob_owner(), DRAFT_BLOB_BYTES, body).await
}

/// `POST /api/v1/free/referrals`: the draft's one referral.
///
/// A replay with the key of the draft's send answers the same [`FreeSent`]
/// and sends nothing; any other key is `draft_used`. Then, before the work:
/// the sender is [`NewSender::Free`], the per-address and per-email send
/// limits, the blocks. The draft claims its one send in the store before the
/// hub creates the referral (so concurrent sends with different keys cannot
/// both make one), and gives the claim back if the creation is refused.
pub async fn send(
    req: HttpRequest,
    state: web::Data<AppState>,
    draft: VerifiedDraft,
    body: web::Json<FreeSend>,
) -> ApiResult<HttpResponse> {
    let FreeSend { idem, referral } = body.into_inner();
    if let Some(done) = &draft.send {
        return replay(done, idem);
    }
    if !matches!(referral.from, NewSender::Free) {
        return Err(ApiError::invalid("from: a free referral is sent with `\"from\": {\"kind\": \"free\"}`; it has no sending practice"));
    }
    let addr = client_ip(&req, &state);
    state.limiter.count_free(FreeLimit::Send, &draft.email, addr).await.map_err(limited)?;
    refuse_blocked(&state, &draft.email, addr).await?;
    state.store.claim_send(draft.id, idem).await?;
    let ack = match state.hub.send_free(draft.id, draft.email.clone(), idem, referral).await {
        Ok((_, ack)) => ack,
        Err(e) => {
            if let Err(release) = state.store.release_send(draft.id, idem).await {
                tracing::warn!(error = %release, "could not give back a failed free send's claim");
            }
            return Err(e);
        }
    };
    let AckBody::ReferralSent { referral, number, to_practice } = ack else {
        return Err(ApiError::internal("a free send was not answered with the referral sent"));
    };
    let to_practice_name = state.store.practice(to_practice).await?.map(|p| p.name).unwrap_or_default();
    let sent_at = state.store.referral(referral).await?.map(|r| r.created_at).unwrap_or_else(now);
    let sent = FreeSent { referral, number, to_practice, to_practice_name, sent_at };
    let answer = serde_json::to_string(&sent).map_err(ApiError::internal)?;
    state.store.record_send(draft.id, DraftSend { idem, referral, answer }).await?;
    tracing::info!(draft = %draft.id, referral = %referral, "free referral sent");
    Ok(HttpResponse::Created().insert_header(("Cache-Control", "no-store")).json(sent))
}

/// The answer to a send from a draft that sent already: the same answer for
/// its key, `draft_used` for any other.
fn replay(done: &DraftSend, idem: IdemKey) -> ApiResult<HttpResponse> {
    if done.idem != idem {
        return Err(FreeError::DraftSent.into());
    }
    let sent: FreeSent = serde_json::from_str(&done.answer).map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(sent))
}

/// `PUT /api/v1/practices/{id}/free-referrals`: an admin opts the practice in or out.
pub async fn set_intake(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<PracticeId>,
    body: web::Json<FreeIntake>,
) -> ApiResult<HttpResponse> {
    let p = admin_of(&state, *id, &who).await?;
    state.store.set_accepts_free(p.id, body.accepts).await?;
    tracing::info!(practice = %p.id, accepts = body.accepts, "free referral intake set");
    Ok(HttpResponse::Ok().json(body.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..200 {
            let c = new_code().unwrap();
            assert_eq!(c.len(), CODE_DIGITS);
            assert!(c.bytes().all(|b| b.is_ascii_digit()), "{c}");
        }
    }

    #[test]
    fn block_values_are_normalised() {
        assert_eq!(normalise_block(BlockKind::Email, "  Spam@Example.ORG ").unwrap(), "spam@example.org");
        assert_eq!(normalise_block(BlockKind::Address, "198.51.100.7").unwrap(), "198.51.100.7");
        assert_eq!(normalise_block(BlockKind::Address, "2001:db8:1:2:aaaa::9").unwrap(), "2001:db8:1:2::/64");
        assert_eq!(normalise_block(BlockKind::Address, "2001:db8:1:2::/64").unwrap(), "2001:db8:1:2::/64");
        assert_eq!(normalise_block(BlockKind::Address, "::ffff:198.51.100.7").unwrap(), "198.51.100.7");
        assert_eq!(normalise_block(BlockKind::Address, "not an address").unwrap_err().code, ErrorCode::ValidationFailed);
        assert_eq!(normalise_block(BlockKind::Email, "no-at-sign").unwrap_err().code, ErrorCode::ValidationFailed);
    }

    #[test]
    fn draft_tokens_come_from_the_draft_scheme_then_the_cookie() {
        use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
        let mut h = HeaderMap::new();
        assert_eq!(draft_token(&h), None);
        h.insert(HeaderName::from_static("cookie"), HeaderValue::from_static("a=b; handoff_draft=from-cookie"));
        assert_eq!(draft_token(&h).as_deref(), Some("from-cookie"));
        h.insert(HeaderName::from_static("authorization"), HeaderValue::from_static("Bearer session"));
        assert_eq!(draft_token(&h).as_deref(), Some("from-cookie"), "a session token is not a draft token");
        h.insert(HeaderName::from_static("authorization"), HeaderValue::from_static("Draft from-header"));
        assert_eq!(draft_token(&h).as_deref(), Some("from-header"));
    }

    #[test]
    fn the_cookie_covers_the_free_routes_only() {
        use handoff_protocol::api::{GetFreeDirectory, PutFreeBlob, SendFreeReferral, SetFreeIntake, VerifyFreeCode};
        let under = |p: &str| p.strip_prefix(cookie_path()).is_some_and(|rest| rest.starts_with('/'));
        assert!(cookie_path().len() > API_PREFIX.len());
        for p in [StartFreeDraft::PATH, VerifyFreeCode::PATH, GetFreeDirectory::PATH, PutFreeBlob::PATH, SendFreeReferral::PATH] {
            assert!(under(p), "{p}");
        }
        assert!(!under(SetFreeIntake::PATH), "practice routes use the session, not the draft");
    }
}
