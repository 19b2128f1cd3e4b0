//! Practices, members, invites and the epoch-0 practice key (later epochs
//! come from the practice's MLS group: `mls.rs`).
//!
//! Access rule: a practice, its members and its keys are visible only to its
//! members. To anyone else every practice-scoped route answers `not_found`,
//! worded exactly as for an id that does not exist.

use actix_web::{HttpRequest, HttpResponse, web};

use handoff_domain::rights::{Right, may};
use handoff_domain::{eligibility, routing};
use handoff_protocol::audit::AuditAction;
use handoff_protocol::v1::*;
use handoff_protocol::{B64, CategoryRequestId, ErrorCode, PracticeId, UnixMillis, UserId};
use handoff_store::{CategoryRequestRecord, GrantRecord, InviteQuota, InviteRecord, PracticeError, PracticeRecord};

use crate::audit::Event;
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, now, random_bytes, random_token, sha256};
use crate::validate;

fn view(p: &PracticeRecord, role: Role) -> Practice {
    Practice {
        id: p.id,
        name: p.name.clone(),
        kind: p.kind,
        specialty: p.specialty.clone(),
        region: p.region.clone(),
        intake: p.intake.clone(),
        verified: p.verified,
        paused: p.paused,
        can_receive: can_receive(p),
        my_role: role,
        public_key: p.public_key.clone(),
        created_at: p.created_at,
        accepts_free_referrals: p.accepts_free,
    }
}

/// Verified, unpaused specialists receive referrals; nobody else does.
pub fn can_receive(p: &PracticeRecord) -> bool {
    eligibility::receives_referrals(p.kind, p.verified, p.paused)
}

/// The practice and the caller's role, or `not_found` if the caller is not a
/// member in force (outside their dates, or a delegate whose sponsor is no
/// longer one), or `two_factor_required` if the practice requires two-factor
/// sign-in and the caller has it off ([`handoff_actors::access::standing`]).
/// Every practice route asks this through [`require`] with its right.
pub async fn membership(state: &AppState, id: PracticeId, who: &Authed) -> ApiResult<(PracticeRecord, Role)> {
    require(state, id, who, Right::Read).await
}

/// As [`membership`], and `forbidden` (with the right's reason) unless the
/// caller's role holds `right` ([`handoff_domain::rights::may`], the one table).
pub async fn require(state: &AppState, id: PracticeId, who: &Authed, right: Right) -> ApiResult<(PracticeRecord, Role)> {
    let role = handoff_actors::access::require(&*state.store, &state.config.clock, id, who.user.id, right).await?;
    let p = state.store.practice(id).await?.ok_or_else(|| ApiError::not_found("practice"))?;
    Ok((p, role))
}

/// The practice, if the caller may change its settings ([`Right::ChangeSettings`]).
pub(crate) async fn admin_of(state: &AppState, id: PracticeId, who: &Authed) -> ApiResult<PracticeRecord> {
    require(state, id, who, Right::ChangeSettings).await.map(|(p, _)| p)
}

async fn check_intake(state: &AppState, specialty: &str, region: &str, intake: &[Intake]) -> ApiResult<()> {
    let t = state.store.taxonomy().await?;
    routing::check_intake(&t, specialty, region, intake).map_err(|e| ApiError::invalid(e.to_string()))
}

/// The one answer to a creation whose id is taken, whoever holds it and
/// whether the practice still exists, so it tells nothing about the id.
fn id_conflict() -> ApiError {
    ApiError::new(ErrorCode::Conflict, "a practice with this id exists; generate a new id")
}

