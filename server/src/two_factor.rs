//! Two-factor sign-in: TOTP (RFC 6238) with `totp-rs`, single-use recovery
//! codes, the pending-login step, and a practice's requirement.
//!
//! - **Parameters.** SHA-1, 6 digits, 30-second steps: the only set every
//!   authenticator app supports. A code is checked against the steps
//!   before, at and after now (±1 step, so ±30 s of clock drift).
//! - **Each code once.** The store keeps the last step a code was accepted
//!   for and accepts only later steps (compare-and-set), so a code seen over
//!   a shoulder or replayed is refused, even within its window.
//! - **Rate-limited.** Every code or recovery code attempt takes its slots in
//!   the server's one limiter ([`Check::SecondFactor`]) before it is
//!   checked: the password's limits per address (5 failures per account and
//!   address), and a lower ceiling per account from every address
//!   (`second_factor_failures_per_account_total`, 20 per window).
//! - **The secret.** The TOTP secret is an authentication secret the server
//!   holds to check codes; it is not an encryption key and opens no data.
//!   It is stored sealed (XChaCha20-Poly1305, bound to the user id) under a
//!   key kept in its own file in the data folder (`two_factor.key`), so a
//!   copy of the database alone does not reveal it.
//! - **Recovery codes.** Ten random codes of 80 bits each, shown once at
//!   enrollment and stored as SHA-256 (80 bits of entropy need no slow hash);
//!   each works once, in place of a code.
//! - **Pending sign-in.** A right password for an account with two-factor
//!   sign-in on yields no session, only a pending-login token: an HMAC over
//!   its purpose, the user and its expiry (5 minutes), under the same key
//!   file. `POST /auth/2fa` with it and a code makes the session. A kit
//!   reset of such an account needs a code too (`recover/start`), and its
//!   proof (a token of another purpose, 10 minutes) for `recover/finish`.

use std::io::Write as _;
use std::path::Path;

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, Payload};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use totp_rs::{Algorithm, Builder, Secret, Totp};

use handoff_protocol::audit::AuditAction;
use handoff_protocol::two_factor::*;
use handoff_protocol::{ErrorCode, PracticeId, UserId};
use handoff_store::{RecoveryCodeUse, TotpRecord, UserRecord};

use crate::auth::Authed;
use crate::error::{ApiError, ApiResult};
use crate::ratelimit::Check;
use crate::state::{AppState, ct_eq, now, random_bytes, sha256};

/// How long a pending-login token works, in milliseconds.
pub const PENDING_LOGIN_MS: i64 = 5 * 60 * 1000;
/// How long the proof of a factor given to `recover/start` works, in milliseconds.
pub const RECOVERY_PROOF_MS: i64 = 10 * 60 * 1000;
/// The TOTP step, in seconds.
pub const STEP_SECS: u64 = 30;
/// The file in the data folder that holds the two-factor key.
pub const KEY_FILE: &str = "two_factor.key";
/// The issuer an authenticator app shows.
pub const ISSUER: &str = "Handoff";

const SECRET_LEN: usize = 20;
const RECOVERY_CODE_BYTES: usize = 10;
const TOKEN_LEN: usize = 1 + 16 + 8 + 32;

/// What a signed token proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Purpose {
    /// The password of a sign-in was right; the code is still to come.
    PendingLogin = 1,
    /// `recover/start` was given a right second factor.
    RecoveryProof = 2,
}

/// The keys the two-factor code derives from the key file.
struct Keys {
    seal: [u8; 32],
    token: [u8; 32],
}

fn derive(root: &[u8], label: &[u8]) -> ApiResult<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(root).map_err(ApiError::internal)?;
    mac.update(label);
    Ok(mac.finalize().into_bytes().into())
}

/// Reads the key file, creating it (32 random bytes, owner-only) on first use.
/// It is written under a temporary name and linked into place, which fails if
/// another writer won, so every reader sees the same whole key.
fn root_key(dir: &Path) -> ApiResult<Vec<u8>> {
    let path = dir.join(KEY_FILE);
    if let Ok(k) = std::fs::read(&path)
        && k.len() == 32
    {
        return Ok(k);
    }
    std::fs::create_dir_all(dir).map_err(ApiError::internal)?;
    let tmp = dir.join(format!("{KEY_FILE}.{}", hex(&random_bytes(8)?)));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(ApiError::internal)?;
        f.write_all(&random_bytes(32)?).map_err(ApiError::internal)?;
        f.sync_all().map_err(ApiError::internal)?;
    }
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(ApiError::internal(e)),
    }
    let k = std::fs::read(&path).map_err(ApiError::internal)?;
    if k.len() == 32 { Ok(k) } else { Err(ApiError::internal(format!("{KEY_FILE} is not 32 bytes"))) }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn keys(state: &AppState) -> ApiResult<Keys> {
    let dir = state.config.data.clone();
    let root = web::block(move || root_key(&dir)).await.map_err(ApiError::internal)??;
    Ok(Keys { seal: derive(&root, b"handoff two-factor secret seal v1")?, token: derive(&root, b"handoff two-factor tokens v1")? })
}

