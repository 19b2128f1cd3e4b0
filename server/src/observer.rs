//! The server as an MLS *external observer* of each practice's group.
//!
//! Members send their commits as MLS `PublicMessage`s (handshake messages in
//! the clear; only application data would be encrypted, and Handoff sends
//! none through MLS). The server follows each group's public state with
//! mls-rs's [`ExternalClient`] / [`ExternalGroup`]: the ratchet tree's public
//! keys and leaves, the group context and the transcript hash, kept in the
//! store as an [`ExternalSnapshot`]. Processing a commit as an observer checks
//! what can be checked without a group secret: the committer's signature
//! against their leaf, the proposal list, the new leaves (each checked against
//! the account signing key of the user it names) and the update path's public
//! keys and parent hashes. It then reports what the commit really does, which
//! [`crate::mls`] compares with what the log entry declares.
//!
//! **Invariant:** the server is an MLS external observer: it verifies public
//! handshake messages and holds the public tree, never a group secret. This
//! module uses only `ExternalClient`/`ExternalGroup`; `cargo xtask test`
//! refuses the secret-holding mls-rs APIs (`Client`, `ClientBuilder`,
//! `Group<…>`) anywhere in the server, actors and store.
//!
//! What no observer can check — the path secrets encrypted to each member,
//! the membership tag and the confirmation tag, all keyed by group secrets —
//! is left to the members' clients; a commit that passes here but that they
//! cannot process is what re-initialising the group recovers from.

use std::collections::HashMap;
use std::sync::Arc;

use mls_rs::error::{IntoAnyError, MlsError};
use mls_rs::external_client::{ExternalClient, ExternalReceivedMessage, ExternalSnapshot};
use mls_rs::group::CommitEffect;
use mls_rs::group::proposal::Proposal;
use mls_rs::identity::{CredentialType, SigningIdentity};
use mls_rs::time::MlsTime;
use mls_rs::{CipherSuite, ExtensionList, IdentityProvider, MlsMessage, WireFormat};
use mls_rs_core::identity::MemberValidationContext;
use mls_rs_crypto_rustcrypto::RustCryptoProvider;

use handoff_protocol::UserId;

/// The cipher suite every Handoff group uses (the clients' `handoff_crypto::mls::CIPHER_SUITE`).
pub const CIPHER_SUITE: CipherSuite = CipherSuite::CURVE25519_CHACHA;

/// Why the observer refused a group info or a commit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObserveError {
    /// The bytes are not an MLS message of the expected kind.
    #[error("not a well-formed MLS {0}")]
    Malformed(&'static str),
    /// The commit was sent encrypted (`PrivateMessage`): the server cannot check it.
    #[error("the commit must be sent as an MLS PublicMessage so the delivery service can verify it")]
    NotPublic,
    /// mls-rs refused it: a bad signature, tree, leaf or proposal.
    #[error("the MLS {what} does not verify: {reason}")]
    Invalid {
        /// A group info or a commit.
        what: &'static str,
        /// mls-rs's reason.
        reason: String,
    },
    /// The group is not this practice's, not at the expected epoch, or not of Handoff's cipher suite.
    #[error("{0}")]
    WrongGroup(String),
    /// A commit with a proposal other than adding and removing members, or an external commit.
    #[error("a commit may only add and remove members (found {0})")]
    Proposal(&'static str),
    /// A leaf whose credential is not a Handoff user id.
    #[error("a leaf of the group is not a Handoff user")]
    NotAUser,
}

/// The account signing keys the observer accepts leaves for (user id → Ed25519 key).
#[derive(Clone, Debug, Default)]
pub struct Keys(Arc<HashMap<UserId, Vec<u8>>>);

impl Keys {
    /// Keys from `(user, sign_pub)` pairs.
    pub fn new(keys: impl IntoIterator<Item = (UserId, Vec<u8>)>) -> Self {
        Self(Arc::new(keys.into_iter().collect()))
    }
}

/// The user id a signing identity claims (a basic credential of 16 bytes).
fn user_of(id: &SigningIdentity) -> Option<UserId> {
    let raw: [u8; 16] = id.credential.as_basic()?.identifier().try_into().ok()?;
    Some(UserId::from_bytes(raw))
}

/// Why [`Keys`] refused a leaf.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeafError {
    /// Not a basic credential naming a user.
    #[error("credential is not a Handoff user credential")]
    NotAUser,
    /// A user the practice does not know, or whose MLS key is not their account key.
    #[error("user {0}'s leaf is not their account signing key, or they may not be in this group")]
    Refused(UserId),
}

impl IntoAnyError for LeafError {}

impl IdentityProvider for Keys {
    type Error = LeafError;

    fn validate_member(&self, id: &SigningIdentity, _: Option<MlsTime>, _: MemberValidationContext<'_>) -> Result<(), Self::Error> {
        let user = user_of(id).ok_or(LeafError::NotAUser)?;
        match self.0.get(&user) {
            Some(key) if key.as_slice() == id.signature_key.as_bytes() => Ok(()),
            _ => Err(LeafError::Refused(user)),
        }
    }

    fn validate_external_sender(&self, _: &SigningIdentity, _: Option<MlsTime>, _: Option<&ExtensionList>) -> Result<(), Self::Error> {
        // Handoff groups have no external senders.
        Err(LeafError::NotAUser)
    }

    fn identity(&self, id: &SigningIdentity, _: &ExtensionList) -> Result<Vec<u8>, Self::Error> {
        Ok(user_of(id).ok_or(LeafError::NotAUser)?.as_bytes().to_vec())
    }

