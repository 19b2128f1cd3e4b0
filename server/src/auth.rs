//! Accounts and sessions, vendor-blind (ARCHITECTURE.md, "Privacy model as built", points 1–3 and 5).
//!
//! The client sends `auth_key = HKDF(Argon2id(password))`; the server stores
//! `Argon2id(auth_key)` as a PHC string. The kit is proven with
//! `kit_auth = HKDF(kit entropy)`, stored as SHA-256 (its input has 256 bits
//! of entropy, so a slow hash adds nothing). Neither value opens the user's
//! keys: those are sealed under KEKs the server never sees.
//!
//! Sessions: 256-bit random bearer tokens, stored as SHA-256, with an absolute
//! expiry. Sent back as the `handoff_session` cookie (HttpOnly, SameSite=Strict,
//! Secure over HTTPS) and in the body for non-browser clients.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use handoff_protocol::audit::AuditAction;
use handoff_protocol::v1::*;
use handoff_protocol::{B64, ErrorCode, UnixMillis, UserId};
use handoff_store::{PasswordChange, PendingRegistration, SessionRecord, UserError, UserRecord};

use crate::error::{ApiError, ApiResult};
use crate::ratelimit::{self, Check};
use crate::state::{AppState, ct_eq, now, random_bytes, random_token, sha256};
use crate::validate;

/// What a wrong password is answered with. There is no email reset, and the
/// API says so plainly.
pub const LOST_ACCESS_NOTICE: &str = "email or password is wrong. If you forgot your password, reset it with your \
     Emergency Access Kit. Handoff cannot reset it by email: without the password or the kit, access to your encrypted data is lost.";

/// The session cookie's name.
pub const COOKIE: &str = "handoff_session";

/// A signed-in caller.
#[derive(Debug, Clone)]
pub struct Authed {
    /// The user.
    pub user: UserRecord,
    /// Hash of the session token used.
    pub token_hash: Vec<u8>,
    /// The session's last activity as the store held it when the request came.
    pub last_seen_at: UnixMillis,
}

/// The session token of a request: `Authorization: Bearer …` first, then the
/// session cookie; `unauthenticated` without either. Takes the headers, so the
/// WebSocket upgrade (which sees an actix-http request, not an actix-web one)
/// reads tokens, and refuses their absence, the same way.
pub fn token_from(headers: &actix_web::http::header::HeaderMap) -> ApiResult<String> {
    credential(headers, "Bearer", COOKIE).ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "sign in first"))
}

/// A request's credential: `Authorization: <scheme> <token>` first, then the
/// cookie named `cookie`. Sessions (`Bearer`, `handoff_session`) and free
/// referral drafts (`Draft`, `handoff_draft`) travel the same way.
pub fn credential(headers: &actix_web::http::header::HeaderMap, scheme: &str, cookie: &str) -> Option<String> {
    if let Some(h) = headers.get("authorization").and_then(|v| v.to_str().ok())
        && let Some((s, t)) = h.split_once(' ')
        && s == scheme
    {
        return Some(t.trim().to_string());
    }
    headers
        .get_all("cookie")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| Cookie::parse(pair.trim()).ok())
        .find(|c| c.name() == cookie)
        .map(|c| c.value().to_string())
}

impl FromRequest for Authed {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = token_from(req.headers());
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("app state missing"))?;
            let who = authenticate(&state, &token?).await?;
            // An authenticated HTTP request is activity (crate::sessions).
            crate::sessions::activity(&state, &who).await?;
            Ok(who)
        })
    }
}