fn seal(k: &Keys, user: UserId, secret: &[u8]) -> ApiResult<Vec<u8>> {
    let nonce: [u8; 24] = random_bytes(24)?.try_into().map_err(|_| ApiError::internal("nonce length"))?;
    let ct = XChaCha20Poly1305::new(&k.seal.into())
        .encrypt(&nonce.into(), Payload { msg: secret, aad: user.as_bytes() })
        .map_err(|_| ApiError::internal("sealing the TOTP secret failed"))?;
    Ok([nonce.as_slice(), &ct].concat())
}

fn open(k: &Keys, user: UserId, sealed: &[u8]) -> ApiResult<Vec<u8>> {
    let (nonce, ct) = sealed.split_at_checked(24).ok_or_else(|| ApiError::internal("sealed TOTP secret too short"))?;
    let nonce: [u8; 24] = nonce.try_into().map_err(|_| ApiError::internal("nonce length"))?;
    XChaCha20Poly1305::new(&k.seal.into())
        .decrypt(&nonce.into(), Payload { msg: ct, aad: user.as_bytes() })
        .map_err(|_| ApiError::internal("the TOTP secret does not open under the two-factor key (was two_factor.key replaced?)"))
}

/// The TOTP of a secret, for an account name (the email).
pub fn totp(secret: Vec<u8>, account: &str) -> ApiResult<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP_SECS)
        .with_secret(Secret::from(secret))
        .with_account_name(account.replace(':', "_"))
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(ApiError::internal)
}

/// Signs a token of `purpose` for `user`, valid until `expires_at`.
fn sign(k: &Keys, purpose: Purpose, user: UserId, expires_at: i64) -> ApiResult<String> {
    let mut body = Vec::with_capacity(TOKEN_LEN);
    body.push(purpose as u8);
    body.extend_from_slice(user.as_bytes());
    body.extend_from_slice(&expires_at.to_be_bytes());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&k.token).map_err(ApiError::internal)?;
    mac.update(&body);
    body.extend_from_slice(&mac.finalize().into_bytes());
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body))
}

/// The user a token of `purpose` names, if it is genuine and unexpired.
fn verify(k: &Keys, purpose: Purpose, token: &str) -> Option<UserId> {
    if token.len() > 128 {
        return None;
    }
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
    if raw.len() != TOKEN_LEN {
        return None;
    }
    let (body, tag) = raw.split_at_checked(TOKEN_LEN - 32)?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&k.token).ok()?;
    mac.update(body);
    if !ct_eq(&mac.finalize().into_bytes(), tag) {
        return None;
    }
    let (&p, rest) = body.split_first()?;
    let (uid, exp) = rest.split_at_checked(16)?;
    let expires_at = i64::from_be_bytes(exp.try_into().ok()?);
    (p == purpose as u8 && expires_at > now()).then(|| UserId::from_bytes(uid.try_into().unwrap_or([0; 16])))
}

/// A pending-login token for `user`, and when it expires.
pub async fn pending_login(state: &AppState, user: UserId) -> ApiResult<SecondFactorChallenge> {
    let expires_at = now() + PENDING_LOGIN_MS;
    let pending_token = sign(&keys(state).await?, Purpose::PendingLogin, user, expires_at)?;
    Ok(SecondFactorChallenge { second_factor: "totp".into(), pending_token, expires_at })
}

/// The proof, for `recover/finish`, that `recover/start` was given a right factor.
pub async fn recovery_proof(state: &AppState, user: UserId) -> ApiResult<String> {
    sign(&keys(state).await?, Purpose::RecoveryProof, user, now() + RECOVERY_PROOF_MS)
}

