//! A native Handoff client. It does exactly what the browser does: stretch the
//! password locally, keep the KEK and private keys in memory, send only the
//! auth key and sealed blobs. Integration tests and load tests drive the server
//! through it.
//!
//! Key handling: private keys live in [`Identity`] for the session; practice
//! keys are opened on demand from grants.
//!
//! Every API call goes through [`Client::call`] with an endpoint type from
//! `handoff_protocol::api`; no path is written here.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod live;
pub mod mls;
pub mod referrals;

use handoff_crypto::keys::UserSecrets;
use handoff_crypto::practice::verify_practice_public_key;
use handoff_crypto::{CryptoError, EmergencyKit, PasswordKeys, PracticeKey};
use handoff_protocol::api::*;
use handoff_protocol::v1::*;
use handoff_protocol::{B64, ErrorBody, PracticeId, UnixMillis, UserId};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Every way a client call can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with a documented error.
    #[error("{status}: {} ({})", body.error, body.message)]
    Api {
        /// HTTP status.
        status: u16,
        /// The error body.
        body: ErrorBody,
    },
    /// Local cryptography failed (wrong kit, tampered data...).
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// Transport failure.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// The server said something this client cannot understand or trust.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The call needs a signed-in client.
    #[error("not signed in")]
    NotSignedIn,
    /// The password was right, but the account has two-factor sign-in on:
    /// sign in with [`Client::login_with_code`] (or a recovery code), or reset
    /// with [`Client::recover_with_code`].
    #[error("two-factor sign-in is on: a code from the authenticator app (or a recovery code) is needed")]
    SecondFactorNeeded,
}

/// A second factor, for sign-in, a kit reset, or turning two-factor sign-in off.
#[derive(Clone, Copy, Debug)]
pub enum SecondFactor<'a> {
    /// The six digits the authenticator app shows.
    Code(&'a str),
    /// One unused recovery code.
    RecoveryCode(&'a str),
}

impl SecondFactor<'_> {
    fn parts(self) -> (Option<String>, Option<String>) {
        match self {
            SecondFactor::Code(c) => (Some(c.to_string()), None),
            SecondFactor::RecoveryCode(r) => (None, Some(r.to_string())),
        }
    }
}

impl ClientError {
    /// The API error code, if this is an API error.
    pub fn code(&self) -> Option<handoff_protocol::ErrorCode> {
        match self {
            ClientError::Api { body, .. } => Some(body.error),
            _ => None,
        }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, ClientError>;

/// The signed-in user with their unlocked private keys.
#[derive(Debug)]
pub struct Identity {
    /// The account as the server describes it.
    pub me: Me,
    /// The private keys, unwrapped locally.
    pub secrets: UserSecrets,
}

/// A client for one server and (at most) one signed-in user.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    identity: Option<Identity>,
    /// The private keys and auth key of a registration waiting for its emailed link.
    pending: Option<(UserSecrets, B64)>,
    mls: handoff_client_core::Mls,
}

/// A raw HTTP answer, for tests of bad input.
#[derive(Debug)]
pub struct RawResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The response headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body text.
    pub body: String,
}

/// Stretches `password` with the server's parameters (login, or the
/// registration a confirmation link names), refusing any KDF but Argon2id.
fn stretch(params: &KdfParams, password: &str) -> Result<PasswordKeys> {
    if params.alg != "argon2id" {
        return Err(ClientError::Protocol(format!("unsupported KDF {}", params.alg)));
    }
    Ok(PasswordKeys::derive_with(password, params.salt.as_slice(), params.m_kib, params.t, params.p)?)
}

