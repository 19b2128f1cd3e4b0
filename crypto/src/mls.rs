//! MLS practice groups (RFC 9420, mls-rs with the pure-Rust RustCrypto
//! provider, so it runs in the browser too).
//!
//! - **One group per practice**; the MLS group id is the practice id.
//! - **Identity.** A member's leaf carries a basic credential whose identifier
//!   is the user id (16 bytes), and its MLS signature key *is* the user's
//!   account Ed25519 key. [`Directory`] is filled by the caller from the
//!   server's user directory; the identity provider refuses any leaf whose
//!   user is not in it or whose key differs from the directory's `sign_pub`.
//! - **Epochs.** Handoff epoch 0 is the practice's original (granted) key.
//!   MLS epoch `m` is Handoff epoch `m + 1`, whose key is
//!   `K_e = MLS-Exporter("handoff practice", e_be64, 32)`, wrapped into the
//!   existing [`PracticeKey`] so the derived HPKE key, its signature and
//!   `open_sealed` stay as they were.
//! - **Key history.** [`PracticeKey::history_link`] seals `K_{e-1}` under `K_e`
//!   (XChaCha20-Poly1305, bound to practice and both epochs), so any holder of
//!   the current key walks back to every earlier one.
//! - **State.** [`MlsStore`] is the whole MLS state of one user (groups, the
//!   last few epochs, unused key-package secrets) as one byte string, sealed
//!   under a key derived from the user's private keys ([`seal_state`]) so the
//!   server can keep it for all of the user's browsers without reading it.
//!
//! - **Public handshakes.** Commits are sent as MLS `PublicMessage`s (this
//!   crate builds mls-rs without its `private_message` feature, so mls-rs
//!   cannot encrypt them), so the server can verify each one as an MLS
//!   external observer; the group info a new group starts with carries the
//!   ratchet tree for the same reason ([`MlsUser::group_info`]).
//! - **Declared effect.** [`MlsUser::process`] refuses a commit whose real
//!   committer, adds and removes are not what its log entry declares
//!   ([`Declared`]), whatever the server accepted.
//!
//! Every operation loads the group from the store, acts, and writes it back,
//! so a caller never holds an MLS object across calls.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use mls_rs::client_builder::MlsConfig;
use mls_rs::error::{IntoAnyError, MlsError};
use mls_rs::group::proposal::Proposal;
use mls_rs::group::{CommitEffect, ReceivedMessage};
use mls_rs::identity::basic::BasicCredential;
use mls_rs::identity::{CredentialType, SigningIdentity};
use mls_rs::mls_rs_codec::{MlsDecode, MlsEncode};
use mls_rs::storage_provider::KeyPackageData;
use mls_rs::time::MlsTime;
use mls_rs::{CipherSuite, Client, ExtensionList, GroupStateStorage, IdentityProvider, KeyPackageStorage, MlsMessage, WireFormat};
use mls_rs_core::group::{EpochRecord, GroupState};
use mls_rs_core::identity::MemberValidationContext;
use mls_rs_crypto_rustcrypto::RustCryptoProvider;
use zeroize::{Zeroize, Zeroizing};

use handoff_protocol::mls::mls_group_id;
use handoff_protocol::{PracticeId, UserId};

use crate::keys::UserSecrets;
use crate::practice::PracticeKey;
use crate::{CryptoError, seal};

/// X25519, ChaCha20-Poly1305, SHA-256, Ed25519: the same primitives as the
/// rest of Handoff, and supported by the RustCrypto provider on wasm32.
pub const CIPHER_SUITE: CipherSuite = CipherSuite::CURVE25519_CHACHA;
/// The exporter label of practice epoch keys.
pub const EXPORTER_LABEL: &[u8] = b"handoff practice";
/// How many past MLS epochs a state keeps (for late messages); keys of older
/// epochs come from the key-history chain instead.
const EPOCH_RETENTION: usize = 3;

fn mls_err(e: MlsError) -> CryptoError {
    CryptoError::Mls(e.to_string())
}