/// Whether `token` proves a right factor given to `recover/start` for `user`.
pub async fn check_recovery_proof(state: &AppState, user: UserId, token: Option<&str>) -> ApiResult<()> {
    let k = keys(state).await?;
    match token.and_then(|t| verify(&k, Purpose::RecoveryProof, t)) {
        Some(u) if u == user => Ok(()),
        _ => Err(ApiError::new(
            ErrorCode::SecondFactorNeeded,
            "this account has two-factor sign-in on: start the reset again with a code or a recovery code",
        )),
    }
}

/// The user's two-factor state if it is on.
pub async fn enabled(state: &AppState, user: UserId) -> ApiResult<Option<TotpRecord>> {
    Ok(state.store.totp(user).await?.filter(|t| t.enabled_at.is_some()))
}

fn wrong_code() -> ApiError {
    ApiError::new(
        ErrorCode::TwoFactorCodeWrong,
        "that code is wrong, was used already, or has expired; wait for the next code from your authenticator app",
    )
}

/// A code as typed: six digits, spaces allowed.
fn code_digits(raw: &str) -> ApiResult<String> {
    let c: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()) {
        Ok(c)
    } else {
        Err(ApiError::invalid("code: the six digits your authenticator app shows"))
    }
}

/// A recovery code as typed, normalised: base32 letters and digits, without
/// dashes or spaces, upper-cased.
fn recovery_normal(raw: &str) -> ApiResult<String> {
    let c: String = raw.chars().filter(|c| !c.is_whitespace() && *c != '-').collect::<String>().to_ascii_uppercase();
    if c.len() == 16 && c.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)) {
        Ok(c)
    } else {
        Err(ApiError::invalid("recovery_code: one of your ten recovery codes, like ABCD-EFGH-IJKL-MNOP"))
    }
}

/// Which factor a request gives: exactly one.
enum Factor {
    Code(String),
    Recovery(String),
}

fn factor(code: Option<&str>, recovery: Option<&str>) -> ApiResult<Factor> {
    match (code, recovery) {
        (Some(c), None) => Ok(Factor::Code(code_digits(c)?)),
        (None, Some(r)) => Ok(Factor::Recovery(recovery_normal(r)?)),
        _ => Err(ApiError::invalid("give exactly one of code or recovery_code")),
    }
}

/// Checks a second factor for `user`, whose state is `t`: rate-limited first,
/// then a code must match a step within ±1 that is later than the last used
/// one (and that step is then used), or a recovery code must be unused (and
/// is then used). When `confirming` an enrollment, `t` holds the new secret
/// and the matching step is returned instead of used (enabling records it).
async fn check(
    req: &HttpRequest,
    state: &AppState,
    user: &UserRecord,
    t: &TotpRecord,
    f: Factor,
    confirming: bool,
) -> ApiResult<Option<i64>> {
    let addr = crate::auth::client_ip(req, state);
    let attempt = state.limiter.begin_check(Check::SecondFactor, &user.id.to_string(), addr).map_err(crate::auth::limited)?;
    let outcome = async {
        match f {
            Factor::Code(c) => {
                let secret = open(&keys(state).await?, user.id, &t.sealed_secret)?;
                let secs = u64::try_from(now() / 1000).map_err(ApiError::internal)?;
                let step = totp(secret, &user.email)?.check(&c, secs).ok_or_else(wrong_code)?;
                let step = i64::try_from(step).map_err(ApiError::internal)?;
                if confirming {
                    return Ok(Some(step));
                }
                if state.store.use_totp_step(user.id, step).await? { Ok(None) } else { Err(wrong_code()) }
            }
            Factor::Recovery(r) => {
                if confirming {
                    return Err(ApiError::invalid("code: confirm the enrollment with a code from the new secret"));
                }
                match state.store.use_recovery_code(user.id, &sha256(r.as_bytes()), now()).await? {
                    RecoveryCodeUse::Accepted => {
                        crate::audit::record_account(state, req, AuditAction::RecoveryCodeUsed, user.id).await?;
                        Ok(None)
                    }
                    RecoveryCodeUse::AlreadyUsed => {
                        Err(ApiError::new(ErrorCode::RecoveryCodeUsed, "that recovery code was used before; each works once. Use another"))
                    }
                    RecoveryCodeUse::Unknown => Err(wrong_code()),
                }
            }
        }
    }
    .await;
    match &outcome {
        Ok(_) => state.limiter.succeeded(attempt).await,
        Err(_) => state.limiter.kept(attempt).await,
    }
    outcome
}

