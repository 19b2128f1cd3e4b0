//! The tamper-evident audit log: one append-only hash chain per practice and
//! one for the platform (staff actions and account events tied to no practice).
//!
//! Each entry's [`hash`](AuditRecord::hash) is SHA-256 over a canonical
//! encoding of the entry ([`entry_hash`]) that starts with the previous
//! entry's hash, so editing, deleting or reordering a stored entry breaks
//! the chain at that entry; [`verify_audit`] re-walks every chain and names
//! the first broken link. Pruning old entries ([`AuditStore::prune_audit`])
//! keeps an [`AuditAnchor`] per chain, the last pruned entry's seq and hash,
//! so verification starts from it. Entries hold ids and an action word,
//! never content.

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use handoff_protocol::audit::AuditAction;
use handoff_protocol::{PracticeId, UnixMillis, UserId};

use crate::BackendError;

/// The longest [`NewAuditEntry::target`] or [`NewAuditEntry::address`] a store accepts, in bytes.
pub const MAX_AUDIT_FIELD: usize = 128;

/// The hash an empty chain starts from: the genesis entry's `prev_hash`.
pub const GENESIS: [u8; 32] = [0; 32];

/// An entry to append; the store gives it its chain's next seq and its hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// When it happened.
    pub at: UnixMillis,
    /// Who did it, if a signed-in user did.
    pub actor: Option<UserId>,
    /// The user the actor acted on behalf of (a delegate's sponsor).
    pub on_behalf_of: Option<UserId>,
    /// The chain: the practice, or `None` for the platform chain.
    pub practice: Option<PracticeId>,
    /// What happened.
    pub action: AuditAction,
    /// What it was done to, as an id; never content.
    pub target: Option<String>,
    /// The client address.
    pub address: Option<String>,
}

/// A stored entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// Its number in its chain, from 1.
    pub seq: u64,
    /// The entry as appended.
    pub entry: NewAuditEntry,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev_hash: Vec<u8>,
    /// [`entry_hash`] of this entry.
    pub hash: Vec<u8>,
}

/// Where a pruned chain starts: the last pruned entry's seq and hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditAnchor {
    /// The last pruned entry's seq.
    pub seq: u64,
    /// Its hash: the `prev_hash` the first kept entry must carry.
    pub hash: Vec<u8>,
}

/// One chain that exists: its practice (`None`: the platform) and its anchor, if pruned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditChain {
    /// The practice, or `None` for the platform chain.
    pub practice: Option<PracticeId>,
    /// Where verification starts, if the chain was pruned.
    pub anchor: Option<AuditAnchor>,
}

/// Which entries of one chain to read, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The chain: the practice, or `None` for the platform chain.
    pub practice: Option<PracticeId>,
    /// Only entries this user made or that were made on their behalf.
    pub member: Option<UserId>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only entries at or after this time.
    pub from: Option<UnixMillis>,
    /// Only entries before this time.
    pub until: Option<UnixMillis>,
    /// Only entries with exactly this target.
    pub target: Option<String>,
    /// Only entries with a seq below this.
    pub before: Option<u64>,
    /// At most this many.
    pub limit: u32,
}

/// Why an [`AuditStore`] call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A target or address longer than [`MAX_AUDIT_FIELD`]; nothing was written.
    #[error("an audit target or address must be at most {MAX_AUDIT_FIELD} bytes, not {0}")]
    FieldTooLong(usize),
    /// A stored row does not decode (an id of the wrong length, an unknown
    /// action word): the log was edited outside the server.
    #[error("audit entry {seq} of the {} chain is unreadable: {reason}", chain_name(.practice))]
    Unreadable {
        /// The row's chain.
        practice: Option<PracticeId>,
        /// The row's seq.
        seq: u64,
        /// What does not decode.
        reason: String,
    },
    /// The backend failed; nothing was changed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The audit log. Each call is atomic, as for every store trait.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends `entry` to its chain: reads the chain's head and writes the
    /// entry after it in one transaction, so concurrent appends never fork a
    /// chain. [`AuditError::FieldTooLong`] for an oversized target or address.
    async fn append_audit(&self, entry: NewAuditEntry) -> Result<AuditRecord, AuditError>;
    /// One chain's entries matching `filter`, newest (highest seq) first.
    async fn audit_entries(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>, AuditError>;
    /// Every chain that has entries or an anchor: the platform chain first, then practices by id.
    async fn audit_chains(&self) -> Result<Vec<AuditChain>, AuditError>;
    /// Up to `limit` entries of one chain with seq above `after`, oldest first
    /// (what verification walks). A row that does not decode is [`AuditError::Unreadable`].
    async fn audit_walk(&self, practice: Option<PracticeId>, after: u64, limit: u32) -> Result<Vec<AuditRecord>, AuditError>;
    /// Deletes, in every chain, the entries up to the newest one older than
    /// `cutoff`, and records that entry as the chain's anchor. Returns how many were deleted.
    async fn prune_audit(&self, cutoff: UnixMillis) -> Result<u64, AuditError>;
}

