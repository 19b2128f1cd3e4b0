//! The send itself: encrypt the content, upload each attachment under the
//! referral's key (reporting progress), send the referral over the live
//! connection, and open it once Handoff has it.

use handoff_protocol::v1::DirectoryEntry;
use handoff_protocol::ws::{AckBody, Command};
use yew::functional::UseReducerDispatcher;

use super::wizard::{Recipient, Wizard, WizardAction};
use crate::Ctx;
use crate::api::{ApiError, ApiResult};
use crate::ui::{Route, spawn};

/// Sends what the wizard holds; its progress and any error go back to it.
pub fn send(ctx: &Ctx, w: &Wizard, dispatch: UseReducerDispatcher<Wizard>) {
    let Some(from) = w.from else { return };
    let candidates = w.candidates();
    let choose = w.recipient == Recipient::ChooseForMe;
    let targets: Vec<DirectoryEntry> = match w.recipient {
        Recipient::ChooseForMe => candidates,
        Recipient::Practice(id) => candidates.into_iter().filter(|e| e.id == id).collect(),
    };
    let (routing, content, files) = (w.routing.routing(), w.patient.content(), w.files.clone());
    let ctx = ctx.clone();
    dispatch.dispatch(WizardAction::Error(None));
    dispatch.dispatch(WizardAction::Busy(Some("Encrypting…".into())));
    spawn(async move {
        let res: ApiResult<AckBody> = async {
            let (mut new, key) = ctx.session.prepare_referral(from, &targets, choose, routing, &content).await?;
            let total = files.len();
            for (i, f) in files.iter().enumerate() {
                dispatch.dispatch(WizardAction::Busy(Some(format!("Uploading {} ({} of {total}), encrypted…", f.name, i + 1))));
                let pr = dispatch.clone();
                new.attachments.push(
                    ctx.session
                        .upload(&key, &f.name, &f.media_type, &f.bytes, move |sent, all| {
                            pr.dispatch(WizardAction::Progress(Some(if all > 0.0 { sent / all } else { 0.0 })))
                        })
                        .await?,
                );
                dispatch.dispatch(WizardAction::Progress(None));
            }
            dispatch.dispatch(WizardAction::Busy(Some("Sending…".into())));
            ctx.live.command(Command::SendReferral { referral: new }).await
        }
        .await;
        dispatch.dispatch(WizardAction::Busy(None));
        dispatch.dispatch(WizardAction::Progress(None));
        match res {
            Ok(AckBody::ReferralSent { referral, .. }) => ctx.nav.emit(Route::Referral(referral)),
            Ok(AckBody::Subscribed { .. } | AckBody::Unsubscribed { .. } | AckBody::Done { .. }) => {
                dispatch.dispatch(WizardAction::Error(Some(ApiError::local("Unexpected answer from Handoff."))))
            }
            Err(e) => dispatch.dispatch(WizardAction::Error(Some(e))),
        }
    });
}