    fn valid_successor(&self, a: &SigningIdentity, b: &SigningIdentity, _: &ExtensionList) -> Result<bool, Self::Error> {
        Ok(user_of(a).is_some() && user_of(a) == user_of(b))
    }

    fn supported_types(&self) -> Vec<CredentialType> {
        vec![CredentialType::BASIC]
    }
}

fn invalid(what: &'static str) -> impl Fn(MlsError) -> ObserveError {
    move |e| ObserveError::Invalid { what, reason: e.to_string() }
}

/// A group the server starts observing, from the group info its creator (or,
/// for a group the server did not observe before, a committer) posted.
#[derive(Debug)]
pub struct Started {
    /// The group's members.
    pub roster: Vec<UserId>,
    /// The snapshot to keep.
    pub snapshot: Vec<u8>,
}

/// What a commit really does, as the observer saw it.
#[derive(Debug)]
pub struct Applied {
    /// The member who signed it.
    pub committer: UserId,
    /// Users whose leaves it adds.
    pub added: Vec<UserId>,
    /// Users whose leaves it removes.
    pub removed: Vec<UserId>,
    /// The group's public state after it.
    pub snapshot: Vec<u8>,
}

/// The observer, checking leaves against `keys` with the RustCrypto provider
/// (signature verification and hashing only: it holds no private key).
macro_rules! observer {
    ($keys:expr) => {
        ExternalClient::builder().identity_provider($keys).crypto_provider(RustCryptoProvider::default()).build()
    };
}

/// The `(leaf index, user)` pairs of a roster.
fn members<'a>(m: impl Iterator<Item = mls_rs::group::Member> + 'a) -> Result<Vec<(u32, UserId)>, ObserveError> {
    m.map(|m| user_of(&m.signing_identity).map(|u| (m.index, u)).ok_or(ObserveError::NotAUser)).collect()
}

/// Starts observing the group `group_id` from a `GroupInfo` message carrying
/// the ratchet tree, at MLS epoch `mls_epoch`. mls-rs verifies the group
/// info's signature against its signer's leaf, the tree hash, and every leaf
/// (each against `keys`).
pub fn start(group_info: &[u8], group_id: &[u8], mls_epoch: u64, keys: Keys) -> Result<Started, ObserveError> {
    let msg = MlsMessage::from_bytes(group_info).map_err(|_| ObserveError::Malformed("group info"))?;
    if msg.as_group_info().is_none() {
        return Err(ObserveError::Malformed("group info"));
    }
    let group = observer!(keys).observe_group(msg, None, None).map_err(invalid("group info"))?;
    let ctx = group.group_context();
    if ctx.group_id != group_id {
        return Err(ObserveError::WrongGroup("the group info is for another group".into()));
    }
    if ctx.cipher_suite != CIPHER_SUITE {
        return Err(ObserveError::WrongGroup("Handoff groups use CURVE25519_CHACHA".into()));
    }
    if ctx.epoch != mls_epoch {
        return Err(ObserveError::WrongGroup(format!("the group info is for MLS epoch {}, not {mls_epoch}", ctx.epoch)));
    }
    let roster = members(group.roster().members_iter())?.into_iter().map(|(_, u)| u).collect();
    let snapshot = group.snapshot().to_bytes().map_err(invalid("group info"))?;
    Ok(Started { roster, snapshot })
}

/// The MLS group id and epoch an observed state is at.
pub fn context_of(snapshot: &[u8]) -> Result<(Vec<u8>, u64), ObserveError> {
    let s = ExternalSnapshot::from_bytes(snapshot).map_err(invalid("group state"))?;
    Ok((s.context().group_id.clone(), s.context().epoch))
}

/// Processes `commit` against the observed state `snapshot` (which must be at
/// the MLS epoch the commit was made in) and says what it really does.
pub fn apply(snapshot: &[u8], commit: &[u8], keys: Keys) -> Result<Applied, ObserveError> {
    let snapshot = ExternalSnapshot::from_bytes(snapshot).map_err(invalid("group state"))?;
    let mut group = observer!(keys).load_group(snapshot).map_err(invalid("group state"))?;
    let msg = MlsMessage::from_bytes(commit).map_err(|_| ObserveError::Malformed("commit"))?;
    if msg.wire_format() != WireFormat::PublicMessage {
        return Err(ObserveError::NotPublic);
    }
    let before: HashMap<u32, UserId> = members(group.roster().members_iter())?.into_iter().collect();
    let d = match group.process_incoming_message(msg).map_err(invalid("commit"))? {
        ExternalReceivedMessage::Commit(d) => d,
        _ => return Err(ObserveError::Malformed("commit")),
    };
    if d.is_external {
        return Err(ObserveError::Proposal("an external commit"));
    }
    let committer = *before.get(&d.committer).ok_or(ObserveError::NotAUser)?;
    let proposals = match d.effect {
        CommitEffect::NewEpoch(e) | CommitEffect::Removed { new_epoch: e, .. } => e.applied_proposals,
        CommitEffect::ReInit(_) => return Err(ObserveError::Proposal("a re-initialisation")),
    };
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for p in proposals {
        match p.proposal {
            Proposal::Add(a) => added.push(user_of(a.signing_identity()).ok_or(ObserveError::NotAUser)?),
            Proposal::Remove(r) => removed.push(*before.get(&r.to_remove()).ok_or(ObserveError::NotAUser)?),
            _ => return Err(ObserveError::Proposal("another kind of proposal")),
        }
    }
    let snapshot = group.snapshot().to_bytes().map_err(invalid("commit"))?;
    Ok(Applied { committer, added, removed, snapshot })
}