impl RawResponse {
    /// The body as an error body, if it is one.
    pub fn error(&self) -> Option<ErrorBody> {
        serde_json::from_str(&self.body).ok()
    }
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.into().trim_end_matches('/').to_string(),
            token: None,
            identity: None,
            pending: None,
            mls: Default::default(),
        }
    }

    /// The signed-in identity.
    pub fn identity(&self) -> Result<&Identity> {
        self.identity.as_ref().ok_or(ClientError::NotSignedIn)
    }

    /// The signed-in user's id.
    pub fn user_id(&self) -> Result<UserId> {
        Ok(self.identity()?.me.id)
    }

    /// The session token (for WebSocket auth and tests).
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Replaces the session token (tests of expired or foreign sessions).
    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    /// Calls endpoint `E`: the one way this client reaches the API (blobs
    /// aside, see [`Client::upload_octets`]). The request travels as
    /// [`Endpoint::request`] encodes it; an error answer is [`ClientError::Api`].
    pub async fn call<E: Endpoint>(&self, path: &E::Path, request: &E::Request) -> Result<E::Response>
    where
        E::Request: Serialize,
        E::Response: DeserializeOwned,
    {
        let p = E::request(path, request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut rb = self.request(p.method, &p.path);
        if let Some(json) = p.json {
            rb = rb.header(reqwest::header::CONTENT_TYPE, "application/json").body(json);
        }
        let body = Self::answer(&p.path, rb.send().await?).await?;
        E::response(&body).map_err(|e| ClientError::Protocol(format!("{}: {e}", p.path)))
    }

    /// Uploads `bytes` as the raw body of endpoint `E` (an encrypted attachment).
    pub async fn upload_octets<E: Endpoint<Request = Octets>>(&self, path: &E::Path, bytes: Vec<u8>) -> Result<E::Response>
    where
        E::Response: DeserializeOwned,
    {
        let path = E::path(path);
        let rb = self.request(E::METHOD, &path).header(reqwest::header::CONTENT_TYPE, "application/octet-stream").body(bytes);
        let body = Self::answer(&path, rb.send().await?).await?;
        E::response(&body).map_err(|e| ClientError::Protocol(format!("{path}: {e}")))
    }

    /// Downloads the raw body endpoint `E` answers with (an encrypted attachment).
    pub async fn download_octets<E: Endpoint<Request = (), Response = Octets>>(&self, path: &E::Path) -> Result<Vec<u8>> {
        let path = E::path(path);
        Self::answer(&path, self.request(E::METHOD, &path).send().await?).await
    }

    /// A request for `path` on this server, with the session if there is one.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let method = match method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        };
        let rb = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// The body of a successful answer; an error answer as [`ClientError::Api`].
    async fn answer(path: &str, resp: reqwest::Response) -> Result<Vec<u8>> {
        answer(path, resp).await
    }

    /// Opens the live WebSocket for this session.
    pub async fn live(&self) -> Result<live::Live> {
        live::Live::connect(&self.base, self.token.as_deref().ok_or(ClientError::NotSignedIn)?).await
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends arbitrary bytes, for tests of malformed input.
    pub async fn raw(&self, method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Result<RawResponse> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut rb = self.http.request(method, format!("{}{path}", self.base)).body(body);
        if let Some(ct) = content_type {
            rb = rb.header("content-type", ct);
        }
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        let resp = rb.send().await?;
        Ok(RawResponse { status: resp.status().as_u16(), headers: resp.headers().clone(), body: resp.text().await? })
    }

    fn adopt(&mut self, s: SessionResponse, secrets: UserSecrets) -> Result<()> {
        let p = secrets.public();
        if s.user.keys.sign_pub.as_slice() != p.sign_pub || s.user.keys.hpke_pub.as_slice() != p.hpke_pub {
            return Err(ClientError::Protocol("the server's public keys do not match our private keys".into()));
        }
        self.token = Some(s.token);
        self.identity = Some(Identity { me: s.user, secrets });
        Ok(())
    }

    /// Registers an account. Returns the Emergency Access Kit's 24 words, in
    /// grid order: shown once, never stored anywhere.
    ///
    /// With an invite token the account exists and is signed in at once.
    /// Without one the server emails a confirmation link (answering the same
    /// whether the address is free or taken); this client keeps the new keys
    /// until [`confirm`](Self::confirm) is called with the link's token.
    pub async fn register(&mut self, email: &str, display_name: &str, password: &str, invite_token: Option<&str>) -> Result<Vec<String>> {
        let acct = handoff_client_core::account::new_account(email, display_name, password, invite_token.map(Into::into))?;
        let req = acct.request;
        let (secrets, words, auth_key) = (acct.secrets, acct.kit_words, req.auth_key.clone());
        match self.call::<Register>(&(), &req).await? {
            RegisterResponse::SignedIn(s) => self.adopt(s, secrets)?,
            RegisterResponse::ConfirmationSent { .. } => self.pending = Some((secrets, auth_key)),
        }
        Ok(words)
    }

    /// Whether this client's registration waits for its emailed link.
    pub fn awaiting_confirmation(&self) -> bool {
        self.pending.is_some()
    }

    /// Confirms this client's registration with the token from its emailed
    /// link, proving the registration's password with the auth key it made
    /// then: the account is created and signed in, with its keys.
    pub async fn confirm(&mut self, token: &str) -> Result<()> {
        let (secrets, auth_key) = self
            .pending
            .take()
            .ok_or_else(|| ClientError::Protocol("this client made no registration; use confirm_with_password".into()))?;
        match self.call::<ConfirmAccount>(&(), &ConfirmRequest { token: token.into(), auth_key: auth_key.clone() }).await {
            Ok(s) => self.adopt(s, secrets),
            Err(e) => {
                self.pending = Some((secrets, auth_key));
                Err(e)
            }
        }
    }

    /// Confirms a registration from its emailed link on a client that did not
    /// make it (another device, or the link opened later), with the password
    /// the registration was made with: the account is created and signed in,
    /// and its keys are unwrapped with that password.
    pub async fn confirm_with_password(&mut self, token: &str, password: &str) -> Result<()> {
        let params = self.call::<ConfirmParams>(&(), &ConfirmParamsRequest { token: token.into() }).await?;
        let pw = stretch(&params, password)?;
        let s = self.call::<ConfirmAccount>(&(), &ConfirmRequest { token: token.into(), auth_key: B64(pw.auth_key.to_vec()) }).await?;
        let secrets = UserSecrets::unwrap(&pw.kek, s.user.keys.wrapped_by_password.as_slice())?;
        self.adopt(s, secrets)
    }

    /// Signs in: fetch the salt, stretch locally, prove the auth key, unwrap the keys.
    /// An account with two-factor sign-in on fails with
    /// [`ClientError::SecondFactorNeeded`]: use [`Client::login_with_code`].
    pub async fn login(&mut self, email: &str, password: &str) -> Result<()> {
        self.login_inner(email, password, None).await
    }

    /// Signs in with the password, then, if the account has two-factor
    /// sign-in on, with `factor` (`POST /auth/2fa`). An account without it
    /// signs in with the password alone.
    pub async fn login_with_code(&mut self, email: &str, password: &str, factor: SecondFactor<'_>) -> Result<()> {
        self.login_inner(email, password, Some(factor)).await
    }

    async fn login_inner(&mut self, email: &str, password: &str, factor: Option<SecondFactor<'_>>) -> Result<()> {
        use handoff_protocol::two_factor::{LoginResponse, SecondFactorLogin};
        let params = self.call::<Prelogin>(&(), &PreloginRequest { email: email.into() }).await?;
        let pw = stretch(&params, password)?;
        let s = match self.call::<Login>(&(), &LoginRequest { email: email.into(), auth_key: B64(pw.auth_key.to_vec()) }).await? {
            LoginResponse::SignedIn(s) => s,
            LoginResponse::SecondFactor(challenge) => {
                let (code, recovery_code) = factor.ok_or(ClientError::SecondFactorNeeded)?.parts();
                let req = SecondFactorLogin { pending_token: challenge.pending_token, code, recovery_code };
                self.call::<SecondFactorSignIn>(&(), &req).await?
            }
        };
        let secrets = UserSecrets::unwrap(&pw.kek, s.user.keys.wrapped_by_password.as_slice())?;
        self.adopt(s, secrets)
    }

    /// Starts enrolling in two-factor sign-in: a new secret (base32) and its
    /// otpauth URI, not in force until [`Client::confirm_two_factor`].
    pub async fn start_two_factor(&self) -> Result<handoff_protocol::two_factor::TwoFactorEnrollment> {
        self.call::<StartTwoFactor>(&(), &()).await
    }

    /// Confirms the enrollment with a code from the new secret; answers the ten recovery codes, once.
    pub async fn confirm_two_factor(&self, code: &str) -> Result<Vec<String>> {
        let req = handoff_protocol::two_factor::SecondFactorProof { code: Some(code.into()), recovery_code: None };
        Ok(self.call::<ConfirmTwoFactor>(&(), &req).await?.codes)
    }

    /// Turns two-factor sign-in off with a code or a recovery code.
    pub async fn disable_two_factor(&self, factor: SecondFactor<'_>) -> Result<()> {
        let (code, recovery_code) = factor.parts();
        self.call::<DisableTwoFactor>(&(), &handoff_protocol::two_factor::SecondFactorProof { code, recovery_code }).await
    }

    /// Whether two-factor sign-in is on, and the recovery codes left.
    pub async fn two_factor_status(&self) -> Result<handoff_protocol::two_factor::TwoFactorStatus> {
        self.call::<GetTwoFactor>(&(), &()).await
    }

    /// Requires (or stops requiring) two-factor sign-in of a practice's members (admins only).
    pub async fn require_two_factor(&self, practice: PracticeId, required: bool) -> Result<()> {
        self.call::<RequirePracticeTwoFactor>(&practice, &handoff_protocol::two_factor::RequireTwoFactor { required }).await
    }

    /// Signs out this session.
    pub async fn logout(&mut self) -> Result<()> {
        self.call::<Logout>(&(), &()).await?;
        self.token = None;
        self.identity = None;
        Ok(())
    }

    /// Resets the password with the Emergency Access Kit's words in grid order.
    /// Keeps every key: the same private keys are re-sealed under the new password.
    /// An account with two-factor sign-in on is refused (`second_factor_needed`):
    /// use [`Client::recover_with_code`].
    pub async fn recover(&mut self, email: &str, words: &[String], new_password: &str) -> Result<()> {
        self.recover_inner(email, words, new_password, None).await
    }

    /// As [`Client::recover`], with the second factor an account with
    /// two-factor sign-in on needs besides the kit.
    pub async fn recover_with_code(&mut self, email: &str, words: &[String], new_password: &str, factor: SecondFactor<'_>) -> Result<()> {
        self.recover_inner(email, words, new_password, Some(factor)).await
    }

    async fn recover_inner(&mut self, email: &str, words: &[String], new_password: &str, factor: Option<SecondFactor<'_>>) -> Result<()> {
        let kit = EmergencyKit::from_words(words)?;
        let kit_auth = B64(kit.auth_key().to_vec());
        let (code, recovery_code) = factor.map(SecondFactor::parts).unwrap_or_default();
        let start = self
            .call::<RecoverStart>(&(), &RecoverStartRequest { email: email.into(), kit_auth: kit_auth.clone(), code, recovery_code })
            .await?;
        let secrets = UserSecrets::unwrap(&kit.kek(), start.wrapped_by_kit.as_slice())?;
        let mut req = handoff_client_core::account::recover_finish(email, kit_auth, new_password, &secrets)?;
        req.second_factor_token = start.second_factor_token;
        let s = self.call::<RecoverFinish>(&(), &req).await?;
        self.adopt(s, secrets)
    }

    /// The signed-in account, fresh from the server.
    pub async fn me(&self) -> Result<Me> {
        self.call::<GetMe>(&(), &()).await
    }

    /// The taxonomy.
    pub async fn taxonomy(&self) -> Result<Taxonomy> {
        self.call::<GetTaxonomy>(&(), &()).await
    }

    /// Creates a practice, making its epoch-0 key here and granting it to ourselves.
    pub async fn create_practice(
        &self,
        name: &str,
        kind: PracticeKind,
        specialty: Option<&str>,
        region: Option<&str>,
        intake: Vec<Intake>,
    ) -> Result<Practice> {
        self.create_practice_with_id(PracticeId(uuid::Uuid::new_v4()), name, kind, specialty, region, intake).await
    }

    /// As [`create_practice`](Self::create_practice), with a chosen id (a
    /// retry of a creation sends the same id again).
    pub async fn create_practice_with_id(
        &self,
        id: PracticeId,
        name: &str,
        kind: PracticeKind,
        specialty: Option<&str>,
        region: Option<&str>,
        intake: Vec<Intake>,
    ) -> Result<Practice> {
        let spec = handoff_client_core::referral::PracticeSpec {
            name: name.into(),
            kind,
            specialty: specialty.map(Into::into),
            region: region.map(Into::into),
            intake,
        };
        let (req, _) = handoff_client_core::referral::new_practice(self.who()?, id, spec)?;
        self.call::<CreatePractice>(&(), &req).await
    }

    /// Practices we belong to.
    pub async fn practices(&self) -> Result<Vec<Practice>> {
        Ok(self.call::<ListPractices>(&(), &()).await?.practices)
    }

    /// One practice.
    pub async fn practice(&self, id: PracticeId) -> Result<Practice> {
        self.call::<GetPractice>(&id, &()).await
    }

    /// Members and pending invites.
    pub async fn members(&self, id: PracticeId) -> Result<MemberList> {
        self.call::<ListMembers>(&id, &()).await
    }

    /// Invites someone by email.
    pub async fn invite(&self, id: PracticeId, email: &str, role: Role) -> Result<PendingInvite> {
        self.call::<InviteMember>(&id, &InviteRequest { email: email.into(), role, starts_at: None, ends_at: None }).await
    }

    /// Invites someone by email with membership dates (both required for a delegate).
    pub async fn invite_dated(
        &self,
        id: PracticeId,
        email: &str,
        role: Role,
        starts_at: Option<UnixMillis>,
        ends_at: Option<UnixMillis>,
    ) -> Result<PendingInvite> {
        self.call::<InviteMember>(&id, &InviteRequest { email: email.into(), role, starts_at, ends_at }).await
    }

    /// Sets or changes a member's dates (admins).
    pub async fn set_member_dates(&self, id: PracticeId, user: UserId, dates: MemberDates) -> Result<Member> {
        self.call::<SetMemberDates>(&(id, user), &dates).await
    }

    /// What an invite link is for.
    pub async fn invite_info(&self, token: &str) -> Result<InviteInfo> {
        self.call::<GetInvite>(&token.to_owned(), &()).await
    }

    /// Accepts an invite as the signed-in user.
    pub async fn accept_invite(&self, token: &str) -> Result<Practice> {
        self.call::<AcceptInvite>(&token.to_owned(), &()).await
    }

    /// Removes a member (or leaves, for our own id).
    pub async fn remove_member(&self, id: PracticeId, user: UserId) -> Result<()> {
        self.call::<RemoveMember>(&(id, user), &()).await
    }

    /// Deletes a practice; `confirm_name` must be its exact name.
    pub async fn delete_practice(&self, id: PracticeId, confirm_name: &str) -> Result<()> {
        self.call::<DeletePractice>(&id, &DeletePracticeRequest { confirm_name: confirm_name.into() }).await
    }

    /// Opens our grant of the practice's current key, and checks that the key
    /// matches the practice's published public key.
    /// The practice's current key: the MLS epoch key once the practice has an
    /// MLS group, the epoch-0 grant before.
    pub async fn practice_key(&self, id: PracticeId) -> Result<PracticeKey> {
        let k = self.call::<GetPracticeKey>(&id, &()).await?;
        if k.public_key.epoch == 0 {
            return self.open_grant(id, k);
        }
        self.practice_key_at(id, k.public_key.epoch).await
    }

    fn open_grant(&self, id: PracticeId, k: MyPracticeKey) -> Result<PracticeKey> {
        let me = self.identity()?;
        let g = k.grant.ok_or_else(|| ClientError::Protocol("no key grant yet: a member's client must grant it".into()))?;
        let key = PracticeKey::open_grant(id, g.epoch, me.me.id, &me.secrets, g.sealed.as_slice())?;
        if key.hpke_public().as_slice() != k.public_key.hpke_pub.as_slice() {
            return Err(ClientError::Protocol("the granted key does not match the practice's public key".into()));
        }
        Ok(key)
    }

    pub async fn complete_pending_grants(&self, id: PracticeId) -> Result<usize> {
        let me = self.identity()?;
        let key = self.practice_key(id).await?;
        let pending = self.call::<ListPendingGrants>(&id, &()).await?;
        let mut n = 0;
        for p in pending.pending {
            if p.epoch != key.epoch() {
                continue;
            }
            let sealed = key.grant_to(id, p.user_id, p.hpke_pub.as_slice())?;
            let g = KeyGrant { epoch: key.epoch(), sealed: B64(sealed), granted_by: me.me.id };
            self.call::<PutKeyGrant>(&(id, p.user_id), &g).await?;
            n += 1;
        }
        Ok(n)
    }

    /// Verifies a practice's published public key against its signer's key
    /// from the member list (for practices we belong to).
    pub async fn verify_practice_key(&self, id: PracticeId) -> Result<()> {
        let p = self.practice(id).await?;
        let members = self.members(id).await?;
        let signer = members
            .members
            .iter()
            .find(|m| m.user_id == p.public_key.signer)
            .ok_or_else(|| ClientError::Protocol("the key's signer is not a member".into()))?;
        verify_practice_public_key(
            id,
            p.public_key.epoch,
            p.public_key.hpke_pub.as_slice(),
            signer.sign_pub.as_slice(),
            p.public_key.signature.as_slice(),
        )?;
        Ok(())
    }

    /// Practices that can receive referrals.
    pub async fn directory(&self, specialty: Option<&str>, region: Option<&str>) -> Result<Vec<DirectoryEntry>> {
        let q = DirectoryQuery { specialty: specialty.map(Into::into), region: region.map(Into::into) };
        Ok(self.call::<GetDirectory>(&(), &q).await?.practices)
    }

    /// Asks staff for a new category.
    pub async fn request_category(&self, id: PracticeId, name: &str, note: &str) -> Result<CategoryRequest> {
        self.call::<RequestCategory>(&id, &CategoryRequestCreate { name: name.into(), note: note.into() }).await
    }

    /// Staff: every practice.
    pub async fn admin_practices(&self) -> Result<Vec<AdminPractice>> {
        Ok(self.call::<AdminListPractices>(&(), &()).await?.practices)
    }

    /// Staff: verify, unverify, pause or unpause a practice.
    pub async fn admin_practice_action(&self, id: PracticeId, action: PracticeAction) -> Result<()> {
        self.call::<AdminPracticeAction>(&(id, action), &()).await
    }

    /// Staff: add or rename a taxonomy node.
    pub async fn admin_edit_taxonomy(&self, e: &TaxonomyEdit) -> Result<()> {
        self.call::<AdminEditTaxonomy>(&(), e).await
    }

    /// Staff: category requests.
    pub async fn admin_category_requests(&self) -> Result<Vec<CategoryRequest>> {
        Ok(self.call::<AdminListCategoryRequests>(&(), &()).await?.requests)
    }

    /// Staff: approve (with a slug) or decline a category request.
    pub async fn admin_resolve_category_request(
        &self,
        id: handoff_protocol::CategoryRequestId,
        approve: bool,
        slug: Option<&str>,
    ) -> Result<()> {
        self.call::<AdminResolveCategoryRequest>(&id, &ResolveCategoryRequest { approve, slug: slug.map(Into::into) }).await
    }
}

/// The body of a successful answer to a call on `path`; an error answer as
/// [`ClientError::Api`] (for any caller holding a raw `reqwest` answer, such
/// as the testkit's free sender).
pub async fn answer(path: &str, resp: reqwest::Response) -> Result<Vec<u8>> {
    let status = resp.status().as_u16();
    let body = resp.bytes().await?.to_vec();
    if status >= 400 {
        let text = String::from_utf8_lossy(&body);
        let body: ErrorBody = serde_json::from_str(&text)
            .map_err(|_| ClientError::Protocol(format!("{path}: status {status} with a non-error body: {text}")))?;
        return Err(ClientError::Api { status, body });
    }
    Ok(body)
}
