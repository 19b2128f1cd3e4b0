//! What every Handoff client does the same way, whatever carries its HTTP:
//! the practice's key group. The native client (reqwest) and the web client
//! (fetch, in the browser) both implement [`Transport`] and run the one
//! [`Mls`] engine here, so the security-critical steps exist once.
//!
//! - The user's whole MLS state lives in memory and on the server, sealed
//!   under a key only the user's private keys give (`PUT /mls/state`,
//!   compare-and-swap on a version number). Before any MLS work the engine
//!   loads a newer copy if another tab or browser saved one, so two tabs stay
//!   consistent: a commit the other tab made arrives as that tab's saved
//!   state, never by processing our own user's commit.
//! - [`Mls::sync`] brings the group up to the server's log: creates the group
//!   if the practice has none (epoch 1, whose history link seals the epoch-0
//!   key: this is how practices that predate MLS move onto it), joins from a
//!   welcome, or processes newer commits.
//! - [`Mls::reconcile`] makes the group's membership match the practice's:
//!   one commit adding members (with their claimed key packages) and removing
//!   those who left. A stale epoch is retried after syncing.
//! - [`Mls::key_at`] gives the key of any epoch: the current one from the MLS
//!   exporter, older ones by walking the key-history chain.
//!
//! Every leaf is checked against the server's user directory (user id →
//! account signing key) before the group accepts it, and every epoch's
//! published public key against the group's own key and its committer's
//! signature. Every commit must do exactly what its log entry declares
//! (committer, adds, removes: checked by `handoff_crypto::mls::MlsUser::process`),
//! and what it declares must follow the practice's roster ([`follows_roster`]):
//! a member cannot silently cut a colleague out of the key group, nor add
//! someone hidden, even past a server that let it through.
//!
//! One engine call at a time per client: two interleaved syncs would process
//! the same commit twice. The web client serialises its calls with an async
//! lock; the native client is driven by one task per user.

#![allow(async_fn_in_trait)] // Implemented in-crate by both clients; no Send bound wanted (wasm).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod account;
pub mod referral;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use handoff_crypto::keys::UserSecrets;
use handoff_crypto::mls::{Declared, Directory, MlsStore, MlsUser, Processed, key_package_owner, open_state, seal_state};
use handoff_crypto::practice::verify_practice_public_key;
use handoff_crypto::{CryptoError, PracticeKey};
use handoff_protocol::api::{
    ClaimKeyPackage, Endpoint, GetMlsPending, GetMlsWelcome, GetPracticeKey, GetUserKeys, ListMembers, ListUnreadableReferrals,
    LoadMlsState, ReadMlsLog, ReportMlsEpoch, SaveMlsState, SubmitMlsCommit, UploadKeyPackages,
};
use handoff_protocol::mls::*;
use handoff_protocol::v1::PracticePublicKey;
use handoff_protocol::{B64, ErrorCode, PracticeId, UserId};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How a client reaches the API and reports failures.
pub trait Transport {
    /// The client's error type.
    type Error: From<CryptoError>;
    /// The API error code, if the error is an API answer.
    fn code(e: &Self::Error) -> Option<ErrorCode>;
    /// An error for something the server said that cannot be trusted or used.
    fn protocol(message: String) -> Self::Error;
    /// Calls endpoint `E` with its path parameters and request, as
    /// [`Endpoint::request`] encodes it, and decodes the answer with
    /// [`Endpoint::response`]; an error answer is the client's API error.
    async fn call<E: Endpoint>(&self, path: &E::Path, request: &E::Request) -> Result<E::Response, Self::Error>
    where
        E::Request: Serialize,
        E::Response: DeserializeOwned;
    /// Waits a little (another tab is between committing and saving).
    async fn pause(&self, ms: u32);
}

/// The signed-in user.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    /// Their id.
    pub id: UserId,
    /// Their unwrapped private keys.
    pub secrets: &'a UserSecrets,
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

