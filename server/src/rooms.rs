//! Waiting rooms over HTTP (issue 15): members create, list, rename, rotate
//! and delete their practice's rooms; a patient holding a room's link reads
//! what the check-in asks and checks in, without an account.
//!
//! Who may: every member route asks [`practices::require`] with
//! [`Right::Post`], which admins, members and delegates all hold. Running a
//! waiting room is front-desk work: in the seed's clinics the staff member
//! who hosts the session is chosen per appointment and front-desk staff send
//! the links, so a delegate (acting for a clinician) hosts and manages rooms
//! as a member does. Rooms hold no patient data, only sealed bytes.
//!
//! The patient link is `/room/<link>#<secret>`: the server makes `link` (128
//! random bits) and never sees the secret, which the browser keeps in the
//! fragment. A check-in is counted against the per-address limit (limiter
//! scope 13) before any work, and refused with `room_full` once the room
//! holds `room_max_waiting` live guests. Its guest token (256 random bits) is
//! answered once; only its SHA-256 is stored, with a 12-hour expiry. The
//! token opens the guest's socket (`/ws?guest=`) and nothing else: it is no
//! session, and the session extractor never looks it up.

use actix_web::{HttpRequest, HttpResponse, web};

use handoff_domain::rights::Right;
use handoff_protocol::audit::AuditAction;
use handoff_protocol::v1::{
    CheckIn, CheckedIn, MAX_ROOM_NAME_LEN, MAX_ROOM_SEALED, NewRoom, Room, RoomInfo, RoomList, RoomSettings, RoomUpdate, RotateRoom,
    WAIT_ALERT_MINUTES,
};
use handoff_protocol::ws::MAX_CHECK_IN;
use handoff_protocol::{B64, ErrorCode, GuestId, PracticeId, RoomId};
use handoff_store::{GuestRecord, RoomError, RoomRecord};

use crate::audit::Event;
use crate::auth::{Authed, client_ip, limited};
use crate::error::{ApiError, ApiResult};
use crate::practices::require;
use crate::state::{AppState, now, random_bytes, random_token, sha256};

/// How long a guest token works: 12 hours.
pub const GUEST_TOKEN_TTL_MS: i64 = 12 * 3600 * 1000;

fn view(r: RoomRecord) -> Room {
    Room {
        id: r.id,
        practice: r.practice,
        name: r.name,
        link: r.link,
        sealed_secret: B64(r.sealed_secret),
        epoch: r.epoch,
        settings: r.settings,
        created_at: r.created_at,
    }
}

/// A new patient link: 128 random bits, unpadded base64url.
fn new_link() -> ApiResult<String> {
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(16)?))
}

fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > MAX_ROOM_NAME_LEN {
        return Err(ApiError::invalid(format!("name: 1 to {MAX_ROOM_NAME_LEN} characters")));
    }
    Ok(name.to_string())
}

fn check_sealed(what: &str, b: &B64) -> ApiResult<()> {
    if b.0.is_empty() || b.0.len() > MAX_ROOM_SEALED {
        return Err(ApiError::invalid(format!("{what}: 1 to {MAX_ROOM_SEALED} sealed bytes")));
    }
    Ok(())
}

/// A key epoch the store can hold (SQLite integers are signed 64-bit); the
/// sealed secret names the practice epoch whose key opens it.
fn check_epoch(epoch: u64) -> ApiResult<()> {
    if i64::try_from(epoch).is_err() {
        return Err(ApiError::invalid(format!("epoch: at most {}", i64::MAX)));
    }
    Ok(())
}

fn check_settings(s: &RoomSettings) -> ApiResult<()> {
    if !WAIT_ALERT_MINUTES.contains(&s.wait_alert_minutes) {
        return Err(ApiError::invalid(format!(
            "wait_alert_minutes: {} to {} minutes",
            WAIT_ALERT_MINUTES.start(),
            WAIT_ALERT_MINUTES.end()
        )));
    }
    if let Some(link) = &s.sealed_external_link {
        check_sealed("sealed_external_link", link)?;
    }
    Ok(())
}

/// The room, if it is `practice`'s (else `not_found`, as for no room).
async fn room_of(state: &AppState, practice: PracticeId, room: RoomId) -> ApiResult<RoomRecord> {
    match state.store.room(room).await? {
        Some(r) if r.practice == practice => Ok(r),
        _ => Err(ApiError::not_found("room")),
    }
}

async fn audit(state: &AppState, req: &HttpRequest, who: &Authed, action: AuditAction, r: &RoomRecord) -> ApiResult<()> {
    crate::audit::record(state, Some(req), Event::new(action, Some(who.user.id), Some(r.practice)).target(r.id)).await
}

/// `POST /api/v1/practices/{id}/rooms`
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<PracticeId>,
    body: web::Json<NewRoom>,
) -> ApiResult<HttpResponse> {
    let (p, _) = require(&state, *id, &who, Right::Post).await?;
    let NewRoom { id: room, name, sealed_secret, epoch, settings } = body.into_inner();
    let name = check_name(&name)?;
    check_sealed("sealed_secret", &sealed_secret)?;
    check_epoch(epoch)?;
    check_settings(&settings)?;
    let rec = RoomRecord {
        id: room,
        practice: p.id,
        name,
        link: new_link()?,
        sealed_secret: sealed_secret.0,
        epoch,
        settings,
        created_at: now(),
    };
    match state.store.create_room(rec.clone()).await {
        Ok(()) => {}
        Err(RoomError::RoomExists) => return Err(ApiError::new(ErrorCode::Conflict, "a room with this id exists; generate a new id")),
        Err(e) => return Err(e.into()),
    }
    audit(&state, &req, &who, AuditAction::RoomCreated, &rec).await?;
    Ok(HttpResponse::Created().json(view(rec)))
}