/// Handoff epoch of an MLS epoch of a practice's first group (generation 0).
pub fn handoff_epoch(mls_epoch: u64) -> u64 {
    mls_epoch + 1
}

// ---------------------------------------------------------------- directory

/// User id → Ed25519 public key, as served by the server's user directory.
/// Every leaf (in a key package, welcome or commit) is checked against it.
#[derive(Clone, Debug, Default)]
pub struct Directory(Arc<RwLock<HashMap<UserId, [u8; 32]>>>);

impl Directory {
    /// Records a user's signing key.
    pub fn insert(&self, user: UserId, sign_pub: [u8; 32]) {
        if let Ok(mut m) = self.0.write() {
            m.insert(user, sign_pub);
        }
    }

    /// Whether a user is known.
    pub fn contains(&self, user: UserId) -> bool {
        self.0.read().map(|m| m.contains_key(&user)).unwrap_or(false)
    }

    /// A user's signing key, if known.
    pub fn get(&self, user: UserId) -> Option<[u8; 32]> {
        self.0.read().ok().and_then(|m| m.get(&user).copied())
    }
}

/// Why the identity provider refused a leaf.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Not a basic credential carrying a 16-byte user id.
    #[error("credential is not a Handoff user credential")]
    NotAUser,
    /// The user is not in the directory the client filled.
    #[error("user {0} is not in the directory")]
    Unknown(UserId),
    /// The leaf's signature key is not the directory's key for that user.
    #[error("user {0}'s MLS key does not match the directory")]
    KeyMismatch(UserId),
}

impl IntoAnyError for IdentityError {}

/// The user id a signing identity claims.
pub fn identity_user(id: &SigningIdentity) -> Option<UserId> {
    let b = id.credential.as_basic()?;
    let raw: [u8; 16] = b.identifier().try_into().ok()?;
    Some(UserId::from_bytes(raw))
}

#[derive(Clone, Debug)]
struct DirectoryIdentity(Directory);

impl DirectoryIdentity {
    fn check(&self, id: &SigningIdentity) -> Result<UserId, IdentityError> {
        let user = identity_user(id).ok_or(IdentityError::NotAUser)?;
        let key = self.0.get(user).ok_or(IdentityError::Unknown(user))?;
        if id.signature_key.as_bytes() != key.as_slice() {
            return Err(IdentityError::KeyMismatch(user));
        }
        Ok(user)
    }
}

impl IdentityProvider for DirectoryIdentity {
    type Error = IdentityError;

    fn validate_member(&self, id: &SigningIdentity, _: Option<MlsTime>, _: MemberValidationContext<'_>) -> Result<(), Self::Error> {
        self.check(id).map(|_| ())
    }

    fn validate_external_sender(&self, _: &SigningIdentity, _: Option<MlsTime>, _: Option<&ExtensionList>) -> Result<(), Self::Error> {
        // Handoff groups have no external senders.
        Err(IdentityError::NotAUser)
    }

    fn identity(&self, id: &SigningIdentity, _: &ExtensionList) -> Result<Vec<u8>, Self::Error> {
        Ok(identity_user(id).ok_or(IdentityError::NotAUser)?.as_bytes().to_vec())
    }

    fn valid_successor(&self, a: &SigningIdentity, b: &SigningIdentity, _: &ExtensionList) -> Result<bool, Self::Error> {
        Ok(identity_user(a).is_some() && identity_user(a) == identity_user(b))
    }

    fn supported_types(&self) -> Vec<CredentialType> {
        vec![CredentialType::BASIC]
    }
}

// ---------------------------------------------------------------- state

#[derive(Default)]
struct GroupEntry {
    state: Zeroizing<Vec<u8>>,
    epochs: BTreeMap<u64, Zeroizing<Vec<u8>>>,
}

#[derive(Default)]
struct StoreInner {
    groups: BTreeMap<Vec<u8>, GroupEntry>,
    key_packages: BTreeMap<Vec<u8>, Zeroizing<Vec<u8>>>,
    /// Practice id → (generation, base) of the practice's current group, for
    /// practices re-initialised at least once (absent: generation 0, base 1).
    generations: BTreeMap<Vec<u8>, (u32, u64)>,
}

