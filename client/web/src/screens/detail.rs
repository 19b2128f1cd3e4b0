//! One referral: patient details (decrypted here), attachments, the history of
//! status, category and urgency changes, the live thread, and the actions each
//! side may take.

use handoff_domain::taxonomy::Lookup as _;
use std::rc::Rc;

use handoff_crypto::referral::{FreeSender, SenderRole};
use handoff_protocol::UserId;
use handoff_protocol::ws::{Command, Event as Ev, Referral, ReferralId, RejectReason, Status, ThreadMessage, Urgency};
use yew::prelude::*;

use crate::Ctx;
use crate::api::ApiError;
use crate::forms::attachments::{human_size, read_file};
use crate::pdf::{ReferralFacts, download_referral_pdf};
use crate::session::Session;
use crate::state::{Action, Item, status_label, urgency_label};
use crate::ui::{ErrorBox, bind_area, bind_select, spawn, when};

/// Props for [`Detail`].
#[derive(Properties, PartialEq)]
pub struct DetailProps {
    /// Which referral.
    pub id: ReferralId,
}

fn reason_label(r: RejectReason) -> &'static str {
    match r {
        RejectReason::WrongCategory => "We do not see this category",
        RejectReason::WrongSpecialty => "Wrong specialty",
        RejectReason::AnotherSpecialist => "Please send to another specialist",
        RejectReason::Other => "Other",
    }
}

const REASONS: [RejectReason; 4] =
    [RejectReason::WrongCategory, RejectReason::WrongSpecialty, RejectReason::AnotherSpecialist, RejectReason::Other];

fn wire<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

fn from_wire<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

