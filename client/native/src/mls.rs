//! The practice's MLS group, as a browser tab runs it.
//!
//! The tab keeps the user's whole MLS state in memory and on the server,
//! sealed under a key only the user's private keys give (`PUT /mls/state`,
//! compare-and-swap on a version number). Before any MLS work it loads a
//! newer copy if another tab or browser saved one, so two tabs of one user
//! stay consistent: a commit the other tab made arrives as that tab's saved
//! state, never by processing our own user's commit.
//!
//! - [`Client::mls_sync`] brings the tab's group up to the server's log:
//!   creates the group if the practice has none (epoch 1, whose history link
//!   seals the practice's epoch-0 key: this is how practices that predate MLS
//!   move onto it), joins from a welcome, or processes newer commits.
//! - [`Client::mls_reconcile`] makes the group's membership match the
//!   practice's: one commit adding members (with their claimed key packages)
//!   and removing those who left. A stale epoch is retried after syncing.
//! - [`Client::practice_key_at`] gives the key of any epoch: the current one
//!   from the MLS exporter, older ones by walking the key-history chain.
//!
//! Every leaf is checked against the server's user directory (user id →
//! account signing key) before the group accepts it.

use std::collections::HashMap;

use handoff_crypto::PracticeKey;
use handoff_crypto::mls::{Directory, MlsStore, MlsUser, Processed, key_package_owner, open_state, seal_state};
use handoff_crypto::practice::verify_practice_public_key;
use handoff_protocol::mls::*;
use handoff_protocol::v1::{MemberList, PracticePublicKey};
use handoff_protocol::{B64, ErrorCode, PracticeId, UserId};
use reqwest::Method;

use crate::{Client, ClientError, Result};

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

fn stale(e: &ClientError, code: ErrorCode) -> bool {
    e.code() == Some(code)
}

impl Client {
    fn ctx(&self) -> std::sync::MutexGuard<'_, MlsCtx> {
        match self.mls.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The MLS client over this tab's state.
    pub fn mls_user(&self) -> Result<MlsUser> {
        let id = self.identity()?;
        let ctx = self.ctx();
        Ok(MlsUser::new(id.me.id, &id.secrets, ctx.store.clone(), ctx.directory.clone()))
    }

    /// The version of the state this tab last loaded or saved.
    pub fn mls_state_version(&self) -> u64 {
        self.ctx().version
    }

    /// Loads the server's copy of our MLS state if it is newer than ours. Returns whether it was.
    pub async fn mls_load_state(&self) -> Result<bool> {
        let s: MlsState = self.get("/mls/state").await?;
        if s.version <= self.ctx().version {
            return Ok(false);
        }
        let sealed = s.sealed.ok_or_else(|| ClientError::Protocol("state version without state".into()))?;
        let id = self.identity()?;
        let fresh = open_state(&id.secrets, id.me.id, sealed.as_slice())?;
        let mut ctx = self.ctx();
        ctx.store.replace_with(&fresh)?;
        ctx.version = s.version;
        Ok(true)
    }

    /// Saves our MLS state (compare-and-swap). `stale_state` if another tab saved first.
    pub async fn mls_save_state(&self) -> Result<()> {
        let id = self.identity()?;
        let (sealed, expected) = {
            let ctx = self.ctx();
            (seal_state(&id.secrets, id.me.id, &ctx.store)?, ctx.version)
        };
        let r: MlsState =
            self.send_json(Method::PUT, "/mls/state", &PutMlsState { expected_version: expected, sealed: B64(sealed) }).await?;
        self.ctx().version = r.version;
        Ok(())
    }