/// Resolves a bearer token to its user (used by HTTP and `/ws`). An expired
/// session is refused with `session_expired`, an idle one with
/// `session_idle`; either is ended (deleted, its sockets closed). Records no
/// activity: the HTTP extractor does that, the socket upgrade does not.
pub async fn authenticate(state: &AppState, token: &str) -> ApiResult<Authed> {
    let th = sha256(token.as_bytes());
    let s = state.store.session(&th).await?.ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "unknown session; sign in again"))?;
    let t = now();
    if s.expires_at <= t {
        crate::sessions::end(state, &th).await?;
        return Err(ApiError::new(ErrorCode::SessionExpired, "your session has expired; sign in again"));
    }
    if state.sessions.is_idle(&th, s.last_seen_at, t) {
        crate::sessions::end_idle(state, &th).await?;
        tracing::info!(user = %s.user_id, "session ended after the idle timeout");
        return Err(crate::sessions::idle_error(state));
    }
    let user = state
        .store
        .user_by_id(s.user_id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "unknown session; sign in again"))?;
    Ok(Authed { user, token_hash: th, last_seen_at: s.last_seen_at })
}

/// The client's address for the rate limits: the TCP peer, or the entry
/// `trusted_proxy_hops` places left of it in `X-Forwarded-For`
/// ([`ratelimit::client_ip`]). Header lines that are not UTF-8 are read
/// lossily rather than skipped, so a client cannot make a proxy's value vanish.
pub(crate) fn client_ip(req: &HttpRequest, state: &AppState) -> IpAddr {
    let forwarded: Vec<String> =
        req.headers().get_all("x-forwarded-for").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    ratelimit::client_ip(req.peer_addr().map(|a| a.ip()), &forwarded, state.config.trusted_proxy_hops)
}

pub(crate) fn limited(retry_after: u64) -> ApiError {
    let mut e = ApiError::new(ErrorCode::RateLimited, "too many attempts; wait and try again");
    e.retry_after = Some(retry_after);
    e
}

fn kdf_params(salt: Vec<u8>) -> KdfParams {
    KdfParams { alg: "argon2id".into(), m_kib: 19_456, t: 2, p: 1, salt: B64(salt) }
}

/// The server-side verifier: Argon2id (default OWASP parameters) over the auth key.
async fn hash_auth_key(auth_key: Vec<u8>) -> ApiResult<String> {
    let salt = random_bytes(16)?;
    web::block(move || Argon2::default().hash_password_with_salt(&auth_key, &salt).map(|h| h.to_string()).map_err(ApiError::internal))
        .await
        .map_err(ApiError::internal)?
}

async fn verify_auth_key(phc: String, auth_key: Vec<u8>) -> ApiResult<bool> {
    web::block(move || {
        let parsed = PasswordHash::new(&phc).map_err(ApiError::internal)?;
        Ok(Argon2::default().verify_password(&auth_key, &parsed).is_ok())
    })
    .await
    .map_err(ApiError::internal)?
}

fn me_of(state: &AppState, u: &UserRecord) -> Me {
    Me {
        idle_timeout_secs: state.config.session_idle().as_secs(),
        id: u.id,
        email: u.email.clone(),
        display_name: u.display_name.clone(),
        is_staff: u.is_staff,
        keys: UserKeyBundle {
            sign_pub: B64(u.sign_pub.clone()),
            hpke_pub: B64(u.hpke_pub.clone()),
            wrapped_by_password: B64(u.wrapped_by_password.clone()),
            wrapped_by_kit: B64(u.wrapped_by_kit.clone()),
        },
    }
}

/// A new session for `user`, started by `req`: its cookie and its answer body.
async fn new_session(req: &HttpRequest, state: &AppState, user: &UserRecord) -> ApiResult<(Cookie<'static>, SessionResponse)> {
    let token = random_token()?;
    let created = now();
    let expires_at = created + state.config.session_ttl().as_millis() as i64;
    state
        .store
        .create_session(SessionRecord {
            token_hash: sha256(token.as_bytes()),
            user_id: user.id,
            created_at: created,
            expires_at,
            handle: random_bytes(16)?,
            last_seen_at: created,
            user_agent: crate::sessions::user_agent(req),
            client_addr: client_ip(req, state).to_canonical().to_string(),
        })
        .await?;
    let cookie = Cookie::build(COOKIE, token.clone())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.secure_cookies())
        .max_age(CookieDuration::seconds(state.config.session_ttl_secs as i64))
        .finish();
    Ok((cookie, SessionResponse { user: me_of(state, user), token, expires_at }))
}

