//! The store's half of the access rule: a user's standing on each side of a
//! referral, looked up once here for the hub, the referral actor and the
//! server's HTTP routes. The rule itself is `handoff_domain::access`.

use handoff_domain::access::{Access, Parties, Sender};
use handoff_protocol::UserId;
use handoff_store::{PracticeError, ReferralRecord, Store};

/// The two parties of a stored referral.
pub fn parties(rec: &ReferralRecord) -> Parties {
    Parties { sender: Sender::Practice(rec.from_practice), receiver: rec.to_practice }
}

/// Where `user` stands on the referral, or `None` if on neither side.
pub async fn referral_access(store: &dyn Store, user: UserId, rec: &ReferralRecord) -> Result<Option<Access>, PracticeError> {
    let p = parties(rec);
    let receiver = store.role(p.receiver, user).await?.is_some();
    let sender = match p.sender {
        Sender::Practice(practice) => store.role(practice, user).await?.is_some(),
    };
    Ok(Access::of(sender, receiver))
}