/// The referral screen.
#[function_component(Detail)]
pub fn detail(p: &DetailProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let item = ctx.data.items.get(&p.id).cloned();
    let receiver = item.as_ref().is_some_and(|i| ctx.session.practice(i.referral.to_practice).is_some());
    // Its whole history (a snapshot row holds only what came after the
    // snapshot): follow the referral's own stream; events the row reflects
    // already only fill in the history.
    {
        let (live, id) = (ctx.live.clone(), p.id);
        use_effect_with(id, move |id| live.follow(handoff_protocol::ws::StreamId::Referral(*id)));
    }
    // A row shown from the search index is decrypted when its screen opens.
    {
        let (s, data) = (ctx.session.clone(), ctx.data.clone());
        let pending =
            item.as_ref().filter(|i| i.content.as_ref().is_err_and(|e| e == crate::state::NOT_DECRYPTED)).map(|i| i.referral.clone());
        use_effect_with(pending.as_ref().map(|r| r.id), move |_| {
            if let Some(r) = pending {
                spawn(async move {
                    let c = s.load_content(&r).await.map_err(|e| e.message);
                    data.dispatch(Action::Decrypted(r.id, c));
                });
            }
        });
    }
    // Mark read whenever something new arrives while it is open.
    {
        let (data, id) = (ctx.data.clone(), p.id);
        let foreign = item.as_ref().map(|i| i.foreign);
        use_effect_with(foreign, move |_| data.dispatch(Action::Seen(id)));
    }
    // The receiving practice's first open is recorded (once) and shown to the referrer.
    {
        let (live, id) = (ctx.live.clone(), p.id);
        let need = receiver && item.as_ref().is_some_and(|i| i.referral.first_opened_at.is_none());
        use_effect_with(need, move |need| {
            if *need {
                spawn(async move {
                    let _ = live.command(Command::MarkOpened { referral: id }).await;
                });
            }
        });
    }
    // The specialist practice's name, from the directory (the referrer is not a member).
    let names = use_state(std::collections::HashMap::<handoff_protocol::PracticeId, String>::new);
    let pdf_error = use_state(|| None::<ApiError>);
    {
        let names = names.clone();
        let key = item.as_ref().map(|i| (i.referral.to_practice, i.referral.routing.specialty.clone(), i.referral.routing.region.clone()));
        use_effect_with(key, move |key| {
            if let Some((to, specialty, region)) = key.clone() {
                spawn(async move {
                    if let Ok(d) = crate::api::directory(&specialty, &region).await
                        && let Some(e) = d.into_iter().find(|e| e.id == to)
                    {
                        let mut m = (*names).clone();
                        m.insert(to, e.name);
                        names.set(m);
                    }
                });
            }
        });
    }
    let Some(item) = item else {
        return html! { <div class="empty" aria-busy="true"><p>{ "Loading this referral… If it does not appear, it is not one of your practices' referrals." }</p></div> };
    };
    let r = &item.referral;
    let s = &ctx.session;
    let content = match &item.content {
        Ok(c) => html! {
            <>
            <section class="card" aria-labelledby="patient-title">
                <h2 id="patient-title">{ "Patient" }</h2>
                <dl class="facts" data-testid="patient">
                    <dt>{ "Name" }</dt><dd data-testid="patient-name">{ c.patient.name.clone() }</dd>
                    <dt>{ "Date of birth" }</dt><dd>{ c.patient.date_of_birth.clone() }</dd>
                    <dt>{ "Sex" }</dt><dd>{ c.patient.sex.clone() }</dd>
                    <dt>{ "Health number" }</dt><dd>{ c.patient.health_number.clone() }</dd>
                    <dt>{ "Phone" }</dt><dd>{ c.patient.phone.clone() }</dd>
                    <dt>{ "Address" }</dt><dd>{ c.patient.address.clone() }</dd>
                </dl>
                <h3>{ "Reason for referral" }</h3>
                <p class="prewrap">{ c.reason.clone() }</p>
                <h3>{ "Clinical details" }</h3>
                <p class="prewrap">{ c.clinical_details.clone() }</p>
            </section>
            if let Some(f) = &c.free_sender { <FreeSenderCard sender={f.clone()} /> }
            </>
        },
        Err(e) => html! { <div class="alert error" role="alert">{ format!("This referral cannot be decrypted here: {e}") }</div> },
    };
    let to_name = s
        .practice(r.to_practice)
        .map(|p| p.name)
        .or_else(|| (*names).get(&r.to_practice).cloned())
        .unwrap_or_else(|| "Specialist practice".into());
    let from_name = match r.from_practice() {
        Some(p) => s.practice(p).map(|p| p.name).unwrap_or_else(|| "Referring office".into()),
        None => "Free referral (sender without an account)".into(),
    };
    let download_pdf = {
        let (item, s, to_name, pdf_error) = (item.clone(), s.clone(), to_name.clone(), pdf_error.clone());
        let from_name = (!item.referral.is_free()).then(|| from_name.clone());
        Callback::from(move |_: MouseEvent| {
            let Ok(content) = item.content.clone() else { return };
            let r = &item.referral;
            let attachments = r
                .attachments
                .iter()
                .map(|a| {
                    s.open_attachment_meta(r, a).map(|m| m.name).unwrap_or_else(|_| "(an attachment this tab cannot decrypt yet)".into())
                })
                .collect();
            let facts = ReferralFacts {
                number: r.number.clone(),
                sent_at: r.created_at,
                status: r.status,
                to_practice: to_name.clone(),
                from_practice: from_name.clone(),
                routing: r.routing.clone(),
                content,
                attachments,
            };
            pdf_error.set(download_referral_pdf(&s.taxonomy, &facts).err());
        })
    };
    html! {
        <>
            <ErrorBox error={(*pdf_error).clone()} />
            <div class="title-row">
                <div>
                    <p class="muted mono" data-testid="referral-number">{ r.number.clone() }</p>
                    <h1>{ item.content.as_ref().map(|c| c.patient.name.clone()).unwrap_or_else(|_| "Referral".into()) }</h1>
                </div>
                <div class="tags">
                    if r.is_free() { <span class="tag big free-tag" data-testid="free-referral">{ "Free referral" }</span> }
                    <button id="download-pdf" class="small" type="button" onclick={download_pdf} disabled={item.content.is_err()}>{ "Download PDF" }</button>
                    <span class={classes!(super::lists::status_class(r.status), "big")} data-testid="detail-status">{ status_label(r.status) }</span>
                    <span class={classes!(super::lists::urgency_class(r.routing.urgency), "big")} data-testid="detail-urgency">{ urgency_label(r.routing.urgency) }</span>
                </div>
            </div>
            <p class="muted">
                { format!("{} → {} · {} · {} · {} · sent {}", from_name, to_name, s.specialty_name(&r.routing.specialty), s.category_name(&r.routing.specialty, &r.routing.category), s.region_name(&r.routing.region), when(r.created_at)) }
                { r.first_opened_at.map(|t| format!(" · opened {}", when(t))).unwrap_or_else(|| " · not yet opened".into()) }
            </p>
            if r.status == Status::Rejected { <RejectionNote item={item.clone()} /> }
            <div class="split">
                <div class="main-col">
                    { content }
                    <Attachments item={item.clone()} />
                    if r.is_free() {
                        <section class="card" aria-labelledby="thread-title">
                            <h2 id="thread-title">{ "Conversation" }</h2>
                            <p class="muted" data-testid="free-no-thread">{ "A free referral's sender has no Handoff account, so there is no conversation and no later attachment. Accepting or declining it emails them the referral number and the outcome (the reason for a decline, never the note). To reach them, use the clinic details above." }</p>
                        </section>
                    } else {
                        <Thread item={item.clone()} />
                    }
                </div>
                <aside class="side-col">
                    if receiver { <ReceiverActions referral={r.clone()} /> } else { <ReferrerActions referral={r.clone()} /> }
                    if receiver && r.status == Status::Accepted { <super::rooms::RoomLinkPicker practice={r.to_practice} number={r.number.clone()} /> }
                    <History item={item.clone()} />
                </aside>
            </div>
        </>
    }
}