#[derive(Debug, Default)]
struct Ctx {
    store: MlsStore,
    directory: Directory,
    version: u64,
    keys: HashMap<(PracticeId, u64), PracticeKey>,
}

/// One client's MLS engine (state, directory, the practice keys it has opened).
#[derive(Debug, Default)]
pub struct Mls {
    ctx: Mutex<Ctx>,
}

const ATTEMPTS: usize = 8;

fn key32<T: Transport>(b: &B64) -> Result<[u8; 32], T::Error> {
    b.as_slice().try_into().map_err(|_| T::protocol("a signing key is not 32 bytes".into()))
}

fn is<T: Transport>(e: &T::Error, code: ErrorCode) -> bool {
    T::code(e) == Some(code)
}

/// Whether a log entry's declared adds and removes follow the practice's
/// membership, as `members` (the practice's current members) and the entries
/// after it (`later`) show it: everyone it adds is a member of the practice
/// (or was removed by a later entry, having left since), and everyone it
/// removes has left the practice (or was added again by a later entry). The
/// practice's membership leads; a commit that cuts out a current colleague or
/// adds an outsider is refused. Returns why not, if not.
pub fn follows_roster(entry: &MlsLogEntry, later: &[MlsLogEntry], members: &[UserId]) -> Result<(), String> {
    for u in &entry.added {
        if !members.contains(u) && !later.iter().any(|l| l.epoch > entry.epoch && l.removed.contains(u)) {
            return Err(format!("epoch {} adds {u}, who is not a member of the practice", entry.epoch));
        }
    }
    for u in &entry.removed {
        if members.contains(u) && !later.iter().any(|l| l.epoch > entry.epoch && l.added.contains(u)) {
            return Err(format!("epoch {} removes {u}, who is still a member of the practice", entry.epoch));
        }
    }
    Ok(())
}

impl Mls {
    fn ctx(&self) -> MutexGuard<'_, Ctx> {
        match self.ctx.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The MLS client over this engine's state.
    pub fn user(&self, who: Who<'_>) -> MlsUser {
        let ctx = self.ctx();
        MlsUser::new(who.id, who.secrets, ctx.store.clone(), ctx.directory.clone())
    }

    /// The version of the state last loaded or saved.
    pub fn state_version(&self) -> u64 {
        self.ctx().version
    }

    /// A practice key already opened.
    pub fn cached_key(&self, practice: PracticeId, epoch: u64) -> Option<PracticeKey> {
        self.ctx().keys.get(&(practice, epoch)).cloned()
    }

    /// Keeps a practice key opened elsewhere (e.g. the creator's epoch-0 key).
    pub fn remember(&self, practice: PracticeId, k: PracticeKey) {
        self.ctx().keys.insert((practice, k.epoch()), k);
    }

    /// Every practice key this engine has held.
    pub fn held_keys(&self) -> Vec<PracticeKey> {
        self.ctx().keys.values().cloned().collect()
    }

    /// Loads the server's copy of the state if it is newer. Returns whether it was.
    pub async fn load_state<T: Transport>(&self, t: &T, who: Who<'_>) -> Result<bool, T::Error> {
        let s = t.call::<LoadMlsState>(&(), &()).await?;
        if s.version <= self.ctx().version {
            return Ok(false);
        }
        let sealed = s.sealed.ok_or_else(|| T::protocol("state version without state".into()))?;
        let fresh = open_state(who.secrets, who.id, sealed.as_slice())?;
        let mut ctx = self.ctx();
        ctx.store.replace_with(&fresh)?;
        ctx.version = s.version;
        Ok(true)
    }

    /// Saves the state (compare-and-swap). `stale_state` if another tab saved first.
    pub async fn save_state<T: Transport>(&self, t: &T, who: Who<'_>) -> Result<(), T::Error> {
        let (sealed, expected) = {
            let ctx = self.ctx();
            (seal_state(who.secrets, who.id, &ctx.store)?, ctx.version)
        };
        let r = t.call::<SaveMlsState>(&(), &PutMlsState { expected_version: expected, sealed: B64(sealed) }).await?;
        self.ctx().version = r.version;
        Ok(())
    }

