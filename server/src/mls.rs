//! The MLS delivery service over HTTP: key packages, each practice's MLS log,
//! welcomes and the per-user sealed MLS state.
//!
//! The server never decrypts MLS and holds no group secret; it is an MLS
//! external observer ([`crate::observer`]). A key package's credential must
//! name the uploader and carry their account key; a welcome must be a
//! welcome. A group's creation carries its group info, from which the server
//! starts following the group's public state; every commit must be a
//! `PublicMessage` of this practice's group at the epoch it claims, and the
//! server processes it against that state: the committer's signature, the
//! proposals (adds and removes only), every new leaf against its user's account
//! key, and the commit's real adds, removes and committer against the entry's
//! declared `added`, `removed` and the caller. The declared lists must follow
//! the practice's membership (adds are members, removals are people who left).
//! What no observer can check (the path secrets, the membership and
//! confirmation tags) every member's client checks when it processes the
//! commit, and compares the commit's effect with the entry again.
//!
//! Access: every practice-scoped route answers `not_found` to non-members, as
//! the rest of the API does, so a removed member loses the log, welcomes and
//! key packages at once.

use actix_web::{HttpResponse, web};
use mls_rs::group::ContentType;
use mls_rs::{MlsMessage, MlsMessageDescription};

use handoff_protocol::mls::*;
use handoff_protocol::{B64, ErrorCode, PracticeId, UserId};
use handoff_store::{MlsEntryRecord, MlsError};

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::observer::{self, Keys, ObserveError};
use crate::practices::membership;
use crate::state::{AppState, now, sha256};
use crate::validate;

/// Body limit for MLS routes: a commit adding many members, its welcome (with
/// the ratchet tree) and a user's whole sealed state outgrow the API's 64 KiB.
/// It fits [`MAX_COMMIT`] plus [`MAX_WELCOME`], or [`MAX_SEALED_STATE`], in base64 JSON.
pub const MAX_MLS_BODY: usize = 2 * 1024 * 1024;
/// The largest MLS commit accepted (512 KiB). Sized from a 200-member
/// practice (load-tests/MLS.md): the commit adding all 199 others at once, the
/// largest a practice makes, is 58,480 bytes (a remove with its update path,
/// 16,982), so this leaves about 9 times that.
pub const MAX_COMMIT: usize = 512 * 1024;
/// The largest welcome accepted (512 KiB): the welcome for 199 members at once
/// carries the ratchet tree and one group secret per newcomer, 61,524 bytes at
/// 200 members (load-tests/MLS.md).
pub const MAX_WELCOME: usize = 512 * 1024;
/// The largest group info accepted (512 KiB): like a welcome it carries the
/// ratchet tree, which dominates both.
pub const MAX_GROUP_INFO: usize = 512 * 1024;
/// The largest sealed MLS state accepted per user (1 MiB): one member's state
/// in a 200-member group is 75,000 bytes (load-tests/MLS.md), so this holds a
/// dozen such practices.
pub const MAX_SEALED_STATE: usize = 1024 * 1024;
/// Key packages per publish call.
pub const MAX_KEY_PACKAGES_PER_CALL: usize = 100;
/// Serialises key-package publishing, so the per-user cap is counted and
/// enforced atomically (publishing is rare: a client tops up on sign-in).
static PUBLISHING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Log entries per read.
pub const MAX_LOG_PAGE: u32 = 500;

fn malformed(what: &str) -> ApiError {
    ApiError::new(ErrorCode::MalformedMls, format!("{what} is not a well-formed MLS message of the expected kind"))
}

fn parse(bytes: &[u8], what: &str) -> ApiResult<MlsMessage> {
    MlsMessage::from_bytes(bytes).map_err(|_| malformed(what))
}

/// The user a key package's basic credential names, and its signature key.
fn key_package_identity(bytes: &[u8]) -> ApiResult<(UserId, Vec<u8>)> {
    let m = parse(bytes, "key package")?;
    let kp = m.as_key_package().ok_or_else(|| malformed("key package"))?;
    let id = kp.signing_identity();
    let raw: [u8; 16] =
        id.credential.as_basic().and_then(|b| b.identifier().try_into().ok()).ok_or_else(|| malformed("key package credential"))?;
    Ok((UserId::from_bytes(raw), id.signature_key.as_bytes().to_vec()))
}