/// An answer that carries a session: the cookie set, never cached.
fn session_response(status: actix_web::http::StatusCode, body: impl serde::Serialize, cookie: Cookie<'static>) -> HttpResponse {
    HttpResponse::build(status).cookie(cookie).insert_header(("Cache-Control", "no-store")).json(body)
}

pub(crate) async fn start_session(
    req: &HttpRequest,
    state: &AppState,
    user: &UserRecord,
    status: actix_web::http::StatusCode,
) -> ApiResult<HttpResponse> {
    let (cookie, body) = new_session(req, state, user).await?;
    Ok(session_response(status, body, cookie))
}

fn check_keys(k: &UserKeyBundle) -> ApiResult<()> {
    validate::bytes_exact("keys.sign_pub", &k.sign_pub, 32)?;
    validate::bytes_exact("keys.hpke_pub", &k.hpke_pub, 32)?;
    validate::bytes_range("keys.wrapped_by_password", &k.wrapped_by_password, 41, 1024)?;
    validate::bytes_range("keys.wrapped_by_kit", &k.wrapped_by_kit, 41, 1024)
}

/// `POST /api/v1/auth/prelogin`
pub async fn prelogin(state: web::Data<AppState>, body: web::Json<PreloginRequest>) -> ApiResult<HttpResponse> {
    let email = validate::email(&body.email)?;
    let salt = match state.store.user_by_email(&email).await? {
        Some(u) => u.salt,
        None => {
            // A decoy salt, stable per email, so the answer does not reveal whether the account exists.
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&state.prelogin_secret).map_err(ApiError::internal)?;
            mac.update(email.as_bytes());
            mac.finalize().into_bytes().iter().take(16).copied().collect()
        }
    };
    Ok(HttpResponse::Ok().json(kdf_params(salt)))
}

/// What a registration without an invite is answered with, free or taken.
pub const CHECK_YOUR_EMAIL: &str = "check your email: we sent a link to confirm your address. Your account exists once you open it.";

/// `POST /api/v1/auth/register`
///
/// Without an invite token the answer is the same whether the address is free
/// or taken, and the same work is done either way (the auth key is hashed):
/// a free address gets a confirmation link and a pending registration (no
/// account, so it cannot sign in); the owner of a taken address gets an email
/// saying someone tried to register with it. With an invite token addressed
/// to the email, the invite mail has proven the address: the account is
/// created, confirmed, and signed in at once.
pub async fn register(req: HttpRequest, state: web::Data<AppState>, body: web::Json<RegisterRequest>) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let attempt = state.limiter.begin_registration(client_ip(&req, &state)).map_err(limited)?;
    state.limiter.kept(attempt).await;

    let email = validate::email(&body.email)?;
    let display_name = validate::name("display_name", &body.display_name)?;
    validate::bytes_exact("salt", &body.salt, 16)?;
    validate::bytes_exact("auth_key", &body.auth_key, 32)?;
    validate::bytes_exact("kit_auth", &body.kit_auth, 32)?;
    check_keys(&body.keys)?;

    // An invite token, if given, must be valid and addressed to this email.
    let invite = match &body.invite_token {
        Some(t) => Some(crate::practices::usable_invite(&state, t, &email).await?),
        None => None,
    };

    let t = now();
    let user = UserRecord {
        id: UserId(uuid::Uuid::from_slice(&random_bytes(16)?).map_err(ApiError::internal)?),
        email,
        display_name,
        salt: body.salt.0,
        auth_verifier: hash_auth_key(body.auth_key.0).await?,
        kit_verifier: sha256(&body.kit_auth.0),
        sign_pub: body.keys.sign_pub.0,
        hpke_pub: body.keys.hpke_pub.0,
        wrapped_by_password: body.keys.wrapped_by_password.0,
        wrapped_by_kit: body.keys.wrapped_by_kit.0,
        is_staff: false,
        created_at: t,
        email_confirmed_at: None,
    };
    let Some(inv) = invite else { return register_pending(&state, user).await };
    // Only the mailbox's owner holds the invite token, so telling them the
    // address is taken reveals nothing they could not read in their mail.
    let user = UserRecord { email_confirmed_at: Some(t), ..user };
    state.store.create_user(user.clone()).await?;
    state.store.accept_invite(&inv.token_hash, user.id, t).await?;
    crate::audit::record(&state, Some(&req), crate::audit::invite_accepted(&inv, user.id)).await?;
    tracing::info!(user = %user.id, "account registered through an invite");
    let session = new_session(&req, &state, &user).await?;
    Ok(session_response(actix_web::http::StatusCode::CREATED, RegisterResponse::SignedIn(session.1), session.0))
}

