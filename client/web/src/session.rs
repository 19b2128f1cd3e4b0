//! The signed-in user in this tab: their unwrapped private keys and the
//! practice keys (from the practice's MLS group, or the epoch-0 grant of a
//! practice that has no group yet; see [`mls`]). Nothing here is ever written to
//! browser storage; a reload keeps the (HttpOnly) session cookie but asks for
//! the password again to unwrap the keys ("unlock").

mod mls;

use mls::Fetch;
pub use mls::KeyGroupHealth;

use std::cell::RefCell;
use std::collections::HashMap;

use handoff_crypto::item::{Item, OpenKey};
use handoff_crypto::keys::UserSecrets;
use handoff_crypto::referral::{AttachmentMeta, MessageBody, ReferralContent, ReferralKey};
use handoff_crypto::room::RoomSecret;
use handoff_crypto::{EmergencyKit, PasswordKeys};

use handoff_domain::taxonomy::Lookup as _;
use handoff_protocol::api::{
    ConfirmAccount, ConfirmParams, CreatePractice, Endpoint, GetBlob, Login, Octets, Prelogin, PutBlob, RecoverFinish, RecoverStart,
    Register, SecondFactorSignIn,
};
use handoff_protocol::v1::*;
use handoff_protocol::ws::{
    Attachment, BlobId, Destination, MessageId, NewReferral, Referral, ReferralId, Routing, ThreadMessage, WrappedKey,
};
use handoff_protocol::{B64, PracticeId, RoomId, UserId};

use crate::api::{self, ApiError, ApiResult};

/// A new random UUID from the browser's CSPRNG.
pub fn new_uuid() -> ApiResult<uuid::Uuid> {
    Ok(uuid::Builder::from_random_bytes(handoff_crypto::random_array()?).into_uuid())
}

/// Milliseconds since the epoch, from the browser clock.
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// Encrypts a file of a new referral under its `R` and uploads it as the
/// raw body of endpoint `E` (the signed-in [`PutBlob`], or a free sender's
/// upload), reporting (sent, total) bytes. Returns the attachment to send
/// with the referral.
pub async fn upload_sealed<E>(
    r: &ReferralKey,
    name: &str,
    media_type: &str,
    bytes: &[u8],
    progress: impl Fn(f64, f64) + 'static,
) -> ApiResult<Attachment>
where
    E: Endpoint<Path = BlobId, Request = Octets>,
    E::Response: serde::de::DeserializeOwned,
{
    let blob = BlobId(new_uuid()?);
    let sealed = r.seal_attachment(blob, bytes)?;
    api::upload::<E>(&blob, sealed, progress).await?;
    let meta =
        r.seal_attachment_meta(blob, &AttachmentMeta { name: name.into(), media_type: media_type.into(), size: bytes.len() as u64 })?;
    Ok(Attachment { blob, meta: B64(meta) })
}

/// An unlocked session.
#[derive(Debug)]
pub struct Session {
    /// The account.
    pub me: Me,
    secrets: UserSecrets,
    practices: RefCell<Vec<Practice>>,
    mls: handoff_client_core::Mls,
    mls_lock: futures_util::lock::Mutex<()>,
    user_keys: RefCell<HashMap<UserId, UserKeys>>,
    /// The taxonomy.
    pub taxonomy: Taxonomy,
}

fn adopt_check(me: &Me, secrets: &UserSecrets) -> ApiResult<()> {
    let p = secrets.public();
    if me.keys.sign_pub.as_slice() != p.sign_pub || me.keys.hpke_pub.as_slice() != p.hpke_pub {
        return Err(ApiError::local(
            "The server's copy of your public keys does not match your private keys. Do not continue; contact support.",
        ));
    }
    Ok(())
}

async fn stretch(email: &str, password: &str) -> ApiResult<PasswordKeys> {
    derive(&api::call::<Prelogin>(&(), &PreloginRequest { email: email.into() }).await?, password)
}