    /// Makes `n` key packages, saves the state holding their secrets, then publishes them.
    pub async fn mls_publish_key_packages(&self, n: usize) -> Result<u32> {
        for _ in 0..ATTEMPTS {
            self.mls_load_state().await?;
            let user = self.mls_user()?;
            let before = MlsStore::from_bytes(&user.store().to_bytes()?)?;
            let kps = (0..n).map(|_| user.key_package().map(B64)).collect::<std::result::Result<Vec<_>, _>>()?;
            match self.mls_save_state().await {
                Ok(()) => {}
                Err(e) if stale(&e, ErrorCode::StaleState) => {
                    user.store().replace_with(&before)?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            let c: KeyPackageCount = self.send_json(Method::POST, "/mls/key-packages", &PublishKeyPackages { key_packages: kps }).await?;
            return Ok(c.available);
        }
        Err(ClientError::Protocol("MLS state kept changing in another tab".into()))
    }

    /// The practice's MLS log after `after` (all of it: the server pages at 500 entries).
    pub async fn mls_log(&self, practice: PracticeId, after: u64) -> Result<MlsLog> {
        let mut log: MlsLog = self.get(&format!("/practices/{practice}/mls?after={after}")).await?;
        while let Some(last) = log.entries.last().map(|e| e.epoch)
            && last < log.epoch
        {
            let more: MlsLog = self.get(&format!("/practices/{practice}/mls?after={last}")).await?;
            if more.entries.is_empty() {
                break;
            }
            log.epoch = more.epoch;
            log.entries.extend(more.entries);
        }
        Ok(log)
    }

    /// What the group's membership must catch up with.
    pub async fn mls_pending(&self, practice: PracticeId) -> Result<MlsPending> {
        self.get(&format!("/practices/{practice}/mls/pending")).await
    }

    /// Submits a log entry as is (tests use this for bad input).
    pub async fn mls_submit(&self, practice: PracticeId, c: &SubmitCommit) -> Result<MlsLogEntry> {
        self.send_json(Method::POST, &format!("/practices/{practice}/mls/commits"), c).await
    }

    /// Claims one of a member's key packages.
    pub async fn mls_claim_key_package(&self, practice: PracticeId, user: UserId) -> Result<Vec<u8>> {
        let c: ClaimedKeyPackage = self.send_json(Method::POST, &format!("/practices/{practice}/members/{user}/key-package"), &()).await?;
        Ok(c.key_package.0)
    }

    /// Fills the directory with the signing keys of the practice's members and
    /// of group members who left (still leaves until removed).
    async fn mls_fill_directory(&self, practice: PracticeId) -> Result<()> {
        let members: MemberList = self.members(practice).await?;
        let dir = self.ctx().directory.clone();
        for m in members.members {
            dir.insert(m.user_id, key32(&m.sign_pub)?);
        }
        let mut others = self.mls_pending(practice).await?.remove;
        // Leaves of past epochs may belong to people who have since left: a
        // welcome's tree or an old commit can name them.
        for e in self.mls_log(practice, 0).await?.entries {
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

    fn signed_public_key(&self, practice: PracticeId, k: &PracticeKey) -> Result<PracticePublicKey> {
        let me = self.identity()?;
        Ok(PracticePublicKey {
            epoch: k.epoch(),
            hpke_pub: B64(k.hpke_public().to_vec()),
            signer: me.me.id,
            signature: B64(k.sign_public(practice, &me.secrets).to_vec()),
        })
    }

    /// Brings this tab's group up to the server's log.
    pub async fn mls_sync(&self, practice: PracticeId) -> Result<SyncOutcome> {
        let me = self.user_id()?;
        for _ in 0..ATTEMPTS {
            self.mls_load_state().await?;
            let user = self.mls_user()?;
            let local = user.epoch(practice)?;
            let log = self.mls_log(practice, local.unwrap_or(0)).await?;
            let Some(mut epoch) = local else {
                if log.epoch == 0 {
                    // No group yet: create it, linking epoch 1 back to the epoch-0 key.
                    let k0 = match self.grant_key(practice).await {
                        Ok(k) => k,
                        // Someone created the group meanwhile, or our grant is not there yet.
                        Err(ClientError::Protocol(_)) => continue,
                        Err(e) => return Err(e),
                    };
                    let before = MlsStore::from_bytes(&user.store().to_bytes()?)?;
                    user.create_group(practice)?;
                    let k1 = user.epoch_key(practice)?;
                    let entry = SubmitCommit {
                        epoch: 1,
                        commit: None,
                        welcome: None,
                        added: vec![],
                        removed: vec![],
                        public_key: self.signed_public_key(practice, &k1)?,
                        history: B64(k1.history_link(practice, &k0)?),
                    };
                    match self.mls_submit(practice, &entry).await {
                        Ok(_) => {
                            self.remember(practice, k0);
                            self.remember(practice, k1);
                            self.save_or_reload().await?;
                        }
                        Err(e) if stale(&e, ErrorCode::StaleEpoch) => user.store().replace_with(&before)?,
                        Err(e) => {
                            user.store().replace_with(&before)?;
                            return Err(e);
                        }
                    }
                    continue;
                }
                // The group exists: join from the welcome addressed to us, if any.
                let w: MlsWelcome = match self.get(&format!("/practices/{practice}/mls/welcome")).await {
                    Ok(w) => w,
                    Err(e) if stale(&e, ErrorCode::NotFound) => return Ok(SyncOutcome::Waiting),
                    Err(e) => return Err(e),
                };
                self.mls_fill_directory(practice).await?;
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
                self.mls_fill_directory(practice).await?;
            }
            let mut reload = false;
            let start = epoch;
            for entry in log.entries.iter().filter(|e| e.epoch > start) {
                if entry.committer == me {
                    // Another tab of ours committed: its saved state has it.
                    reload = true;
                    break;
                }
                let commit = entry.commit.as_ref().ok_or_else(|| ClientError::Protocol("log entry without a commit".into()))?;
                let before = MlsStore::from_bytes(&user.store().to_bytes()?)?;
                match user.process(practice, commit.as_slice())? {
                    Processed::Advanced(e) => {
                        if let Err(err) = self.check_published_key(practice, &user, entry) {
                            // Stay before the bad epoch: do not adopt a group state whose key was misreported.
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
                if !self.mls_load_state().await? {
                    // Saved state not there yet (the other tab is between accept and save): try again.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                continue;
            }
            self.save_or_reload().await?;
            return Ok(SyncOutcome::Member(epoch));
        }
        Err(ClientError::Protocol("could not catch up with the practice's MLS log".into()))
    }

    /// Saves; if another tab saved first, loads its state instead (it has seen
    /// at least as much of the log, or the next sync pass catches up).
    async fn save_or_reload(&self) -> Result<()> {
        match self.mls_save_state().await {
            Err(e) if stale(&e, ErrorCode::StaleState) => {
                self.mls_load_state().await?;
                Ok(())
            }
            r => r,
        }
    }

    /// Checks that the key an entry published is the one its epoch's exporter
    /// gives, signed by its committer's directory key: a member cannot make
    /// outsiders encrypt to a key the group does not hold.
    fn check_published_key(&self, practice: PracticeId, user: &MlsUser, entry: &MlsLogEntry) -> Result<()> {
        let k = user.epoch_key(practice)?;
        let pk = &entry.public_key;
        if k.epoch() != entry.epoch || pk.hpke_pub.as_slice() != k.hpke_public().as_slice() || pk.signer != entry.committer {
            return Err(ClientError::Protocol(format!("epoch {}'s published key is not the group's", entry.epoch)));
        }
        let signer = self.ctx().directory.get(entry.committer);
        let signer = signer.ok_or_else(|| ClientError::Protocol("the committer is not in the directory".into()))?;
        verify_practice_public_key(practice, k.epoch(), pk.hpke_pub.as_slice(), &signer, pk.signature.as_slice())?;
        Ok(())
    }

    fn remember(&self, practice: PracticeId, k: PracticeKey) {
        self.ctx().keys.insert((practice, k.epoch()), k);
    }

    /// Adds the practice's members who are not in the group yet (those who
    /// have published key packages) and removes group members who left the
    /// practice, in one commit. Returns the new epoch, or `None` if nothing
    /// needed doing. A commit that loses the race for its epoch is redone
    /// after syncing, keeping the key packages already claimed.
    pub async fn mls_reconcile(&self, practice: PracticeId) -> Result<Option<u64>> {
        let mut claimed: HashMap<UserId, Vec<u8>> = HashMap::new();
        for _ in 0..ATTEMPTS {
            match self.mls_sync(practice).await? {
                SyncOutcome::Member(_) => {}
                other => return Err(ClientError::Protocol(format!("not a group member ({other:?})"))),
            }
            let pending = self.mls_pending(practice).await?;
            claimed.retain(|u, _| pending.add.iter().any(|m| m.user_id == *u));
            let dir = self.ctx().directory.clone();
            for m in &pending.add {
                dir.insert(m.user_id, key32(&m.sign_pub)?);
                if !claimed.contains_key(&m.user_id) && m.key_packages > 0 {
                    let kp = self.mls_claim_key_package(practice, m.user_id).await?;
                    if key_package_owner(&kp)?.0 != m.user_id {
                        return Err(ClientError::Protocol("the server handed out someone else's key package".into()));
                    }
                    claimed.insert(m.user_id, kp);
                }
            }
            if claimed.is_empty() && pending.remove.is_empty() {
                return Ok(None);
            }
            let kps: Vec<Vec<u8>> = claimed.values().cloned().collect();
            match self.mls_commit(practice, &kps, &pending.remove).await {
                Ok(e) => return Ok(Some(e)),
                Err(e) if stale(&e, ErrorCode::StaleEpoch) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Protocol("kept losing the race to commit; try again later".into()))
    }

    /// One commit adding the owners of `key_packages` and removing `remove`:
    /// made, applied locally to learn the new epoch's key, submitted with that
    /// key's signed public key and history link, and rolled back if refused.
    pub async fn mls_commit(&self, practice: PracticeId, key_packages: &[Vec<u8>], remove: &[UserId]) -> Result<u64> {
        let user = self.mls_user()?;
        // Each new leaf is checked against the directory's key for the user it names.
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
            public_key: self.signed_public_key(practice, &k)?,
            history: B64(k.history_link(practice, &prev)?),
        };
        match self.mls_submit(practice, &entry).await {
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

    /// The practice key of `epoch`: the epoch-0 grant before the practice has
    /// an MLS group; otherwise the current epoch's key from the exporter, and
    /// older ones by walking the key-history chain back (each checked against
    /// the public key the log published for its epoch).
    pub async fn practice_key_at(&self, practice: PracticeId, epoch: u64) -> Result<PracticeKey> {
        if let Some(k) = self.ctx().keys.get(&(practice, epoch)) {
            return Ok(k.clone());
        }
        let log = self.mls_log(practice, 0).await?;
        if log.epoch == 0 {
            return self.grant_key(practice).await;
        }
        match self.mls_sync(practice).await? {
            SyncOutcome::Member(_) => {}
            other => return Err(ClientError::Protocol(format!("no key: not a group member ({other:?})"))),
        }
        let log = self.mls_log(practice, 0).await?;
        let mut k = self.mls_user()?.epoch_key(practice)?;
        if epoch > k.epoch() {
            return Err(ClientError::Protocol(format!("epoch {epoch} is newer than the group's {}", k.epoch())));
        }
        loop {
            if let Some(entry) = log.entries.iter().find(|e| e.epoch == k.epoch())
                && entry.public_key.hpke_pub.as_slice() != k.hpke_public().as_slice()
            {
                return Err(ClientError::Protocol(format!("epoch {}'s key does not match its published public key", k.epoch())));
            }
            self.remember(practice, k.clone());
            if k.epoch() == epoch {
                return Ok(k);
            }
            let entry = log
                .entries
                .iter()
                .find(|e| e.epoch == k.epoch())
                .ok_or_else(|| ClientError::Protocol(format!("no log entry for epoch {}", k.epoch())))?;
            k = k.open_history_link(practice, entry.history.as_slice())?;
        }
    }

    /// Every practice key this tab has held (tests use it to play a removed
    /// member who kept everything).
    pub fn held_practice_keys(&self) -> Vec<PracticeKey> {
        self.ctx().keys.values().cloned().collect()
    }
}

fn key32(b: &B64) -> Result<[u8; 32]> {
    b.as_slice().try_into().map_err(|_| ClientError::Protocol("a signing key is not 32 bytes".into()))
}
