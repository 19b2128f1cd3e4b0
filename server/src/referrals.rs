//! HTTP routes around referrals: encrypted attachment blobs, listings for
//! reloads, notification preferences and users' public keys. Referral changes
//! themselves go over the WebSocket (`live.rs`).

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;

use handoff_domain::access::Action;
use handoff_protocol::audit::AuditAction;
use handoff_protocol::v1::{BlobStored, NotificationSettings, PartyKey, ReferralKeys, ReferralList, UserKeys};
use handoff_protocol::v1::{INBOX_PAGE_DEFAULT, INBOX_PAGE_MAX, InboxPage, InboxQuery, InboxRow, inbox_cursor, parse_inbox_cursor};
use handoff_protocol::ws::{BlobId, MAX_BLOB, Referral, ReferralId};
use handoff_protocol::{B64, ErrorCode, PracticeId, UserId};

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::practices::membership;
use crate::state::{AppState, now};

/// Bytes of an upload the server holds in memory before writing them to the
/// store as one chunk (in its own short store call).
pub const BLOB_CHUNK: usize = 256 * 1024;

/// `POST /api/v1/blobs/{id}`: stores an encrypted attachment (raw bytes, at most 8 MiB).
///
/// The body is written to the store as it arrives, [`BLOB_CHUNK`] bytes per
/// store call, so an upload holds neither the store nor more than one chunk
/// of memory while its client sends. Every chunk counts towards the
/// uploader's quota (`blob_quota_bytes`) at once: past it, `quota_exceeded`
/// (507) and nothing of the upload is kept. The blob can be read and attached
/// only once the whole body has arrived.
pub async fn put_blob(state: web::Data<AppState>, who: Authed, id: web::Path<BlobId>, body: web::Payload) -> ApiResult<HttpResponse> {
    let (id, owner) = (*id, who.user.id);
    state.store.begin_blob(id, owner, now()).await?;
    upload_begun(&state, id, owner, state.config.blob_quota_bytes, body).await
}

/// Streams the body into the upload begun for `id` by `owner` (an account,
/// or a free referral's draft: `free.rs`), within `quota` bytes of all the
/// owner's blobs, and answers `201` with the blob; an upload that fails
/// midway is discarded.
pub(crate) async fn upload_begun(state: &AppState, id: BlobId, owner: UserId, quota: u64, body: web::Payload) -> ApiResult<HttpResponse> {
    match stream_blob(state, id, owner, quota, body).await {
        Ok(size) => Ok(HttpResponse::Created().json(BlobStored { id, size })),
        Err(e) => {
            // The upload failed midway: forget what arrived of it.
            if let Err(cleanup) = state.store.discard_upload(id, owner).await {
                tracing::warn!(error = %cleanup, "could not discard a failed upload; the sweep will");
            }
            Err(e)
        }
    }
}

/// Writes the body chunk by chunk to the upload begun for `id`; its size.
async fn stream_blob(state: &AppState, id: BlobId, owner: UserId, quota: u64, mut body: web::Payload) -> ApiResult<u64> {
    let mut chunk = Vec::new();
    let mut size = 0usize;
    while let Some(part) = body.next().await {
        let part = part.map_err(|e| ApiError::new(ErrorCode::MalformedJson, format!("could not read the body: {e}")))?;
        size += part.len();
        if size > MAX_BLOB {
            return Err(ApiError::new(ErrorCode::PayloadTooLarge, format!("an attachment is at most {MAX_BLOB} bytes")));
        }
        chunk.extend_from_slice(&part);
        while chunk.len() >= BLOB_CHUNK {
            let rest = chunk.split_off(BLOB_CHUNK);
            state.store.append_blob_chunk(id, owner, std::mem::replace(&mut chunk, rest), quota).await?;
        }
    }
    if size == 0 {
        return Err(ApiError::invalid("an attachment blob cannot be empty"));
    }
    if !chunk.is_empty() {
        state.store.append_blob_chunk(id, owner, chunk, quota).await?;
    }
    Ok(state.store.finish_blob(id, owner).await?)
}

