//! The audit entries of a member's action on a referral, recorded in the
//! action's own commit: the entry lands if and only if the action does, and
//! shares its transaction (and fsync) instead of being a second durable
//! write after it.

use handoff_protocol::audit::AuditAction;
use handoff_protocol::ws::{Command, ReferralId};
use handoff_protocol::{PracticeId, UnixMillis, UserId};
use handoff_store::{NewAuditEntry, Store};

use crate::ApiResult;

/// The practices among `practices` (a referral's `from`, then `to`; or a
/// sending practice and every candidate receiver) that `user` belongs to, each
/// once: the audit chains their action on it is recorded in (one entry per
/// chain), and those whose log shows what was served to them.
pub async fn reader_practices(
    store: &dyn Store,
    user: UserId,
    practices: impl IntoIterator<Item = PracticeId>,
) -> ApiResult<Vec<PracticeId>> {
    let mut out = Vec::with_capacity(2);
    for p in practices {
        if !out.contains(&p) && store.role(p, user).await?.is_some() {
            out.push(p);
        }
    }
    Ok(out)
}

/// Where a member's action is recorded: each chain, with the sponsor a
/// delegate acts for there.
pub(crate) type Chains = Vec<(PracticeId, Option<UserId>)>;

/// The chains (and sponsors) of `user`'s action among `practices` ([`reader_practices`]).
pub(crate) async fn chains(store: &dyn Store, user: UserId, practices: impl IntoIterator<Item = PracticeId>) -> ApiResult<Chains> {
    let mut out = Vec::with_capacity(2);
    for p in reader_practices(store, user, practices).await? {
        out.push((p, store.sponsor_of(p, user).await?));
    }
    Ok(out)
}

/// What the audit log records for a member's referral command, if anything
/// (a first open is recorded by whoever marks it, not here).
pub fn action_of(cmd: &Command) -> Option<AuditAction> {
    Some(match cmd {
        Command::SendReferral { .. } => AuditAction::ReferralSent,
        Command::Accept { .. } => AuditAction::ReferralAccepted,
        Command::Reject { .. } => AuditAction::ReferralRejected,
        Command::ChangeCategory { .. } | Command::ChangeUrgency { .. } => AuditAction::ReferralRefiled,
        Command::Cancel { .. } => AuditAction::ReferralCancelled,
        Command::PostMessage { .. } => AuditAction::MessagePosted,
        Command::AddAttachment { .. } => AuditAction::AttachmentAdded,
        _ => return None,
    })
}

/// The entries of `user`'s `action` on `referral`, one per chain, as the commit appends them.
pub(crate) fn entries(
    chains: &Chains,
    user: UserId,
    action: AuditAction,
    referral: ReferralId,
    address: Option<&str>,
    at: UnixMillis,
) -> Vec<NewAuditEntry> {
    chains
        .iter()
        .map(|(p, on_behalf_of)| NewAuditEntry {
            at,
            actor: Some(user),
            on_behalf_of: *on_behalf_of,
            practice: Some(*p),
            action,
            target: Some(referral.to_string()),
            address: address.map(str::to_owned),
        })
        .collect()
}