/// Props for [`FreeSenderCard`].
#[derive(Properties, PartialEq)]
struct FreeSenderProps {
    sender: FreeSender,
}

/// Who sent a free referral, from its sealed content: only this practice reads it.
#[function_component(FreeSenderCard)]
fn free_sender_card(p: &FreeSenderProps) -> Html {
    let f = &p.sender;
    let role = match f.role {
        SenderRole::Moa => "MOA or administrator",
        SenderRole::Provider => "The referring provider",
    };
    html! {
        <section class="card" aria-labelledby="free-sender-title">
            <h2 id="free-sender-title">{ "Sent by (free referral, no account)" }</h2>
            <dl class="facts" data-testid="free-sender">
                <dt>{ "Sender" }</dt><dd data-testid="free-sender-name">{ format!("{} · {role}", f.name) }</dd>
                <dt>{ "Email" }</dt><dd data-testid="free-sender-email">{ f.email.clone() }</dd>
                <dt>{ "Referring provider" }</dt><dd data-testid="free-sender-provider">{ format!("{} · MSP {}", f.provider_name, f.provider_msp) }</dd>
                <dt>{ "Clinic" }</dt><dd data-testid="free-sender-clinic">{ if f.clinic_name.is_empty() { "(no name given)".to_string() } else { f.clinic_name.clone() } }</dd>
                <dt>{ "Clinic phone" }</dt><dd>{ f.clinic_phone.clone() }</dd>
                <dt>{ "Clinic address" }</dt><dd>{ f.clinic_address.clone() }</dd>
            </dl>
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct ItemProps {
    item: Rc<Item>,
}

#[function_component(RejectionNote)]
fn rejection_note(p: &ItemProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let r = &p.item.referral;
    let note = p.item.history.iter().rev().find_map(|e| match e {
        Ev::StatusChanged { status: Status::Rejected, note: Some(n), .. } => Some(n.clone()),
        Ev::StatusChanged { .. }
        | Ev::ReferralSent { .. }
        | Ev::Opened { .. }
        | Ev::CategoryChanged { .. }
        | Ev::UrgencyChanged { .. }
        | Ev::AttachmentAdded { .. }
        | Ev::MessagePosted { .. }
        | Ev::EpochAdvanced { .. } => None,
    });
    let text =
        note.map(|n| ctx.session.open_note(r, &n).unwrap_or_else(|e| format!("(note cannot be decrypted: {e})"))).unwrap_or_default();
    html! {
        <div class="alert warn" role="status">
            <strong>{ format!("Declined: {}. ", r.reject_reason.map(reason_label).unwrap_or("no reason given")) }</strong>
            <span data-testid="reject-note">{ text }</span>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct RefProps {
    referral: Referral,
}

fn run(ctx: &Ctx, cmd: Command, error: UseStateHandle<Option<ApiError>>, busy: UseStateHandle<bool>, after: Option<Callback<()>>) {
    let live = ctx.live.clone();
    busy.set(true);
    error.set(None);
    spawn(async move {
        match live.command(cmd).await {
            Ok(_) => {
                if let Some(a) = after {
                    a.emit(());
                }
            }
            Err(e) => error.set(Some(e)),
        }
        busy.set(false);
    });
}

#[function_component(ReceiverActions)]
fn receiver_actions(p: &RefProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    let rejecting = use_state(|| false);
    let reason = use_state(|| wire(RejectReason::WrongCategory));
    let note = use_state(String::new);
    let urgency = use_state(|| wire(p.referral.routing.urgency));
    let category = use_state(|| p.referral.routing.category.clone());
    let r = &p.referral;
    let id = r.id;
    let open = r.status == Status::Sent;
    let accept = {
        let (ctx, error, busy) = (ctx.clone(), error.clone(), busy.clone());
        Callback::from(move |_| run(&ctx, Command::Accept { referral: id }, error.clone(), busy.clone(), None))
    };
    let reject = {
        let (ctx, error, busy, reason, note, referral, rejecting) =
            (ctx.clone(), error.clone(), busy.clone(), reason.clone(), note.clone(), r.clone(), rejecting.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(rr) = from_wire::<RejectReason>(&reason) else { return };
            if note.trim().is_empty() {
                error.set(Some(ApiError::local("Add a note for the referring office: what should they do next?")));
                return;
            }
            let (ctx, error, busy, referral, rejecting, text) =
                (ctx.clone(), error.clone(), busy.clone(), referral.clone(), rejecting.clone(), note.trim().to_string());
            busy.set(true);
            spawn(async move {
                match ctx.session.seal_note(&referral, &text).await {
                    Ok(sealed) => run(
                        &ctx,
                        Command::Reject { referral: id, reason: rr, note: sealed },
                        error.clone(),
                        busy.clone(),
                        Some(Callback::from(move |_| rejecting.set(false))),
                    ),
                    Err(e) => {
                        busy.set(false);
                        error.set(Some(e));
                    }
                }
            });
        })
    };
    let save_urgency = {
        let (ctx, error, busy, urgency) = (ctx.clone(), error.clone(), busy.clone(), urgency.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if let Some(u) = from_wire::<Urgency>(&urgency) {
                run(&ctx, Command::ChangeUrgency { referral: id, urgency: u }, error.clone(), busy.clone(), None);
            }
        })
    };
    let save_category = {
        let (ctx, error, busy, category) = (ctx.clone(), error.clone(), busy.clone(), category.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            run(
                &ctx,
                Command::ChangeCategory { referral: id, category: (*category).clone(), subcategory: None },
                error.clone(),
                busy.clone(),
                None,
            );
        })
    };
    let spec = ctx.session.taxonomy.specialty(&r.routing.specialty).cloned();
    html! {
        <section class="card actions" aria-labelledby="actions-title">
            <h2 id="actions-title">{ "Actions" }</h2>
            <ErrorBox error={(*error).clone()} />
            if open {
                <div class="row">
                    <button class="primary" onclick={accept} disabled={*busy}>{ "Accept" }</button>
                    <button class="danger" onclick={{ let r = rejecting.clone(); Callback::from(move |_| r.set(!*r)) }} disabled={*busy} aria-expanded={rejecting.to_string()}>{ "Decline…" }</button>
                </div>
                if *rejecting {
                    <form onsubmit={reject} class="stack">
                        <label for="rej-reason">{ "Reason" }</label>
                        <select id="rej-reason" onchange={bind_select(&reason)}>
                            { for REASONS.iter().map(|x| html! { <option value={wire(*x)} selected={*reason == wire(*x)}>{ reason_label(*x) }</option> }) }
                        </select>
                        <label for="rej-note">{ if r.is_free() { "Note (encrypted, kept with the referral; the sender's email carries only the reason)" } else { "Note to the referring office (encrypted)" } }</label>
                        <textarea id="rej-note" rows="3" value={(*note).clone()} oninput={bind_area(&note)} />
                        <button class="danger" type="submit" disabled={*busy}>{ "Decline referral" }</button>
                    </form>
                }
            } else {
                <p class="muted">{ format!("This referral is {}.", status_label(r.status).to_lowercase()) }</p>
            }
            <form onsubmit={save_urgency} class="stack">
                <label for="act-urgency">{ "Urgency" }</label>
                <div class="row">
                    <select id="act-urgency" onchange={bind_select(&urgency)}>
                        { for [Urgency::Urgent, Urgency::Semi, Urgency::Routine].into_iter().map(|u| html! { <option value={wire(u)} selected={*urgency == wire(u)}>{ urgency_label(u) }</option> }) }
                    </select>
                    <button type="submit" disabled={*busy || *urgency == wire(r.routing.urgency)}>{ "Change urgency" }</button>
                </div>
            </form>
            if let Some(spec) = spec {
                <form onsubmit={save_category} class="stack">
                    <label for="act-category">{ "Category" }</label>
                    <div class="row">
                        <select id="act-category" onchange={bind_select(&category)}>
                            { for spec.categories.iter().map(|c| html! { <option value={c.slug.clone()} selected={*category == c.slug}>{ c.name.clone() }</option> }) }
                        </select>
                        <button type="submit" disabled={*busy || *category == r.routing.category}>{ "Re-file" }</button>
                    </div>
                </form>
            }
        </section>
    }
}

#[function_component(ReferrerActions)]
fn referrer_actions(p: &RefProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    let id = p.referral.id;
    let cancel = {
        let (ctx, error, busy) = (ctx.clone(), error.clone(), busy.clone());
        Callback::from(move |_| run(&ctx, Command::Cancel { referral: id }, error.clone(), busy.clone(), None))
    };
    html! {
        <section class="card actions" aria-labelledby="actions-title">
            <h2 id="actions-title">{ "Status" }</h2>
            <ErrorBox error={(*error).clone()} />
            <p>{ match p.referral.status {
                Status::Sent => "Waiting for the specialist's office to review it.",
                Status::Accepted => "Accepted. The specialist's office will contact the patient.",
                Status::Rejected => "Declined. See the note above.",
                Status::Cancelled => "You cancelled this referral.",
            } }</p>
            if p.referral.status == Status::Sent {
                <button class="danger" onclick={cancel} disabled={*busy}>{ "Cancel referral" }</button>
            }
        </section>
    }
}

#[function_component(Attachments)]
fn attachments(p: &ItemProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let error = use_state(|| None::<ApiError>);
    let progress = use_state(|| None::<f64>);
    let r = &p.item.referral;
    let rows = r.attachments.iter().map(|a| {
        let meta = ctx.session.open_attachment_meta(r, a);
        let download = {
            let (s, r, a, error) = (ctx.session.clone(), r.clone(), a.clone(), error.clone());
            Callback::from(move |_| {
                let (s, r, a, error) = (s.clone(), r.clone(), a.clone(), error.clone());
                spawn(async move {
                    match s.download(&r, &a).await {
                        Ok((m, bytes)) => super::auth::save_file(&m.name, &m.media_type, &bytes),
                        Err(e) => error.set(Some(e)),
                    }
                });
            })
        };
        match meta {
            Ok(m) => html! {
                <li key={a.blob.to_string()}>
                    <span class="file">{ m.name.clone() }</span><small class="muted">{ format!(" {} · {}", m.media_type, human_size(m.size)) }</small>
                    <button class="small" onclick={download} aria-label={format!("Download {}", m.name)}>{ "Download" }</button>
                </li>
            },
            Err(e) => html! { <li>{ format!("An attachment cannot be decrypted: {e}") }</li> },
        }
    });
    let add = {
        let (ctx, r, error, progress) = (ctx.clone(), r.clone(), error.clone(), progress.clone());
        Callback::from(move |e: Event| {
            let input: web_sys::HtmlInputElement = e.target_unchecked_into();
            let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
            input.set_value("");
            let (ctx, r, error, progress) = (ctx.clone(), r.clone(), error.clone(), progress.clone());
            spawn(async move {
                error.set(None);
                let res = async {
                    let bytes = read_file(&file).await?;
                    let pr = progress.clone();
                    let a = ctx
                        .session
                        .upload_added(&r, &file.name(), &file.type_(), &bytes, move |sent, total| {
                            pr.set(Some(if total > 0.0 { sent / total } else { 0.0 }))
                        })
                        .await?;
                    ctx.live.command(Command::AddAttachment { referral: r.id, attachment: a }).await
                }
                .await;
                progress.set(None);
                if let Err(e) = res {
                    error.set(Some(e));
                }
            });
        })
    };
    html! {
        <section class="card" aria-labelledby="att-title">
            <h2 id="att-title">{ "Attachments" }</h2>
            <ErrorBox error={(*error).clone()} />
            if r.attachments.is_empty() { <p class="muted">{ "No attachments." }</p> }
            <ul class="files" data-testid="attachments">{ for rows }</ul>
            if let Some(f) = *progress { <progress max="1" value={f.to_string()} aria-label="Upload progress" /> }
            if !r.is_free() {
                <label class="file-add" for="att-add">{ "Add an attachment (encrypted before upload)" }</label>
                <input id="att-add" type="file" onchange={add} />
            }
        </section>
    }
}

#[function_component(Thread)]
fn thread(p: &ItemProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let text = use_state(String::new);
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    let r = &p.item.referral;
    let messages: Vec<(UserId, Option<UserId>, i64, ThreadMessage)> = p
        .item
        .history
        .iter()
        .filter_map(|e| match e {
            Ev::MessagePosted { message, by, on_behalf_of, at, .. } => Some((*by, *on_behalf_of, *at, message.clone())),
            Ev::ReferralSent { .. }
            | Ev::Opened { .. }
            | Ev::StatusChanged { .. }
            | Ev::CategoryChanged { .. }
            | Ev::UrgencyChanged { .. }
            | Ev::AttachmentAdded { .. }
            | Ev::EpochAdvanced { .. } => None,
        })
        .collect();
    let post = {
        let (ctx, r, text, error, busy) = (ctx.clone(), r.clone(), text.clone(), error.clone(), busy.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if text.trim().is_empty() {
                return;
            }
            let (ctx, r, text, error, busy) = (ctx.clone(), r.clone(), text.clone(), error.clone(), busy.clone());
            busy.set(true);
            spawn(async move {
                match ctx.session.seal_message(&r, text.trim()).await {
                    Ok(m) => {
                        let t = text.clone();
                        run(
                            &ctx,
                            Command::PostMessage { referral: r.id, message: m },
                            error.clone(),
                            busy.clone(),
                            Some(Callback::from(move |_| t.set(String::new()))),
                        );
                    }
                    Err(e) => {
                        busy.set(false);
                        error.set(Some(e));
                    }
                }
            });
        })
    };
    html! {
        <section class="card" aria-labelledby="thread-title">
            <h2 id="thread-title">{ "Conversation" }</h2>
            <ol class="thread" aria-live="polite" data-testid="thread">
                if messages.is_empty() { <li class="muted">{ "No messages yet. Messages are encrypted and signed by their author." }</li> }
                { for messages.into_iter().map(|(by, on_behalf_of, at, m)| html! { <Message key={m.id.to_string()}  referral={r.clone()} {by} {on_behalf_of} {at} message={m.clone()} session={ctx.session.clone()} me={by == ctx.session.me.id} /> }) }
            </ol>
            <form onsubmit={post} class="stack">
                <ErrorBox error={(*error).clone()} />
                <label for="msg-text">{ "Message" }</label>
                <textarea id="msg-text" rows="3" value={(*text).clone()} oninput={bind_area(&text)} />
                <button class="primary" type="submit" disabled={*busy || text.trim().is_empty()}>{ if *busy { "Sending…" } else { "Send message" } }</button>
            </form>
        </section>
    }
}