/// The sweep of unattached blobs: removes every blob (and abandoned upload)
/// that no referral took within `retention` (config `blob_unattached_secs`,
/// a day by default) before `now`; returns how many. The server's periodic
/// sweep calls it, e.g.
/// `purge_unattached_blobs(&*state.store, Duration::from_secs(state.config.blob_unattached_secs), now())`.
pub async fn purge_unattached_blobs(
    store: &dyn handoff_store::Store,
    retention: std::time::Duration,
    now: handoff_protocol::UnixMillis,
) -> Result<u64, handoff_store::ReferralError> {
    let retention = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    store.purge_unattached_blobs(now.saturating_sub(retention)).await
}

async fn may_read_referral(state: &AppState, who: &Authed, r: ReferralId) -> ApiResult<handoff_store::ReferralRecord> {
    let rec = state.store.referral(r).await?.ok_or_else(|| ApiError::not_found("referral"))?;
    let access = handoff_actors::access::referral_access(&*state.store, &state.config.clock, who.user.id, &rec).await?;
    match access {
        Some(a) if a.permits(Action::Read).is_ok() => Ok(rec),
        _ => Err(handoff_actors::access::refusal(
            &*state.store,
            &state.config.clock,
            who.user.id,
            handoff_actors::access::parties(&rec),
            "referral",
        )
        .await),
    }
}

