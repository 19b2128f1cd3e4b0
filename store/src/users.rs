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
    /// [`create_pending_registration`](UserStore::create_pending_registration) was
    /// given a token hash that is stored already.
    #[error("already exists: pending registration")]
    RegistrationExists,
    /// [`confirm_registration`](UserStore::confirm_registration) found no
    /// unexpired pending registration for the token: never made, used,
    /// expired, or dropped because its address was confirmed first by another.
    #[error("not found: pending registration")]
    NoSuchRegistration,
    /// The backend failed; nothing was changed.
    #[error(transparent)]
    Backend(#[from] BackendError),
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
}
