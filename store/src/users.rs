//! Accounts, sessions, and the server's own secrets and schema version.

use async_trait::async_trait;

use handoff_protocol::{UnixMillis, UserId};

use crate::{BackendError, PasswordChange, PendingProof, PendingRegistration, SessionRecord, UserRecord};

/// Why a [`UserStore`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// [`create_user`](UserStore::create_user) was given an email another account already has.
    #[error("already exists: email")]
    EmailTaken,
    /// [`reset_password`](UserStore::reset_password) or [`set_staff`](UserStore::set_staff)
    /// named a user that does not exist.
    #[error("not found: user")]
    NoSuchUser,
    /// [`create_session`](UserStore::create_session) was given a token hash that is already stored.
    #[error("already exists: session")]
    SessionExists,
    /// [`end_session_by_handle`](UserStore::end_session_by_handle) found no
    /// session of the user with that handle.
    #[error("not found: session")]
    NoSuchSession,
    /// [`create_pending_registration`](UserStore::create_pending_registration) was
    /// given a token hash that is stored already.
    #[error("already exists: pending registration")]
    RegistrationExists,
    /// [`confirm_registration`](UserStore::confirm_registration) found no
    /// unexpired pending registration for the token: never made, used,
    /// expired, or dropped because its address was confirmed first by another.
    #[error("not found: pending registration")]
    NoSuchRegistration,
    /// A two-factor call ([`start_totp`](UserStore::start_totp),
    /// [`enable_totp`](UserStore::enable_totp)) found two-factor sign-in on already.
    #[error("already on: two-factor sign-in")]
    TotpEnabled,
    /// [`enable_totp`](UserStore::enable_totp) found no enrollment waiting for
    /// its first code, or [`disable_totp`](UserStore::disable_totp) found
    /// two-factor sign-in off.
    #[error("not found: two-factor enrollment")]
    NoTotp,
    /// The backend failed; nothing was changed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A user's TOTP secret and state. The secret is sealed by the server before
/// it reaches the store; the store never sees it in the clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpRecord {
    /// The user.
    pub user_id: UserId,
    /// The sealed TOTP secret.
    pub sealed_secret: Vec<u8>,
    /// When two-factor sign-in was turned on; `None` while the enrollment waits for its first code.
    pub enabled_at: Option<UnixMillis>,
    /// The last 30-second step a code was accepted for (-1 for none).
    pub last_step: i64,
    /// Recovery codes not used yet.
    pub recovery_codes_left: u32,
}

/// What [`use_recovery_code`](UserStore::use_recovery_code) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryCodeUse {
    /// The code was unused; it is used now.
    Accepted,
    /// The code was used before.
    AlreadyUsed,
    /// No such code for this user.
    Unknown,
}