/// `POST /api/v1/practices`
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    body: web::Json<CreatePracticeRequest>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let name = validate::name("name", &b.name)?;
    match b.kind {
        PracticeKind::Specialist => {
            let (Some(spec), Some(region)) = (&b.specialty, &b.region) else {
                return Err(ApiError::invalid("a specialist practice needs a specialty and a region"));
            };
            check_intake(&state, spec, region, &b.intake).await?;
        }
        PracticeKind::Referring => {
            if b.specialty.is_some() || !b.intake.is_empty() {
                return Err(ApiError::invalid("a referring practice has no specialty or intake"));
            }
            if let Some(r) = &b.region {
                let t = state.store.taxonomy().await?;
                if !t.regions.iter().any(|x| &x.slug == r) {
                    return Err(ApiError::invalid("region: not a known region"));
                }
            }
        }
    }
    let pk = &b.public_key;
    if pk.epoch != 0 || b.creator_grant.epoch != 0 {
        return Err(ApiError::invalid("a new practice starts at key epoch 0"));
    }
    if pk.signer != who.user.id || b.creator_grant.granted_by != who.user.id {
        return Err(ApiError::invalid("the creator signs the public key and grants themself the key"));
    }
    validate::bytes_exact("public_key.hpke_pub", &pk.hpke_pub, 32)?;
    validate::bytes_exact("public_key.signature", &pk.signature, 64)?;
    validate::bytes_range("creator_grant.sealed", &b.creator_grant.sealed, 48, 512)?;

    let t = now();
    let rec = PracticeRecord {
        id: b.id,
        name,
        kind: b.kind,
        specialty: b.specialty.clone(),
        region: b.region.clone(),
        intake: b.intake.clone(),
        verified: false,
        paused: false,
        key_epoch: 0,
        public_key: b.public_key.clone(),
        created_by: who.user.id,
        created_at: t,
        accepts_free: true,
    };
    let grant = GrantRecord {
        practice_id: b.id,
        user_id: who.user.id,
        epoch: 0,
        sealed: b.creator_grant.sealed.0.clone(),
        granted_by: who.user.id,
        created_at: t,
    };
    match state.store.create_practice(rec.clone(), grant).await {
        Ok(()) => {
            crate::audit::record(
                &state,
                Some(&req),
                Event::new(AuditAction::PracticeCreated, Some(who.user.id), Some(rec.id)).target(rec.id),
            )
            .await?;
            tracing::info!(practice = %rec.id, kind = ?rec.kind, "practice created");
            Ok(HttpResponse::Created().json(view(&rec, Role::Admin)))
        }
        Err(PracticeError::PracticeExists) => {
            // A retry of the same creation by its creator, still a member, is
            // answered with the practice. Anything else (a foreign id, a creator
            // who was removed since) gets the one conflict answer.
            let existing = state.store.practice(b.id).await?;
            let role = state.store.role(b.id, who.user.id).await?;
            match (existing, role) {
                (Some(existing), Some(role))
                    if existing.created_by == who.user.id && existing.name == rec.name && existing.kind == rec.kind =>
                {
                    Ok(HttpResponse::Ok().json(view(&existing, role)))
                }
                _ => Err(id_conflict()),
            }
        }
        // A deleted practice's id: answered exactly as a foreign one.
        Err(PracticeError::PracticeIdRetired) => Err(id_conflict()),
        Err(e) => Err(e.into()),
    }
}

/// `GET /api/v1/practices`
pub async fn list(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    let ps = state.store.practices_of(who.user.id).await?;
    Ok(HttpResponse::Ok().json(PracticeList { practices: ps.iter().map(|(p, r)| view(p, *r)).collect() }))
}

/// `GET /api/v1/practices/{id}`
pub async fn get(state: web::Data<AppState>, who: Authed, id: web::Path<PracticeId>) -> ApiResult<HttpResponse> {
    let (p, role) = membership(&state, *id, &who).await?;
    Ok(HttpResponse::Ok().json(view(&p, role)))
}

