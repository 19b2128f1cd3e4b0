//! HTTP routes around referrals: encrypted attachment blobs, listings for
//! reloads, notification preferences and users' public keys. Referral changes
//! themselves go over the WebSocket (`live.rs`).

use actix_web::{HttpResponse, web};
use futures_util::StreamExt as _;

use handoff_domain::access::Action;
use handoff_protocol::v1::{BlobStored, NotificationSettings, PartyKey, ReferralKeys, ReferralList, UserKeys};
use handoff_protocol::ws::{BlobId, MAX_BLOB, Referral, ReferralId};
use handoff_protocol::{B64, ErrorCode, PracticeId, UserId};

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::practices::membership;
use crate::state::{AppState, now};

/// `POST /api/v1/blobs/{id}`: stores an encrypted attachment (raw bytes, at most 8 MiB).
pub async fn put_blob(state: web::Data<AppState>, who: Authed, id: web::Path<BlobId>, mut body: web::Payload) -> ApiResult<HttpResponse> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::new(ErrorCode::MalformedJson, format!("could not read the body: {e}")))?;
        if bytes.len() + chunk.len() > MAX_BLOB {
            return Err(ApiError::new(ErrorCode::PayloadTooLarge, format!("an attachment is at most {MAX_BLOB} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.is_empty() {
        return Err(ApiError::invalid("an attachment blob cannot be empty"));
    }
    let size = bytes.len() as u64;
    state.store.put_blob(*id, who.user.id, bytes, now()).await?;
    Ok(HttpResponse::Created().json(BlobStored { id: *id, size }))
}

async fn may_read_referral(state: &AppState, who: &Authed, r: ReferralId) -> ApiResult<handoff_store::ReferralRecord> {
    let rec = state.store.referral(r).await?.ok_or_else(|| ApiError::not_found("referral"))?;
    let access = handoff_actors::access::referral_access(&*state.store, who.user.id, &rec).await?;
    match access {
        Some(a) if a.permits(Action::Read).is_ok() => Ok(rec),
        _ => Err(ApiError::not_found("referral")),
    }
}

/// `GET /api/v1/blobs/{id}`: the ciphertext, for the uploader or members of
/// either practice of the referral it is attached to.
pub async fn get_blob(state: web::Data<AppState>, who: Authed, id: web::Path<BlobId>) -> ApiResult<HttpResponse> {
    let meta = state.store.blob_meta(*id).await?.ok_or_else(|| ApiError::not_found("blob"))?;
    let allowed = match meta.referral {
        Some(r) => may_read_referral(&state, &who, r).await.is_ok(),
        None => meta.owner == who.user.id,
    };
    if !allowed {
        return Err(ApiError::not_found("blob"));
    }
    let bytes = state.store.blob_bytes(*id).await?.ok_or_else(|| ApiError::not_found("blob"))?;
    Ok(HttpResponse::Ok().content_type("application/octet-stream").insert_header(("Cache-Control", "private, no-store")).body(bytes))
}

fn parse_referral(body: &str) -> ApiResult<Referral> {
    serde_json::from_str(body).map_err(ApiError::internal)
}

/// `GET /api/v1/referrals/{id}`
pub async fn get_referral(state: web::Data<AppState>, who: Authed, id: web::Path<ReferralId>) -> ApiResult<HttpResponse> {
    let rec = may_read_referral(&state, &who, *id).await?;
    Ok(HttpResponse::Ok().json(parse_referral(&rec.body)?))
}

/// `GET /api/v1/referrals/{id}/keys`: the current public key of each of the
/// referral's practices that still exists, for anyone who may read it.
pub async fn party_keys(state: web::Data<AppState>, who: Authed, id: web::Path<ReferralId>) -> ApiResult<HttpResponse> {
    let rec = may_read_referral(&state, &who, *id).await?;
    let r = parse_referral(&rec.body)?;
    let mut practices = Vec::with_capacity(2);
    for p in [r.from_practice, r.to_practice] {
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

/// `PUT /api/v1/practices/{id}/notifications`: opt in or out of status emails.
pub async fn set_notifications(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<PracticeId>,
    body: web::Json<NotificationSettings>,
) -> ApiResult<HttpResponse> {
    let (p, _) = membership(&state, *id, &who).await?;
    state.store.set_notify_email(p.id, who.user.id, body.email_on_status).await?;
    Ok(HttpResponse::Ok().json(body.into_inner()))
}

/// `GET /api/v1/users/{id}/keys`: public keys, to verify signatures and seal grants.
pub async fn user_keys(state: web::Data<AppState>, _who: Authed, id: web::Path<UserId>) -> ApiResult<HttpResponse> {
    let u = state.store.user_by_id(*id).await?.ok_or_else(|| ApiError::not_found("user"))?;
    Ok(HttpResponse::Ok().json(UserKeys {
        user_id: u.id,
        display_name: u.display_name,
        sign_pub: B64(u.sign_pub),
        hpke_pub: B64(u.hpke_pub),
    }))
}