/// Checks the factor a request gives for `user` (two-factor sign-in on, state `t`).
pub async fn check_factor(
    req: &HttpRequest,
    state: &AppState,
    user: &UserRecord,
    t: &TotpRecord,
    code: Option<&str>,
    recovery: Option<&str>,
) -> ApiResult<()> {
    check(req, state, user, t, factor(code, recovery)?, false).await.map(|_| ())
}

/// `GET /api/v1/account/2fa`
pub async fn status(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    let t = enabled(&state, who.user.id).await?;
    let body = TwoFactorStatus { enabled: t.is_some(), recovery_codes_left: t.map_or(0, |t| t.recovery_codes_left) };
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(body))
}

/// `POST /api/v1/account/2fa/start`: a new secret, sealed and stored as an
/// enrollment waiting for its first code.
pub async fn start(state: web::Data<AppState>, who: Authed) -> ApiResult<HttpResponse> {
    let secret = random_bytes(SECRET_LEN)?;
    let t = totp(secret.clone(), &who.user.email)?;
    let sealed = seal(&keys(&state).await?, who.user.id, &secret)?;
    state.store.start_totp(who.user.id, sealed, now()).await?;
    let body = TwoFactorEnrollment { secret: t.secret().to_base32(), otpauth_uri: t.to_url().map_err(ApiError::internal)? };
    tracing::info!(user = %who.user.id, "two-factor enrollment started");
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(body))
}

/// A recovery code: 80 random bits in base32, as four groups of four.
fn recovery_code() -> ApiResult<String> {
    let raw = Secret::from(random_bytes(RECOVERY_CODE_BYTES)?).to_base32();
    let groups: Vec<String> = raw.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    Ok(groups.join("-"))
}

/// `POST /api/v1/account/2fa/confirm`: one code from the new secret turns
/// two-factor sign-in on; the ten recovery codes are answered this once.
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    body: web::Json<SecondFactorProof>,
) -> ApiResult<HttpResponse> {
    let f = match (&body.code, &body.recovery_code) {
        (Some(c), None) => Factor::Code(code_digits(c)?),
        _ => return Err(ApiError::invalid("code: confirm the enrollment with the six digits of a code from the new secret")),
    };
    let t = match state.store.totp(who.user.id).await? {
        Some(t) if t.enabled_at.is_some() => return Err(handoff_store::UserError::TotpEnabled.into()),
        Some(t) => t,
        None => return Err(ApiError::new(ErrorCode::Conflict, "no enrollment is waiting; start one first")),
    };
    let step = check(&req, &state, &who.user, &t, f, true).await?.ok_or_else(|| ApiError::internal("no step"))?;
    let codes = (0..RECOVERY_CODES).map(|_| recovery_code()).collect::<ApiResult<Vec<_>>>()?;
    let hashes = codes.iter().map(|c| recovery_normal(c).map(|n| sha256(n.as_bytes()))).collect::<ApiResult<Vec<_>>>()?;
    state.store.enable_totp(who.user.id, step, hashes, now()).await?;
    crate::audit::record_account(&state, &req, AuditAction::TwoFactorEnabled, who.user.id).await?;
    tracing::info!(user = %who.user.id, "two-factor sign-in turned on");
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(RecoveryCodes { codes }))
}

