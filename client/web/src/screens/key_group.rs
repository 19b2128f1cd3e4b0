//! A practice's key-group health on its page: the warning that a member's
//! device could not process a key change (with the admin's "Re-initialise key
//! group" button), and the referrals the practice sent that the receiving
//! practice can no longer read, to send again. The logic (reporting,
//! re-initialising, the resend list) lives in `handoff-client-core`; this
//! module only shows it.

use std::collections::{BTreeSet, HashMap};

use handoff_protocol::PracticeId;
use handoff_protocol::mls::UnreadableReferral;
use handoff_protocol::ws::ReferralId;
use yew::prelude::*;

use crate::Ctx;
use crate::api::ApiError;
use crate::session::KeyGroupHealth;
use crate::ui::{ErrorBox, Route, spawn};

/// The warning shown to every member while a reported epoch is pending.
pub fn reported_warning(epoch: u64) -> String {
    format!(
        "A member's device could not process a key change (epoch {epoch}). New referrals to this practice may not be readable until the key group is re-initialised."
    )
}

/// What the member can do about it: admins press the button, others ask one.
pub fn reported_advice(admin: bool) -> &'static str {
    if admin {
        "Re-initialising starts a new key group from the last good key change: earlier referrals stay readable, and every member is added back."
    } else {
        "Ask a practice admin to re-initialise the key group."
    }
}

/// One referral to send again, as the list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResendRow {
    /// The referral (its detail page).
    pub referral: ReferralId,
    /// Its number, or its id if this tab has not loaded it.
    pub label: String,
    /// The receiving practice's name, if this tab knows it.
    pub to: Option<String>,
    /// The revoked epoch it was wrapped to.
    pub epoch: u64,
}

/// The rows of the resend list: each unreadable referral with its number and
/// receiving practice's name where known (`number`, `practice_name`).
pub fn resend_rows(
    list: &[UnreadableReferral],
    number: impl Fn(ReferralId) -> Option<String>,
    practice_name: impl Fn(PracticeId) -> Option<String>,
) -> Vec<ResendRow> {
    list.iter()
        .map(|u| ResendRow {
            referral: u.referral,
            label: number(u.referral).unwrap_or_else(|| u.referral.to_string()),
            to: practice_name(u.to_practice),
            epoch: u.epoch,
        })
        .collect()
}

/// Props for [`KeyGroup`].
#[derive(Properties, PartialEq)]
pub struct KeyGroupProps {
    /// The practice.
    pub practice: PracticeId,
    /// Whether the user is an admin of it (only admins re-initialise).
    pub admin: bool,
    /// The health the page loaded (`None` while loading).
    pub health: Option<Result<KeyGroupHealth, ApiError>>,
    /// Called after a re-initialisation, to reload the page's state.
    pub on_changed: Callback<()>,
}