#[derive(Properties)]
struct MessageProps {
    referral: Referral,
    by: UserId,
    /// For a delegate's message: their sponsor.
    on_behalf_of: Option<UserId>,
    at: i64,
    message: ThreadMessage,
    session: Rc<Session>,
    me: bool,
}

impl PartialEq for MessageProps {
    fn eq(&self, o: &Self) -> bool {
        self.message == o.message && self.by == o.by && self.referral.id == o.referral.id
    }
}

#[function_component(Message)]
fn message(p: &MessageProps) -> Html {
    let opened = use_state(|| None::<Result<(String, String), ApiError>>);
    {
        let (opened, s, r, by, m) = (opened.clone(), p.session.clone(), p.referral.clone(), p.by, p.message.clone());
        let sponsor = p.on_behalf_of;
        use_effect_with(p.message.id, move |_| {
            spawn(async move {
                let res = async {
                    let body = s.open_message(&r, by, &m).await?;
                    let mut who = s.user_keys(by).await?.display_name;
                    if let Some(sp) = sponsor {
                        who = format!("{who} on behalf of {}", s.user_keys(sp).await?.display_name);
                    }
                    Ok((who, body.text))
                }
                .await;
                opened.set(Some(res));
            });
        });
    }
    match &*opened {
        None => html! { <li class="msg" aria-busy="true">{ "Decrypting…" }</li> },
        Some(Ok((who, text))) => html! {
            <li class={classes!("msg", p.me.then_some("mine"))}>
                <div class="msg-head"><strong>{ who.clone() }</strong><small class="muted">{ format!(" · {} · signature verified", when(p.at)) }</small></div>
                <p class="prewrap" data-testid="message-text">{ text.clone() }</p>
            </li>
        },
        Some(Err(e)) => html! { <li class="msg bad" role="alert">{ format!("A message failed verification and is not shown: {e}") }</li> },
    }
}