/// A handshake (commit) message of the MLS group `group_id` made in MLS epoch `mls_epoch`.
fn check_commit(bytes: &[u8], group_id: &[u8], mls_epoch: u64) -> ApiResult<()> {
    let m = parse(bytes, "commit")?;
    let (group, epoch, commit) = match m.description() {
        MlsMessageDescription::PublicProtocolMessage { group_id, epoch_id, content_type, .. } => {
            (group_id.to_vec(), epoch_id, content_type == ContentType::Commit)
        }
        // Encrypted handshake messages hide their content type; the epoch and group still show.
        MlsMessageDescription::PrivateProtocolMessage { group_id, epoch_id, content_type } => {
            (group_id.to_vec(), epoch_id, content_type == ContentType::Commit)
        }
        _ => return Err(malformed("commit")),
    };
    if !commit || group != group_id {
        return Err(malformed("commit"));
    }
    if epoch != mls_epoch {
        return Err(ApiError::new(
            ErrorCode::MalformedMls,
            format!("the commit was made in MLS epoch {epoch}, but the entry claims MLS epoch {mls_epoch}"),
        ));
    }
    Ok(())
}

fn observe_error(e: ObserveError) -> ApiError {
    match e {
        ObserveError::Malformed(_) => ApiError::new(ErrorCode::MalformedMls, e.to_string()),
        _ => ApiError::new(ErrorCode::InvalidCommit, e.to_string()),
    }
}

/// Runs an observer step on the blocking pool (it verifies signatures and hashes the tree).
async fn observe<T: Send + 'static>(f: impl FnOnce() -> Result<T, ObserveError> + Send + 'static) -> ApiResult<T> {
    web::block(f).await.map_err(ApiError::internal)?.map_err(observe_error)
}

/// The account keys the observer accepts leaves for: the practice's members,
/// and group members who have left it (their leaves are still in the tree
/// until a commit removes them). Whom a commit may add is checked separately.
async fn leaf_keys(state: &AppState, practice: PracticeId, roster: &[UserId]) -> ApiResult<Keys> {
    let mut keys: Vec<(UserId, Vec<u8>)> = state.store.members(practice).await?.into_iter().map(|m| (m.user.id, m.user.sign_pub)).collect();
    for u in roster {
        if !keys.iter().any(|(k, _)| k == u)
            && let Some(user) = state.store.user_by_id(*u).await?
        {
            keys.push((user.id, user.sign_pub));
        }
    }
    Ok(Keys::new(keys))
}

fn same_users(a: &[UserId], b: &[UserId]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
}

fn check_welcome(bytes: &[u8]) -> ApiResult<()> {
    match parse(bytes, "welcome")?.description() {
        MlsMessageDescription::Welcome { .. } => Ok(()),
        _ => Err(malformed("welcome")),
    }
}

fn entry_view(e: MlsEntryRecord) -> MlsLogEntry {
    MlsLogEntry {
        epoch: e.epoch,
        committer: e.committer,
        commit: e.commit.map(B64),
        added: e.added,
        removed: e.removed,
        public_key: e.public_key,
        history: B64(e.history),
        at: e.created_at,
        generation: e.generation,
        links_to: e.links_to,
        revoked: e.revoked,
    }
}

/// `POST /api/v1/mls/key-packages`
pub async fn publish_key_packages(state: web::Data<AppState>, who: Authed, body: web::Json<PublishKeyPackages>) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    if b.key_packages.is_empty() || b.key_packages.len() > MAX_KEY_PACKAGES_PER_CALL {
        return Err(ApiError::invalid(format!("key_packages: 1 to {MAX_KEY_PACKAGES_PER_CALL} per call")));
    }
    let mut rows = Vec::with_capacity(b.key_packages.len());
    for kp in b.key_packages {
        validate::bytes_range("key_packages[]", &kp, 64, 16 * 1024)?;
        let (owner, key) = key_package_identity(kp.as_slice())?;
        if owner != who.user.id || key != who.user.sign_pub {
            return Err(ApiError::new(ErrorCode::MalformedMls, "a key package must carry your own user id and account signing key"));
        }
        rows.push((sha256(kp.as_slice()), kp.0));
    }
    // Count and publish under one lock, so concurrent publishes cannot pass the cap together.
    let _one_at_a_time = PUBLISHING.lock().await;
    let cap = state.config.key_packages_per_user;
    let unclaimed = state.store.key_package_count(who.user.id).await?;
    if u64::from(unclaimed) + rows.len() as u64 > u64::from(cap) {
        return Err(ApiError::new(
            ErrorCode::QuotaExceeded,
            format!("you have {unclaimed} unclaimed key packages and may hold at most {cap}; publish more once some are used"),
        ));
    }
    let available = state.store.publish_key_packages(who.user.id, rows, now()).await?;
    Ok(HttpResponse::Created().json(KeyPackageCount { available }))
}