/// A registration without an invite: a pending registration and a
/// confirmation link for a free address, a notice for a taken one; the same
/// answer either way.
async fn register_pending(state: &AppState, user: UserRecord) -> ApiResult<HttpResponse> {
    let ttl = state.config.registration_ttl_secs;
    let url = state.config.public_url();
    if state.store.user_by_email(&user.email).await?.is_some() {
        let text = format!(
            "Someone tried to create a Handoff account with this email address. You already have an account, \
             so nothing was changed.\n\nIf it was you, sign in at {url}/login. If you forgot your password, \
             reset it there with your Emergency Access Kit.\n\nIf it was not you, you can ignore this email.\n"
        );
        state.send_mail(&user.email, "You already have a Handoff account", text).await?;
        tracing::info!("registration for a taken address: owner notified");
    } else {
        let token = random_token()?;
        let expires_at = user.created_at + (ttl as i64) * 1000;
        let email = user.email.clone();
        state.store.create_pending_registration(PendingRegistration { token_hash: sha256(token.as_bytes()), user, expires_at }).await?;
        let hours = ttl / 3600;
        let text = format!(
            "Someone, hopefully you, asked to create a Handoff account with this email address.\n\n\
             Open this link to confirm your address and finish creating the account:\n\n{url}/confirm/{token}\n\n\
             The link works once and expires in {hours} hours. If you did not ask for an account, ignore this email: \
             without the link no account is created.\n"
        );
        state.send_mail(&email, "Confirm your email address for Handoff", text).await?;
        tracing::info!("registration pending confirmation");
    }
    Ok(HttpResponse::Accepted()
        .insert_header(("Cache-Control", "no-store"))
        .json(RegisterResponse::ConfirmationSent { message: CHECK_YOUR_EMAIL.into(), expires_in_secs: ttl }))
}

/// `POST /api/v1/account/confirm`: the emailed link's token creates the
/// account (the first confirmation of an address wins) and signs it in.
/// Every token that confirms nothing (unknown, used, expired, or for an
/// address confirmed since) gets the same `confirmation_invalid` answer.
pub async fn confirm(req: HttpRequest, state: web::Data<AppState>, body: web::Json<ConfirmRequest>) -> ApiResult<HttpResponse> {
    validate::bytes_exact("auth_key", &body.auth_key, 32)?;
    // The link alone is not enough: whoever opens it must also know the
    // password the registration was made with. Otherwise an owner who opens a
    // link a stranger's registration sent them would confirm the stranger's
    // account (the stranger's keys and password) under their own address.
    let proof = pending_proof(&state, &body.token).await?;
    if !verify_auth_key(proof.auth_verifier, body.auth_key.0.clone()).await? {
        return Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "that is not the password this registration was made with. If you did not ask for a Handoff account, ignore the link: \
             without its password nothing is created",
        ));
    }
    let id = UserId(uuid::Uuid::from_slice(&random_bytes(16)?).map_err(ApiError::internal)?);
    let user = match state.store.confirm_registration(&sha256(body.token.as_bytes()), id, now()).await {
        Ok(u) => u,
        Err(UserError::EmailTaken) => return Err(UserError::NoSuchRegistration.into()),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user = %user.id, "account registered and confirmed");
    start_session(&req, &state, &user, actix_web::http::StatusCode::CREATED).await
}