/// One user's whole MLS state (groups and key-package secrets), in memory,
/// serialisable with [`MlsStore::to_bytes`]. Clones share the same state.
#[derive(Clone, Default)]
pub struct MlsStore(Arc<Mutex<StoreInner>>);

impl std::fmt::Debug for MlsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MlsStore(..)")
    }
}

/// The state's mutex was poisoned (a panic while holding it).
#[derive(Debug, thiserror::Error)]
#[error("MLS state unavailable")]
pub struct StoreUnavailable;
impl IntoAnyError for StoreUnavailable {}

const STATE_MAGIC: &[u8] = b"HMLS2";
/// The format before group generations (read, never written).
const STATE_MAGIC_V1: &[u8] = b"HMLS1";

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CryptoError> {
        if self.0.len() < n {
            return Err(CryptoError::Malformed("MLS state"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, CryptoError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| CryptoError::Malformed("MLS state"))?))
    }
    fn u64(&mut self) -> Result<u64, CryptoError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().map_err(|_| CryptoError::Malformed("MLS state"))?))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, CryptoError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
}

impl MlsStore {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, StoreInner>, StoreUnavailable> {
        self.0.lock().map_err(|_| StoreUnavailable)
    }

    /// The state as bytes (secret: seal it with [`seal_state`] before it leaves the client).
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let s = self.lock().map_err(|_| CryptoError::Malformed("MLS state"))?;
        let mut out = Zeroizing::new(STATE_MAGIC.to_vec());
        out.extend_from_slice(&(s.groups.len() as u32).to_be_bytes());
        for (id, g) in &s.groups {
            put_bytes(&mut out, id);
            put_bytes(&mut out, &g.state);
            out.extend_from_slice(&(g.epochs.len() as u32).to_be_bytes());
            for (e, d) in &g.epochs {
                out.extend_from_slice(&e.to_be_bytes());
                put_bytes(&mut out, d);
            }
        }
        out.extend_from_slice(&(s.key_packages.len() as u32).to_be_bytes());
        for (id, d) in &s.key_packages {
            put_bytes(&mut out, id);
            put_bytes(&mut out, d);
        }
        out.extend_from_slice(&(s.generations.len() as u32).to_be_bytes());
        for (id, (generation, base)) in &s.generations {
            put_bytes(&mut out, id);
            out.extend_from_slice(&generation.to_be_bytes());
            out.extend_from_slice(&base.to_be_bytes());
        }
        Ok(out)
    }

    /// Reads bytes made by [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        let mut r = Reader(b);
        let v2 = match r.take(STATE_MAGIC.len())? {
            m if m == STATE_MAGIC => true,
            m if m == STATE_MAGIC_V1 => false,
            _ => return Err(CryptoError::Malformed("MLS state")),
        };
        let mut inner = StoreInner::default();
        for _ in 0..r.u32()? {
            let id = r.bytes()?;
            let state = Zeroizing::new(r.bytes()?);
            let mut epochs = BTreeMap::new();
            for _ in 0..r.u32()? {
                let e = r.u64()?;
                epochs.insert(e, Zeroizing::new(r.bytes()?));
            }
            inner.groups.insert(id, GroupEntry { state, epochs });
        }
        for _ in 0..r.u32()? {
            let id = r.bytes()?;
            inner.key_packages.insert(id, Zeroizing::new(r.bytes()?));
        }
        if v2 {
            for _ in 0..r.u32()? {
                let id = r.bytes()?;
                let generation = r.u32()?;
                inner.generations.insert(id, (generation, r.u64()?));
            }
        }
        if !r.0.is_empty() {
            return Err(CryptoError::Malformed("MLS state"));
        }
        Ok(Self(Arc::new(Mutex::new(inner))))
    }

    /// Replaces this state's contents with another's (e.g. a newer copy
    /// loaded from the server by another tab).
    pub fn replace_with(&self, other: &MlsStore) -> Result<(), CryptoError> {
        let bytes = other.to_bytes()?;
        let fresh = Self::from_bytes(&bytes)?;
        let mut fresh_inner = fresh.lock().map_err(|_| CryptoError::Malformed("MLS state"))?;
        let mut mine = self.lock().map_err(|_| CryptoError::Malformed("MLS state"))?;
        std::mem::swap(&mut *mine, &mut *fresh_inner);
        Ok(())
    }

    /// Unused key packages held (their secrets).
    pub fn key_package_count(&self) -> usize {
        self.lock().map(|s| s.key_packages.len()).unwrap_or(0)
    }

    /// The generation of `practice`'s current group and its base: the Handoff
    /// epoch of the group's MLS epoch 0 (generation 0 and base 1 for a practice
    /// never re-initialised).
    pub fn generation(&self, practice: PracticeId) -> (u32, u64) {
        self.lock().ok().and_then(|s| s.generations.get(practice.as_bytes().as_slice()).copied()).unwrap_or((0, 1))
    }

    fn set_generation(&self, practice: PracticeId, generation: u32, base: u64) {
        if let Ok(mut s) = self.lock() {
            s.generations.insert(practice.as_bytes().to_vec(), (generation, base));
        }
    }

    /// The MLS group id of `practice`'s current group.
    fn group_id(&self, practice: PracticeId) -> Vec<u8> {
        mls_group_id(practice, self.generation(practice).0)
    }

    /// Whether a group for `practice` is present.
    pub fn has_group(&self, practice: PracticeId) -> bool {
        let id = self.group_id(practice);
        self.lock().map(|s| s.groups.contains_key(&id)).unwrap_or(false)
    }

    /// Drops a group (after removal from the practice).
    pub fn forget_group(&self, practice: PracticeId) {
        let id = self.group_id(practice);
        if let Ok(mut s) = self.lock() {
            s.groups.remove(&id);
        }
    }
}