/// `GET /api/v1/mls/key-packages`: how many of mine are unclaimed.
pub async fn my_key_packages(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(KeyPackageCount { available: state.store.key_package_count(who.user.id).await? }))
}

/// `POST /api/v1/practices/{id}/members/{user}/key-package`: hands out one key package, once.
pub async fn claim_key_package(state: web::Data<AppState>, who: Authed, path: web::Path<(PracticeId, UserId)>) -> ApiResult<HttpResponse> {
    let (pid, uid) = path.into_inner();
    crate::practices::require(&state, pid, &who, handoff_domain::rights::Right::ManageKeys).await?;
    if handoff_actors::access::in_force(&*state.store, &state.config.clock, pid, uid).await?.is_none() {
        return Err(ApiError::not_found("member"));
    }
    match state.store.claim_key_package(uid, who.user.id, now()).await? {
        Some(kp) => Ok(HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(ClaimedKeyPackage { user_id: uid, key_package: B64(kp) })),
        None => Err(ApiError::new(
            ErrorCode::NotFound,
            "that member has no unused key package; their client publishes more when it next signs in",
        )),
    }
}

/// `GET /api/v1/mls/state`
pub async fn get_state(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    let s = state.store.mls_state(who.user.id).await?;
    let body = match s {
        Some((version, sealed)) => MlsState { version, sealed: Some(B64(sealed)) },
        None => MlsState { version: 0, sealed: None },
    };
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(body))
}

/// `PUT /api/v1/mls/state`: compare-and-swap on `expected_version`.
pub async fn put_state(state: web::Data<AppState>, who: Authed, body: web::Json<PutMlsState>) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    if b.sealed.0.len() > MAX_SEALED_STATE {
        return Err(too_large("sealed", MAX_SEALED_STATE));
    }
    validate::bytes_range("sealed", &b.sealed, 40, MAX_SEALED_STATE)?;
    let version = state.store.put_mls_state(who.user.id, b.expected_version, b.sealed.0, now()).await?;
    Ok(HttpResponse::Ok().json(MlsState { version, sealed: None }))
}

/// `GET /api/v1/practices/{id}/mls?after=E`
pub async fn log(state: web::Data<AppState>, who: Authed, id: web::Path<PracticeId>, q: web::Query<LogQuery>) -> ApiResult<HttpResponse> {
    let (p, _) = membership(&state, *id, &who).await?;
    let epoch = state.store.mls_epoch(p.id).await?;
    if q.after > 0 && q.after >= epoch {
        // A client reads the log after the epoch its group is at, so a reader
        // caught up with the log has joined: its welcome is served and kept no
        // longer. (A joiner paging through a long log reads after epochs below
        // the head, never at it, so its welcome stays until it has joined.)
        state.store.forget_welcome(p.id, who.user.id, q.after).await?;
    }
    let entries = state.store.mls_log(p.id, q.after, MAX_LOG_PAGE).await?.into_iter().map(entry_view).collect();
    Ok(HttpResponse::Ok().json(MlsLog { epoch, entries }))
}

/// `GET /api/v1/practices/{id}/mls/welcome`: the welcome addressed to me.
pub async fn welcome(state: web::Data<AppState>, who: Authed, id: web::Path<PracticeId>) -> ApiResult<HttpResponse> {
    let (p, _) = membership(&state, *id, &who).await?;
    match state.store.mls_welcome(p.id, who.user.id).await? {
        Some((epoch, w)) => Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(MlsWelcome { epoch, welcome: B64(w) })),
        None => Err(ApiError::new(ErrorCode::NotFound, "no welcome for you yet: a member's client adds you when it next syncs")),
    }
}