/// `POST /api/v1/account/2fa/disable`: a code or a recovery code turns it off.
pub async fn disable(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    body: web::Json<SecondFactorProof>,
) -> ApiResult<HttpResponse> {
    let f = factor(body.code.as_deref(), body.recovery_code.as_deref())?;
    let t = enabled(&state, who.user.id).await?.ok_or(handoff_store::UserError::NoTotp)?;
    check(&req, &state, &who.user, &t, f, false).await?;
    state.store.disable_totp(who.user.id).await?;
    crate::audit::record_account(&state, &req, AuditAction::TwoFactorDisabled, who.user.id).await?;
    // Practices that require two-factor sign-in hold the user back from now on: cut their live streams there.
    for (p, _) in state.store.practices_of(who.user.id).await? {
        if state.store.two_factor_missing(p.id, who.user.id).await? {
            state.hub.end_access(p.id).await;
        }
    }
    tracing::info!(user = %who.user.id, "two-factor sign-in turned off");
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/auth/2fa`: the pending-login token and a code (or a
/// recovery code) make the session.
pub async fn sign_in(req: HttpRequest, state: web::Data<AppState>, body: web::Json<SecondFactorLogin>) -> ApiResult<HttpResponse> {
    let f = factor(body.code.as_deref(), body.recovery_code.as_deref())?;
    let needed =
        || ApiError::new(ErrorCode::SecondFactorNeeded, "this sign-in has expired or is not one; sign in with your password again");
    let uid = verify(&keys(&state).await?, Purpose::PendingLogin, &body.pending_token).ok_or_else(needed)?;
    let user = state.store.user_by_id(uid).await?.ok_or_else(needed)?;
    let t = enabled(&state, uid).await?.ok_or_else(needed)?;
    if let Err(e) = check(&req, &state, &user, &t, f, false).await {
        if e.code != ErrorCode::RateLimited {
            crate::audit::record_account(&state, &req, AuditAction::SignInFailed, uid).await?;
        }
        return Err(e);
    }
    crate::audit::record_account(&state, &req, AuditAction::SignIn, uid).await?;
    tracing::info!(user = %uid, "signed in with a second factor");
    crate::auth::start_session(&req, &state, &user, actix_web::http::StatusCode::OK).await
}

/// `PUT /api/v1/practices/{id}/require-2fa` (admins only). An admin must have
/// two-factor sign-in on to require it, so the requirement never locks out
/// the admin who set it.
pub async fn require(
    req: HttpRequest,
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<PracticeId>,
    body: web::Json<RequireTwoFactor>,
) -> ApiResult<HttpResponse> {
    crate::practices::admin_of(&state, *id, &who).await?;
    if body.required && enabled(&state, who.user.id).await?.is_none() {
        return Err(ApiError::new(
            ErrorCode::TwoFactorRequired,
            "turn on two-factor sign-in for yourself first (settings, Two-factor sign-in), then require it of the practice",
        ));
    }
    state.store.set_require_two_factor(*id, body.required).await?;
    let changed = crate::audit::Event::new(AuditAction::PracticeTwoFactorChanged, Some(who.user.id), Some(*id));
    crate::audit::record(&state, Some(&req), changed.target(if body.required { "required" } else { "not_required" })).await?;
    if body.required {
        // Members without two-factor sign-in lose the practice now: their live streams are cut at once.
        state.hub.end_access(*id).await;
    }
    tracing::info!(practice = %*id, required = body.required, "practice two-factor requirement set");
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: u8) -> Keys {
        Keys { seal: [n; 32], token: [n.wrapping_add(1); 32] }
    }

    fn user(n: u8) -> UserId {
        UserId::from_bytes([n; 16])
    }

    #[test]
    fn a_token_proves_only_its_own_purpose_and_user_until_it_expires() {
        let k = keys(1);
        let later = now() + 60_000;
        let pending = sign(&k, Purpose::PendingLogin, user(7), later).unwrap();
        assert_eq!(verify(&k, Purpose::PendingLogin, &pending), Some(user(7)));
        assert_eq!(verify(&k, Purpose::RecoveryProof, &pending), None, "a pending sign-in is no reset proof");
        assert_eq!(verify(&keys(2), Purpose::PendingLogin, &pending), None, "another server's key");
        let expired = sign(&k, Purpose::PendingLogin, user(7), now() - 1).unwrap();
        assert_eq!(verify(&k, Purpose::PendingLogin, &expired), None);
        // One flipped byte anywhere breaks it.
        let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&pending).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 1;
            let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw);
            assert_eq!(verify(&k, Purpose::PendingLogin, &t), None, "byte {i}");
            raw[i] ^= 1;
        }
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_under_its_key() {
        let k = keys(3);
        let sealed = seal(&k, user(1), b"twenty bytes secret!").unwrap();
        assert!(!sealed.windows(20).any(|w| w == b"twenty bytes secret!"));
        assert_eq!(open(&k, user(1), &sealed).unwrap(), b"twenty bytes secret!");
        assert!(open(&k, user(2), &sealed).is_err(), "bound to the user id: a row copied to another user does not open");
        assert!(open(&keys(4), user(1), &sealed).is_err());
        assert!(open(&k, user(1), &sealed[..10]).is_err());
    }

    #[test]
    fn recovery_codes_are_four_groups_of_base32_that_normalise_back() {
        let c = recovery_code().unwrap();
        assert_eq!(c.len(), 19, "{c}");
        assert_eq!(c.matches('-').count(), 3, "{c}");
        let n = recovery_normal(&c).unwrap();
        assert_eq!(recovery_normal(&c.to_lowercase().replace('-', " ")).unwrap(), n);
        assert!(recovery_normal("ABCD-EFGH-IJKL-MNO1").is_err(), "1 is not base32");
        assert!(code_digits("12 34 56").is_ok());
        assert!(code_digits("1234567").is_err());
    }
}