/// The key-group warning and the resend list (nothing when all is well).
#[function_component(KeyGroup)]
pub fn key_group(p: &KeyGroupProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let busy = use_state(|| false);
    let error = use_state(|| None::<ApiError>);
    let done = use_state(|| None::<u64>);
    // The receiving practices' names, from the directory (the sender is not a member of them).
    let names = use_state(HashMap::<PracticeId, String>::new);
    {
        let wanted: BTreeSet<(String, String)> = match &p.health {
            Some(Ok(h)) => h
                .unreadable
                .iter()
                .filter_map(|u| ctx.data.items.get(&u.referral))
                .map(|i| (i.referral.routing.specialty.clone(), i.referral.routing.region.clone()))
                .collect(),
            _ => BTreeSet::new(),
        };
        let names = names.clone();
        use_effect_with(wanted, move |wanted| {
            let wanted = wanted.clone();
            spawn(async move {
                let mut found = HashMap::new();
                for (specialty, region) in &wanted {
                    if let Ok(d) = crate::api::directory(specialty, region).await {
                        found.extend(d.into_iter().map(|e| (e.id, e.name)));
                    }
                }
                if !found.is_empty() {
                    names.set(found);
                }
            });
        });
    }
    let health = match &p.health {
        None => return html! {},
        Some(Err(e)) => return html! { <ErrorBox error={Some(e.clone())} /> },
        Some(Ok(h)) => h,
    };
    let reinitialise = {
        let (busy, error, done, id, s, changed) =
            (busy.clone(), error.clone(), done.clone(), p.practice, ctx.session.clone(), p.on_changed.clone());
        Callback::from(move |_| {
            let (busy, error, done, s, changed) = (busy.clone(), error.clone(), done.clone(), s.clone(), changed.clone());
            busy.set(true);
            error.set(None);
            spawn(async move {
                match s.reinitialise(id).await {
                    Ok(epoch) => {
                        done.set(Some(epoch));
                        changed.emit(());
                    }
                    Err(e) => error.set(Some(e)),
                }
                busy.set(false);
            });
        })
    };
    let warning = health.reported.map(|epoch| {
        html! {
            <div class="alert warn" role="alert" data-testid="key-group-reported">
                <p>{ reported_warning(epoch) }</p>
                <p>{ reported_advice(p.admin) }</p>
                if p.admin {
                    <button class="primary" onclick={reinitialise} disabled={*busy} aria-busy={busy.to_string()}>
                        { if *busy { "Re-initialising…" } else { "Re-initialise key group" } }
                    </button>
                }
            </div>
        }
    });
    let rows = resend_rows(
        &health.unreadable,
        |r| ctx.data.items.get(&r).map(|i| i.referral.number.clone()),
        |to| names.get(&to).cloned().or_else(|| ctx.session.practice(to).map(|p| p.name)),
    );
    let resend = (!rows.is_empty()).then(|| {
        let items = rows.into_iter().map(|row| {
            let nav = ctx.nav.clone();
            let id = row.referral;
            let onclick = Callback::from(move |e: MouseEvent| {
                e.prevent_default();
                nav.emit(Route::Referral(id));
            });
            html! {
                <li key={row.referral.to_string()} data-testid="resend-row">
                    <a class="mono" href={Route::Referral(row.referral).path()} {onclick}>{ row.label }</a>
                    { format!(" — to {}, wrapped to key epoch {}", row.to.as_deref().unwrap_or("the receiving practice"), row.epoch) }
                </li>
            }
        });
        html! {
            <section class="card" aria-labelledby="resend-title" data-testid="resend">
                <h2 id="resend-title">{ "Referrals to send again" }</h2>
                <p>{ "The receiving practice could not read these referrals: its key group was re-initialised after one of its members' devices could not process a key change, and the key they were sealed to was revoked. Send each one again, as a new referral." }</p>
                <ul class="plain">{ for items }</ul>
            </section>
        }
    });
    html! {
        <>
            <ErrorBox error={(*error).clone()} />
            if let Some(epoch) = *done {
                <div class="alert ok" role="status">{ format!("The key group was re-initialised (now at epoch {epoch}); members are added back as their devices publish keys.") }</div>
            }
            { warning.unwrap_or_default() }
            { resend.unwrap_or_default() }
        </>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreadable(n: u8, to: u8, epoch: u64) -> UnreadableReferral {
        UnreadableReferral { referral: ReferralId::from_bytes([n; 16]), to_practice: PracticeId::from_bytes([to; 16]), epoch }
    }

    #[test]
    fn the_resend_list_shows_the_number_and_receiver_where_known_and_the_id_otherwise() {
        let list = [unreadable(1, 9, 4), unreadable(2, 8, 5)];
        let known = ReferralId::from_bytes([1; 16]);
        let rows = resend_rows(
            &list,
            |r| (r == known).then(|| "HR-AAAA-BBBB".to_string()),
            |p| (p == PracticeId::from_bytes([9; 16])).then(|| "Harbour Cardiology".to_string()),
        );
        assert_eq!(
            rows,
            vec![
                ResendRow { referral: known, label: "HR-AAAA-BBBB".into(), to: Some("Harbour Cardiology".into()), epoch: 4 },
                ResendRow {
                    referral: ReferralId::from_bytes([2; 16]),
                    label: ReferralId::from_bytes([2; 16]).to_string(),
                    to: None,
                    epoch: 5
                },
            ]
        );
    }

    #[test]
    fn the_warning_names_the_epoch_and_only_admins_are_told_to_re_initialise() {
        assert!(reported_warning(7).contains("(epoch 7)"));
        assert!(reported_advice(false).contains("Ask a practice admin"));
        assert!(!reported_advice(true).contains("Ask a practice admin"));
    }
}