/// The proof of the unexpired pending registration a link's token names.
async fn pending_proof(state: &AppState, token: &str) -> ApiResult<handoff_store::PendingProof> {
    if token.is_empty() || token.len() > 128 {
        return Err(UserError::NoSuchRegistration.into());
    }
    state.store.pending_proof(&sha256(token.as_bytes()), now()).await?.ok_or_else(|| UserError::NoSuchRegistration.into())
}

/// `POST /api/v1/account/confirm/params`: the salt (and stretching
/// parameters) of the registration a link's token names, so the page the
/// link opens can prove the registration's password.
pub async fn confirm_params(state: web::Data<AppState>, body: web::Json<ConfirmParamsRequest>) -> ApiResult<HttpResponse> {
    let proof = pending_proof(&state, &body.token).await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(kdf_params(proof.salt)))
}

/// `POST /api/v1/auth/login`: a session, or, for an account with two-factor
/// sign-in on, a pending-login token for `POST /auth/2fa` (no session yet).
pub async fn login(req: HttpRequest, state: web::Data<AppState>, body: web::Json<LoginRequest>) -> ApiResult<HttpResponse> {
    let email = validate::email(&body.email)?;
    validate::bytes_exact("auth_key", &body.auth_key, 32)?;
    // Counted before the work: attempts in flight hold their slots.
    let attempt = state.limiter.begin_check(Check::Login, &email, client_ip(&req, &state)).map_err(limited)?;

    let user = state.store.user_by_email(&email).await?;
    let ok = match &user {
        Some(u) => verify_auth_key(u.auth_verifier.clone(), body.auth_key.0.clone()).await?,
        None => {
            // Same work as a real check, so timing does not reveal unknown accounts.
            let _ = hash_auth_key(body.auth_key.0.clone()).await?;
            false
        }
    };
    match (ok, user) {
        (true, Some(u)) => {
            state.limiter.succeeded(attempt).await;
            if crate::two_factor::enabled(&state, u.id).await?.is_some() {
                // The password was right, but no session exists until the code is given
                // (the sign-in is recorded at `POST /auth/2fa`).
                let challenge = crate::two_factor::pending_login(&state, u.id).await?;
                return Ok(HttpResponse::Ok()
                    .insert_header(("Cache-Control", "no-store"))
                    .json(handoff_protocol::two_factor::LoginResponse::SecondFactor(challenge)));
            }
            crate::audit::record_account(&state, &req, AuditAction::SignIn, u.id).await?;
            start_session(&req, &state, &u, actix_web::http::StatusCode::OK).await
        }
        (_, user) => {
            state.limiter.kept(attempt).await;
            if let Some(u) = user {
                crate::audit::record_account(&state, &req, AuditAction::SignInFailed, u.id).await?;
            }
            Err(ApiError::new(ErrorCode::InvalidCredentials, LOST_ACCESS_NOTICE))
        }
    }
}

/// `POST /api/v1/auth/logout`: ends this session.
pub async fn logout(req: HttpRequest, state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    crate::sessions::end(&state, &who.token_hash).await?;
    crate::audit::record_account(&state, &req, AuditAction::SignOut, who.user.id).await?;
    let gone = Cookie::build(COOKIE, "").path("/").http_only(true).same_site(SameSite::Strict).max_age(CookieDuration::ZERO).finish();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

/// `GET /api/v1/me`
pub async fn me(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(me_of(&state, &who.user)))
}