/// `GET /api/v1/blobs/{id}`: the ciphertext, for the uploader or members of
/// either practice of the referral it is attached to.
pub async fn get_blob(req: HttpRequest, state: web::Data<AppState>, who: Authed, id: web::Path<BlobId>) -> ApiResult<HttpResponse> {
    let meta = state.store.blob_meta(*id).await?.ok_or_else(|| ApiError::not_found("blob"))?;
    match meta.referral {
        // A member held back by a party's two-factor requirement is told to enroll, as for the referral itself.
        Some(r) => match may_read_referral(&state, &who, r).await {
            Ok(rec) => crate::audit::record_served(&state, &req, AuditAction::BlobServed, who.user.id, &rec, id.to_string()).await?,
            Err(e) if e.code == ErrorCode::TwoFactorRequired => return Err(e),
            Err(_) => return Err(ApiError::not_found("blob")),
        },
        // An upload not yet attached, fetched back by its uploader: no referral is served.
        None if meta.owner == who.user.id => {}
        None => return Err(ApiError::not_found("blob")),
    }
    // Chunk by chunk, each its own store call, so a download holds the store no longer than an upload does.
    let store = state.store.clone();
    let (id, size) = (*id, meta.size);
    let chunks = futures_util::stream::try_unfold(0u32, move |i| {
        let store = store.clone();
        async move {
            match store.blob_chunk(id, i).await {
                Ok(Some(bytes)) => Ok(Some((web::Bytes::from(bytes), i + 1))),
                Ok(None) => Ok(None),
                Err(e) => Err(ApiError::from(e)),
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header(("Cache-Control", "private, no-store"))
        .body(actix_web::body::SizedStream::new(size, chunks)))
}

fn parse_referral(body: &str) -> ApiResult<Referral> {
    serde_json::from_str(body).map_err(ApiError::internal)
}

/// `GET /api/v1/referrals/{id}`
pub async fn get_referral(req: HttpRequest, state: web::Data<AppState>, who: Authed, id: web::Path<ReferralId>) -> ApiResult<HttpResponse> {
    let rec = may_read_referral(&state, &who, *id).await?;
    crate::audit::record_served(&state, &req, AuditAction::ReferralServed, who.user.id, &rec, rec.id.to_string()).await?;
    Ok(HttpResponse::Ok().json(parse_referral(&rec.body)?))
}

/// `GET /api/v1/referrals/{id}/keys`: the current public key of each of the
/// referral's practices that still exists, for anyone who may read it.
pub async fn party_keys(state: web::Data<AppState>, who: Authed, id: web::Path<ReferralId>) -> ApiResult<HttpResponse> {
    let rec = may_read_referral(&state, &who, *id).await?;
    let r = parse_referral(&rec.body)?;
    let mut practices = Vec::with_capacity(2);
    for p in r.from_practice().into_iter().chain([r.to_practice]) {
        if let Some(p) = state.store.practice(p).await? {
            practices.push(PartyKey { practice: p.id, public_key: p.public_key });
        }
    }
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(ReferralKeys { practices }))
}

/// `GET /api/v1/practices/{id}/referrals`: sent and received, newest first (500 at most).
pub async fn list(state: web::Data<AppState>, who: Authed, id: web::Path<PracticeId>) -> ApiResult<HttpResponse> {
    let (p, _) = membership(&state, *id, &who).await?;
    let referrals = state.store.referrals_of(p.id, 500).await?.iter().map(|r| parse_referral(&r.body)).collect::<ApiResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().json(ReferralList { referrals }))
}

/// `GET /api/v1/practices/{id}/inbox?before=&limit=`: one page of the
/// practice's referrals (sent and received), newest first, as stored: current
/// metadata and ciphertext, never plaintext. The page and the practice
/// stream's head are read in one store transaction, so a client that
/// subscribes from `head_seq` misses nothing and sees nothing twice. Any
/// member who may read the practice ([`Right::Read`](handoff_domain::rights::Right::Read)).
pub async fn inbox(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<PracticeId>,
    q: web::Query<InboxQuery>,
) -> ApiResult<HttpResponse> {
    let (p, _) = membership(&state, *id, &who).await?;
    let limit = q.limit.unwrap_or(INBOX_PAGE_DEFAULT);
    if limit == 0 || limit > INBOX_PAGE_MAX {
        return Err(ApiError::invalid(format!("limit must be between 1 and {INBOX_PAGE_MAX}")));
    }
    let before = match q.before.as_deref() {
        None => None,
        Some(c) => Some(parse_inbox_cursor(c).ok_or_else(|| ApiError::invalid("before is not a cursor this server gave"))?),
    };
    let slice = state.store.inbox_page(p.id, who.user.id, before, limit).await?;
    let next_before = match slice.rows.last() {
        Some(last) if slice.rows.len() == limit as usize => Some(inbox_cursor(last.referral.created_at, last.referral.id)),
        _ => None,
    };
    let rows = slice
        .rows
        .iter()
        .map(|r| Ok(InboxRow { referral: parse_referral(&r.referral.body)?, seq: r.seq, foreign: r.foreign }))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(InboxPage {
        practice: p.id,
        rows,
        head_seq: slice.head,
        next_before,
    }))
}

/// `PUT /api/v1/practices/{id}/notifications`: opt in or out of status emails.
pub async fn set_notifications(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<PracticeId>,
    body: web::Json<NotificationSettings>,
) -> ApiResult<HttpResponse> {
    let (p, _) = crate::practices::require(&state, *id, &who, handoff_domain::rights::Right::ManageSelf).await?;
    state.store.set_notify_email(p.id, who.user.id, body.email_on_status).await?;
    Ok(HttpResponse::Ok().json(body.into_inner()))
}

/// `GET /api/v1/users/{id}/keys`: public keys, to verify signatures and seal grants.
pub async fn user_keys(state: web::Data<AppState>, _who: Authed, id: web::Path<UserId>) -> ApiResult<HttpResponse> {
    user_keys_of(&state, *id).await
}

/// A user's public keys, as `GET /users/{id}/keys` answers them.
pub(crate) async fn user_keys_of(state: &AppState, id: UserId) -> ApiResult<HttpResponse> {
    let u = state.store.user_by_id(id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(HttpResponse::Ok().json(UserKeys {
        user_id: u.id,
        display_name: u.display_name,
        sign_pub: B64(u.sign_pub),
        hpke_pub: B64(u.hpke_pub),
    }))
}