    /// Saves; if another tab saved first, loads its state instead (it has seen
    /// at least as much of the log, or the next sync pass catches up).
    async fn save_or_reload<T: Transport>(&self, t: &T, who: Who<'_>) -> Result<(), T::Error> {
        match self.save_state(t, who).await {
            Err(e) if is::<T>(&e, ErrorCode::StaleState) => self.load_state(t, who).await.map(|_| ()),
            r => r,
        }
    }

    /// Makes `n` key packages, saves the state holding their secrets, then
    /// publishes them. With `keep`, only if fewer than `keep` are held.
    /// Returns how many the server has unclaimed (0 if nothing was published).
    pub async fn publish_key_packages<T: Transport>(&self, t: &T, who: Who<'_>, n: usize, keep: Option<usize>) -> Result<u32, T::Error> {
        for _ in 0..ATTEMPTS {
            self.load_state(t, who).await?;
            let user = self.user(who);
            if keep.is_some_and(|k| user.store().key_package_count() >= k) {
                return Ok(0);
            }
            let before = MlsStore::from_bytes(&user.store().to_bytes()?)?;
            let kps = (0..n).map(|_| user.key_package().map(B64)).collect::<Result<Vec<_>, _>>()?;
            match self.save_state(t, who).await {
                Ok(()) => {}
                Err(e) if is::<T>(&e, ErrorCode::StaleState) => {
                    user.store().replace_with(&before)?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            let c = t.call::<UploadKeyPackages>(&(), &PublishKeyPackages { key_packages: kps }).await?;
            return Ok(c.available);
        }
        Err(T::protocol("MLS state kept changing in another tab".into()))
    }

    /// The practice's MLS log after `after` (all of it: the server pages at 500 entries).
    pub async fn log<T: Transport>(&self, t: &T, practice: PracticeId, after: u64) -> Result<MlsLog, T::Error> {
        let mut log = t.call::<ReadMlsLog>(&practice, &LogQuery { after }).await?;
        while let Some(last) = log.entries.last().map(|e| e.epoch)
            && last < log.epoch
        {
            let more = t.call::<ReadMlsLog>(&practice, &LogQuery { after: last }).await?;
            if more.entries.is_empty() {
                break;
            }
            log.epoch = more.epoch;
            log.entries.extend(more.entries);
        }
        Ok(log)
    }

    /// What the group's membership must catch up with.
    pub async fn pending<T: Transport>(&self, t: &T, practice: PracticeId) -> Result<MlsPending, T::Error> {
        t.call::<GetMlsPending>(&practice, &()).await
    }

    /// Submits a log entry as is.
    pub async fn submit<T: Transport>(&self, t: &T, practice: PracticeId, c: &SubmitCommit) -> Result<MlsLogEntry, T::Error> {
        t.call::<SubmitMlsCommit>(&practice, c).await
    }

    /// Claims one of a member's key packages.
    pub async fn claim_key_package<T: Transport>(&self, t: &T, practice: PracticeId, user: UserId) -> Result<Vec<u8>, T::Error> {
        let c = t.call::<ClaimKeyPackage>(&(practice, user), &()).await?;
        Ok(c.key_package.0)
    }

    /// The epoch-0 key from this user's grant (only while the practice has no MLS group).
    pub async fn grant_key<T: Transport>(&self, t: &T, who: Who<'_>, practice: PracticeId) -> Result<PracticeKey, T::Error> {
        let k = t.call::<GetPracticeKey>(&practice, &()).await?;
        if k.public_key.epoch != 0 {
            return Err(T::protocol("the practice has moved onto MLS; its epoch-0 key comes from the key history".into()));
        }
        let g = k.grant.ok_or_else(|| T::protocol("no key grant yet: a member's client must grant it".into()))?;
        let key = PracticeKey::open_grant(practice, g.epoch, who.id, who.secrets, g.sealed.as_slice())?;
        if key.hpke_public().as_slice() != k.public_key.hpke_pub.as_slice() {
            return Err(T::protocol("the granted key does not match the practice's public key".into()));
        }
        Ok(key)
    }

    async fn sign_pub<T: Transport>(&self, t: &T, user: UserId) -> Result<[u8; 32], T::Error> {
        let k = t.call::<GetUserKeys>(&user, &()).await?;
        key32::<T>(&k.sign_pub)
    }

    /// Fills the directory with the signing keys of the practice's members and
    /// of group members who left (still leaves until removed), reading the log
    /// only after epoch `after` (a member needs only the entries it processes).
    /// Returns the practice's members.
    async fn fill_directory<T: Transport>(&self, t: &T, practice: PracticeId, after: u64) -> Result<Vec<UserId>, T::Error> {
        let members = t.call::<ListMembers>(&practice, &()).await?;
        let dir = self.ctx().directory.clone();
        let mut ids = Vec::with_capacity(members.members.len());
        for m in members.members {
            dir.insert(m.user_id, key32::<T>(&m.sign_pub)?);
            ids.push(m.user_id);
        }
        let mut others = self.pending(t, practice).await?.remove;
        // Leaves of past epochs may belong to people who have since left: a
        // welcome's tree or an old commit can name them.
        for e in self.log(t, practice, after).await?.entries {
            others.push(e.committer);
            others.extend(e.added);
            others.extend(e.removed);
        }
        for u in others {
            if !dir.contains(u) {
                dir.insert(u, self.sign_pub(t, u).await?);
            }
        }
        Ok(ids)
    }

    fn signed_public_key(practice: PracticeId, who: Who<'_>, k: &PracticeKey) -> PracticePublicKey {
        PracticePublicKey {
            epoch: k.epoch(),
            hpke_pub: B64(k.hpke_public().to_vec()),
            signer: who.id,
            signature: B64(k.sign_public(practice, who.secrets).to_vec()),
        }
    }

    /// Checks that the key an entry published is the one its epoch's exporter
    /// gives, signed by its committer's directory key: a member cannot make
    /// outsiders encrypt to a key the group does not hold.
    fn check_published_key<T: Transport>(&self, practice: PracticeId, user: &MlsUser, entry: &MlsLogEntry) -> Result<(), T::Error> {
        let k = user.epoch_key(practice)?;
        let pk = &entry.public_key;
        if k.epoch() != entry.epoch || pk.hpke_pub.as_slice() != k.hpke_public().as_slice() || pk.signer != entry.committer {
            return Err(T::protocol(format!("epoch {}'s published key is not the group's", entry.epoch)));
        }
        let signer = self.ctx().directory.get(entry.committer);
        let signer = signer.ok_or_else(|| T::protocol("the committer is not in the directory".into()))?;
        verify_practice_public_key(practice, k.epoch(), pk.hpke_pub.as_slice(), &signer, pk.signature.as_slice())?;
        Ok(())
    }

    /// Brings the group up to the server's log.
    pub async fn sync<T: Transport>(&self, t: &T, who: Who<'_>, practice: PracticeId) -> Result<SyncOutcome, T::Error> {
        for _ in 0..ATTEMPTS {
            self.load_state(t, who).await?;
            let user = self.user(who);
            let local = user.epoch(practice)?;
            let log = self.log(t, practice, local.unwrap_or(0)).await?;
            // A re-initialisation started a newer group than ours: join that one.
            let (local_generation, _) = user.generation(practice);
            let newest = log.entries.iter().map(|e| e.generation).max().unwrap_or(local_generation).max(local_generation);
            let moved_on = local.is_some() && newest > local_generation;
            let Some(mut epoch) = local.filter(|_| !moved_on) else {
                if log.epoch == 0 {
                    // No group yet: create it, linking epoch 1 back to the epoch-0 key.
                    let k0 = match self.grant_key(t, who, practice).await {
                        Ok(k) => k,
                        // Someone created the group meanwhile, or our grant is not there yet.
                        Err(e) if T::code(&e).is_none() => continue,
                        Err(e) => return Err(e),
                    };
                    let before = MlsStore::from_bytes(&user.store().to_bytes()?)?;
                    user.create_group(practice)?;
                    let k1 = user.epoch_key(practice)?;
                    let entry = SubmitCommit {
                        epoch: 1,
                        commit: None,
                        reinit: None,
                        // The server observes the group from its creation on.
                        group_info: Some(B64(user.group_info(practice)?)),
                        welcome: None,
                        added: vec![],
                        removed: vec![],
                        public_key: Self::signed_public_key(practice, who, &k1),
                        history: B64(k1.history_link(practice, &k0)?),
                    };
                    match self.submit(t, practice, &entry).await {
                        Ok(_) => {
                            self.remember(practice, k0);
                            self.remember(practice, k1);
                            self.save_or_reload(t, who).await?;
                        }
                        Err(e) if is::<T>(&e, ErrorCode::StaleEpoch) => user.store().replace_with(&before)?,
                        Err(e) => {
                            user.store().replace_with(&before)?;
                            return Err(e);
                        }
                    }
                    continue;
                }
                // The group exists: join from the welcome addressed to us, if any.
                // Its first entry gives the group's generation and base epoch.
                let start = log.entries.iter().find(|e| e.generation == newest);
                let base = start.map_or(1, |e| e.epoch);
                if moved_on && start.is_some_and(|e| e.committer == who.id) {
                    // Another tab of ours re-initialised the group: its saved state has it.
                    if !self.load_state(t, who).await? {
                        t.pause(50).await;
                    }
                    continue;
                }
                let w = match t.call::<GetMlsWelcome>(&practice, &()).await {
                    Ok(w) => w,
                    Err(e) if is::<T>(&e, ErrorCode::NotFound) => return Ok(SyncOutcome::Waiting),
                    Err(e) => return Err(e),
                };
                self.fill_directory(t, practice, 0).await?;
                let joined = user.join_generation(practice, w.welcome.as_slice(), newest, base)?;
                if let Some(entry) = log.entries.iter().find(|e| e.epoch == joined)
                    && let Err(e) = self.check_published_key::<T>(practice, &user, entry)
                {
                    user.store().forget_group(practice);
                    return Err(e);
                }
                self.save_or_reload(t, who).await?;
                continue;
            };
            let members =
                if log.entries.iter().any(|e| e.commit.is_some()) { self.fill_directory(t, practice, epoch).await? } else { vec![] };
            let mut reload = false;
            let start = epoch;
            for entry in log.entries.iter().filter(|e| e.epoch > start) {
                if entry.committer == who.id {
                    // Another tab of ours committed: its saved state has it.
                    reload = true;
                    break;
                }
                let commit = entry.commit.as_ref().ok_or_else(|| T::protocol("log entry without a commit".into()))?;
                follows_roster(entry, &log.entries, &members).map_err(T::protocol)?;
                let before = MlsStore::from_bytes(&user.store().to_bytes()?)?;
                let declared = Declared { committer: entry.committer, added: &entry.added, removed: &entry.removed };
                let processed = match user.process(practice, commit.as_slice(), &declared) {
                    Ok(p) => p,
                    Err(err) => {
                        // We cannot follow the group past this entry: say so, so an admin re-initialises it.
                        self.report(t, practice, entry.epoch).await;
                        return Err(err.into());
                    }
                };
                match processed {
                    Processed::Advanced(e) => {
                        if let Err(err) = self.check_published_key::<T>(practice, &user, entry) {
                            // Stay before the bad epoch: do not adopt a group state whose key was misreported.
                            user.store().replace_with(&before)?;
                            self.report(t, practice, entry.epoch).await;
                            return Err(err);
                        }
                        epoch = e;
                    }
                    Processed::Removed => {
                        self.save_or_reload(t, who).await?;
                        return Ok(SyncOutcome::Removed);
                    }
                }
            }
            if reload {
                if !self.load_state(t, who).await? {
                    // Saved state not there yet (the other tab is between accept and save): try again.
                    t.pause(50).await;
                }
                continue;
            }
            self.save_or_reload(t, who).await?;
            return Ok(SyncOutcome::Member(epoch));
        }
        Err(T::protocol("could not catch up with the practice's MLS log".into()))
    }

    /// Adds the practice's members who are not in the group yet (those who
    /// have published key packages) and removes group members who left the
    /// practice, in one commit. Returns the new epoch, or `None` if nothing
    /// needed doing. A commit that loses the race for its epoch is redone
    /// after syncing, keeping the key packages already claimed.
    pub async fn reconcile<T: Transport>(&self, t: &T, who: Who<'_>, practice: PracticeId) -> Result<Option<u64>, T::Error> {
        let mut claimed: HashMap<UserId, Vec<u8>> = HashMap::new();
        for _ in 0..ATTEMPTS {
            match self.sync(t, who, practice).await? {
                SyncOutcome::Member(_) => {}
                other => return Err(T::protocol(format!("not a group member ({other:?})"))),
            }
            let pending = self.pending(t, practice).await?;
            claimed.retain(|u, _| pending.add.iter().any(|m| m.user_id == *u));
            let dir = self.ctx().directory.clone();
            for m in &pending.add {
                dir.insert(m.user_id, key32::<T>(&m.sign_pub)?);
                if !claimed.contains_key(&m.user_id) && m.key_packages > 0 {
                    let kp = self.claim_key_package(t, practice, m.user_id).await?;
                    if key_package_owner(&kp)?.0 != m.user_id {
                        return Err(T::protocol("the server handed out someone else's key package".into()));
                    }
                    claimed.insert(m.user_id, kp);
                }
            }
            if claimed.is_empty() && pending.remove.is_empty() {
                return Ok(None);
            }
            let kps: Vec<Vec<u8>> = claimed.values().cloned().collect();
            match self.commit(t, who, practice, &kps, &pending.remove).await {
                Ok(e) => return Ok(Some(e)),
                Err(e) if is::<T>(&e, ErrorCode::StaleEpoch) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(T::protocol("kept losing the race to commit; try again later".into()))
    }

    /// One commit adding the owners of `key_packages` and removing `remove`:
    /// made, applied locally to learn the new epoch's key, submitted with that
    /// key's signed public key and history link, and rolled back if refused.
    pub async fn commit<T: Transport>(
        &self,
        t: &T,
        who: Who<'_>,
        practice: PracticeId,
        key_packages: &[Vec<u8>],
        remove: &[UserId],
    ) -> Result<u64, T::Error> {
        let user = self.user(who);
        // Each new leaf is checked against the directory's key for the user it names.
        for kp in key_packages {
            let (owner, _) = key_package_owner(kp)?;
            if !user.directory().contains(owner) {
                user.directory().insert(owner, self.sign_pub(t, owner).await?);
            }
        }
        let before = MlsStore::from_bytes(&user.store().to_bytes()?)?;
        let prev = user.epoch_key(practice)?;
        // The group info of the epoch the commit is made in, in case the server
        // does not observe the group yet (one created before it did).
        let info = user.group_info(practice)?;
        let pc = user.commit(practice, key_packages, remove)?;
        let epoch = user.apply_pending(practice)?;
        let k = user.epoch_key(practice)?;
        let mut entry = SubmitCommit {
            epoch,
            commit: Some(B64(pc.commit)),
            group_info: None,
            reinit: None,
            welcome: pc.welcome.map(B64),
            added: pc.added,
            removed: pc.removed,
            public_key: Self::signed_public_key(practice, who, &k),
            history: B64(k.history_link(practice, &prev)?),
        };
        let mut submitted = self.submit(t, practice, &entry).await;
        if matches!(&submitted, Err(e) if is::<T>(e, ErrorCode::GroupInfoRequired)) {
            entry.group_info = Some(B64(info));
            submitted = self.submit(t, practice, &entry).await;
        }
        match submitted {
            Ok(_) => {
                self.remember(practice, prev);
                self.remember(practice, k);
                self.save_or_reload(t, who).await?;
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
    pub async fn key_at<T: Transport>(&self, t: &T, who: Who<'_>, practice: PracticeId, epoch: u64) -> Result<PracticeKey, T::Error> {
        if let Some(k) = self.cached_key(practice, epoch) {
            return Ok(k);
        }
        // A group member knows the practice has a group; only others need the log's head.
        if self.user(who).epoch(practice)?.is_none() && self.log(t, practice, 0).await?.epoch == 0 {
            let k = self.grant_key(t, who, practice).await?;
            self.remember(practice, k.clone());
            return Ok(k);
        }
        match self.sync(t, who, practice).await? {
            SyncOutcome::Member(_) => {}
            other => return Err(T::protocol(format!("no key: not a group member ({other:?})"))),
        }
        // The entries from `epoch` on: the walk down the key-history chain needs no older ones.
        let log = self.log(t, practice, epoch.saturating_sub(1)).await?;
        if log.entries.iter().any(|e| e.epoch == epoch && e.revoked) {
            return Err(T::protocol(format!("epoch {epoch} was revoked: the group never agreed on its key; ask for it to be sent again")));
        }
        let k = self.user(who).epoch_key(practice)?;
        if epoch > k.epoch() {
            return Err(T::protocol(format!("epoch {epoch} is newer than the group's {}", k.epoch())));
        }
        self.walk_back::<T>(practice, &log, k, epoch)
    }

    /// Walks the key-history chain from `k` back to `epoch` (each key checked
    /// against the public key the log published for its epoch), remembering
    /// every key on the way.
    fn walk_back<T: Transport>(&self, practice: PracticeId, log: &MlsLog, mut k: PracticeKey, epoch: u64) -> Result<PracticeKey, T::Error> {
        loop {
            if let Some(entry) = log.entries.iter().find(|e| e.epoch == k.epoch())
                && entry.public_key.hpke_pub.as_slice() != k.hpke_public().as_slice()
            {
                return Err(T::protocol(format!("epoch {}'s key does not match its published public key", k.epoch())));
            }
            self.remember(practice, k.clone());
            if k.epoch() == epoch {
                return Ok(k);
            }
            let entry = log
                .entries
                .iter()
                .find(|e| e.epoch == k.epoch())
                .ok_or_else(|| T::protocol(format!("no log entry for epoch {}", k.epoch())))?;
            if entry.links_to < epoch {
                return Err(T::protocol(format!("epoch {epoch} is not on the key-history chain (it was revoked)")));
            }
            k = k.open_history_link_to(practice, entry.history.as_slice(), entry.links_to)?;
        }
    }

    /// Tells the server our client cannot process `epoch`'s entry. Best
    /// effort: the failure that made us report is what the caller returns.
    async fn report<T: Transport>(&self, t: &T, practice: PracticeId, epoch: u64) {
        let _ = t.call::<ReportMlsEpoch>(&practice, &ReportEpoch { epoch }).await;
    }

    /// Referrals `practice` sent whose receiver's key was revoked since (by a
    /// re-initialisation of the receiver's key group): its members send them again.
    pub async fn unreadable<T: Transport>(&self, t: &T, practice: PracticeId) -> Result<Vec<UnreadableReferral>, T::Error> {
        Ok(t.call::<ListUnreadableReferrals>(&practice, &()).await?.referrals)
    }

    /// Re-initialises the practice's key group after a member reported an
    /// epoch they cannot process (admins only; the server checks). A new MLS
    /// group (the next generation) with us as its only member becomes the
    /// practice's group at the next Handoff epoch; its history link seals the
    /// key of the last good epoch (the one before the lowest reported), so
    /// every earlier key stays reachable, and the server revokes every epoch
    /// after it. Then every practice member is added back by commit
    /// ([`reconcile`](Self::reconcile)); those without key packages yet join
    /// when their client publishes some and a member reconciles again.
    /// Returns the new epoch.
    pub async fn reinitialise<T: Transport>(&self, t: &T, who: Who<'_>, practice: PracticeId) -> Result<u64, T::Error> {
        let pending = self.pending(t, practice).await?;
        let bad = pending.reported.ok_or_else(|| T::protocol("no member reported an epoch they cannot process".into()))?;
        let good = bad.checked_sub(1).ok_or_else(|| T::protocol("epoch 0 cannot be reported".into()))?;
        // Follow the group as far as we can; the reported epoch may stop us.
        let _ = self.sync(t, who, practice).await;
        let log = self.log(t, practice, 0).await?;
        let user = self.user(who);
        let k_good = match self.cached_key(practice, good) {
            Some(k) => k,
            None => {
                let k = user.epoch_key(practice)?;
                if k.epoch() < good {
                    return Err(T::protocol(format!("this client does not hold epoch {good}'s key; sync first")));
                }
                self.walk_back::<T>(practice, &log, k, good)?
            }
        };
        let generation = log.entries.last().map_or(0, |e| e.generation) + 1;
        let epoch = log.epoch + 1;
        let before = MlsStore::from_bytes(&user.store().to_bytes()?)?;
        user.create_generation(practice, generation, epoch)?;
        let k = user.epoch_key(practice)?;
        let entry = SubmitCommit {
            epoch,
            commit: None,
            group_info: Some(B64(user.group_info(practice)?)),
            welcome: None,
            reinit: Some(good),
            added: vec![],
            removed: vec![],
            public_key: Self::signed_public_key(practice, who, &k),
            history: B64(k.history_link_from(practice, &k_good)?),
        };
        if let Err(e) = self.submit(t, practice, &entry).await {
            user.store().replace_with(&before)?;
            return Err(e);
        }
        self.remember(practice, k_good);
        self.remember(practice, k);
        self.save_or_reload(t, who).await?;
        Ok(self.reconcile(t, who, practice).await?.unwrap_or(epoch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(n: u8) -> UserId {
        UserId::from_bytes([n; 16])
    }

    fn entry(epoch: u64, added: Vec<UserId>, removed: Vec<UserId>) -> MlsLogEntry {
        MlsLogEntry {
            epoch,
            committer: u(1),
            commit: Some(B64(vec![1])),
            added,
            removed,
            public_key: PracticePublicKey { epoch, hpke_pub: B64(vec![0; 32]), signer: u(1), signature: B64(vec![0; 64]) },
            history: B64(vec![0; 72]),
            at: 0,
            generation: 0,
            links_to: epoch - 1,
            revoked: false,
        }
    }

    #[test]
    fn a_commit_removing_a_current_colleague_or_adding_an_outsider_does_not_follow_the_roster() {
        let members = [u(1), u(2), u(3)];
        // Removing Carol (3), who is still in the practice.
        assert!(follows_roster(&entry(3, vec![], vec![u(3)]), &[], &members).is_err());
        // Adding Eve (5), who is not.
        assert!(follows_roster(&entry(3, vec![u(5)], vec![]), &[], &members).is_err());
        // Adding a member and removing someone who left.
        assert!(follows_roster(&entry(3, vec![u(2)], vec![u(4)]), &[], &members).is_ok());
    }

    #[test]
    fn later_entries_explain_membership_that_changed_since() {
        let members = [u(1), u(2)];
        // Dave (4) was added at epoch 3 and has left since: epoch 5 removed him.
        let later = [entry(5, vec![], vec![u(4)])];
        assert!(follows_roster(&entry(3, vec![u(4)], vec![]), &later, &members).is_ok());
        // Bob (2) was removed at epoch 3 and rejoined: epoch 5 added him again.
        let later = [entry(5, vec![u(2)], vec![])];
        assert!(follows_roster(&entry(3, vec![], vec![u(2)]), &later, &members).is_ok());
        // An earlier entry explains nothing.
        let earlier = [entry(2, vec![], vec![u(4)])];
        assert!(follows_roster(&entry(3, vec![u(4)], vec![]), &earlier, &members).is_err());
    }
}
