//! The send itself: encrypt the content, upload each attachment under the
//! referral's key (reporting progress), and send the referral, all through
//! the wizard's [`SenderContext`]; what came back goes to `onsent`.

use handoff_crypto::referral::ReferralContent;
use handoff_protocol::v1::DirectoryEntry;
use handoff_protocol::ws::Routing;
use yew::Callback;
use yew::functional::UseReducerDispatcher;

use super::sender::{SenderContext, Sent};
use super::wizard::{Recipient, Wizard, WizardAction};
use crate::api::ApiResult;
use crate::forms::attachments::PickedFile;
use crate::ui::spawn;

/// Sends what the wizard holds; its progress and any error go back to it,
/// and the outcome to `onsent`.
pub fn send(sender: &SenderContext, w: &Wizard, dispatch: UseReducerDispatcher<Wizard>, onsent: Callback<Sent>) {
    let candidates = w.candidates();
    let choose = w.recipient == Recipient::ChooseForMe;
    let targets: Vec<DirectoryEntry> = match w.recipient {
        Recipient::ChooseForMe => candidates,
        Recipient::Practice(id) => candidates.into_iter().filter(|e| e.id == id).collect(),
    };
    let (from, routing, files) = (w.from, w.routing.routing(), w.files.clone());
    let mut content = w.patient.content();
    content.free_sender = sender.free_sender();
    let names: Vec<String> = w.files.iter().map(|f| f.name.clone()).collect();
    let made_from = made_from(&targets, choose, &routing, &content, &w.files);
    let sender = sender.clone();
    dispatch.dispatch(WizardAction::Error(None));
    dispatch.dispatch(WizardAction::Busy(Some("Encrypting…".into())));
    spawn(async move {
        let res: ApiResult<Sent> = async {
            if let Some(again) = sender.sealed_before(&made_from) {
                dispatch.dispatch(WizardAction::Busy(Some("Sending again…".into())));
                let receipt = sender.send(again).await?;
                return Ok(Sent { receipt, content, routing, attachments: names });
            }
            let (mut new, key) = sender.prepare(from, &targets, choose, routing.clone(), &content).await?;
            let total = files.len();
            for (i, f) in files.iter().enumerate() {
                dispatch.dispatch(WizardAction::Busy(Some(format!("Uploading {} ({} of {total}), encrypted…", f.name, i + 1))));
                let pr = dispatch.clone();
                new.attachments.push(
                    sender
                        .upload(&key, &f.name, &f.media_type, &f.bytes, move |sent, all| {
                            pr.dispatch(WizardAction::Progress(Some(if all > 0.0 { sent / all } else { 0.0 })))
                        })
                        .await?,
                );
                dispatch.dispatch(WizardAction::Progress(None));
            }
            sender.remember_sealed(made_from, &new);
            dispatch.dispatch(WizardAction::Busy(Some("Sending…".into())));
            let receipt = sender.send(new).await?;
            Ok(Sent { receipt, content, routing, attachments: names })
        }
        .await;
        dispatch.dispatch(WizardAction::Busy(None));
        dispatch.dispatch(WizardAction::Progress(None));
        match res {
            Ok(sent) => onsent.emit(sent),
            Err(e) => {
                sender.forget_sealed_after(&e);
                dispatch.dispatch(WizardAction::Error(Some(e)))
            }
        }
    });
}

/// What a referral is made from, as one string: equal for a retry of the
/// same referral, different once anything in it changed (the files by name,
/// type, size and an FNV-1a digest of their bytes).
fn made_from(targets: &[DirectoryEntry], choose: bool, routing: &Routing, content: &ReferralContent, files: &[PickedFile]) -> String {
    let ids: Vec<String> = targets.iter().map(|e| e.id.to_string()).collect();
    let files: Vec<(&str, &str, usize, u64)> =
        files.iter().map(|f| (f.name.as_str(), f.media_type.as_str(), f.bytes.len(), fnv1a(&f.bytes))).collect();
    serde_json::to_string(&(ids, choose, routing, content, files)).unwrap_or_default()
}

/// The 64-bit FNV-1a digest of `bytes` (a change detector, not a security check).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use handoff_protocol::ws::Urgency;

    fn routing() -> Routing {
        Routing {
            specialty: "cardiology".into(),
            category: "arrhythmia".into(),
            subcategory: None,
            region: "fraser".into(),
            urgency: Urgency::Routine,
        }
    }

    #[test]
    fn a_retry_of_the_same_referral_is_made_from_the_same_things_and_any_change_is_not() {
        let file = |b: &[u8]| PickedFile { name: "letter.pdf".into(), media_type: "application/pdf".into(), bytes: b.to_vec() };
        let content = ReferralContent { reason: "Palpitations".into(), ..ReferralContent::default() };
        let base = made_from(&[], true, &routing(), &content, &[file(b"abc")]);
        assert_eq!(base, made_from(&[], true, &routing(), &content, &[file(b"abc")]));
        assert_ne!(base, made_from(&[], false, &routing(), &content, &[file(b"abc")]));
        assert_ne!(base, made_from(&[], true, &routing(), &content, &[file(b"abd")]), "same name and size, other bytes");
        let other = ReferralContent { reason: "Syncope".into(), ..ReferralContent::default() };
        assert_ne!(base, made_from(&[], true, &routing(), &other, &[file(b"abc")]));
        let mut urgent = routing();
        urgent.urgency = Urgency::Urgent;
        assert_ne!(base, made_from(&[], true, &urgent, &content, &[file(b"abc")]));
    }
}