impl GroupStateStorage for MlsStore {
    type Error = StoreUnavailable;

    fn state(&self, group_id: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, Self::Error> {
        Ok(self.lock()?.groups.get(group_id).map(|g| g.state.clone()))
    }

    fn epoch(&self, group_id: &[u8], epoch_id: u64) -> Result<Option<Zeroizing<Vec<u8>>>, Self::Error> {
        Ok(self.lock()?.groups.get(group_id).and_then(|g| g.epochs.get(&epoch_id).cloned()))
    }

    fn write(&mut self, state: GroupState, inserts: Vec<EpochRecord>, updates: Vec<EpochRecord>) -> Result<(), Self::Error> {
        let mut s = self.lock()?;
        let g = s.groups.entry(state.id.clone()).or_default();
        g.state = state.data;
        for e in inserts.into_iter().chain(updates) {
            g.epochs.insert(e.id, e.data);
        }
        while g.epochs.len() > EPOCH_RETENTION {
            g.epochs.pop_first();
        }
        Ok(())
    }

    fn max_epoch_id(&self, group_id: &[u8]) -> Result<Option<u64>, Self::Error> {
        Ok(self.lock()?.groups.get(group_id).and_then(|g| g.epochs.keys().next_back().copied()))
    }
}

impl KeyPackageStorage for MlsStore {
    type Error = StoreUnavailable;

    fn delete(&mut self, id: &[u8]) -> Result<(), Self::Error> {
        self.lock()?.key_packages.remove(id);
        Ok(())
    }

    fn insert(&mut self, id: Vec<u8>, pkg: KeyPackageData) -> Result<(), Self::Error> {
        let bytes = pkg.mls_encode_to_vec().map_err(|_| StoreUnavailable)?;
        self.lock()?.key_packages.insert(id, Zeroizing::new(bytes));
        Ok(())
    }