/// Accounts and sessions. Each call is atomic, as for every store trait.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// The schema version currently applied.
    async fn schema_version(&self) -> Result<u32, UserError>;

    /// A named server secret, created with `init` on first use.
    async fn server_secret(&self, name: &str, init: Vec<u8>) -> Result<Vec<u8>, UserError>;

    /// Creates a user. [`UserError::EmailTaken`] if the email is taken.
    async fn create_user(&self, user: UserRecord) -> Result<(), UserError>;
    /// Finds a user by lower-cased email.
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, UserError>;
    /// Finds a user by id.
    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, UserError>;
    /// Replaces the password material and revokes every session of the user, atomically.
    /// [`UserError::NoSuchUser`] if there is no such user.
    async fn reset_password(&self, id: UserId, change: PasswordChange) -> Result<(), UserError>;
    /// Grants or revokes platform staff rights. [`UserError::NoSuchUser`] if no such email.
    async fn set_staff(&self, email: &str, staff: bool) -> Result<(), UserError>;
    /// Stores a new session. [`UserError::SessionExists`] if its token hash is stored already.
    async fn create_session(&self, s: SessionRecord) -> Result<(), UserError>;
    /// Finds a session by token hash (expired ones too: the caller decides).
    async fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRecord>, UserError>;
    /// Deletes one session.
    async fn delete_session(&self, token_hash: &[u8]) -> Result<(), UserError>;
    /// Deletes sessions that expired before `now`. Returns how many.
    async fn purge_sessions(&self, now: UnixMillis) -> Result<u64, UserError>;
    /// Records activity on a session: sets its `last_seen_at` to `at` if that
    /// is later (a no-op for an unknown session).
    async fn touch_session(&self, token_hash: &[u8], at: UnixMillis) -> Result<(), UserError>;
    /// The user's sessions (expired ones too: the caller decides), oldest first.
    async fn sessions_of(&self, user: UserId) -> Result<Vec<SessionRecord>, UserError>;
    /// Deletes the user's session with this handle and answers its token hash,
    /// so its sockets can be closed. [`UserError::NoSuchSession`] if the user
    /// has no session with this handle (another user's handle included).
    async fn end_session_by_handle(&self, user: UserId, handle: &[u8]) -> Result<Vec<u8>, UserError>;
    /// Deletes every session of the user but `keep` (a token hash), atomically;
    /// answers the token hashes deleted.
    async fn end_other_sessions(&self, user: UserId, keep: &[u8]) -> Result<Vec<Vec<u8>>, UserError>;
    /// Deletes sessions whose last activity is before `seen_before` (idle past
    /// the limit). Returns how many.
    async fn purge_idle_sessions(&self, seen_before: UnixMillis) -> Result<u64, UserError>;

    /// Stores a registration until its link is confirmed. Pending registrations
    /// are not accounts: [`user_by_email`](UserStore::user_by_email) does not see
    /// them. [`UserError::RegistrationExists`] if the token hash is stored already.
    async fn create_pending_registration(&self, p: PendingRegistration) -> Result<(), UserError>;
    /// What proves an unexpired pending registration at `now`: its salt and
    /// auth verifier, so that only whoever chose its password confirms it.
    async fn pending_proof(&self, token_hash: &[u8], now: UnixMillis) -> Result<Option<PendingProof>, UserError>;
    /// Confirms a pending registration, atomically: creates its account with
    /// `id`, confirmed at `now`, and drops every pending registration for the
    /// same address (the first confirmed wins). [`UserError::NoSuchRegistration`]
    /// if no unexpired registration has this token hash;
    /// [`UserError::EmailTaken`] if the address has an account already (the
    /// pending registration is dropped then too).
    async fn confirm_registration(&self, token_hash: &[u8], id: UserId, now: UnixMillis) -> Result<UserRecord, UserError>;
    /// Deletes pending registrations that expired before `now`. Returns how many.
    async fn purge_pending_registrations(&self, now: UnixMillis) -> Result<u64, UserError>;

    /// The user's two-factor state, if an enrollment was started or finished.
    async fn totp(&self, user: UserId) -> Result<Option<TotpRecord>, UserError>;
    /// Starts (or restarts) an enrollment with a new sealed secret, not yet in
    /// force. [`UserError::TotpEnabled`] if two-factor sign-in is on;
    /// [`UserError::NoSuchUser`] if there is no such user.
    async fn start_totp(&self, user: UserId, sealed_secret: Vec<u8>, now: UnixMillis) -> Result<(), UserError>;
    /// Turns the waiting enrollment on, atomically: records `step` as used
    /// and replaces the user's recovery codes with `recovery_hashes`.
    /// [`UserError::NoTotp`] if no enrollment waits; [`UserError::TotpEnabled`] if on already.
    async fn enable_totp(&self, user: UserId, step: i64, recovery_hashes: Vec<Vec<u8>>, now: UnixMillis) -> Result<(), UserError>;
    /// Records that a code of `step` was accepted, if `step` is later than the
    /// last one (compare-and-set). `false` if it is not: a replay, refused.
    async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool, UserError>;
    /// Uses one recovery code by its hash, atomically.
    async fn use_recovery_code(&self, user: UserId, code_hash: &[u8], now: UnixMillis) -> Result<RecoveryCodeUse, UserError>;
    /// Turns two-factor sign-in off and deletes its secret and recovery codes.
    /// [`UserError::NoTotp`] if it was not on.
    async fn disable_totp(&self, user: UserId) -> Result<(), UserError>;
}