async fn check_kit(req: &HttpRequest, state: &AppState, email: &str, kit_auth: &B64) -> ApiResult<UserRecord> {
    validate::bytes_exact("kit_auth", kit_auth, 32)?;
    // Counted before the store read: attempts in flight hold their slots.
    let attempt = state.limiter.begin_check(Check::Kit, email, client_ip(req, state)).map_err(limited)?;
    let user = state.store.user_by_email(email).await?;
    match user {
        Some(u) if ct_eq(&u.kit_verifier, &sha256(&kit_auth.0)) => {
            state.limiter.succeeded(attempt).await;
            Ok(u)
        }
        _ => {
            state.limiter.kept(attempt).await;
            Err(ApiError::new(
                ErrorCode::InvalidRecoveryKit,
                "that Emergency Access Kit does not match this account; every word must be in its numbered position",
            ))
        }
    }
}

/// `POST /api/v1/auth/recover/start`: the kit-sealed keys, for a proven kit
/// (and, with two-factor sign-in on, a right code or recovery code).
pub async fn recover_start(req: HttpRequest, state: web::Data<AppState>, body: web::Json<RecoverStartRequest>) -> ApiResult<HttpResponse> {
    let email = validate::email(&body.email)?;
    let u = check_kit(&req, &state, &email, &body.kit_auth).await?;
    // With two-factor sign-in on, the kit alone is not enough: a stolen kit
    // neither resets the password nor receives the kit-sealed keys.
    let second_factor_token = match crate::two_factor::enabled(&state, u.id).await? {
        None => None,
        Some(t) => {
            if body.code.is_none() && body.recovery_code.is_none() {
                return Err(ApiError::new(
                    ErrorCode::SecondFactorNeeded,
                    "this account has two-factor sign-in on: give a code from your authenticator app or a recovery code with the kit",
                ));
            }
            crate::two_factor::check_factor(&req, &state, &u, &t, body.code.as_deref(), body.recovery_code.as_deref()).await?;
            Some(crate::two_factor::recovery_proof(&state, u.id).await?)
        }
    };
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(RecoverStartResponse {
        user_id: u.id,
        wrapped_by_kit: B64(u.wrapped_by_kit),
        second_factor_token,
    }))
}

/// `POST /api/v1/auth/recover/finish`: new password, all sessions revoked, new session.
pub async fn recover_finish(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RecoverFinishRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let email = validate::email(&body.email)?;
    validate::bytes_exact("salt", &body.salt, 16)?;
    validate::bytes_exact("auth_key", &body.auth_key, 32)?;
    validate::bytes_range("wrapped_by_password", &body.wrapped_by_password, 41, 1024)?;
    let u = check_kit(&req, &state, &email, &body.kit_auth).await?;
    if crate::two_factor::enabled(&state, u.id).await?.is_some() {
        crate::two_factor::check_recovery_proof(&state, u.id, body.second_factor_token.as_deref()).await?;
    }
    state
        .store
        .reset_password(
            u.id,
            PasswordChange {
                salt: body.salt.0,
                auth_verifier: hash_auth_key(body.auth_key.0).await?,
                wrapped_by_password: body.wrapped_by_password.0,
                now: now(),
            },
        )
        .await?;
    state.limiter.forget_login_failures(&email, client_ip(&req, &state)).await;
    crate::audit::record_account(&state, &req, AuditAction::KitReset, u.id).await?;
    tracing::info!(user = %u.id, "password reset with the Emergency Access Kit");
    // The reset revoked every session in the store: close their sockets now.
    state.sessions.ended_for_user(u.id);
    let u = state.store.user_by_id(u.id).await?.ok_or_else(|| ApiError::internal("user vanished during reset"))?;
    start_session(&req, &state, &u, actix_web::http::StatusCode::OK).await
}