    fn get(&self, id: &[u8]) -> Result<Option<KeyPackageData>, Self::Error> {
        let s = self.lock()?;
        match s.key_packages.get(id) {
            None => Ok(None),
            Some(b) => Ok(Some(KeyPackageData::mls_decode(&mut b.as_slice()).map_err(|_| StoreUnavailable)?)),
        }
    }
}

fn state_aad(user: UserId) -> Vec<u8> {
    let mut m = b"handoff mls state v1".to_vec();
    m.extend_from_slice(user.as_bytes());
    m
}

/// Seals a user's MLS state under a key only that user's private keys give.
pub fn seal_state(secrets: &UserSecrets, user: UserId, state: &MlsStore) -> Result<Vec<u8>, CryptoError> {
    let mut k = secrets.derive_key(b"handoff mls state key v1");
    let out = seal::seal(&k, &state_aad(user), &state.to_bytes()?);
    k.zeroize();
    out
}

/// Opens a state sealed by [`seal_state`].
pub fn open_state(secrets: &UserSecrets, user: UserId, sealed: &[u8]) -> Result<MlsStore, CryptoError> {
    let mut k = secrets.derive_key(b"handoff mls state key v1");
    let plain = seal::open(&k, &state_aad(user), sealed).map(Zeroizing::new);
    k.zeroize();
    MlsStore::from_bytes(&plain?)
}

// ---------------------------------------------------------------- the user

/// A user's MLS client: builds an mls-rs client over the user's state, the
/// directory and the user's account signing key for each operation.
pub struct MlsUser {
    user: UserId,
    signing_secret: Zeroizing<Vec<u8>>,
    sign_pub: [u8; 32],
    store: MlsStore,
    directory: Directory,
}

impl std::fmt::Debug for MlsUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MlsUser({})", self.user)
    }
}

/// A commit made but not yet accepted by the delivery service.
#[derive(Clone, Debug)]
pub struct PendingCommit {
    /// The MLS commit message (TLS-encoded `MLSMessage`).
    pub commit: Vec<u8>,
    /// The welcome for the added members, if any.
    pub welcome: Option<Vec<u8>>,
    /// The MLS epoch the commit was made in (the DS's sequence check).
    pub mls_epoch: u64,
    /// Users added.
    pub added: Vec<UserId>,
    /// Users removed.
    pub removed: Vec<UserId>,
}

impl PendingCommit {
    /// What the log entry for this commit declares, when `committer` made it.
    pub fn declared(&self, committer: UserId) -> Declared<'_> {
        Declared { committer, added: &self.added, removed: &self.removed }
    }
}

/// What a log entry says its commit does: [`MlsUser::process`] refuses a
/// commit that does anything else.
#[derive(Clone, Copy, Debug)]
pub struct Declared<'a> {
    /// The member the entry names as committer.
    pub committer: UserId,
    /// The users it says the commit adds.
    pub added: &'a [UserId],
    /// The users it says the commit removes.
    pub removed: &'a [UserId],
}

fn sorted(v: &[UserId]) -> Vec<UserId> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// Compares what a commit really does (its committer and applied proposals,
/// resolved against the roster before it) with what its entry declares.
fn check_declared(
    before: &HashMap<u32, UserId>,
    committer: u32,
    proposals: &[mls_rs::mls_rules::ProposalInfo<Proposal>],
    declared: &Declared<'_>,
) -> Result<(), CryptoError> {
    let undeclared = |m: &str| CryptoError::Undeclared(m.to_string());
    if before.get(&committer) != Some(&declared.committer) {
        return Err(undeclared("it was signed by another member than the entry's committer"));
    }
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for p in proposals {
        match &p.proposal {
            Proposal::Add(a) => added.push(identity_user(a.signing_identity()).ok_or_else(|| undeclared("it adds a non-user"))?),
            Proposal::Remove(r) => removed.push(*before.get(&r.to_remove()).ok_or_else(|| undeclared("it removes an unknown leaf"))?),
            _ => return Err(undeclared("it carries a proposal other than adding and removing members")),
        }
    }
    if sorted(&added) != sorted(declared.added) {
        return Err(undeclared("its real adds are not the declared ones"));
    }
    if sorted(&removed) != sorted(declared.removed) {
        return Err(undeclared("its real removes are not the declared ones"));
    }
    Ok(())
}