/// `DELETE /api/v1/practices/{id}`: permanent; the admin types the name to confirm.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<PracticeId>,
    body: web::Json<DeletePracticeRequest>,
) -> ApiResult<HttpResponse> {
    let p = admin_of(&state, *id, &who).await?;
    if body.confirm_name != p.name {
        return Err(ApiError::new(ErrorCode::ConfirmationMismatch, "type the practice's name exactly to delete it"));
    }
    // Its rooms go with it (the store cascades); their live sockets are told the meeting ended.
    let rooms = state.store.rooms_of(p.id).await?;
    state.store.delete_practice(p.id).await?;
    // In the practice's own chain (which outlives it) and in the platform's, where staff still see it.
    for chain in [Some(p.id), None] {
        crate::audit::record(&state, Some(&req), Event::new(AuditAction::PracticeDeleted, Some(who.user.id), chain).target(p.id)).await?;
    }
    state.hub.end_access(p.id).await;
    for room in rooms {
        state.hub.end_room(room.id).await;
    }
    tracing::info!(practice = %p.id, by = %who.user.id, "practice deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/practices/{id}/members`
pub async fn members(state: web::Data<AppState>, who: Authed, id: web::Path<PracticeId>) -> ApiResult<HttpResponse> {
    let (p, role) = membership(&state, *id, &who).await?;
    let mut out = Vec::new();
    // Before the MLS group exists, holding the key means holding the epoch-0
    // grant; after, it means being in the group.
    let roster = if p.key_epoch > 0 { Some(state.store.mls_roster(p.id).await?) } else { None };
    for m in state.store.members(p.id).await? {
        let has_key = match &roster {
            Some(r) => r.contains(&m.user.id),
            None => state.store.grant(p.id, m.user.id, p.key_epoch).await?.is_some(),
        };
        out.push(member_view(m, has_key));
    }
    let pending_invites = if may(role, Right::Invite) {
        state
            .store
            .invites_of(p.id)
            .await?
            .into_iter()
            .filter(|i| i.expires_at > now())
            .map(|i| PendingInvite { email: i.email, role: i.role, expires_at: i.expires_at, starts_at: i.starts_at, ends_at: i.ends_at })
            .collect()
    } else {
        Vec::new()
    };
    Ok(HttpResponse::Ok().json(MemberList { members: out, pending_invites }))
}

/// `DELETE /api/v1/practices/{id}/members/{user}`: an admin removes anyone; a member may leave.
pub async fn remove_member(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    path: web::Path<(PracticeId, UserId)>,
) -> ApiResult<HttpResponse> {
    let (pid, uid) = path.into_inner();
    let right = if uid == who.user.id { Right::ManageSelf } else { Right::RemoveMembers };
    require(&state, pid, &who, right).await?;
    remove_with_delegates(&state, pid, uid).await?;
    crate::audit::record(&state, Some(&req), Event::new(AuditAction::MemberRemoved, Some(who.user.id), Some(pid)).target(uid)).await?;
    tracing::info!(practice = %pid, member = %uid, by = %who.user.id, "member removed");
    Ok(HttpResponse::NoContent().finish())
}

/// Removes a member and every delegate they sponsor in the practice, then
/// ends their access ([`handoff_actors::hub::Hub::end_access`]): the one way
/// a membership ends, for a removal, a leaver and a passed end date alike.
pub(crate) async fn remove_with_delegates(state: &AppState, practice: PracticeId, user: UserId) -> ApiResult<()> {
    let delegates = state.store.delegates_of(practice, user).await?;
    state.store.remove_member(practice, user).await?;
    for d in delegates {
        match state.store.remove_member(practice, d).await {
            Ok(()) | Err(PracticeError::NotMember) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(%practice, delegate = %d, sponsor = %user, "delegate removed with their sponsor");
        crate::audit::record(state, None, Event::new(AuditAction::MembershipEnded, None, Some(practice)).target(d)).await?;
    }
    state.hub.end_access(practice).await;
    Ok(())
}

/// A member as the members list shows them.
fn member_view(m: handoff_store::MemberRecord, has_key: bool) -> Member {
    Member {
        user_id: m.user.id,
        email: m.user.email,
        display_name: m.user.display_name,
        role: m.role,
        sign_pub: B64(m.user.sign_pub),
        hpke_pub: B64(m.user.hpke_pub),
        has_key,
        email_on_status: m.notify_email,
        joined_at: m.joined_at,
        starts_at: m.terms.starts_at,
        ends_at: m.terms.ends_at,
        sponsor: m.terms.sponsor,
    }
}

/// Checks a membership's dates against `now`: none in the past, the end
/// after the start, and both for a delegate. `starts_at` is only checked if
/// `start_changes` (an unchanged start of a member who has started is in the past).
fn check_dates(
    now: UnixMillis,
    role: Role,
    starts_at: Option<UnixMillis>,
    ends_at: Option<UnixMillis>,
    start_changes: bool,
) -> ApiResult<()> {
    let bad = |why: &str| Err(ApiError::new(ErrorCode::InvalidDates, why.to_string()));
    if role == Role::Delegate && (starts_at.is_none() || ends_at.is_none()) {
        return bad("a delegate acts on someone's behalf between a start and an end date: give both");
    }
    if start_changes && starts_at.is_some_and(|s| s < now) {
        return bad("starts_at: the start date is in the past");
    }
    if ends_at.is_some_and(|e| e <= now) {
        return bad("ends_at: the end date is in the past");
    }
    if let (Some(s), Some(e)) = (starts_at, ends_at)
        && e <= s
    {
        return bad("ends_at: the end date must be after the start date");
    }
    Ok(())
}

/// `PUT /api/v1/practices/{id}/members/{user}/dates`: an admin sets or
/// changes a member's end date, and a not-yet-started member's start date.
/// Bad dates are `invalid_dates` (422) and change nothing.
pub async fn set_dates(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    path: web::Path<(PracticeId, UserId)>,
    body: web::Json<MemberDates>,
) -> ApiResult<HttpResponse> {
    let (pid, uid) = path.into_inner();
    let (p, _) = require(&state, pid, &who, Right::RemoveMembers).await?;
    let b = body.into_inner();
    let t = state.config.clock.now();
    let (role, terms) = state.store.terms(pid, uid).await?.ok_or_else(|| ApiError::not_found("member"))?;
    let started = terms.starts_at.is_none_or(|s| s <= t);
    if b.starts_at != terms.starts_at && started {
        return Err(ApiError::new(ErrorCode::InvalidDates, "starts_at: this member has started; only their end date can change"));
    }
    check_dates(t, role, b.starts_at, b.ends_at, b.starts_at != terms.starts_at)?;
    if b.ends_at.is_some() && uid == who.user.id {
        // An end date on oneself would be a way to lock the practice out of its last admin.
        return Err(ApiError::new(ErrorCode::InvalidDates, "ends_at: an admin cannot set their own end date; another admin can"));
    }
    state.store.set_dates(pid, uid, b.starts_at, b.ends_at).await?;
    crate::audit::record(&state, Some(&req), Event::new(AuditAction::MemberDatesSet, Some(who.user.id), Some(pid)).target(uid)).await?;
    tracing::info!(practice = %pid, member = %uid, by = %who.user.id, "member dates set");
    let m = state.store.members(p.id).await?.into_iter().find(|m| m.user.id == uid).ok_or_else(|| ApiError::not_found("member"))?;
    let has_key = if p.key_epoch > 0 {
        state.store.mls_roster(p.id).await?.contains(&uid)
    } else {
        state.store.grant(p.id, uid, p.key_epoch).await?.is_some()
    };
    Ok(HttpResponse::Ok().json(member_view(m, has_key)))
}

/// `POST /api/v1/practices/{id}/invites`: emails a one-time join link.
///
/// Needs a confirmed email address, and is rate-limited: at most
/// `invites_per_user_per_hour` per inviter (every practice together) and
/// `invites_per_practice_per_day` per practice (every inviter together);
/// beyond that `rate_limited` with `Retry-After`.
pub async fn invite(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<PracticeId>,
    body: web::Json<InviteRequest>,
) -> ApiResult<HttpResponse> {
    // A delegate invite makes the inviter its sponsor: any member may sponsor; only admins invite members and admins.
    let right = if body.role == Role::Delegate { Right::SponsorDelegates } else { Right::Invite };
    let (p, _) = require(&state, *id, &who, right).await?;
    check_dates(state.config.clock.now(), body.role, body.starts_at, body.ends_at, true)?;
    // Invite mail carries a name of the inviter's choosing to any address, so
    // only an account whose own address is confirmed may send it.
    if who.user.email_confirmed_at.is_none() {
        return Err(ApiError::new(ErrorCode::EmailUnconfirmed, "confirm your email address before inviting anyone"));
    }
    let email = validate::email(&body.email)?;
    if let Some(u) = state.store.user_by_email(&email).await?
        && state.store.role(p.id, u.id).await?.is_some()
    {
        return Err(ApiError::new(ErrorCode::Conflict, "that person is already a member"));
    }
    let token = random_token()?;
    let t = now();
    let expires_at = t + (state.config.invite_ttl_secs as i64) * 1000;
    let invite = InviteRecord {
        token_hash: sha256(token.as_bytes()),
        practice_id: p.id,
        email: email.clone(),
        role: body.role,
        invited_by: who.user.id,
        created_at: t,
        expires_at,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
    };
    let quota = InviteQuota {
        per_user: state.config.invites_per_user_per_hour,
        user_window_ms: 3_600_000,
        per_practice: state.config.invites_per_practice_per_day,
        practice_window_ms: 86_400_000,
    };
    match state.store.create_invite_within(invite, quota).await {
        Ok(()) => {}
        Err(PracticeError::InviteQuotaExceeded { retry_at }) => {
            let mut e = ApiError::new(ErrorCode::RateLimited, handoff_error::INVITES_LIMITED);
            e.retry_after = Some((retry_at.saturating_sub(t) / 1000).max(1) as u64);
            return Err(e);
        }
        Err(e) => return Err(e.into()),
    }
    let invited = Event::new(AuditAction::MemberInvited, Some(who.user.id), Some(p.id));
    crate::audit::record(&state, Some(&req), invited.target(crate::audit::invite_target(&sha256(token.as_bytes()), body.role))).await?;
    let link = format!("{}/invite/{token}", state.config.public_url());
    let days = state.config.invite_ttl_secs / 86_400;
    let body_text = format!(
        "{inviter} has invited you to join {practice} on Handoff, the secure e-referral service.\n\n\
         Open this link to accept. If you do not have a Handoff account yet, the link lets you create one:\n\n{link}\n\n\
         The link works once and expires in {days} days. If you did not expect this, ignore this email.\n",
        inviter = who.user.display_name,
        practice = p.name,
    );
    state.send_mail(&email, &format!("You are invited to join {} on Handoff", p.name), body_text).await?;
    tracing::info!(practice = %p.id, "invite sent");
    Ok(HttpResponse::Created().json(PendingInvite { email, role: body.role, expires_at, starts_at: body.starts_at, ends_at: body.ends_at }))
}

/// An unexpired invite by its token.
async fn live_invite(state: &AppState, token: &str) -> ApiResult<InviteRecord> {
    state
        .store
        .invite(&sha256(token.as_bytes()))
        .await?
        .filter(|i| i.expires_at > now())
        .ok_or_else(|| ApiError::new(ErrorCode::InviteInvalid, "this invite link is unknown, used or expired; ask for a new one"))
}

/// An invite that can be used now by `email`.
pub async fn usable_invite(state: &AppState, token: &str, email: &str) -> ApiResult<InviteRecord> {
    let inv = live_invite(state, token).await?;
    if inv.email != email {
        return Err(ApiError::new(
            ErrorCode::InviteWrongAccount,
            "this invite was sent to a different email address; sign in with that address",
        ));
    }
    Ok(inv)
}

/// `GET /api/v1/invites/{token}`: what the link is for (no sign-in needed).
pub async fn invite_info(state: web::Data<AppState>, token: web::Path<String>) -> ApiResult<HttpResponse> {
    let inv = live_invite(&state, &token).await?;
    let p = state
        .store
        .practice(inv.practice_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::InviteInvalid, "the practice no longer exists"))?;
    let inviter = state.store.user_by_id(inv.invited_by).await?.map(|u| u.display_name).unwrap_or_default();
    let account_exists = state.store.user_by_email(&inv.email).await?.is_some();
    Ok(HttpResponse::Ok().json(InviteInfo {
        practice_id: p.id,
        practice_name: p.name,
        invited_by: inviter,
        email: inv.email,
        account_exists,
    }))
}

/// `POST /api/v1/invites/{token}/accept`
pub async fn accept_invite(req: HttpRequest, state: web::Data<AppState>, who: Authed, token: web::Path<String>) -> ApiResult<HttpResponse> {
    let inv = usable_invite(&state, &token, &who.user.email).await?;
    match state.store.accept_invite(&inv.token_hash, who.user.id, now()).await {
        Ok(()) => {}
        Err(PracticeError::AlreadyMember) => return Err(ApiError::new(ErrorCode::Conflict, "you are already a member")),
        Err(PracticeError::InviteUsed) => return Err(ApiError::new(ErrorCode::InviteInvalid, "this invite link was just used")),
        Err(e) => return Err(e.into()),
    }
    crate::audit::record(&state, Some(&req), crate::audit::invite_accepted(&inv, who.user.id)).await?;
    // Answered from the invite, not `membership`: a member whose start date is
    // ahead has joined, but reaches the practice only from that date on.
    let p = state
        .store
        .practice(inv.practice_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::InviteInvalid, "the practice no longer exists"))?;
    tracing::info!(practice = %p.id, member = %who.user.id, "invite accepted");
    Ok(HttpResponse::Ok().json(view(&p, inv.role)))
}

/// `GET /api/v1/practices/{id}/key`
pub async fn my_key(state: web::Data<AppState>, who: Authed, id: web::Path<PracticeId>) -> ApiResult<HttpResponse> {
    let (p, _) = membership(&state, *id, &who).await?;
    let grant = state.store.grant(p.id, who.user.id, p.key_epoch).await?.map(|g| KeyGrant {
        epoch: g.epoch,
        sealed: B64(g.sealed),
        granted_by: g.granted_by,
    });
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(MyPracticeKey { public_key: p.public_key, grant }))
}