fn chain_name(p: &Option<PracticeId>) -> String {
    match p {
        Some(p) => format!("practice {p}"),
        None => "platform".into(),
    }
}

/// The canonical encoding the chain hashes: a domain tag, the previous hash,
/// then every field, fixed-width or length-prefixed, with a presence byte for
/// each optional one, so no two different entries encode alike.
pub fn entry_hash(prev_hash: &[u8], seq: u64, e: &NewAuditEntry) -> Vec<u8> {
    fn id(h: &mut Sha256, v: Option<&[u8; 16]>) {
        match v {
            None => h.update([0u8]),
            Some(b) => {
                h.update([1u8]);
                h.update(b);
            }
        }
    }
    fn text(h: &mut Sha256, v: Option<&str>) {
        match v {
            None => h.update([0u8]),
            Some(s) => {
                h.update([1u8]);
                h.update((s.len() as u64).to_be_bytes());
                h.update(s.as_bytes());
            }
        }
    }
    let mut h = Sha256::new();
    h.update(b"handoff-audit-v1\0");
    h.update((prev_hash.len() as u64).to_be_bytes());
    h.update(prev_hash);
    h.update(seq.to_be_bytes());
    h.update(e.at.to_be_bytes());
    id(&mut h, e.practice.as_ref().map(|p| p.as_bytes()));
    id(&mut h, e.actor.as_ref().map(|u| u.as_bytes()));
    id(&mut h, e.on_behalf_of.as_ref().map(|u| u.as_bytes()));
    text(&mut h, Some(e.action.as_str()));
    text(&mut h, e.target.as_deref());
    text(&mut h, e.address.as_deref());
    h.finalize().to_vec()
}

/// The first link of a chain that does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenLink {
    /// The chain: the practice, or `None` for the platform.
    pub practice: Option<PracticeId>,
    /// The seq of the first entry that fails (or that is missing).
    pub seq: u64,
    /// What is wrong with it.
    pub problem: String,
}

impl std::fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} chain, entry {}: {}", chain_name(&self.practice), self.seq, self.problem)
    }
}

/// One chain that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedChain {
    /// The practice, or `None` for the platform.
    pub practice: Option<PracticeId>,
    /// The entries walked.
    pub entries: u64,
    /// The head: the last entry's seq and hash (the anchor's if none are kept).
    pub head: Option<AuditAnchor>,
}

/// What [`verify_audit`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// Every chain that verified, in [`AuditStore::audit_chains`] order.
    pub chains: Vec<VerifiedChain>,
    /// The first broken link of the first broken chain, if any; the walk stops there.
    pub broken: Option<BrokenLink>,
}

/// Re-walks every chain from its anchor (or the genesis) and checks that seqs
/// follow each other, that each entry carries the previous entry's hash, and
/// that each hash is the entry's own; stops at the first broken link.
pub async fn verify_audit(store: &dyn AuditStore) -> Result<AuditReport, AuditError> {
    const STEP: u32 = 500;
    let mut chains = Vec::new();
    for chain in store.audit_chains().await? {
        let practice = chain.practice;
        let (mut seq, mut prev) = match &chain.anchor {
            Some(a) => (a.seq, a.hash.clone()),
            None => (0, GENESIS.to_vec()),
        };
        let mut entries = 0u64;
        loop {
            let batch = match store.audit_walk(practice, seq, STEP).await {
                Ok(b) => b,
                Err(AuditError::Unreadable { practice, seq, reason }) => {
                    return Ok(AuditReport {
                        chains,
                        broken: Some(BrokenLink { practice, seq, problem: format!("the row does not decode: {reason}") }),
                    });
                }
                Err(e) => return Err(e),
            };
            let done = batch.len() < STEP as usize;
            for r in batch {
                let problem = if r.seq != seq + 1 {
                    Some((seq + 1, format!("missing: the next stored entry is {}", r.seq)))
                } else if r.entry.practice != practice {
                    Some((r.seq, "the entry names another chain".to_string()))
                } else if r.prev_hash != prev {
                    Some((r.seq, "its prev_hash is not the previous entry's hash".to_string()))
                } else if r.hash != entry_hash(&r.prev_hash, r.seq, &r.entry) {
                    Some((r.seq, "its hash does not match its contents".to_string()))
                } else {
                    None
                };
                if let Some((seq, problem)) = problem {
                    return Ok(AuditReport { chains, broken: Some(BrokenLink { practice, seq, problem }) });
                }
                seq = r.seq;
                prev = r.hash;
                entries += 1;
            }
            if done {
                break;
            }
        }
        let head = (seq > 0).then_some(AuditAnchor { seq, hash: prev });
        chains.push(VerifiedChain { practice, entries, head });
    }
    Ok(AuditReport { chains, broken: None })
}
