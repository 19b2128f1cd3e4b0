//! The practice's MLS group in this tab: the shared engine in
//! `handoff-client-core` ([`handoff_client_core::Mls`], the same one the
//! native client runs) over fetch.
//!
//! - [`Session::maintain`] runs in the background (unlock, every 30 s, on an
//!   `epoch_advanced` event, on the members page, after removing a member):
//!   keeps key packages published, brings the group up to the server's log
//!   (creating it, which moves a pre-MLS practice onto MLS, or joining from a
//!   welcome), then commits membership changes (adds with claimed key
//!   packages, removals of members who left).
//! - [`Session::key_at`] gives any epoch's key: the current one from the MLS
//!   exporter, older ones by walking the key-history chain.
//!
//! - [`Session::key_group_health`] and [`Session::reinitialise`] surface the
//!   recovery of a wedged group: a member's client reports an epoch it cannot
//!   process (the engine does so in its sync), an admin re-initialises the
//!   group, and the practices that sent referrals wrapped to a revoked epoch
//!   see them listed to send again.
//!
//! One MLS operation runs at a time per tab (an async lock): two interleaved
//! syncs would process the same commit twice.

use handoff_client_core::{SyncOutcome, Transport, Who};
use handoff_crypto::PracticeKey;
use handoff_protocol::api::Endpoint;
use handoff_protocol::mls::UnreadableReferral;
use handoff_protocol::{ErrorCode, PracticeId};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Session;
use crate::api::{self, ApiError, ApiResult};

/// Key packages kept published, so colleagues can add this user while they are away.
const KEY_PACKAGES: usize = 3;

/// The browser's transport for the shared engine.
#[derive(Debug)]
pub struct Fetch;

impl Transport for Fetch {
    type Error = ApiError;

    fn code(e: &ApiError) -> Option<ErrorCode> {
        e.code
    }

    fn protocol(message: String) -> ApiError {
        ApiError::local(message)
    }

    async fn call<E: Endpoint>(&self, path: &E::Path, request: &E::Request) -> ApiResult<E::Response>
    where
        E::Request: Serialize,
        E::Response: DeserializeOwned,
    {
        api::call::<E>(path, request).await
    }

    async fn pause(&self, ms: u32) {
        gloo_timers::future::TimeoutFuture::new(ms).await;
    }
}

impl Session {
    pub(super) fn who(&self) -> Who<'_> {
        Who { id: self.me.id, secrets: &self.secrets }
    }

    /// A practice key this tab already holds.
    pub(super) fn cached_key(&self, practice: PracticeId, epoch: u64) -> Option<PracticeKey> {
        self.mls.cached_key(practice, epoch)
    }

    pub(super) fn remember(&self, practice: PracticeId, k: PracticeKey) {
        self.mls.remember(practice, k);
    }

    /// The practice key of `epoch` (cached, from the group, or down the key-history chain).
    pub async fn key_at(&self, practice: PracticeId, epoch: u64) -> ApiResult<PracticeKey> {
        if let Some(k) = self.cached_key(practice, epoch) {
            return Ok(k);
        }
        let _one = self.mls_lock.lock().await;
        match self.mls.key_at(&Fetch, self.who(), practice, epoch).await {
            Ok(k) => Ok(k),
            Err(_) if self.mls.user(self.who()).epoch(practice).ok().flatten().is_none() => Err(ApiError::local(
                "You do not hold this practice's key yet: a colleague's Handoff adds you to the practice's key group when they are signed in.",
            )),
            Err(e) => Err(e),
        }
    }

    /// Background upkeep for one practice (see the module docs). Returns whether we are in the group.
    pub async fn maintain(&self, practice: PracticeId) -> ApiResult<bool> {
        let _one = self.mls_lock.lock().await;
        self.mls.publish_key_packages(&Fetch, self.who(), KEY_PACKAGES, Some(KEY_PACKAGES)).await?;
        match self.mls.sync(&Fetch, self.who(), practice).await? {
            SyncOutcome::Member(_) => {
                self.mls.reconcile(&Fetch, self.who(), practice).await?;
                Ok(true)
            }
            SyncOutcome::Waiting | SyncOutcome::Removed => Ok(false),
        }
    }

    /// The practice's key-group health: the lowest epoch of its current group
    /// a member reported they cannot process (if any), and the referrals it
    /// sent that the receiving practice can no longer read (to send again).
    pub async fn key_group_health(&self, practice: PracticeId) -> ApiResult<KeyGroupHealth> {
        let reported = self.mls.pending(&Fetch, practice).await?.reported;
        let unreadable = self.mls.unreadable(&Fetch, practice).await?;
        Ok(KeyGroupHealth { reported, unreadable })
    }

    /// Re-initialises the practice's key group after a member reported an
    /// epoch they cannot process (admins only; the server checks), then adds
    /// every member back. Returns the new epoch.
    pub async fn reinitialise(&self, practice: PracticeId) -> ApiResult<u64> {
        let _one = self.mls_lock.lock().await;
        self.mls.reinitialise(&Fetch, self.who(), practice).await
    }
}

/// What [`Session::key_group_health`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyGroupHealth {
    /// The lowest epoch of the current group a member's device could not process.
    pub reported: Option<u64>,
    /// Referrals this practice sent that the receiver cannot read, oldest first.
    pub unreadable: Vec<UnreadableReferral>,
}
