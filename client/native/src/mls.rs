//! The practice's MLS group, as a browser tab runs it: the shared engine in
//! `handoff-client-core` ([`handoff_client_core::Mls`]) over this client's
//! reqwest transport. The web client runs the same engine over fetch.

use std::time::Duration;

use handoff_client_core::{Mls, Transport, Who};
use handoff_crypto::PracticeKey;
use handoff_crypto::mls::MlsUser;
use handoff_protocol::api::Endpoint;
use handoff_protocol::mls::*;
use handoff_protocol::{ErrorCode, PracticeId, UserId};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use handoff_client_core::SyncOutcome;

use crate::{Client, ClientError, Result};

impl Transport for Client {
    type Error = ClientError;

    fn code(e: &ClientError) -> Option<ErrorCode> {
        e.code()
    }

    fn protocol(message: String) -> ClientError {
        ClientError::Protocol(message)
    }

    async fn call<E: Endpoint>(&self, path: &E::Path, request: &E::Request) -> Result<E::Response>
    where
        E::Request: Serialize,
        E::Response: DeserializeOwned,
    {
        Client::call::<E>(self, path, request).await
    }

    async fn pause(&self, ms: u32) {
        tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
    }
}

impl Client {
    pub(crate) fn who(&self) -> Result<Who<'_>> {
        let id = self.identity()?;
        Ok(Who { id: id.me.id, secrets: &id.secrets })
    }

    fn engine(&self) -> &Mls {
        &self.mls
    }

    /// The MLS client over this tab's state.
    pub fn mls_user(&self) -> Result<MlsUser> {
        Ok(self.engine().user(self.who()?))
    }

    /// The version of the state this tab last loaded or saved.
    pub fn mls_state_version(&self) -> u64 {
        self.engine().state_version()
    }

    /// Loads the server's copy of our MLS state if it is newer than ours. Returns whether it was.
    pub async fn mls_load_state(&self) -> Result<bool> {
        self.engine().load_state(self, self.who()?).await
    }

    /// Saves our MLS state (compare-and-swap). `stale_state` if another tab saved first.
    pub async fn mls_save_state(&self) -> Result<()> {
        self.engine().save_state(self, self.who()?).await
    }

    /// Makes `n` key packages, saves the state holding their secrets, then publishes them.
    pub async fn mls_publish_key_packages(&self, n: usize) -> Result<u32> {
        self.engine().publish_key_packages(self, self.who()?, n, None).await
    }

    /// The practice's MLS log after `after` (all of it: the server pages at 500 entries).
    pub async fn mls_log(&self, practice: PracticeId, after: u64) -> Result<MlsLog> {
        self.engine().log(self, practice, after).await
    }

    /// What the group's membership must catch up with.
    pub async fn mls_pending(&self, practice: PracticeId) -> Result<MlsPending> {
        self.engine().pending(self, practice).await
    }

    /// Submits a log entry as is (tests use this for bad input).
    pub async fn mls_submit(&self, practice: PracticeId, c: &SubmitCommit) -> Result<MlsLogEntry> {
        self.engine().submit(self, practice, c).await
    }

    /// Claims one of a member's key packages.
    pub async fn mls_claim_key_package(&self, practice: PracticeId, user: UserId) -> Result<Vec<u8>> {
        self.engine().claim_key_package(self, practice, user).await
    }

    /// Brings this tab's group up to the server's log.
    pub async fn mls_sync(&self, practice: PracticeId) -> Result<SyncOutcome> {
        self.engine().sync(self, self.who()?, practice).await
    }

    /// Commits the group's membership up to the practice's (adds and removals).
    pub async fn mls_reconcile(&self, practice: PracticeId) -> Result<Option<u64>> {
        self.engine().reconcile(self, self.who()?, practice).await
    }

    /// One commit adding the owners of `key_packages` and removing `remove`.
    pub async fn mls_commit(&self, practice: PracticeId, key_packages: &[Vec<u8>], remove: &[UserId]) -> Result<u64> {
        self.engine().commit(self, self.who()?, practice, key_packages, remove).await
    }

    /// Re-initialises the practice's key group after a member reported an
    /// epoch they cannot process (admins), and adds every member back.
    pub async fn mls_reinitialise(&self, practice: PracticeId) -> Result<u64> {
        self.engine().reinitialise(self, self.who()?, practice).await
    }

    /// Referrals `practice` sent whose receiver's key was revoked since: to send again.
    pub async fn mls_unreadable(&self, practice: PracticeId) -> Result<Vec<UnreadableReferral>> {
        self.engine().unreadable(self, practice).await
    }

    /// The practice key of `epoch` (grant, group, or down the key-history chain).
    pub async fn practice_key_at(&self, practice: PracticeId, epoch: u64) -> Result<PracticeKey> {
        self.engine().key_at(self, self.who()?, practice, epoch).await
    }

    /// The epoch-0 key from this user's grant (only while the practice has no MLS group).
    pub async fn grant_key(&self, practice: PracticeId) -> Result<PracticeKey> {
        self.engine().grant_key(self, self.who()?, practice).await
    }

    /// Every practice key this tab has held (tests use it to play a removed
    /// member who kept everything).
    pub fn held_practice_keys(&self) -> Vec<PracticeKey> {
        self.engine().held_keys()
    }
}