/// Who did `e`, and for whom, when a delegate did it on behalf of their sponsor.
fn on_behalf_of(e: &Ev) -> Option<(UserId, UserId)> {
    let (by, sponsor) = match e {
        Ev::ReferralSent { referral } => match &referral.from {
            handoff_protocol::ws::SentFrom::Practice { user, on_behalf_of, .. } => (*user, *on_behalf_of),
            handoff_protocol::ws::SentFrom::Free => return None,
        },
        Ev::Opened { by, on_behalf_of, .. }
        | Ev::StatusChanged { by, on_behalf_of, .. }
        | Ev::CategoryChanged { by, on_behalf_of, .. }
        | Ev::UrgencyChanged { by, on_behalf_of, .. }
        | Ev::AttachmentAdded { by, on_behalf_of, .. }
        | Ev::MessagePosted { by, on_behalf_of, .. } => (*by, *on_behalf_of),
        Ev::EpochAdvanced { .. } => return None,
    };
    sponsor.map(|s| (by, s))
}

#[derive(Properties, PartialEq)]
struct OnBehalfProps {
    by: UserId,
    sponsor: UserId,
}

/// " — <delegate> on behalf of <sponsor>", by their account names.
#[function_component(OnBehalf)]
fn on_behalf(p: &OnBehalfProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let names = use_state(|| None::<String>);
    {
        let (names, s, by, sponsor) = (names.clone(), ctx.session.clone(), p.by, p.sponsor);
        use_effect_with((by, sponsor), move |_| {
            spawn(async move {
                if let (Ok(d), Ok(sp)) = (s.user_keys(by).await, s.user_keys(sponsor).await) {
                    names.set(Some(format!("{} on behalf of {}", d.display_name, sp.display_name)));
                }
            });
        });
    }
    match &*names {
        Some(n) => html! { <span data-testid="on-behalf-of">{ format!(" — {n}") }</span> },
        None => html! {},
    }
}