/// `GET /api/v1/practices/{id}/mls/pending`: members to add, group members to remove.
pub async fn pending(state: web::Data<AppState>, who: Authed, id: web::Path<PracticeId>) -> ApiResult<HttpResponse> {
    let (p, _) = membership(&state, *id, &who).await?;
    let epoch = state.store.mls_epoch(p.id).await?;
    let roster = state.store.mls_roster(p.id).await?;
    // The group holds the members whose membership is in force now: one whose
    // end date passed (or whose sponsor's did) is listed for removal at once,
    // as a removed member is, and one before their start date is not added yet.
    let mut members = Vec::new();
    for m in state.store.members(p.id).await? {
        if handoff_actors::access::in_force(&*state.store, &state.config.clock, p.id, m.user.id).await?.is_some() {
            members.push(m);
        }
    }
    let mut add = Vec::new();
    if epoch > 0 {
        for m in &members {
            if !roster.contains(&m.user.id) {
                add.push(MlsPendingMember {
                    user_id: m.user.id,
                    sign_pub: B64(m.user.sign_pub.clone()),
                    key_packages: state.store.key_package_count(m.user.id).await?,
                });
            }
        }
    }
    let remove = roster.into_iter().filter(|u| !members.iter().any(|m| m.user.id == *u)).collect();
    let reported = state.store.mls_reported(p.id).await?;
    Ok(HttpResponse::Ok().json(MlsPending { epoch, add, remove, reported }))
}