/// Stretches `password` with the server's parameters, refusing any KDF but Argon2id.
fn derive(params: &KdfParams, password: &str) -> ApiResult<PasswordKeys> {
    if params.alg != "argon2id" {
        return Err(ApiError::local(format!("The server asked for an unsupported key derivation ({}).", params.alg)));
    }
    Ok(PasswordKeys::derive_with(password, params.salt.as_slice(), params.m_kib, params.t, params.p)?)
}

/// What a registration led to.
pub enum Registered {
    /// Registered through an invite: signed in, with the kit's words.
    SignedIn(Box<Session>, Vec<String>),
    /// A confirmation link was emailed; the kit's words are shown now.
    CheckEmail {
        /// The kit's 24 words in grid order.
        words: Vec<String>,
        /// The server's words for people.
        message: String,
    },
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the kit's words.
        match self {
            Registered::SignedIn(..) => f.write_str("Registered::SignedIn"),
            Registered::CheckEmail { .. } => f.write_str("Registered::CheckEmail"),
        }
    }
}

impl Session {
    /// Registers an account. With an invite the account exists at once and
    /// is signed in; without one the server emails a confirmation link, and
    /// the account exists once it is opened. Either way the kit's 24 words
    /// come back, to be shown now.
    pub async fn register(email: &str, name: &str, password: &str, invite: Option<String>) -> ApiResult<Registered> {
        let acct = handoff_client_core::account::new_account(email, name, password, invite)?;
        let (req, secrets, words) = (acct.request, acct.secrets, acct.kit_words);
        match api::call::<Register>(&(), &req).await? {
            RegisterResponse::SignedIn(s) => {
                adopt_check(&s.user, &secrets)?;
                Ok(Registered::SignedIn(Box::new(Self::open(s.user, secrets).await?), words))
            }
            RegisterResponse::ConfirmationSent { message, .. } => Ok(Registered::CheckEmail { words, message }),
        }
    }

    /// Confirms a registration from its emailed link with the password it
    /// was made with (the link alone confirms nothing: an owner who opens a
    /// link a stranger's registration sent them must not confirm it). The
    /// account exists and is signed in afterwards, its keys unlocked.
    pub async fn confirm(token: &str, password: &str) -> ApiResult<Session> {
        let pw = derive(&api::call::<ConfirmParams>(&(), &ConfirmParamsRequest { token: token.into() }).await?, password)?;
        let s = api::call::<ConfirmAccount>(&(), &ConfirmRequest { token: token.into(), auth_key: B64(pw.auth_key.to_vec()) }).await?;
        let secrets = UserSecrets::unwrap(&pw.kek, s.user.keys.wrapped_by_password.as_slice())?;
        adopt_check(&s.user, &secrets)?;
        Self::open(s.user, secrets).await
    }

    /// Signs in with email and password, and, for an account with two-factor
    /// sign-in on, `code` (six digits, or a recovery code). Without a code
    /// such an account fails with `second_factor_needed`, so the form can ask
    /// for one.
    pub async fn login(email: &str, password: &str, code: Option<&str>) -> ApiResult<Session> {
        use handoff_protocol::two_factor::{LoginResponse, SecondFactorLogin};
        let pw = stretch(email, password).await?;
        let s = match api::call::<Login>(&(), &LoginRequest { email: email.into(), auth_key: B64(pw.auth_key.to_vec()) }).await? {
            LoginResponse::SignedIn(s) => s,
            LoginResponse::SecondFactor(challenge) => {
                let (code, recovery_code) = second_factor(code)?;
                api::call::<SecondFactorSignIn>(&(), &SecondFactorLogin { pending_token: challenge.pending_token, code, recovery_code })
                    .await?
            }
        };
        let secrets = UserSecrets::unwrap(&pw.kek, s.user.keys.wrapped_by_password.as_slice())?;
        adopt_check(&s.user, &secrets)?;
        Self::open(s.user, secrets).await
    }