#[function_component(History)]
fn history(p: &ItemProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let s = &ctx.session;
    let r = &p.item.referral;
    let rows = p.item.history.iter().filter_map(|e| {
        let (at, text) = match e {
            Ev::ReferralSent { referral } => {
                (referral.created_at, format!("Sent as {}", urgency_label(referral.routing.urgency).to_lowercase()))
            }
            Ev::Opened { at, .. } => (*at, "Opened by the specialist's office".into()),
            Ev::StatusChanged { status, reason, at, .. } => {
                (*at, format!("{}{}", status_label(*status), reason.map(|x| format!(": {}", reason_label(x))).unwrap_or_default()))
            }
            Ev::CategoryChanged { category, at, .. } => {
                (*at, format!("Category changed to {}", s.category_name(&r.routing.specialty, category)))
            }
            Ev::UrgencyChanged { urgency, at, .. } => (*at, format!("Urgency changed to {}", urgency_label(*urgency))),
            Ev::AttachmentAdded { at, .. } => (*at, "Attachment added".into()),
            // Messages are in the conversation; key changes are practice-level.
            Ev::MessagePosted { .. } | Ev::EpochAdvanced { .. } => return None,
        };
        let actor = on_behalf_of(e).map(|(by, sponsor)| html! { <OnBehalf {by} {sponsor} /> });
        Some(html! { <li><span>{ text }</span>{ for actor }<small class="muted block">{ when(at) }</small></li> })
    });
    html! {
        <section class="card" aria-labelledby="history-title">
            <h2 id="history-title">{ "History" }</h2>
            <ol class="timeline" data-testid="history">{ for rows }</ol>
        </section>
    }
}
