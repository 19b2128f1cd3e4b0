//! The practice's MLS group, as this tab runs it (the browser twin of
//! `client/native/src/mls.rs`, over fetch instead of reqwest).
//!
//! - The user's whole MLS state lives in memory and on the server, sealed
//!   under a key from the user's private keys (`PUT /mls/state`,
//!   compare-and-swap). Before any MLS work the tab loads a newer copy if
//!   another tab or browser saved one, so two tabs stay consistent: a commit
//!   the other tab made arrives as its saved state.
//! - [`Session::maintain`] runs in the background (unlock, every 30 s, on an
//!   `epoch_advanced` event, on the members page): it brings the group up to
//!   the server's log (creating it, which moves a pre-MLS practice onto MLS,
//!   or joining from a welcome), then commits membership changes (adds with
//!   claimed key packages, removes members who left).
//! - [`Session::key_at`] gives any epoch's key: the current one from the MLS
//!   exporter, older ones by walking the key-history chain.
//! - Every leaf is checked against the server's user directory.
//!
//! One MLS operation runs at a time per tab (an async lock), because two
//! interleaved syncs would process the same commit twice.

use std::collections::HashMap;

use handoff_crypto::PracticeKey;
use handoff_crypto::mls::{Directory, MlsStore, MlsUser, Processed, key_package_owner, open_state, seal_state};
use handoff_crypto::practice::verify_practice_public_key;
use handoff_protocol::mls::*;
use handoff_protocol::v1::{MemberList, MyPracticeKey, PracticePublicKey};
use handoff_protocol::{B64, ErrorCode, PracticeId, UserId};

use super::Session;
use crate::api::{self, ApiError, ApiResult};

/// The tab's MLS context.
#[derive(Debug, Default)]
pub struct MlsCtx {
    store: MlsStore,
    directory: Directory,
    version: u64,
    keys: HashMap<(PracticeId, u64), PracticeKey>,
}

/// What a sync found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// In the group at this epoch.
    Member(u64),
    /// Not added yet (no welcome for us).
    Waiting,
    /// The log removed us from the group.
    Removed,
}

const ATTEMPTS: usize = 8;
/// Key packages kept published, so colleagues can add this user while they are away.
const KEY_PACKAGES: usize = 3;

fn is(e: &ApiError, code: ErrorCode) -> bool {
    e.code == Some(code)
}

fn key32(b: &B64) -> ApiResult<[u8; 32]> {
    b.as_slice().try_into().map_err(|_| ApiError::local("a signing key is not 32 bytes"))
}

impl Session {
    fn mls_user(&self) -> MlsUser {
        let ctx = self.mls.borrow();
        MlsUser::new(self.me.id, &self.secrets, ctx.store.clone(), ctx.directory.clone())
    }

    /// A practice key this tab already holds.
    pub(super) fn cached_key(&self, practice: PracticeId, epoch: u64) -> Option<PracticeKey> {
        self.mls.borrow().keys.get(&(practice, epoch)).cloned()
    }

    pub(super) fn remember(&self, practice: PracticeId, k: PracticeKey) {
        self.mls.borrow_mut().keys.insert((practice, k.epoch()), k);
    }

    async fn load_state(&self) -> ApiResult<bool> {
        let s: MlsState = api::get("/mls/state").await?;
        if s.version <= self.mls.borrow().version {
            return Ok(false);
        }
        let sealed = s.sealed.ok_or_else(|| ApiError::local("MLS state version without state"))?;
        let fresh = open_state(&self.secrets, self.me.id, sealed.as_slice())?;
        let mut ctx = self.mls.borrow_mut();
        ctx.store.replace_with(&fresh)?;
        ctx.version = s.version;
        Ok(true)
    }

    async fn save_state(&self) -> ApiResult<()> {
        let (sealed, expected) = {
            let ctx = self.mls.borrow();
            (seal_state(&self.secrets, self.me.id, &ctx.store)?, ctx.version)
        };
        let r: MlsState = api::put("/mls/state", &PutMlsState { expected_version: expected, sealed: B64(sealed) }).await?;
        self.mls.borrow_mut().version = r.version;
        Ok(())
    }

    async fn save_or_reload(&self) -> ApiResult<()> {
        match self.save_state().await {
            Err(e) if is(&e, ErrorCode::StaleState) => self.load_state().await.map(|_| ()),
            r => r,
        }
    }

