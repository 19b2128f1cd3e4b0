//! Sending a referral: a cascade (specialty, category, subcategory, region),
//! a specialist or "choose for me", urgency, the patient, clinical details,
//! attachments with upload progress, and a review step. Everything about the
//! patient is encrypted here before it is sent.

use handoff_crypto::ReferralContent;
use handoff_crypto::referral::Demographics;
use handoff_protocol::PracticeId;
use handoff_protocol::v1::{DirectoryEntry, PracticeKind};
use handoff_protocol::ws::{AckBody, Command, Routing, Urgency};
use yew::prelude::*;

use crate::Ctx;
use crate::api::{self, ApiError};
use crate::screens::detail::{human_size, read_file};
use crate::state::urgency_label;
use crate::ui::{ErrorBox, Route, bind, bind_area, bind_select, spawn};

#[derive(Clone, PartialEq)]
struct Picked {
    name: String,
    media_type: String,
    bytes: Vec<u8>,
}

const STEPS: [&str; 5] = ["Routing", "Specialist", "Patient", "Attachments", "Review"];

/// The send-referral wizard.
#[function_component(SendReferral)]
pub fn send_referral() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let s = &ctx.session;
    let mine: Vec<_> = s.practices().into_iter().filter(|p| s.has_key(p.id)).collect();
    let step = use_state(|| 0usize);
    let from = use_state(|| {
        mine.iter().find(|p| p.kind == PracticeKind::Referring).or(mine.first()).map(|p| p.id.to_string()).unwrap_or_default()
    });
    let specialty = use_state(String::new);
    let category = use_state(String::new);
    let subcategory = use_state(String::new);
    let region = use_state(String::new);
    let urgency = use_state(|| "routine".to_string());
    let directory = use_state(|| None::<Result<Vec<DirectoryEntry>, ApiError>>);
    let target = use_state(|| "choose".to_string());
    let (name, dob, sex, hn, phone, address) = (
        use_state(String::new),
        use_state(String::new),
        use_state(String::new),
        use_state(String::new),
        use_state(String::new),
        use_state(String::new),
    );
    let reason = use_state(String::new);
    let details = use_state(String::new);
    let files = use_state(Vec::<Picked>::new);
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| None::<String>);
    let progress = use_state(|| None::<f64>);

    if mine.is_empty() {
        return html! {
            <>
                <h1>{ "New referral" }</h1>
                <div class="notice"><p>{ "You need to belong to a practice (and hold its key) before you can send a referral." }</p>
                <button class="primary" onclick={{ let nav = ctx.nav.clone(); Callback::from(move |_| nav.emit(Route::Practices)) }}>{ "Go to practices" }</button></div>
            </>
        };
    }

    let tax = &s.taxonomy;
    let spec = tax.specialties.iter().find(|x| x.slug == *specialty).cloned();
    let cat = spec.as_ref().and_then(|x| x.categories.iter().find(|c| c.slug == *category).cloned());
    // Practices in the directory that take this category (and subcategory).
    let candidates: Vec<DirectoryEntry> = match &*directory {
        Some(Ok(d)) => d
            .iter()
            .filter(|e| {
                e.intake
                    .iter()
                    .any(|i| i.category == *category && (i.subcategory.is_none() || i.subcategory.as_deref() == Some(subcategory.as_str())))
            })
            .cloned()
            .collect(),
        _ => Vec::new(),
    };

    let go = |n: usize| {
        let step = step.clone();
        let error = error.clone();
        Callback::from(move |_: MouseEvent| {
            error.set(None);
            step.set(n);
        })
    };
    let next = {
        let (step, error, specialty, category, region, directory, name, reason, target) = (
            step.clone(),
            error.clone(),
            specialty.clone(),
            category.clone(),
            region.clone(),
            directory.clone(),
            name.clone(),
            reason.clone(),
            target.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let problem = match *step {
                0 if specialty.is_empty() || category.is_empty() || region.is_empty() => {
                    Some("Choose a specialty, a category and a region.")
                }
                1 if matches!(&*directory, Some(Ok(_))) && target.is_empty() => Some("Choose a specialist, or let Handoff choose for you."),
                2 if name.trim().is_empty() => Some("Enter the patient's name."),
                2 if reason.trim().is_empty() => Some("Enter the reason for referral."),
                _ => None,
            };
            if let Some(p) = problem {
                error.set(Some(ApiError::local(p)));
                return;
            }
            error.set(None);
            if *step == 0 {
                let (directory, sp, rg) = (directory.clone(), (*specialty).clone(), (*region).clone());
                directory.set(None);
                spawn(async move { directory.set(Some(api::directory(&sp, &rg).await)) });
            }
            step.set((*step + 1).min(4));
        })
    };
    let pick_files = {
        let (files, error) = (files.clone(), error.clone());
        Callback::from(move |e: Event| {
            let input: web_sys::HtmlInputElement = e.target_unchecked_into();
            let Some(list) = input.files() else { return };
            let picked: Vec<web_sys::File> = (0..list.length()).filter_map(|i| list.get(i)).collect();
            input.set_value("");
            let (files, error) = (files.clone(), error.clone());
            spawn(async move {
                let mut v = (*files).clone();
                for f in picked {
                    match read_file(&f).await {
                        Ok(bytes) => v.push(Picked {
                            name: f.name(),
                            media_type: if f.type_().is_empty() { "application/octet-stream".into() } else { f.type_() },
                            bytes,
                        }),
                        Err(e) => error.set(Some(e)),
                    }
                }
                files.set(v);
            });
        })
    };
    let send = {
        let (ctx, from, specialty, category, subcategory, region, urgency, target, candidates) = (
            ctx.clone(),
            from.clone(),
            specialty.clone(),
            category.clone(),
            subcategory.clone(),
            region.clone(),
            urgency.clone(),
            target.clone(),
            candidates.clone(),
        );
        let (name, dob, sex, hn, phone, address, reason, details, files, error, busy, progress) = (
            name.clone(),
            dob.clone(),
            sex.clone(),
            hn.clone(),
            phone.clone(),
            address.clone(),
            reason.clone(),
            details.clone(),
            files.clone(),
            error.clone(),
            busy.clone(),
            progress.clone(),
        );
        Callback::from(move |_: MouseEvent| {
            let Ok(from) = uuid::Uuid::parse_str(&from).map(PracticeId) else { return };
            let choose = *target == "choose";
            let targets: Vec<DirectoryEntry> =
                if choose { candidates.clone() } else { candidates.iter().filter(|e| e.id.to_string() == *target).cloned().collect() };
            let routing = Routing {
                specialty: (*specialty).clone(),
                category: (*category).clone(),
                subcategory: (!subcategory.is_empty()).then(|| (*subcategory).clone()),
                region: (*region).clone(),
                urgency: serde_json::from_value(serde_json::Value::String((*urgency).clone())).unwrap_or(Urgency::Routine),
            };
            let content = ReferralContent {
                patient: Demographics {
                    name: name.trim().into(),
                    date_of_birth: (*dob).clone(),
                    sex: (*sex).clone(),
                    health_number: hn.trim().into(),
                    phone: phone.trim().into(),
                    address: address.trim().into(),
                },
                reason: reason.trim().into(),
                clinical_details: details.trim().into(),
            };
            let (ctx, files, error, busy, progress) = (ctx.clone(), (*files).clone(), error.clone(), busy.clone(), progress.clone());
            error.set(None);
            busy.set(Some("Encrypting…".into()));
            spawn(async move {
                let res = async {
                    let (mut new, key) = ctx.session.prepare_referral(from, &targets, choose, routing, &content).await?;
                    let total = files.len();
                    for (i, f) in files.iter().enumerate() {
                        busy.set(Some(format!("Uploading {} ({} of {total}), encrypted…", f.name, i + 1)));
                        let pr = progress.clone();
                        new.attachments.push(
                            ctx.session
                                .upload(&key, &f.name, &f.media_type, &f.bytes, move |sent, all| {
                                    pr.set(Some(if all > 0.0 { sent / all } else { 0.0 }))
                                })
                                .await?,
                        );
                        progress.set(None);
                    }
                    busy.set(Some("Sending…".into()));
                    ctx.live.command(Command::SendReferral { referral: new }).await
                }
                .await;
                busy.set(None);
                progress.set(None);
                match res {
                    Ok(AckBody::ReferralSent { referral, .. }) => ctx.nav.emit(Route::Referral(referral)),
                    Ok(_) => error.set(Some(ApiError::local("Unexpected answer from Handoff."))),
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };

    let stepper = html! {
        <ol class="stepper" aria-label="Steps">
            { for STEPS.iter().enumerate().map(|(i, label)| html! {
                <li class={classes!((i == *step).then_some("current"), (i < *step).then_some("done"))} aria-current={(i == *step).then_some("step")}>
                    <span class="n">{ i + 1 }</span>{ *label }
                </li>
            }) }
        </ol>
    };
    let back = if *step > 0 {
        html! { <button type="button" onclick={go(*step - 1)}>{ "Back" }</button> }
    } else {
        html! {}
    };
    let body = match *step {
        0 => html! {
            <>
                if mine.len() > 1 {
                    <label for="s-from">{ "Send from" }</label>
                    <select id="s-from" onchange={bind_select(&from)}>
                        { for mine.iter().map(|p| html! { <option value={p.id.to_string()} selected={*from == p.id.to_string()}>{ p.name.clone() }</option> }) }
                    </select>
                }
                <div class="grid2">
                    <div>
                        <label for="s-specialty">{ "Specialty" }</label>
                        <select id="s-specialty" onchange={{ let (sp, c, sc) = (specialty.clone(), category.clone(), subcategory.clone()); Callback::from(move |e: Event| { sp.set(crate::ui::select_value(&e)); c.set(String::new()); sc.set(String::new()); }) }}>
                            <option value="" selected={specialty.is_empty()}>{ "Choose…" }</option>
                            { for tax.specialties.iter().map(|x| html! { <option value={x.slug.clone()} selected={*specialty == x.slug}>{ x.name.clone() }</option> }) }
                        </select>
                    </div>
                    <div>
                        <label for="s-category">{ "Category" }</label>
                        <select id="s-category" disabled={spec.is_none()} onchange={{ let (c, sc) = (category.clone(), subcategory.clone()); Callback::from(move |e: Event| { c.set(crate::ui::select_value(&e)); sc.set(String::new()); }) }}>
                            <option value="" selected={category.is_empty()}>{ "Choose…" }</option>
                            { for spec.iter().flat_map(|x| x.categories.iter()).map(|c| html! { <option value={c.slug.clone()} selected={*category == c.slug}>{ c.name.clone() }</option> }) }
                        </select>
                    </div>
                    <div>
                        <label for="s-subcategory">{ "Subcategory (optional)" }</label>
                        <select id="s-subcategory" disabled={cat.as_ref().is_none_or(|c| c.subcategories.is_empty())} onchange={bind_select(&subcategory)}>
                            <option value="" selected={subcategory.is_empty()}>{ "Any / not applicable" }</option>
                            { for cat.iter().flat_map(|c| c.subcategories.iter()).map(|x| html! { <option value={x.slug.clone()} selected={*subcategory == x.slug}>{ x.name.clone() }</option> }) }
                        </select>
                    </div>
                    <div>
                        <label for="s-region">{ "Health region" }</label>
                        <select id="s-region" onchange={bind_select(&region)}>
                            <option value="" selected={region.is_empty()}>{ "Choose…" }</option>
                            { for tax.regions.iter().map(|r| html! { <option value={r.slug.clone()} selected={*region == r.slug}>{ r.name.clone() }</option> }) }
                        </select>
                    </div>
                </div>
                <fieldset class="radios">
                    <legend>{ "Urgency" }</legend>
                    { for [Urgency::Urgent, Urgency::Semi, Urgency::Routine].into_iter().map(|u| {
                        let v = serde_json::to_value(u).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                        let set = { let urgency = urgency.clone(); let v = v.clone(); Callback::from(move |_: Event| urgency.set(v.clone())) };
                        html! { <label><input type="radio" name="urgency" checked={*urgency == v} onchange={set} />{ format!(" {}", urgency_label(u)) }</label> }
                    }) }
                </fieldset>
            </>
        },
        1 => match &*directory {
            None => html! { <p aria-busy="true">{ "Finding specialists…" }</p> },
            Some(Err(e)) => html! { <ErrorBox error={Some(e.clone())} /> },
            Some(Ok(_)) if candidates.is_empty() => html! {
                <div class="alert warn" role="alert">{ "No verified specialist practice in this region accepts this category right now. Go back and choose another region or category." }</div>
            },
            Some(Ok(_)) => {
                let set = |v: String| {
                    let target = target.clone();
                    Callback::from(move |_: Event| target.set(v.clone()))
                };
                html! {
                    <fieldset class="radios choices">
                        <legend>{ "Who should receive it?" }</legend>
                        <label class="choice">
                            <input type="radio" name="target" checked={*target == "choose"} onchange={set("choose".into())} />
                            <span><strong>{ "Choose for me" }</strong><small class="block muted">{ format!("Handoff sends it to the practice with the fewest referrals in this category among {} that accept it. The shortest wait, not a favourite.", candidates.len()) }</small></span>
                        </label>
                        { for candidates.iter().map(|e| html! {
                            <label class="choice">
                                <input type="radio" name="target" checked={*target == e.id.to_string()} onchange={set(e.id.to_string())} />
                                <span><strong>{ e.name.clone() }</strong><small class="block muted">{ s.region_name(&e.region) }</small></span>
                            </label>
                        }) }
                    </fieldset>
                }
            }
        },
        2 => html! {
            <>
                <fieldset>
                    <legend>{ "Patient" }</legend>
                    <div class="grid2">
                        <div><label for="pt-name">{ "Full name" }</label><input id="pt-name" autocomplete="off" value={(*name).clone()} oninput={bind(&name)} /></div>
                        <div><label for="pt-dob">{ "Date of birth" }</label><input id="pt-dob" type="date" value={(*dob).clone()} oninput={bind(&dob)} /></div>
                        <div>
                            <label for="pt-sex">{ "Sex" }</label>
                            <select id="pt-sex" onchange={bind_select(&sex)}>
                                { for ["", "Female", "Male", "Intersex", "Unknown"].into_iter().map(|x| html! { <option value={x} selected={*sex == x}>{ if x.is_empty() { "Choose…" } else { x } }</option> }) }
                            </select>
                        </div>
                        <div><label for="pt-hn">{ "Personal health number" }</label><input id="pt-hn" autocomplete="off" inputmode="numeric" value={(*hn).clone()} oninput={bind(&hn)} /></div>
                        <div><label for="pt-phone">{ "Phone" }</label><input id="pt-phone" type="tel" autocomplete="off" value={(*phone).clone()} oninput={bind(&phone)} /></div>
                        <div><label for="pt-address">{ "Address" }</label><input id="pt-address" autocomplete="off" value={(*address).clone()} oninput={bind(&address)} /></div>
                    </div>
                </fieldset>
                <label for="pt-reason">{ "Reason for referral" }</label>
                <textarea id="pt-reason" rows="3" value={(*reason).clone()} oninput={bind_area(&reason)} />
                <label for="pt-details">{ "Clinical details (history, medications, investigations)" }</label>
                <textarea id="pt-details" rows="6" value={(*details).clone()} oninput={bind_area(&details)} />
            </>
        },
        3 => html! {
            <>
                <p>{ "Attach letters, lab results or imaging reports. Files are encrypted in this browser before upload (8 MB each at most)." }</p>
                <label for="s-files" class="file-add">{ "Choose files" }</label>
                <input id="s-files" type="file" multiple=true onchange={pick_files} />
                <ul class="files">
                    { for files.iter().enumerate().map(|(i, f)| {
                        let files = files.clone();
                        let remove = Callback::from(move |_| { let mut v = (*files).clone(); v.remove(i); files.set(v); });
                        html! { <li><span class="file">{ f.name.clone() }</span><small class="muted">{ format!(" {}", human_size(f.bytes.len() as u64)) }</small><button type="button" class="small" onclick={remove} aria-label={format!("Remove {}", f.name)}>{ "Remove" }</button></li> }
                    }) }
                </ul>
            </>
        },
        _ => {
            let to = if *target == "choose" {
                format!("Choose for me (among {} practices)", candidates.len())
            } else {
                candidates.iter().find(|e| e.id.to_string() == *target).map(|e| e.name.clone()).unwrap_or_default()
            };
            html! {
                <>
                    <dl class="facts review" data-testid="review">
                        <dt>{ "Specialty" }</dt><dd>{ s.specialty_name(&specialty) }</dd>
                        <dt>{ "Category" }</dt><dd>{ cat.as_ref().map(|c| c.name.clone()).unwrap_or_default() }{ if subcategory.is_empty() { String::new() } else { format!(" / {}", *subcategory) } }</dd>
                        <dt>{ "Region" }</dt><dd>{ s.region_name(&region) }</dd>
                        <dt>{ "Urgency" }</dt><dd>{ serde_json::from_value::<Urgency>(serde_json::Value::String((*urgency).clone())).map(urgency_label).unwrap_or("") }</dd>
                        <dt>{ "To" }</dt><dd>{ to }</dd>
                        <dt>{ "Patient" }</dt><dd>{ format!("{} · born {} · {}", *name, *dob, *hn) }</dd>
                        <dt>{ "Reason" }</dt><dd class="prewrap">{ (*reason).clone() }</dd>
                        <dt>{ "Attachments" }</dt><dd>{ if files.is_empty() { "None".to_string() } else { files.iter().map(|f| f.name.clone()).collect::<Vec<_>>().join(", ") } }</dd>
                    </dl>
                    if let Some(b) = &*busy { <p role="status" aria-live="polite">{ b.clone() }</p> }
                    if let Some(f) = *progress { <progress max="1" value={f.to_string()} aria-label="Upload progress" /> }
                </>
            }
        }
    };
    let actions = if *step < 4 {
        html! { <div class="row end">{ back }<button class="primary" type="submit">{ "Continue" }</button></div> }
    } else {
        html! { <div class="row end">{ back }<button class="primary" type="button" onclick={send} disabled={busy.is_some()}>{ "Send referral" }</button></div> }
    };
    html! {
        <>
            <h1>{ "New referral" }</h1>
            { stepper }
            <form class="card wizard" onsubmit={next}>
                <h2>{ STEPS[*step] }</h2>
                <ErrorBox error={(*error).clone()} />
                { body }
                { actions }
            </form>
        </>
    }
}