/// `POST /api/v1/practices/{id}/mls/commits`: the delivery service's one door.
pub async fn submit(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<PracticeId>,
    body: web::Json<SubmitCommit>,
) -> ApiResult<HttpResponse> {
    let (p, role) = crate::practices::require(&state, *id, &who, handoff_domain::rights::Right::ManageKeys).await?;
    let b = body.into_inner();
    if b.commit.as_ref().is_some_and(|c| c.0.len() > MAX_COMMIT) {
        return Err(too_large("commit", MAX_COMMIT));
    }
    if b.welcome.as_ref().is_some_and(|w| w.0.len() > MAX_WELCOME) {
        return Err(too_large("welcome", MAX_WELCOME));
    }
    if b.group_info.as_ref().is_some_and(|g| g.0.len() > MAX_GROUP_INFO) {
        return Err(too_large("group_info", MAX_GROUP_INFO));
    }
    let pk = &b.public_key;
    if pk.epoch != b.epoch || pk.signer != who.user.id {
        return Err(ApiError::invalid("public_key: its epoch must be the entry's and you must sign it"));
    }
    validate::bytes_exact("public_key.hpke_pub", &pk.hpke_pub, 32)?;
    validate::bytes_exact("public_key.signature", &pk.signature, 64)?;
    validate::bytes_range("history", &b.history, 56, 256)?;
    let current = state.store.mls_epoch(p.id).await?;
    if b.epoch != current + 1 {
        return Err(stale(current));
    }
    let roster = state.store.mls_roster(p.id).await?;
    // The generation of the group the log is at (0 before and for the first group).
    let last = if current == 0 { None } else { state.store.mls_log(p.id, current - 1, 1).await?.pop() };
    let mut generation = last.as_ref().map_or(0, |e| e.generation);
    let mut links_to = b.epoch - 1;
    let public_state;
    if let Some(to) = b.reinit {
        // Re-initialising: a new MLS group for the practice, started by an
        // admin's client, whose history link skips the epochs it revokes.
        if !handoff_domain::rights::may(role, handoff_domain::rights::Right::ChangeSettings) {
            return Err(ApiError::forbidden("only a practice admin can re-initialise its key group"));
        }
        if current == 0 || to >= current {
            return Err(ApiError::invalid("reinit: the epoch to link back to must be one before the current epoch"));
        }
        if b.commit.is_some() || b.welcome.is_some() || !b.added.is_empty() || !b.removed.is_empty() {
            return Err(ApiError::invalid("a re-initialisation starts a new group: no commit, welcome, added or removed"));
        }
        generation += 1;
        links_to = to;
        let info = b.group_info.as_ref().ok_or_else(|| ApiError::invalid("group_info: required to re-initialise the group"))?.0.clone();
        let keys = leaf_keys(&state, p.id, &[]).await?;
        let group_id = mls_group_id(p.id, generation);
        let started = observe(move || observer::start(&info, &group_id, 0, keys)).await?;
        if started.roster != [who.user.id] {
            return Err(ApiError::new(ErrorCode::InvalidCommit, "a new group must have its creator as its only member"));
        }
        public_state = started.snapshot;
    } else if b.epoch == 1 {
        // Creating the group (also how a pre-MLS practice moves onto MLS):
        // only a holder of the epoch-0 key can link epoch 1 back to it.
        if b.commit.is_some() || b.welcome.is_some() || !b.added.is_empty() || !b.removed.is_empty() {
            return Err(ApiError::invalid("epoch 1 creates the group: no commit, welcome, added or removed"));
        }
        if state.store.grant(p.id, who.user.id, 0).await?.is_none() {
            return Err(ApiError::forbidden("only a holder of the practice's epoch-0 key can create its MLS group"));
        }
        // The new group's public state: its creator alone, at MLS epoch 0.
        let info = b.group_info.as_ref().ok_or_else(|| ApiError::invalid("group_info: required to create the group"))?.0.clone();
        let keys = leaf_keys(&state, p.id, &[]).await?;
        let group_id = mls_group_id(p.id, 0);
        let started = observe(move || observer::start(&info, &group_id, 0, keys)).await?;
        if started.roster != [who.user.id] {
            return Err(ApiError::new(ErrorCode::InvalidCommit, "a new group must have its creator as its only member"));
        }
        public_state = started.snapshot;
    } else {
        if !roster.contains(&who.user.id) {
            return Err(ApiError::new(ErrorCode::NotMember, "you are not in this practice's MLS group yet; wait for a member to add you"));
        }
        let commit = b.commit.as_ref().ok_or_else(|| ApiError::invalid("commit: required after epoch 1"))?;
        let observed = state.store.mls_public_state(p.id).await?;
        // Another member's commit may have landed since `current` was read: a
        // stale commit is `stale_epoch` (retry after syncing), never judged
        // against the newer group state it was not made in.
        if observed.as_ref().is_some_and(|(epoch, _)| *epoch != current) {
            return Err(stale(state.store.mls_epoch(p.id).await?));
        }
        // The group and MLS epoch the commit must be made in: the observed
        // state's, or (for a first-generation group the server did not observe)
        // Handoff epoch - 2 of the practice's first group.
        let (group_id, mls_epoch) = match &observed {
            Some((_, snapshot)) => observer::context_of(snapshot).map_err(observe_error)?,
            None => (mls_group_id(p.id, 0), b.epoch - 2),
        };
        check_commit(commit.as_slice(), &group_id, mls_epoch)?;
        if b.added.is_empty() && b.removed.is_empty() {
            return Err(ApiError::invalid("a commit must add or remove someone"));
        }
        let mut seen = std::collections::HashSet::new();
        for u in b.added.iter().chain(&b.removed) {
            if !seen.insert(*u) {
                return Err(ApiError::invalid("added and removed must not repeat a user"));
            }
        }
        for u in &b.added {
            if state.store.role(p.id, *u).await?.is_none() {
                return Err(ApiError::new(
                    ErrorCode::WrongRecipient,
                    format!("{u} is not a member of this practice, so cannot be welcomed"),
                ));
            }
            if roster.contains(u) {
                return Err(ApiError::invalid(format!("{u} is already in the group")));
            }
        }
        for u in &b.removed {
            if !roster.contains(u) {
                return Err(ApiError::invalid(format!("{u} is not in the group")));
            }
            // The practice's membership is the authority; the group follows it.
            // A member cannot cut a colleague off by commit: remove them from the practice first.
            if state.store.role(p.id, *u).await?.is_some() {
                return Err(ApiError::forbidden(format!("{u} is still a member of the practice; remove them from it first")));
            }
        }
        match (&b.welcome, b.added.is_empty()) {
            (Some(w), false) => check_welcome(w.as_slice())?,
            (None, true) => {}
            _ => return Err(ApiError::invalid("welcome: required exactly when the commit adds members")),
        }
        // Observe the commit: it must verify against the group's public state
        // and do exactly what the entry declares.
        let keys = leaf_keys(&state, p.id, &roster).await?;
        let before = match observed {
            Some((epoch, snapshot)) if epoch == current => snapshot,
            Some(_) => return Err(stale(state.store.mls_epoch(p.id).await?)),
            None if generation > 0 => return Err(ApiError::internal("a re-initialised group without its public state")),
            None => {
                // A group created before the server observed groups: start from the
                // group info of the commit's epoch, which must hold exactly the roster.
                let info = b.group_info.as_ref().ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::GroupInfoRequired,
                        "the server does not observe this group yet: send the commit again with the group info of its epoch",
                    )
                })?;
                let (info, keys) = (info.0.clone(), keys.clone());
                let started = observe(move || observer::start(&info, &group_id, mls_epoch, keys)).await?;
                if !same_users(&started.roster, &roster) {
                    return Err(ApiError::new(ErrorCode::InvalidCommit, "the group info's members are not the group's"));
                }
                started.snapshot
            }
        };
        let c = commit.0.clone();
        let applied = observe(move || observer::apply(&before, &c, keys)).await?;
        if applied.committer != who.user.id {
            return Err(ApiError::new(ErrorCode::InvalidCommit, "the commit is signed by another member than you"));
        }
        if !same_users(&applied.added, &b.added) || !same_users(&applied.removed, &b.removed) {
            return Err(ApiError::new(
                ErrorCode::InvalidCommit,
                "the commit's real adds and removes are not the entry's declared added and removed",
            ));
        }
        public_state = applied.snapshot;
    }
    let entry = MlsEntryRecord {
        practice_id: p.id,
        epoch: b.epoch,
        committer: who.user.id,
        commit: b.commit.map(|c| c.0),
        welcome: b.welcome.map(|w| w.0),
        added: b.added,
        removed: b.removed,
        public_key: b.public_key,
        history: b.history.0,
        created_at: now(),
        generation,
        links_to,
        revoked: false,
    };
    match handoff_actors::mls::append(&state.hub, entry.clone(), public_state).await {
        Ok(_) => {
            let committed = crate::audit::Event::new(handoff_protocol::audit::AuditAction::KeyGroupCommit, Some(who.user.id), Some(p.id));
            crate::audit::record(&state, Some(&req), committed.target(format!("epoch:{}", entry.epoch))).await?;
            tracing::info!(practice = %p.id, epoch = entry.epoch, by = %who.user.id, "MLS epoch accepted");
            Ok(HttpResponse::Created().json(entry_view(entry)))
        }
        Err(MlsError::StaleEpoch) => Err(stale(state.store.mls_epoch(p.id).await?)),
        Err(e) => Err(e.into()),
    }
}

