//! The send itself: encrypt the content, upload each attachment under the
//! referral's key (reporting progress), and send the referral, all through
//! the wizard's [`SenderContext`]; what came back goes to `onsent`.

use handoff_protocol::v1::DirectoryEntry;
use yew::Callback;
use yew::functional::UseReducerDispatcher;

use super::sender::{SenderContext, Sent};
use super::wizard::{Recipient, Wizard, WizardAction};
use crate::api::ApiResult;
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
    let sender = sender.clone();
    dispatch.dispatch(WizardAction::Error(None));
    dispatch.dispatch(WizardAction::Busy(Some("Encrypting…".into())));
    spawn(async move {
        let res: ApiResult<Sent> = async {
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
            dispatch.dispatch(WizardAction::Busy(Some("Sending…".into())));
            let receipt = sender.send(new).await?;
            Ok(Sent { receipt, content, routing, attachments: names })
        }
        .await;
        dispatch.dispatch(WizardAction::Busy(None));
        dispatch.dispatch(WizardAction::Progress(None));
        match res {
            Ok(sent) => onsent.emit(sent),
            Err(e) => dispatch.dispatch(WizardAction::Error(Some(e))),
        }
    });
}