    /// Unlocks the keys of a session that survived a reload.
    pub async fn unlock(me: Me, password: &str) -> ApiResult<Session> {
        let pw = stretch(&me.email, password).await?;
        let secrets = UserSecrets::unwrap(&pw.kek, me.keys.wrapped_by_password.as_slice()).map_err(|_| {
            ApiError::local("That password does not unlock your keys. Try again, or sign out and reset it with your Emergency Access Kit.")
        })?;
        adopt_check(&me, &secrets)?;
        Self::open(me, secrets).await
    }

    /// Resets the password with the kit, keeping every key. An account with
    /// two-factor sign-in on also needs `code` (six digits, or a recovery
    /// code); without one the server answers `second_factor_needed`.
    pub async fn recover(email: &str, words: &[String], new_password: &str, code: Option<&str>) -> ApiResult<Session> {
        let kit = EmergencyKit::from_words(words)?;
        let kit_auth = B64(kit.auth_key().to_vec());
        let (code, recovery_code) = match code {
            Some(_) => second_factor(code)?,
            None => (None, None),
        };
        let start =
            api::call::<RecoverStart>(&(), &RecoverStartRequest { email: email.into(), kit_auth: kit_auth.clone(), code, recovery_code })
                .await?;
        let secrets = UserSecrets::unwrap(&kit.kek(), start.wrapped_by_kit.as_slice())?;
        let mut req = handoff_client_core::account::recover_finish(email, kit_auth, new_password, &secrets)?;
        req.second_factor_token = start.second_factor_token;
        let s = api::call::<RecoverFinish>(&(), &req).await?;
        adopt_check(&s.user, &secrets)?;
        Self::open(s.user, secrets).await
    }

    async fn open(me: Me, secrets: UserSecrets) -> ApiResult<Session> {
        let taxonomy = api::taxonomy().await?;
        let s = Session {
            me,
            secrets,
            practices: RefCell::default(),
            mls: handoff_client_core::Mls::default(),
            mls_lock: futures_util::lock::Mutex::new(()),
            user_keys: RefCell::default(),
            taxonomy,
        };
        s.refresh_practices().await?;
        Ok(s)
    }

    /// Reloads my practices and opens any practice key granted since.
    /// Reloads my practices and opens each one's current key if this tab can.
    pub async fn refresh_practices(&self) -> ApiResult<()> {
        let list = api::practices().await?;
        *self.practices.borrow_mut() = list.clone();
        for p in &list {
            // Not holding it yet is normal for a new member: the UI says so.
            let _ = self.key_at(p.id, p.public_key.epoch).await;
        }
        Ok(())
    }

    /// Background upkeep of every practice's key group (see [`mls`]), then a
    /// fresh practice list. Returns the first error, after trying them all.
    pub async fn maintain_all(&self) -> ApiResult<()> {
        let mut first = None;
        for p in self.practices() {
            if let Err(e) = self.maintain(p.id).await {
                first.get_or_insert(e);
            }
        }
        self.refresh_practices().await?;
        first.map_or(Ok(()), Err)
    }

    /// My practices.
    pub fn practices(&self) -> Vec<Practice> {
        self.practices.borrow().clone()
    }

    /// A new room's secret, sealed under the practice's current epoch key:
    /// `(secret, sealed_secret, epoch)` for `NewRoom` or `RotateRoom`. The
    /// secret itself goes nowhere but into the patient link's fragment.
    pub async fn new_room_secret(&self, practice: PracticeId, room: RoomId) -> ApiResult<(RoomSecret, B64, u64)> {
        let epoch = self.practice(practice).map(|p| p.public_key.epoch).ok_or_else(|| ApiError::local("Not one of your practices."))?;
        let key = self.key_at(practice, epoch).await?;
        let secret = RoomSecret::generate()?;
        let sealed = secret.seal_for_practice(practice, *room.as_bytes(), &key)?;
        Ok((secret, B64(sealed), epoch))
    }