/// `GET /api/v1/practices/{id}/rooms`
pub async fn list(state: web::Data<AppState>, who: Authed, id: web::Path<PracticeId>) -> ApiResult<HttpResponse> {
    let (p, _) = require(&state, *id, &who, Right::Post).await?;
    let rooms = state.store.rooms_of(p.id).await?.into_iter().map(view).collect();
    Ok(HttpResponse::Ok().json(RoomList { rooms }))
}

/// `PUT /api/v1/practices/{id}/rooms/{room}`
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    path: web::Path<(PracticeId, RoomId)>,
    body: web::Json<RoomUpdate>,
) -> ApiResult<HttpResponse> {
    let (pid, room) = path.into_inner();
    require(&state, pid, &who, Right::Post).await?;
    room_of(&state, pid, room).await?;
    let RoomUpdate { name, settings } = body.into_inner();
    let name = name.as_deref().map(check_name).transpose()?;
    if let Some(s) = &settings {
        check_settings(s)?;
    }
    let renamed = name.is_some();
    let rec = state.store.update_room(room, name, settings).await?;
    if renamed {
        audit(&state, &req, &who, AuditAction::RoomRenamed, &rec).await?;
    }
    Ok(HttpResponse::Ok().json(view(rec)))
}

/// `POST /api/v1/practices/{id}/rooms/{room}/rotate`: a new link and secret; the old link stops at once.
pub async fn rotate(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    path: web::Path<(PracticeId, RoomId)>,
    body: web::Json<RotateRoom>,
) -> ApiResult<HttpResponse> {
    let (pid, room) = path.into_inner();
    require(&state, pid, &who, Right::Post).await?;
    room_of(&state, pid, room).await?;
    let RotateRoom { sealed_secret, epoch } = body.into_inner();
    check_sealed("sealed_secret", &sealed_secret)?;
    check_epoch(epoch)?;
    let rec = state.store.rotate_room(room, new_link()?, sealed_secret.0, epoch).await?;
    audit(&state, &req, &who, AuditAction::RoomRotated, &rec).await?;
    Ok(HttpResponse::Ok().json(view(rec)))
}

/// `DELETE /api/v1/practices/{id}/rooms/{room}`: its live sockets are told it ended.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    path: web::Path<(PracticeId, RoomId)>,
) -> ApiResult<HttpResponse> {
    let (pid, room) = path.into_inner();
    require(&state, pid, &who, Right::Post).await?;
    let rec = room_of(&state, pid, room).await?;
    state.store.delete_room(room).await?;
    audit(&state, &req, &who, AuditAction::RoomDeleted, &rec).await?;
    state.hub.end_room(room).await;
    Ok(HttpResponse::NoContent().finish())
}

/// The room whose current link is `link`, or `not_found` (unknown, or rotated away).
async fn by_link(state: &AppState, link: &str) -> ApiResult<RoomRecord> {
    state.store.room_by_link(link).await?.ok_or_else(|| ApiError::not_found("room"))
}

/// `GET /api/v1/rooms/{link}`: what the patient page needs (no session).
pub async fn info(state: web::Data<AppState>, link: web::Path<String>) -> ApiResult<HttpResponse> {
    let r = by_link(&state, &link).await?;
    let practice_name = state.store.practice(r.practice).await?.map(|p| p.name).unwrap_or_default();
    Ok(HttpResponse::Ok().json(RoomInfo {
        room: r.id,
        name: r.name,
        practice_name,
        ask_dob: r.settings.ask_dob,
        ask_reason: r.settings.ask_reason,
    }))
}

/// `POST /api/v1/rooms/{link}/check-in`: counted per address first, then
/// capped per room; answers the guest token once.
pub async fn check_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    link: web::Path<String>,
    body: web::Json<CheckIn>,
) -> ApiResult<HttpResponse> {
    state.limiter.count_room_check_in(client_ip(&req, &state)).await.map_err(limited)?;
    let sealed = &body.sealed;
    if sealed.0.len() > MAX_CHECK_IN {
        return Err(ApiError::new(ErrorCode::PayloadTooLarge, format!("a sealed check-in is at most {MAX_CHECK_IN} bytes")));
    }
    if sealed.0.is_empty() {
        return Err(ApiError::invalid("sealed: the sealed check-in is empty"));
    }
    let r = by_link(&state, &link).await?;
    let at = now();
    if state.store.live_guests(r.id, at).await? >= state.config.room_max_waiting {
        return Err(ApiError::new(ErrorCode::RoomFull, "the waiting room is full; please try again in a little while"));
    }
    let token = random_token()?;
    let hash: [u8; 32] = sha256(token.as_bytes()).try_into().map_err(|_| ApiError::internal("sha-256 is 32 bytes"))?;
    let guest = GuestId(uuid::Uuid::new_v4());
    state
        .store
        .add_guest(GuestRecord { id: guest, room: r.id, checked_in_at: at, removed: false, expires_at: at + GUEST_TOKEN_TTL_MS }, hash)
        .await?;
    Ok(HttpResponse::Created().json(CheckedIn { guest, token, checked_in_at: at }))
}
