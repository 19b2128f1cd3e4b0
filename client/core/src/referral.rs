//! Practices and referrals as every client seals them before sending.

use handoff_crypto::referral::ReferralKey;
use handoff_crypto::{CryptoError, PracticeKey, ReferralContent};
use handoff_protocol::v1::{CreatePracticeRequest, DirectoryEntry, Intake, KeyGrant, PracticeKind, PracticePublicKey};
use handoff_protocol::ws::{Attachment, Destination, NewReferral, ReferralId, Routing, WrappedKey};
use handoff_protocol::{B64, PracticeId};

use crate::Who;

/// What a new practice is.
#[derive(Clone, Debug)]
pub struct PracticeSpec {
    /// The practice's display name.
    pub name: String,
    /// Referring or specialist.
    pub kind: PracticeKind,
    /// Specialty slug (specialists).
    pub specialty: Option<String>,
    /// Region slug (specialists).
    pub region: Option<String>,
    /// Categories accepted (specialists).
    pub intake: Vec<Intake>,
}

/// The request creating practice `id` with a fresh epoch-0 key made here: its
/// HPKE public key signed by the creator, and the key granted to the creator.
/// Returns the key too, so the creator holds it at once.
pub fn new_practice(who: Who<'_>, id: PracticeId, spec: PracticeSpec) -> Result<(CreatePracticeRequest, PracticeKey), CryptoError> {
    let key = PracticeKey::generate(0)?;
    let req = CreatePracticeRequest {
        id,
        name: spec.name,
        kind: spec.kind,
        specialty: spec.specialty,
        region: spec.region,
        intake: spec.intake,
        public_key: PracticePublicKey {
            epoch: 0,
            hpke_pub: B64(key.hpke_public().to_vec()),
            signer: who.id,
            signature: B64(key.sign_public(id, who.secrets).to_vec()),
        },
        creator_grant: KeyGrant { epoch: 0, sealed: B64(key.grant_to(id, who.id, &who.secrets.public().hpke_pub)?), granted_by: who.id },
    };
    Ok((req, key))
}

/// Seals a new referral: content under `r`, and `r` wrapped to the sending
/// practice's current key and to each target's published key. The caller
/// has verified every target's key signature (see
/// [`crate::account::verify_directory_entry`]).
#[allow(clippy::too_many_arguments)] // each is one part of the referral; a struct would only rename them
pub fn seal_referral(
    id: ReferralId,
    r: &ReferralKey,
    from: PracticeId,
    from_key: &PracticeKey,
    targets: &[DirectoryEntry],
    destination: Destination,
    routing: Routing,
    content: &ReferralContent,
    attachments: Vec<Attachment>,
) -> Result<NewReferral, CryptoError> {
    let from_wrap = WrappedKey {
        practice: from,
        epoch: from_key.epoch(),
        sealed: B64(r.wrap_to(id, from, from_key.epoch(), &from_key.hpke_public())?),
    };
    let to_keys = targets
        .iter()
        .map(|e| {
            Ok(WrappedKey {
                practice: e.id,
                epoch: e.public_key.epoch,
                sealed: B64(r.wrap_to(id, e.id, e.public_key.epoch, e.public_key.hpke_pub.as_slice())?),
            })
        })
        .collect::<Result<Vec<_>, CryptoError>>()?;
    Ok(NewReferral {
        id,
        from_practice: from,
        destination,
        routing,
        content: B64(r.seal_content(id, content)?),
        from_key: from_wrap,
        to_keys,
        attachments,
    })
}