    /// Opens a room's `sealed_secret` with the practice key of its epoch:
    /// every member of the practice can host the room.
    pub async fn open_room_secret(&self, practice: PracticeId, room: RoomId, epoch: u64, sealed: &B64) -> ApiResult<RoomSecret> {
        let key = self.key_at(practice, epoch).await?;
        Ok(RoomSecret::open_from_practice(practice, *room.as_bytes(), &key, sealed.as_slice())?)
    }

    /// Whether I hold the key of this practice yet.
    pub fn has_key(&self, p: PracticeId) -> bool {
        self.practice(p).is_some_and(|x| self.cached_key(p, x.public_key.epoch).is_some())
    }

    /// Creates a practice with a fresh epoch-0 key made here.
    pub async fn create_practice(
        &self,
        name: &str,
        kind: PracticeKind,
        specialty: Option<String>,
        region: Option<String>,
        intake: Vec<Intake>,
    ) -> ApiResult<Practice> {
        let id = PracticeId(new_uuid()?);
        let spec = handoff_client_core::referral::PracticeSpec { name: name.into(), kind, specialty, region, intake };
        let (req, key) = handoff_client_core::referral::new_practice(self.who(), id, spec)?;
        let p = api::call::<CreatePractice>(&(), &req).await?;
        self.remember(id, key);
        // Move it onto MLS at once (epoch 1, linked back to epoch 0).
        self.maintain(id).await?;
        self.refresh_practices().await?;
        Ok(p)
    }

    /// A user's public keys (cached for the session).
    pub async fn user_keys(&self, id: UserId) -> ApiResult<UserKeys> {
        if let Some(k) = self.user_keys.borrow().get(&id) {
            return Ok(k.clone());
        }
        let k = api::user_keys(id).await?;
        self.user_keys.borrow_mut().insert(id, k.clone());
        Ok(k)
    }

    /// The practice of mine a referral involves (receiver first).
    pub fn my_side(&self, r: &Referral) -> Option<PracticeId> {
        let mine: Vec<PracticeId> = self.practices.borrow().iter().map(|x| x.id).collect();
        handoff_client_core::referral::my_side(r, &mine)
    }