/// What processing a commit did for us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Processed {
    /// We are in the new epoch (Handoff numbering).
    Advanced(u64),
    /// The commit removed us.
    Removed,
}

impl MlsUser {
    /// An MLS client for `user`, whose MLS signing key is the account key in `secrets`.
    pub fn new(user: UserId, secrets: &UserSecrets, store: MlsStore, directory: Directory) -> Self {
        let sign_pub = secrets.public().sign_pub;
        let mut kp = secrets.sign_keypair_bytes();
        let signing_secret = Zeroizing::new(kp.to_vec());
        kp.zeroize();
        directory.insert(user, sign_pub);
        Self { user, signing_secret, sign_pub, store, directory }
    }

    /// The state (share it, or save it with [`seal_state`]).
    pub fn store(&self) -> &MlsStore {
        &self.store
    }

    /// The directory this client checks leaves against.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    fn client(&self) -> Client<impl MlsConfig> {
        let identity =
            SigningIdentity::new(BasicCredential::new(self.user.as_bytes().to_vec()).into_credential(), self.sign_pub.to_vec().into());
        Client::builder()
            .crypto_provider(RustCryptoProvider::default())
            .identity_provider(DirectoryIdentity(self.directory.clone()))
            .group_state_storage(self.store.clone())
            .key_package_repo(self.store.clone())
            .signing_identity(identity, self.signing_secret.to_vec().into(), CIPHER_SUITE)
            .build()
    }

    fn group_id(&self, practice: PracticeId) -> Vec<u8> {
        self.store.group_id(practice)
    }

    /// The Handoff epoch of MLS epoch `mls_epoch` of `practice`'s current group.
    fn handoff_epoch(&self, practice: PracticeId, mls_epoch: u64) -> u64 {
        self.store.generation(practice).1 + mls_epoch
    }

    /// A fresh key package (its secret stays in the state). Publish it; the
    /// server hands each out at most once.
    pub fn key_package(&self) -> Result<Vec<u8>, CryptoError> {
        let m = self.client().generate_key_package_message(ExtensionList::default(), ExtensionList::default(), None).map_err(mls_err)?;
        m.to_bytes().map_err(mls_err)
    }

    /// Creates the practice's group with us as its only member (MLS epoch 0, Handoff epoch 1).
    pub fn create_group(&self, practice: PracticeId) -> Result<u64, CryptoError> {
        self.create_generation(practice, 0, 1)
    }

    /// Creates the practice's group of `generation` (a re-initialisation's new
    /// group for `generation > 0`) with us as its only member; its MLS epoch 0
    /// is Handoff epoch `base`. It becomes the practice's current group.
    pub fn create_generation(&self, practice: PracticeId, generation: u32, base: u64) -> Result<u64, CryptoError> {
        let mut g = self
            .client()
            .create_group_with_id(mls_group_id(practice, generation), ExtensionList::default(), ExtensionList::default(), None)
            .map_err(mls_err)?;
        g.write_to_storage().map_err(mls_err)?;
        self.store.set_generation(practice, generation, base);
        Ok(base + g.current_epoch())
    }

    /// Joins from a welcome addressed to us. Refuses a welcome for another
    /// group, or one we cannot open (not made for our key packages).
    pub fn join(&self, practice: PracticeId, welcome: &[u8]) -> Result<u64, CryptoError> {
        self.join_generation(practice, welcome, 0, 1)
    }

    /// Joins the practice's group of `generation` (whose MLS epoch 0 is Handoff
    /// epoch `base`) from a welcome addressed to us; it becomes the practice's
    /// current group. Refuses a welcome for another group or generation.
    pub fn join_generation(&self, practice: PracticeId, welcome: &[u8], generation: u32, base: u64) -> Result<u64, CryptoError> {
        let msg = MlsMessage::from_bytes(welcome).map_err(|_| CryptoError::Malformed("MLS welcome"))?;
        let client = self.client();
        let (mut g, _) = client.join_group(None, &msg, None).map_err(mls_err)?;
        if g.group_id() != mls_group_id(practice, generation).as_slice() {
            return Err(CryptoError::Mls("the welcome is for another practice or group generation".into()));
        }
        g.write_to_storage().map_err(mls_err)?;
        self.store.set_generation(practice, generation, base);
        Ok(base + g.current_epoch())
    }

    /// The generation of the practice's current group in our state and its
    /// base (see [`MlsStore::generation`]).
    pub fn generation(&self, practice: PracticeId) -> (u32, u64) {
        self.store.generation(practice)
    }

    /// Our current Handoff epoch in the practice's group, if we have the group.
    pub fn epoch(&self, practice: PracticeId) -> Result<Option<u64>, CryptoError> {
        match self.client().load_group(&self.group_id(practice)) {
            Ok(g) => Ok(Some(self.handoff_epoch(practice, g.current_epoch()))),
            Err(MlsError::GroupNotFound) => Ok(None),
            Err(e) => Err(mls_err(e)),
        }
    }

    /// The group's members (user ids) in our current view.
    pub fn members(&self, practice: PracticeId) -> Result<Vec<UserId>, CryptoError> {
        let g = self.client().load_group(&self.group_id(practice)).map_err(mls_err)?;
        Ok(g.roster().members_iter().filter_map(|m| identity_user(&m.signing_identity)).collect())
    }

    /// The practice key of our current epoch.
    pub fn epoch_key(&self, practice: PracticeId) -> Result<PracticeKey, CryptoError> {
        let g = self.client().load_group(&self.group_id(practice)).map_err(mls_err)?;
        let e = self.handoff_epoch(practice, g.current_epoch());
        let secret = g.export_secret(EXPORTER_LABEL, &e.to_be_bytes(), 32).map_err(mls_err)?;
        let raw: [u8; 32] = secret.as_bytes().try_into().map_err(|_| CryptoError::Malformed("exported secret"))?;
        Ok(PracticeKey::from_raw(raw, e))
    }

    /// Makes (but does not apply) a commit adding the owners of `key_packages`
    /// and removing `remove`. Each key package must belong to a user in the
    /// directory (the identity provider checks). Apply it with
    /// [`apply_pending`](Self::apply_pending) once the DS accepted it, or drop
    /// it with [`discard_pending`](Self::discard_pending).
    pub fn commit(&self, practice: PracticeId, key_packages: &[Vec<u8>], remove: &[UserId]) -> Result<PendingCommit, CryptoError> {
        let client = self.client();
        let mut g = client.load_group(&self.group_id(practice)).map_err(mls_err)?;
        g.clear_pending_commit();
        let mut removed = Vec::new();
        let mut indexes = Vec::new();
        for u in remove {
            let idx = g
                .roster()
                .members_iter()
                .find(|m| identity_user(&m.signing_identity) == Some(*u))
                .map(|m| m.index)
                .ok_or_else(|| CryptoError::Mls(format!("{u} is not in the group")))?;
            removed.push(*u);
            indexes.push(idx);
        }
        let mls_epoch = g.current_epoch();
        let mut b = g.commit_builder();
        let mut added = Vec::new();
        for kp in key_packages {
            let m = MlsMessage::from_bytes(kp).map_err(|_| CryptoError::Malformed("MLS key package"))?;
            let who =
                m.as_key_package().and_then(|k| identity_user(k.signing_identity())).ok_or(CryptoError::Malformed("MLS key package"))?;
            added.push(who);
            b = b.add_member(m).map_err(mls_err)?;
        }
        for idx in indexes {
            b = b.remove_member(idx).map_err(mls_err)?;
        }
        let out = b.build().map_err(mls_err)?;
        let commit = out.commit_message.to_bytes().map_err(mls_err)?;
        let welcome = match out.welcome_messages.first() {
            Some(w) => Some(w.to_bytes().map_err(mls_err)?),
            None => None,
        };
        g.write_to_storage().map_err(mls_err)?;
        Ok(PendingCommit { commit, welcome, mls_epoch, added, removed })
    }

    /// Applies our pending commit (the DS accepted it). Returns the new Handoff epoch.
    pub fn apply_pending(&self, practice: PracticeId) -> Result<u64, CryptoError> {
        let mut g = self.client().load_group(&self.group_id(practice)).map_err(mls_err)?;
        g.apply_pending_commit().map_err(mls_err)?;
        g.write_to_storage().map_err(mls_err)?;
        Ok(self.handoff_epoch(practice, g.current_epoch()))
    }

    /// Drops our pending commit (the DS refused it).
    pub fn discard_pending(&self, practice: PracticeId) -> Result<(), CryptoError> {
        let mut g = self.client().load_group(&self.group_id(practice)).map_err(mls_err)?;
        g.clear_pending_commit();
        g.write_to_storage().map_err(mls_err)
    }

    /// The group's `GroupInfo` message for our current epoch, with the
    /// ratchet tree in its extension: what the server starts observing a
    /// group from (the new group's, or a group it did not observe before).
    /// Public: it holds no secret.
    pub fn group_info(&self, practice: PracticeId) -> Result<Vec<u8>, CryptoError> {
        let g = self.client().load_group(&self.group_id(practice)).map_err(mls_err)?;
        g.group_info_message(true).map_err(mls_err)?.to_bytes().map_err(mls_err)
    }

    /// Processes another member's commit from the DS log, if it does exactly
    /// what its entry `declared` says ([`CryptoError::Undeclared`] otherwise,
    /// and the state is left as it was): signed by the entry's committer, and
    /// adding and removing exactly the declared users, nothing else.
    pub fn process(&self, practice: PracticeId, commit: &[u8], declared: &Declared<'_>) -> Result<Processed, CryptoError> {
        let msg = MlsMessage::from_bytes(commit).map_err(|_| CryptoError::Malformed("MLS commit"))?;
        if msg.wire_format() != WireFormat::PublicMessage {
            return Err(CryptoError::Malformed("MLS commit (not a PublicMessage)"));
        }
        let client = self.client();
        let mut g = client.load_group(&self.group_id(practice)).map_err(mls_err)?;
        g.clear_pending_commit();
        let before: HashMap<u32, UserId> =
            g.roster().members_iter().filter_map(|m| identity_user(&m.signing_identity).map(|u| (m.index, u))).collect();
        match g.process_incoming_message(msg).map_err(mls_err)? {
            ReceivedMessage::Commit(d) => match d.effect {
                CommitEffect::Removed { new_epoch, .. } => {
                    check_declared(&before, d.committer, &new_epoch.applied_proposals, declared)?;
                    self.store.forget_group(practice);
                    Ok(Processed::Removed)
                }
                CommitEffect::NewEpoch(new_epoch) => {
                    check_declared(&before, d.committer, &new_epoch.applied_proposals, declared)?;
                    g.write_to_storage().map_err(mls_err)?;
                    Ok(Processed::Advanced(self.handoff_epoch(practice, g.current_epoch())))
                }
                CommitEffect::ReInit(_) => Err(CryptoError::Undeclared("it re-initialises the group".into())),
            },
            _ => Err(CryptoError::Malformed("MLS commit")),
        }
    }
}

/// The user id a key package belongs to (for the DS's and clients' checks).
pub fn key_package_owner(kp: &[u8]) -> Result<(UserId, Vec<u8>), CryptoError> {
    let m = MlsMessage::from_bytes(kp).map_err(|_| CryptoError::Malformed("MLS key package"))?;
    let k = m.as_key_package().ok_or(CryptoError::Malformed("MLS key package"))?;
    let who = identity_user(k.signing_identity()).ok_or(CryptoError::Malformed("MLS key package"))?;
    Ok((who, k.signing_identity().signature_key.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests;