    /// Keeps a few key packages published (their secrets saved first).
    async fn publish_key_packages(&self) -> ApiResult<()> {
        for _ in 0..ATTEMPTS {
            self.load_state().await?;
            let user = self.mls_user();
            if user.store().key_package_count() >= KEY_PACKAGES {
                return Ok(());
            }
            let before = MlsStore::from_bytes(&user.store().to_bytes()?)?;
            let kps = (0..KEY_PACKAGES).map(|_| user.key_package().map(B64)).collect::<Result<Vec<_>, _>>()?;
            match self.save_state().await {
                Ok(()) => {}
                Err(e) if is(&e, ErrorCode::StaleState) => {
                    user.store().replace_with(&before)?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            let _: KeyPackageCount = api::post("/mls/key-packages", &PublishKeyPackages { key_packages: kps }).await?;
            return Ok(());
        }
        Err(ApiError::local("Your encryption state kept changing in another tab; try again."))
    }

    /// The practice's MLS log after `after` (all of it: the server pages at 500 entries).
    async fn log(&self, practice: PracticeId, after: u64) -> ApiResult<MlsLog> {
        let mut log: MlsLog = api::get(&format!("/practices/{practice}/mls?after={after}")).await?;
        while let Some(last) = log.entries.last().map(|e| e.epoch)
            && last < log.epoch
        {
            let more: MlsLog = api::get(&format!("/practices/{practice}/mls?after={last}")).await?;
            if more.entries.is_empty() {
                break;
            }
            log.epoch = more.epoch;
            log.entries.extend(more.entries);
        }
        Ok(log)
    }

    async fn pending(&self, practice: PracticeId) -> ApiResult<MlsPending> {
        api::get(&format!("/practices/{practice}/mls/pending")).await
    }

    async fn submit(&self, practice: PracticeId, c: &SubmitCommit) -> ApiResult<MlsLogEntry> {
        api::post(&format!("/practices/{practice}/mls/commits"), c).await
    }

    /// The epoch-0 key from this user's grant (before the practice has a group).
    pub(super) async fn grant_key(&self, practice: PracticeId) -> ApiResult<PracticeKey> {
        if let Some(k) = self.cached_key(practice, 0) {
            return Ok(k);
        }
        let k: MyPracticeKey = api::my_key(practice).await?;
        if k.public_key.epoch != 0 {
            return Err(ApiError::local("the practice has moved onto MLS"));
        }
        let g = k.grant.ok_or_else(|| ApiError::local("no key grant yet"))?;
        let key = PracticeKey::open_grant(practice, g.epoch, self.me.id, &self.secrets, g.sealed.as_slice())?;
        if key.hpke_public().as_slice() != k.public_key.hpke_pub.as_slice() {
            return Err(ApiError::local("The granted practice key does not match its published key."));
        }
        self.remember(practice, key.clone());
        Ok(key)
    }

    async fn fill_directory(&self, practice: PracticeId) -> ApiResult<()> {
        let members: MemberList = api::members(practice).await?;
        let dir = self.mls.borrow().directory.clone();
        for m in members.members {
            dir.insert(m.user_id, key32(&m.sign_pub)?);
        }
        let mut others = self.pending(practice).await?.remove;
        for e in self.log(practice, 0).await?.entries {
            others.push(e.committer);
            others.extend(e.added);
            others.extend(e.removed);
        }
        for u in others {
            if !dir.contains(u) {
                dir.insert(u, key32(&self.user_keys(u).await?.sign_pub)?);
            }
        }
        Ok(())
    }

    fn signed_public_key(&self, practice: PracticeId, k: &PracticeKey) -> PracticePublicKey {
        PracticePublicKey {
            epoch: k.epoch(),
            hpke_pub: B64(k.hpke_public().to_vec()),
            signer: self.me.id,
            signature: B64(k.sign_public(practice, &self.secrets).to_vec()),
        }
    }

    fn check_published_key(&self, practice: PracticeId, user: &MlsUser, entry: &MlsLogEntry) -> ApiResult<()> {
        let k = user.epoch_key(practice)?;
        let pk = &entry.public_key;
        if k.epoch() != entry.epoch || pk.hpke_pub.as_slice() != k.hpke_public().as_slice() || pk.signer != entry.committer {
            return Err(ApiError::local(format!("Epoch {}'s published key is not the group's.", entry.epoch)));
        }
        let signer =
            self.mls.borrow().directory.get(entry.committer).ok_or_else(|| ApiError::local("the committer is not in the directory"))?;
        verify_practice_public_key(practice, k.epoch(), pk.hpke_pub.as_slice(), &signer, pk.signature.as_slice())?;
        Ok(())
    }

    /// Brings this tab's group up to the server's log.
    async fn sync(&self, practice: PracticeId) -> ApiResult<SyncOutcome> {
        for _ in 0..ATTEMPTS {
            self.load_state().await?;
            let user = self.mls_user();
            let local = user.epoch(practice)?;
            let log = self.log(practice, local.unwrap_or(0)).await?;
            let Some(mut epoch) = local else {
                if log.epoch == 0 {
                    // No group yet: create it, linking epoch 1 back to the epoch-0 key.
                    let Ok(k0) = self.grant_key(practice).await else { return Ok(SyncOutcome::Waiting) };
                    let before = MlsStore::from_bytes(&user.store().to_bytes()?)?;
                    user.create_group(practice)?;
                    let k1 = user.epoch_key(practice)?;
                    let entry = SubmitCommit {
                        epoch: 1,
                        commit: None,
                        welcome: None,
                        added: vec![],
                        removed: vec![],
                        public_key: self.signed_public_key(practice, &k1),
                        history: B64(k1.history_link(practice, &k0)?),
                    };
                    match self.submit(practice, &entry).await {
                        Ok(_) => {
                            self.remember(practice, k0);
                            self.remember(practice, k1);
                            self.save_or_reload().await?;
                        }
                        Err(e) if is(&e, ErrorCode::StaleEpoch) => user.store().replace_with(&before)?,
                        Err(e) => {
                            user.store().replace_with(&before)?;
                            return Err(e);
                        }
                    }
                    continue;
                }
                let w: MlsWelcome = match api::get(&format!("/practices/{practice}/mls/welcome")).await {
                    Ok(w) => w,
                    Err(e) if is(&e, ErrorCode::NotFound) => return Ok(SyncOutcome::Waiting),
                    Err(e) => return Err(e),
                };
                self.fill_directory(practice).await?;
                let joined = user.join(practice, w.welcome.as_slice())?;
                if let Some(entry) = log.entries.iter().find(|e| e.epoch == joined)
                    && let Err(e) = self.check_published_key(practice, &user, entry)
                {
                    user.store().forget_group(practice);
                    return Err(e);
                }
                self.save_or_reload().await?;
                continue;
            };
            if log.entries.iter().any(|e| e.commit.is_some()) {
                self.fill_directory(practice).await?;
            }
            let mut reload = false;
            let start = epoch;
            for entry in log.entries.iter().filter(|e| e.epoch > start) {
                if entry.committer == self.me.id {
                    // Another tab of ours committed: its saved state has it.
                    reload = true;
                    break;
                }
                let commit = entry.commit.as_ref().ok_or_else(|| ApiError::local("MLS log entry without a commit"))?;
                let before = MlsStore::from_bytes(&user.store().to_bytes()?)?;
                match user.process(practice, commit.as_slice())? {
                    Processed::Advanced(e) => {
                        if let Err(err) = self.check_published_key(practice, &user, entry) {
                            user.store().replace_with(&before)?;
                            return Err(err);
                        }
                        epoch = e;
                    }
                    Processed::Removed => {
                        self.save_or_reload().await?;
                        return Ok(SyncOutcome::Removed);
                    }
                }
            }
            if reload {
                if !self.load_state().await? {
                    gloo_timers::future::TimeoutFuture::new(100).await;
                }
                continue;
            }
            self.save_or_reload().await?;
            return Ok(SyncOutcome::Member(epoch));
        }
        Err(ApiError::local("Could not catch up with the practice's key changes; try again."))
    }

    /// One commit adding the owners of `key_packages` and removing `remove`.
    async fn commit(&self, practice: PracticeId, key_packages: &[Vec<u8>], remove: &[UserId]) -> ApiResult<u64> {
        let user = self.mls_user();
        for kp in key_packages {
            let (owner, _) = key_package_owner(kp)?;
            if !user.directory().contains(owner) {
                user.directory().insert(owner, key32(&self.user_keys(owner).await?.sign_pub)?);
            }
        }
        let before = MlsStore::from_bytes(&user.store().to_bytes()?)?;
        let prev = user.epoch_key(practice)?;
        let pc = user.commit(practice, key_packages, remove)?;
        let epoch = user.apply_pending(practice)?;
        let k = user.epoch_key(practice)?;
        let entry = SubmitCommit {
            epoch,
            commit: Some(B64(pc.commit)),
            welcome: pc.welcome.map(B64),
            added: pc.added,
            removed: pc.removed,
            public_key: self.signed_public_key(practice, &k),
            history: B64(k.history_link(practice, &prev)?),
        };
        match self.submit(practice, &entry).await {
            Ok(_) => {
                self.remember(practice, prev);
                self.remember(practice, k);
                self.save_or_reload().await?;
                Ok(epoch)
            }
            Err(e) => {
                user.store().replace_with(&before)?;
                Err(e)
            }
        }
    }

    /// Adds members who are not in the group yet and removes those who left, in one commit.
    async fn reconcile(&self, practice: PracticeId) -> ApiResult<Option<u64>> {
        let mut claimed: HashMap<UserId, Vec<u8>> = HashMap::new();
        for _ in 0..ATTEMPTS {
            if !matches!(self.sync(practice).await?, SyncOutcome::Member(_)) {
                return Ok(None);
            }
            let pending = self.pending(practice).await?;
            claimed.retain(|u, _| pending.add.iter().any(|m| m.user_id == *u));
            let dir = self.mls.borrow().directory.clone();
            for m in &pending.add {
                dir.insert(m.user_id, key32(&m.sign_pub)?);
                if !claimed.contains_key(&m.user_id) && m.key_packages > 0 {
                    let c: ClaimedKeyPackage = api::post(&format!("/practices/{practice}/members/{}/key-package", m.user_id), &()).await?;
                    if key_package_owner(&c.key_package.0)?.0 != m.user_id {
                        return Err(ApiError::local("The server handed out someone else's key package."));
                    }
                    claimed.insert(m.user_id, c.key_package.0);
                }
            }
            if claimed.is_empty() && pending.remove.is_empty() {
                return Ok(None);
            }
            let kps: Vec<Vec<u8>> = claimed.values().cloned().collect();
            match self.commit(practice, &kps, &pending.remove).await {
                Ok(e) => return Ok(Some(e)),
                Err(e) if is(&e, ErrorCode::StaleEpoch) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::local("Kept losing the race to update the practice's keys; try again later."))
    }

    async fn key_at_unlocked(&self, practice: PracticeId, epoch: u64) -> ApiResult<PracticeKey> {
        if let Some(k) = self.cached_key(practice, epoch) {
            return Ok(k);
        }
        let log = self.log(practice, 0).await?;
        if log.epoch == 0 {
            return self.grant_key(practice).await;
        }
        match self.sync(practice).await? {
            SyncOutcome::Member(_) => {}
            SyncOutcome::Waiting => {
                return Err(ApiError::local(
                    "You do not hold this practice's key yet: a colleague's Handoff adds you to the practice's key group when they are signed in.",
                ));
            }
            SyncOutcome::Removed => return Err(ApiError::local("You are no longer a member of this practice.")),
        }
        let log = self.log(practice, 0).await?;
        let mut k = self.mls_user().epoch_key(practice)?;
        if epoch > k.epoch() {
            return Err(ApiError::local(format!("Key epoch {epoch} is newer than the group's {}.", k.epoch())));
        }
        loop {
            if let Some(entry) = log.entries.iter().find(|e| e.epoch == k.epoch())
                && entry.public_key.hpke_pub.as_slice() != k.hpke_public().as_slice()
            {
                return Err(ApiError::local(format!("Epoch {}'s key does not match its published public key.", k.epoch())));
            }
            self.remember(practice, k.clone());
            if k.epoch() == epoch {
                return Ok(k);
            }
            let entry = log
                .entries
                .iter()
                .find(|e| e.epoch == k.epoch())
                .ok_or_else(|| ApiError::local(format!("no key-history entry for epoch {}", k.epoch())))?;
            k = k.open_history_link(practice, entry.history.as_slice())?;
        }
    }

    /// The practice key of `epoch` (cached, from the group, or down the key-history chain).
    pub async fn key_at(&self, practice: PracticeId, epoch: u64) -> ApiResult<PracticeKey> {
        if let Some(k) = self.cached_key(practice, epoch) {
            return Ok(k);
        }
        let _one = self.mls_lock.lock().await;
        self.key_at_unlocked(practice, epoch).await
    }

    /// Background upkeep for one practice: catch up with the log (creating
    /// the group if the practice predates MLS, or joining from a welcome),
    /// then commit any membership change. Returns whether we are in the group.
    pub async fn maintain(&self, practice: PracticeId) -> ApiResult<bool> {
        let _one = self.mls_lock.lock().await;
        self.publish_key_packages().await?;
        match self.sync(practice).await? {
            SyncOutcome::Member(_) => {
                self.reconcile(practice).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