    fn my_wrap<'r>(&self, r: &'r Referral) -> ApiResult<&'r WrappedKey> {
        let side = self.my_side(r).ok_or_else(|| ApiError::local("This referral involves none of your practices."))?;
        r.key_for(side).ok_or_else(|| ApiError::local("This referral involves none of your practices."))
    }

    /// Unwraps a referral's key `R` with a practice key this tab holds.
    pub fn referral_key(&self, r: &Referral) -> ApiResult<ReferralKey> {
        let wrap = self.my_wrap(r)?;
        let key = self.cached_key(wrap.practice, wrap.epoch).ok_or_else(|| ApiError::local("Decrypting…"))?;
        Ok(ReferralKey::unwrap_with(r.id, wrap.practice, &key, wrap.sealed.as_slice())?)
    }

    /// Like [`Session::referral_key`], fetching the practice key of the
    /// referral's epoch first (from the group or down the key history).
    pub async fn load_referral_key(&self, r: &Referral) -> ApiResult<ReferralKey> {
        let wrap = self.my_wrap(r)?;
        let key = self.key_at(wrap.practice, wrap.epoch).await?;
        Ok(ReferralKey::unwrap_with(r.id, wrap.practice, &key, wrap.sealed.as_slice())?)
    }

    /// Decrypts a referral's content, loading keys as needed.
    pub async fn load_content(&self, r: &Referral) -> ApiResult<ReferralContent> {
        Ok(self.load_referral_key(r).await?.open_content(r.id, r.content.as_slice())?)
    }

    /// The key that seals this user's search index in the browser, derived
    /// from the unlocked private keys (never stored).
    pub fn search_index_key(&self) -> handoff_crypto::search_index::SearchIndexKey {
        handoff_crypto::search_index::SearchIndexKey::derive(&self.secrets)
    }

    /// Decrypts a referral's content.
    pub fn open_content(&self, r: &Referral) -> ApiResult<ReferralContent> {
        Ok(self.referral_key(r)?.open_content(r.id, r.content.as_slice())?)
    }

    fn side(&self, r: &Referral) -> ApiResult<PracticeId> {
        self.my_side(r).ok_or_else(|| ApiError::local("This referral involves none of your practices."))
    }

    /// The key `item` of `r` opens with, from the practice keys this tab holds
    /// ("Decrypting…" until the key of the item's epoch is loaded).
    fn held_open_key(&self, r: &Referral, item: Item, sealed: &[u8]) -> ApiResult<OpenKey> {
        handoff_client_core::referral::held_open_key(&self.mls, r, self.side(r)?, item, sealed)?
            .ok_or_else(|| ApiError::local("Decrypting…"))
    }

    /// The key `item` of `r` opens with: its own item key (unwrapped with my
    /// practice's key of the wrap's epoch) or `R` for older items.
    async fn open_key(&self, r: &Referral, item: Item, sealed: &[u8]) -> ApiResult<OpenKey> {
        let side = self.side(r)?;
        if let Ok(k) = self.held_open_key(r, item, sealed) {
            return Ok(k);
        }
        let _one = self.mls_lock.lock().await;
        handoff_client_core::referral::open_key(&self.mls, &Fetch, self.who(), r, side, item, sealed).await
    }

    /// Decrypts an attachment's name and type.
    pub fn open_attachment_meta(&self, r: &Referral, a: &Attachment) -> ApiResult<AttachmentMeta> {
        Ok(self.held_open_key(r, Item::Attachment(a.blob), a.meta.as_slice())?.open_attachment_meta(r.id, a.blob, a.meta.as_slice())?)
    }

    /// Decrypts a rejection note.
    pub fn open_note(&self, r: &Referral, note: &B64) -> ApiResult<String> {
        Ok(self.held_open_key(r, Item::Note, note.as_slice())?.open_note(r.id, note.as_slice())?)
    }

    /// Seals a rejection note under a fresh item key wrapped to both practices' current keys.
    pub async fn seal_note(&self, r: &Referral, note: &str) -> ApiResult<B64> {
        let side = self.side(r)?;
        let _one = self.mls_lock.lock().await;
        handoff_client_core::referral::seal_note(&self.mls, &Fetch, self.who(), r, side, note).await
    }

    /// Seals (under a fresh item key wrapped to both practices' current keys) and signs a thread message.
    pub async fn seal_message(&self, r: &Referral, text: &str) -> ApiResult<ThreadMessage> {
        let side = self.side(r)?;
        let id = MessageId(new_uuid()?);
        let body = MessageBody { text: text.into(), written_at: now_ms() };
        let _one = self.mls_lock.lock().await;
        handoff_client_core::referral::seal_message(&self.mls, &Fetch, self.who(), r, side, id, &body).await
    }

    /// Verifies the author's signature and decrypts a thread message.
    pub async fn open_message(&self, r: &Referral, author: UserId, m: &ThreadMessage) -> ApiResult<MessageBody> {
        let k = self.open_key(r, Item::Message(m.id), m.body.as_slice()).await?;
        let keys = self.user_keys(author).await?;
        Ok(k.open_message(r.id, m.id, keys.sign_pub.as_slice(), m.body.as_slice(), m.signature.as_slice())?)
    }

    /// Downloads and decrypts an attachment (sent with the referral, or added later).
    pub async fn download(&self, r: &Referral, a: &Attachment) -> ApiResult<(AttachmentMeta, Vec<u8>)> {
        let k = self.open_key(r, Item::Attachment(a.blob), a.meta.as_slice()).await?;
        let meta = k.open_attachment_meta(r.id, a.blob, a.meta.as_slice())?;
        let bytes = api::download::<GetBlob>(&a.blob).await?;
        Ok((meta, k.open_attachment(r.id, a.blob, &bytes)?))
    }

    /// Encrypts and uploads a file added to a sent referral, under a fresh
    /// item key wrapped to both practices' current keys, reporting progress.
    /// Returns the attachment to announce with `add_attachment`.
    pub async fn upload_added(
        &self,
        r: &Referral,
        name: &str,
        media_type: &str,
        bytes: &[u8],
        progress: impl Fn(f64, f64) + 'static,
    ) -> ApiResult<Attachment> {
        let side = self.side(r)?;
        let blob = BlobId(new_uuid()?);
        let meta = AttachmentMeta { name: name.into(), media_type: media_type.into(), size: bytes.len() as u64 };
        let (sealed, a) = {
            let _one = self.mls_lock.lock().await;
            handoff_client_core::referral::seal_added_attachment(&self.mls, &Fetch, self.who(), r, side, blob, &meta, bytes).await?
        };
        api::upload::<PutBlob>(&blob, sealed, progress).await?;
        Ok(a)
    }

    /// Verifies a directory entry's published key against its signer's key.
    pub async fn verify_directory_entry(&self, e: &DirectoryEntry) -> ApiResult<()> {
        let signer = self.user_keys(e.public_key.signer).await?;
        handoff_client_core::account::verify_directory_entry(e, signer.sign_pub.as_slice())
            .map_err(|_| ApiError::local(format!("{}'s published key is not signed by one of its members. It was not used.", e.name)))
    }

    /// Builds and encrypts a new referral (files are uploaded by the caller
    /// with [`upload_sealed`] under the returned key).
    pub async fn prepare_referral(
        &self,
        from: PracticeId,
        targets: &[DirectoryEntry],
        choose_for_me: bool,
        routing: Routing,
        content: &ReferralContent,
    ) -> ApiResult<(NewReferral, ReferralKey)> {
        let id = ReferralId(new_uuid()?);
        let r = ReferralKey::generate()?;
        let current = api::my_key(from).await?.public_key.epoch;
        let mine = self.key_at(from, current).await?;
        if targets.is_empty() {
            return Err(ApiError::local("No specialist practice to send to."));
        }
        for e in targets {
            self.verify_directory_entry(e).await?;
        }
        // `targets` is not empty (checked above).
        let destination = match targets.first() {
            Some(first) if !choose_for_me => Destination::Practice { practice: first.id },
            Some(_) | None => Destination::ChooseForMe,
        };
        let new =
            handoff_client_core::referral::seal_referral(id, &r, Some((from, &mine)), targets, destination, routing, content, Vec::new())?;
        Ok((new, r))
    }

    /// A practice of mine by id.
    pub fn practice(&self, id: PracticeId) -> Option<Practice> {
        self.practices.borrow().iter().find(|p| p.id == id).cloned()
    }

    /// Display name of a specialty slug.
    pub fn specialty_name(&self, slug: &str) -> String {
        self.taxonomy.specialty_name(slug)
    }

    /// Display name of a category slug within a specialty.
    pub fn category_name(&self, specialty: &str, slug: &str) -> String {
        self.taxonomy.category_name(specialty, slug)
    }

    /// Display name of a region slug.
    pub fn region_name(&self, slug: &str) -> String {
        self.taxonomy.region_name(slug)
    }
}

/// What was typed as a second factor: six digits are a code, anything else a
/// recovery code. No code at all is `second_factor_needed`, so the form asks.
fn second_factor(typed: Option<&str>) -> ApiResult<(Option<String>, Option<String>)> {
    let t = typed.map(str::trim).filter(|t| !t.is_empty()).ok_or_else(|| ApiError {
        code: Some(handoff_protocol::ErrorCode::SecondFactorNeeded),
        message: "Enter the 6-digit code from your authenticator app (or a recovery code).".into(),
    })?;
    let digits: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) { Ok((Some(digits), None)) } else { Ok((None, Some(t.to_string()))) }
}