/// `payload_too_large` for an MLS message over its documented limit.
fn too_large(what: &str, limit: usize) -> ApiError {
    ApiError::new(ErrorCode::PayloadTooLarge, format!("{what}: at most {limit} bytes"))
}

/// `POST /api/v1/practices/{id}/mls/reports`: a member's client cannot process an epoch.
pub async fn report(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<PracticeId>,
    body: web::Json<ReportEpoch>,
) -> ApiResult<HttpResponse> {
    let (p, _) = crate::practices::require(&state, *id, &who, handoff_domain::rights::Right::ManageKeys).await?;
    let epoch = body.into_inner().epoch;
    state.store.mls_report(p.id, epoch, who.user.id, now()).await?;
    tracing::warn!(practice = %p.id, epoch, by = %who.user.id, "MLS epoch reported unprocessable");
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/practices/{id}/mls/unreadable`: referrals the practice sent
/// whose receiver's key was revoked by a re-initialisation: to send again.
pub async fn unreadable(state: web::Data<AppState>, who: Authed, id: web::Path<PracticeId>) -> ApiResult<HttpResponse> {
    let (p, _) = membership(&state, *id, &who).await?;
    let referrals = state
        .store
        .mls_unreadable(p.id, MAX_LOG_PAGE)
        .await?
        .into_iter()
        .map(|u| UnreadableReferral { referral: u.referral, to_practice: u.to_practice, epoch: u.epoch })
        .collect();
    Ok(HttpResponse::Ok().json(UnreadableReferrals { referrals }))
}

fn stale(current: u64) -> ApiError {
    ApiError::new(
        ErrorCode::StaleEpoch,
        format!("the practice is at epoch {current}; process the newer log entries and commit again for epoch {}", current + 1),
    )
}