/// `GET /api/v1/practices/{id}/key-grants/pending`: members still waiting for the key.
/// Once the practice has an MLS group, new members get keys by MLS welcome
/// (see `mls.rs`), so nothing is pending here.
pub async fn pending_grants(state: web::Data<AppState>, who: Authed, id: web::Path<PracticeId>) -> ApiResult<HttpResponse> {
    let (p, _) = membership(&state, *id, &who).await?;
    let mut pending = Vec::new();
    if p.key_epoch > 0 {
        return Ok(HttpResponse::Ok().json(PendingGrants { pending }));
    }
    for m in state.store.members(p.id).await? {
        if state.store.grant(p.id, m.user.id, p.key_epoch).await?.is_none() {
            pending.push(PendingGrant {
                user_id: m.user.id,
                email: m.user.email,
                hpke_pub: B64(m.user.hpke_pub),
                sign_pub: B64(m.user.sign_pub),
                epoch: p.key_epoch,
            });
        }
    }
    Ok(HttpResponse::Ok().json(PendingGrants { pending }))
}

/// `PUT /api/v1/practices/{id}/key-grants/{user}`: a key holder grants the key to a member.
/// First write wins, so one member cannot overwrite another's grant.
pub async fn put_grant(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    path: web::Path<(PracticeId, UserId)>,
    body: web::Json<KeyGrant>,
) -> ApiResult<HttpResponse> {
    let (pid, uid) = path.into_inner();
    let (p, _) = require(&state, pid, &who, Right::ManageKeys).await?;
    let g = body.into_inner();
    if g.granted_by != who.user.id {
        return Err(ApiError::invalid("granted_by must be you"));
    }
    if g.epoch != p.key_epoch {
        return Err(ApiError::new(ErrorCode::Conflict, format!("the practice key is at epoch {}", p.key_epoch)));
    }
    validate::bytes_range("sealed", &g.sealed, 48, 512)?;
    if state.store.grant(pid, who.user.id, p.key_epoch).await?.is_none() {
        return Err(ApiError::forbidden("you do not hold the practice key yet, so you cannot grant it"));
    }
    if state.store.role(pid, uid).await?.is_none() {
        return Err(ApiError::not_found("member"));
    }
    if state.store.grant(pid, uid, p.key_epoch).await?.is_some() {
        return Err(ApiError::new(ErrorCode::Conflict, "that member already holds the key"));
    }
    state
        .store
        .put_grant(GrantRecord {
            practice_id: pid,
            user_id: uid,
            epoch: g.epoch,
            sealed: g.sealed.0,
            granted_by: who.user.id,
            created_at: now(),
        })
        .await?;
    crate::audit::record(&state, Some(&req), Event::new(AuditAction::KeyGranted, Some(who.user.id), Some(pid)).target(uid)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/directory`: practices that can receive referrals now.
pub async fn directory(state: web::Data<AppState>, _who: Authed, q: web::Query<DirectoryQuery>) -> ApiResult<HttpResponse> {
    let ps = state.store.directory(q.specialty.as_deref(), q.region.as_deref()).await?;
    let practices = ps.into_iter().filter(can_receive).map(directory_entry).collect();
    Ok(HttpResponse::Ok().json(Directory { practices }))
}

/// A practice as the directories list it.
pub(crate) fn directory_entry(p: PracticeRecord) -> DirectoryEntry {
    DirectoryEntry {
        id: p.id,
        name: p.name,
        specialty: p.specialty.unwrap_or_default(),
        region: p.region.unwrap_or_default(),
        intake: p.intake,
        public_key: p.public_key,
    }
}

/// `POST /api/v1/practices/{id}/category-requests`: a specialist asks staff for a new category.
pub async fn request_category(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<PracticeId>,
    body: web::Json<CategoryRequestCreate>,
) -> ApiResult<HttpResponse> {
    let (p, _) = require(&state, *id, &who, Right::RequestCategories).await?;
    let Some(specialty) = p.specialty.clone().filter(|_| p.kind == PracticeKind::Specialist) else {
        return Err(ApiError::invalid("only specialist practices request categories"));
    };
    let name = validate::name("name", &body.name)?;
    let note = validate::text("note", &body.note, 2000)?;
    let rec = CategoryRequestRecord {
        id: CategoryRequestId(uuid::Uuid::from_slice(&random_bytes(16)?).map_err(ApiError::internal)?),
        practice_id: p.id,
        specialty: specialty.clone(),
        name: name.clone(),
        note: note.clone(),
        status: CategoryRequestStatus::Open,
        created_at: now(),
    };
    state.store.create_category_request(rec.clone()).await?;
    Ok(HttpResponse::Created().json(CategoryRequest {
        id: rec.id,
        practice_id: p.id,
        practice_name: p.name,
        specialty,
        name,
        note,
        status: CategoryRequestStatus::Open,
        created_at: rec.created_at,
    }))
}

/// `GET /api/v1/taxonomy` (public: it is reference data).
pub async fn taxonomy(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.store.taxonomy().await?))
}
