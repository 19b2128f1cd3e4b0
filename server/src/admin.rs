//! Platform staff: verification, pausing, taxonomy, blocks of free referral senders. Staff see metadata only;
//! there is no route by which staff reach content or keys.

use actix_web::{HttpRequest, HttpResponse, web};

use handoff_protocol::UnixMillis;
use handoff_protocol::audit::AuditAction;
use handoff_protocol::free::{Block, BlockKind, BlockList, LiftBlock, NewBlock};
use handoff_protocol::v1::*;
use handoff_protocol::{CategoryRequestId, PracticeId};
use handoff_store::{BlockRecord, PracticeError, PracticeRecord, Store};

use crate::audit::{Event, record};
use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, now};
use crate::{free, validate};

pub(crate) fn staff(who: &Authed) -> ApiResult<()> {
    if who.user.is_staff { Ok(()) } else { Err(ApiError::forbidden("platform staff only")) }
}

/// `GET /api/v1/admin/practices`
pub async fn practices(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    staff(&who)?;
    let practices = state
        .store
        .all_practices()
        .await?
        .into_iter()
        .map(|(p, members)| AdminPractice {
            id: p.id,
            name: p.name,
            kind: p.kind,
            specialty: p.specialty,
            region: p.region,
            verified: p.verified,
            paused: p.paused,
            members,
            created_at: p.created_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(AdminPracticeList { practices }))
}

/// Sets the flag a staff action names; the API and the `handoff admin` CLI share it.
pub async fn set_flag(store: &dyn Store, id: PracticeId, action: PracticeAction) -> Result<PracticeRecord, PracticeError> {
    let p = store.practice(id).await?.ok_or(PracticeError::NoSuchPractice)?;
    match action {
        PracticeAction::Verify => store.set_verified(id, true).await?,
        PracticeAction::Unverify => store.set_verified(id, false).await?,
        PracticeAction::Pause => store.set_paused(id, true).await?,
        PracticeAction::Unpause => store.set_paused(id, false).await?,
    }
    tracing::info!(practice = %id, ?action, "staff action");
    Ok(p)
}

/// Applies a staff action and tells the practice's admins by email.
pub async fn apply(state: &AppState, id: PracticeId, action: PracticeAction) -> ApiResult<()> {
    let p = set_flag(&*state.store, id, action).await?;
    let what = match action {
        PracticeAction::Verify => "has been verified and can now receive referrals",
        PracticeAction::Unverify => "is no longer verified and cannot receive referrals until it is verified again",
        PracticeAction::Pause => "has had its referral intake paused by Handoff staff",
        PracticeAction::Unpause => "has had its referral intake resumed",
    };
    for m in state.store.members(id).await? {
        if m.role == Role::Admin {
            let body = format!("{} {what}.\n\nSign in to Handoff to see your practice's status: {}/\n", p.name, state.config.public_url());
            state.send_mail(&m.user.email, &format!("Handoff: {} {what}", p.name), body).await?;
        }
    }
    Ok(())
}

/// `POST /api/v1/admin/practices/{id}/{verify|unverify|pause|unpause}`
///
/// The action is read as text and parsed here, after the staff check: an
/// unknown action is `no_route` (as for any path that names nothing), not the
/// `not_found` a malformed typed path segment gets.
pub async fn practice_action(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    path: web::Path<(PracticeId, String)>,
) -> ApiResult<HttpResponse> {
    staff(&who)?;
    let (id, action) = path.into_inner();
    let action = action.parse::<PracticeAction>().map_err(|_| ApiError::new(handoff_protocol::ErrorCode::NoRoute, "unknown action"))?;
    apply(&state, id, action).await?;
    record(&state, Some(&req), Event::new(staff_action(action), Some(who.user.id), None).target(id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The audit action of a staff action on a practice.
pub fn staff_action(action: PracticeAction) -> AuditAction {
    match action {
        PracticeAction::Verify => AuditAction::PracticeVerified,
        PracticeAction::Unverify => AuditAction::PracticeUnverified,
        PracticeAction::Pause => AuditAction::PracticePaused,
        PracticeAction::Unpause => AuditAction::PracticeUnpaused,
    }
}

/// `POST /api/v1/admin/taxonomy`: add or rename a specialty, category or subcategory.
pub async fn edit_taxonomy(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    body: web::Json<TaxonomyEdit>,
) -> ApiResult<HttpResponse> {
    staff(&who)?;
    let mut e = body.into_inner();
    validate::slug("specialty", &e.specialty)?;
    if let Some(c) = &e.category {
        validate::slug("category", c)?;
    }
    if let Some(s) = &e.subcategory {
        validate::slug("subcategory", s)?;
    }
    e.name = validate::name("name", &e.name)?;
    state.store.edit_taxonomy(&e).await?;
    let slug =
        [Some(&e.specialty), e.category.as_ref(), e.subcategory.as_ref()].into_iter().flatten().cloned().collect::<Vec<_>>().join("/");
    record(&state, Some(&req), Event::new(AuditAction::TaxonomyEdited, Some(who.user.id), None).target(slug)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/admin/category-requests`
pub async fn category_requests(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    staff(&who)?;
    let mut requests = Vec::new();
    for r in state.store.category_requests().await? {
        let practice_name = state.store.practice(r.practice_id).await?.map(|p| p.name).unwrap_or_default();
        requests.push(CategoryRequest {
            id: r.id,
            practice_id: r.practice_id,
            practice_name,
            specialty: r.specialty,
            name: r.name,
            note: r.note,
            status: r.status,
            created_at: r.created_at,
        });
    }
    Ok(HttpResponse::Ok().json(CategoryRequestList { requests }))
}

/// `POST /api/v1/admin/category-requests/{id}/resolve`
pub async fn resolve_category_request(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<CategoryRequestId>,
    body: web::Json<ResolveCategoryRequest>,
) -> ApiResult<HttpResponse> {
    staff(&who)?;
    let r =
        state.store.category_requests().await?.into_iter().find(|r| r.id == *id).ok_or_else(|| ApiError::not_found("category request"))?;
    if r.status != CategoryRequestStatus::Open {
        return Err(ApiError::new(handoff_protocol::ErrorCode::Conflict, "this request is already resolved"));
    }
    if body.approve {
        let slug = body.slug.clone().ok_or_else(|| ApiError::invalid("slug: required to approve"))?;
        validate::slug("slug", &slug)?;
        state
            .store
            .edit_taxonomy(&TaxonomyEdit { specialty: r.specialty.clone(), category: Some(slug), subcategory: None, name: r.name.clone() })
            .await?;
    }
    let status = if body.approve { CategoryRequestStatus::Approved } else { CategoryRequestStatus::Declined };
    state.store.resolve_category_request(r.id, status, now()).await?;
    record(&state, Some(&req), Event::new(AuditAction::CategoryRequestResolved, Some(who.user.id), None).target(r.id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn block_kind(k: BlockKind) -> &'static str {
    match k {
        BlockKind::Email => "email",
        BlockKind::Address => "address",
    }
}

fn block_view(b: BlockRecord) -> Block {
    Block { kind: b.kind, value: b.value, reason: b.reason, created_at: b.created_at }
}

/// Blocks a sender; the admin API and the `handoff admin free-block` CLI share it.
pub async fn free_block(store: &dyn Store, kind: BlockKind, value: &str, reason: &str, at: UnixMillis) -> ApiResult<BlockRecord> {
    let b =
        BlockRecord { kind, value: free::normalise_block(kind, value)?, reason: validate::text("reason", reason, 500)?, created_at: at };
    store.put_block(b.clone()).await?;
    tracing::info!(?kind, "free referral sender blocked");
    Ok(b)
}

/// Lifts a block; the admin API and the CLI share it. `not_found` if there is none.
pub async fn free_lift(store: &dyn Store, kind: BlockKind, value: &str) -> ApiResult<()> {
    store.lift_block(kind, free::normalise_block(kind, value)?).await?;
    tracing::info!(?kind, "free referral block lifted");
    Ok(())
}

/// `GET /api/v1/admin/free-blocks`: staff list blocked senders, newest first.
pub async fn free_blocks(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    staff(&who)?;
    let blocks = state.store.blocks().await?.into_iter().map(block_view).collect();
    Ok(HttpResponse::Ok().json(BlockList { blocks }))
}

/// `POST /api/v1/admin/free-blocks`: staff block an email address or client address.
pub async fn add_free_block(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    body: web::Json<NewBlock>,
) -> ApiResult<HttpResponse> {
    staff(&who)?;
    let b = free_block(&*state.store, body.kind, &body.value, &body.reason, now()).await?;
    // The kind only: the blocked address or email itself is not recorded.
    record(&state, Some(&req), Event::new(AuditAction::FreeBlockAdded, Some(who.user.id), None).target(block_kind(b.kind))).await?;
    Ok(HttpResponse::Ok().json(block_view(b)))
}

/// `DELETE /api/v1/admin/free-blocks`: staff lift a block.
pub async fn lift_free_block(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    body: web::Json<LiftBlock>,
) -> ApiResult<HttpResponse> {
    staff(&who)?;
    free_lift(&*state.store, body.kind, &body.value).await?;
    record(&state, Some(&req), Event::new(AuditAction::FreeBlockLifted, Some(who.user.id), None).target(block_kind(body.kind))).await?;
    Ok(HttpResponse::NoContent().finish())
}
