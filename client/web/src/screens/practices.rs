//! Practices: create one, members (invite, remove), verification status,
//! whether a specialist practice receives free referrals, key-group health
//! ([`KeyGroup`]), delete (typing the name), accepting an invite.

use handoff_domain::taxonomy::Lookup as _;
use handoff_protocol::PracticeId;
use handoff_protocol::api::SetFreeIntake;
use handoff_protocol::free::FreeIntake;
use handoff_protocol::v1::*;
use yew::prelude::*;

use super::key_group::KeyGroup;
use crate::Ctx;
use crate::api::{self, ApiError};
use crate::session::KeyGroupHealth;
use crate::ui::{ErrorBox, Route, bind, bind_select, spawn, when};

fn kind_label(k: PracticeKind) -> &'static str {
    match k {
        PracticeKind::Referring => "Referring office",
        PracticeKind::Specialist => "Specialist practice",
    }
}

/// The status badge a practice shows.
pub fn verification_badge(p: &Practice) -> Html {
    let (class, text) = match (p.kind, p.verified, p.paused) {
        (PracticeKind::Referring, _, _) => ("tag", "Can send referrals"),
        (PracticeKind::Specialist, _, true) => ("tag warn", "Paused: not receiving referrals"),
        (PracticeKind::Specialist, true, false) => ("tag ok", "Verified: receiving referrals"),
        (PracticeKind::Specialist, false, false) => ("tag wait", "Awaiting verification by Handoff staff"),
    };
    html! { <span class={class} data-testid="verification">{ text }</span> }
}

/// The list of my practices and the create form.
#[function_component(Practices)]
pub fn practices() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let list = ctx.session.practices();
    let open = |id: PracticeId| {
        let nav = ctx.nav.clone();
        Callback::from(move |e: MouseEvent| {
            e.prevent_default();
            nav.emit(Route::Practice(id));
        })
    };
    html! {
        <>
            <h1>{ "Practices" }</h1>
            if list.is_empty() {
                <div class="notice"><p>{ "You do not belong to a practice yet. Create one below, or ask your practice's admin to invite you." }</p></div>
            } else {
                <ul class="cards">
                    { for list.iter().map(|p| html! {
                        <li class="card practice" key={p.id.to_string()}>
                            <a href={Route::Practice(p.id).path()} onclick={open(p.id)}><h2>{ p.name.clone() }</h2></a>
                            <p class="muted">{ kind_label(p.kind) }
                                { p.specialty.as_ref().map(|s| format!(" · {}", ctx.session.specialty_name(s))).unwrap_or_default() }
                                { p.region.as_ref().map(|r| format!(" · {}", ctx.session.region_name(r))).unwrap_or_default() }
                            </p>
                            { verification_badge(p) }
                            if !ctx.session.has_key(p.id) { <span class="tag wait">{ "Waiting for a member to share the practice key" }</span> }
                        </li>
                    }) }
                </ul>
            }
            <CreatePractice />
        </>
    }
}

#[function_component(CreatePractice)]
fn create_practice() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let name = use_state(String::new);
    let kind = use_state(|| "referring".to_string());
    let specialty = use_state(String::new);
    let region = use_state(String::new);
    let intake_all = use_state(|| true);
    let chosen = use_state(Vec::<String>::new);
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    let tax = &ctx.session.taxonomy;
    let spec = tax.specialty(&specialty).cloned();
    let onsubmit = {
        let (name, kind, specialty, region, intake_all, chosen, error, busy, ctx, spec) = (
            name.clone(),
            kind.clone(),
            specialty.clone(),
            region.clone(),
            intake_all.clone(),
            chosen.clone(),
            error.clone(),
            busy.clone(),
            ctx.clone(),
            spec.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let specialist = *kind == "specialist";
            if name.trim().is_empty() {
                error.set(Some(ApiError::local("Give the practice a name.")));
                return;
            }
            if specialist && (specialty.is_empty() || region.is_empty()) {
                error.set(Some(ApiError::local("A specialist practice needs a specialty and a region.")));
                return;
            }
            let intake: Vec<Intake> = if !specialist {
                Vec::new()
            } else if *intake_all {
                spec.iter().flat_map(|s| s.categories.iter()).map(|c| Intake { category: c.slug.clone(), subcategory: None }).collect()
            } else {
                chosen.iter().map(|c| Intake { category: c.clone(), subcategory: None }).collect()
            };
            if specialist && intake.is_empty() {
                error.set(Some(ApiError::local("Choose at least one category your practice accepts.")));
                return;
            }
            let (ctx, error, busy, name) = (ctx.clone(), error.clone(), busy.clone(), (*name).clone());
            let (kind, specialty, region) = (
                if specialist { PracticeKind::Specialist } else { PracticeKind::Referring },
                specialist.then(|| (*specialty).clone()),
                specialist.then(|| (*region).clone()),
            );
            busy.set(true);
            error.set(None);
            spawn(async move {
                match ctx.session.create_practice(name.trim(), kind, specialty, region, intake).await {
                    Ok(p) => {
                        ctx.refresh.emit(());
                        ctx.nav.emit(Route::Practice(p.id));
                    }
                    Err(e) => error.set(Some(e)),
                }
                busy.set(false);
            });
        })
    };
    let set_kind = |k: &'static str| {
        let kind = kind.clone();
        Callback::from(move |_: Event| kind.set(k.to_string()))
    };
    html! {
        <section class="card" aria-labelledby="create-title">
            <h2 id="create-title">{ "Create a practice" }</h2>
            <form {onsubmit}>
                <ErrorBox error={(*error).clone()} />
                <label for="p-name">{ "Practice name" }</label>
                <input id="p-name" required=true value={(*name).clone()} oninput={bind(&name)} />
                <fieldset class="radios">
                    <legend>{ "Type" }</legend>
                    <label><input type="radio" name="kind" checked={*kind == "referring"} onchange={set_kind("referring")} />{ " Referring office (family practice, walk-in, nurse practitioner)" }</label>
                    <label><input type="radio" name="kind" checked={*kind == "specialist"} onchange={set_kind("specialist")} />{ " Specialist practice (receives referrals once verified)" }</label>
                </fieldset>
                if *kind == "specialist" {
                    <div class="grid2">
                        <div>
                            <label for="p-specialty">{ "Specialty" }</label>
                            <select id="p-specialty" onchange={bind_select(&specialty)}>
                                <option value="" selected={specialty.is_empty()}>{ "Choose…" }</option>
                                { for tax.specialties.iter().map(|s| html! { <option value={s.slug.clone()} selected={*specialty == s.slug}>{ s.name.clone() }</option> }) }
                            </select>
                        </div>
                        <div>
                            <label for="p-region">{ "Health region" }</label>
                            <select id="p-region" onchange={bind_select(&region)}>
                                <option value="" selected={region.is_empty()}>{ "Choose…" }</option>
                                { for tax.regions.iter().map(|r| html! { <option value={r.slug.clone()} selected={*region == r.slug}>{ r.name.clone() }</option> }) }
                            </select>
                        </div>
                    </div>
                    if let Some(s) = spec.clone() {
                        <fieldset>
                            <legend>{ "Categories you accept" }</legend>
                            <label><input type="checkbox" checked={*intake_all} onchange={{ let a = intake_all.clone(); Callback::from(move |e: Event| a.set(crate::ui::checked(&e))) }} />{ " Every category in this specialty" }</label>
                            if !*intake_all {
                                <div class="checks">
                                    { for s.categories.iter().map(|c| {
                                        let chosen = chosen.clone();
                                        let slug = c.slug.clone();
                                        let on = chosen.contains(&slug);
                                        let onchange = Callback::from(move |e: Event| {
                                            let mut v = (*chosen).clone();
                                            v.retain(|x| x != &slug);
                                            if crate::ui::checked(&e) { v.push(slug.clone()); }
                                            chosen.set(v);
                                        });
                                        html! { <label><input type="checkbox" checked={on} {onchange} />{ format!(" {}", c.name) }</label> }
                                    }) }
                                </div>
                            }
                        </fieldset>
                    }
                }
                <button class="primary" type="submit" disabled={*busy}>{ if *busy { "Creating…" } else { "Create practice" } }</button>
            </form>
        </section>
    }
}

/// Props for [`PracticePage`].
#[derive(Properties, PartialEq)]
pub struct PracticeProps {
    /// The practice to show.
    pub id: PracticeId,
}

/// One practice: status, members, invites, deletion.
#[function_component(PracticePage)]
pub fn practice_page(p: &PracticeProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let members = use_state(|| None::<Result<MemberList, ApiError>>);
    let health = use_state(|| None::<Result<KeyGroupHealth, ApiError>>);
    let reload = use_state(|| 0u32);
    let action_error = use_state(|| None::<ApiError>);
    {
        let (members, health, id, s) = (members.clone(), health.clone(), p.id, ctx.session.clone());
        use_effect_with((id, *reload), move |_| {
            spawn(async move {
                // Add anyone who joined to the key group (and catch up, reporting
                // an epoch this device cannot process), then list.
                let _ = s.maintain(id).await;
                members.set(Some(api::members(id).await));
                health.set(Some(s.key_group_health(id).await));
            });
        });
    }
    let Some(practice) = ctx.session.practice(p.id) else {
        return html! { <div class="alert error" role="alert">{ "This practice does not exist or you are no longer a member." }</div> };
    };
    let admin = practice.my_role == Role::Admin;
    let member_rows = match &*members {
        None => html! { <p aria-busy="true">{ "Loading members…" }</p> },
        Some(Err(e)) => html! { <ErrorBox error={Some(e.clone())} /> },
        Some(Ok(m)) => {
            let rows = m.members.iter().map(|mem| {
                let remove = {
                    let (id, user, reload, err, ctx) = (p.id, mem.user_id, reload.clone(), action_error.clone(), ctx.clone());
                    let me = mem.user_id == ctx.session.me.id;
                    Callback::from(move |_| {
                        let (reload, err, ctx) = (reload.clone(), err.clone(), ctx.clone());
                        spawn(async move {
                            match api::call::<handoff_protocol::api::RemoveMember>(&(id, user), &()).await {
                                Ok(()) => {
                                    err.set(None);
                                    // Take them out of the key group at once: a new epoch they cannot read.
                                    if !me && let Err(e) = ctx.session.maintain(id).await {
                                        err.set(Some(e));
                                    }
                                    if me {
                                        ctx.refresh.emit(());
                                        ctx.nav.emit(Route::Practices);
                                    } else {
                                        reload.set(*reload + 1);
                                    }
                                }
                                Err(e) => err.set(Some(e)),
                            }
                        });
                    })
                };
                let me = mem.user_id == ctx.session.me.id;
                html! {
                    <tr key={mem.user_id.to_string()}>
                        <td>{ mem.display_name.clone() }{ if me { " (you)" } else { "" } }</td>
                        <td>{ mem.email.clone() }</td>
                        <td>
                            { role_label(mem.role) }
                            { mem.starts_at.map(|t| format!(" · starts {}", when(t))).unwrap_or_default() }
                            { mem.ends_at.map(|t| format!(" · ends {}", when(t))).unwrap_or_default() }
                            { mem.sponsor.and_then(|s| m.members.iter().find(|x| x.user_id == s)).map(|s| format!(" · on behalf of {}", s.display_name)).unwrap_or_default() }
                        </td>
                        <td>{ if mem.has_key { html! { <span class="tag ok">{ "Has key" }</span> } } else { html! { <span class="tag wait">{ "Waiting for key" }</span> } } }</td>
                        <td>
                            if admin && !me { <EndDate id={p.id} user={mem.user_id} name={mem.display_name.clone()} ends_at={mem.ends_at} delegate={mem.role == Role::Delegate} on_saved={{ let reload = reload.clone(); Callback::from(move |_| reload.set(*reload + 1)) }} /> }
                            if admin && !me { <button class="danger small" onclick={remove.clone()} aria-label={format!("Remove {}", mem.display_name)}>{ "Remove" }</button> }
                            if me { <button class="small" onclick={remove.clone()}>{ "Leave" }</button> }
                        </td>
                    </tr>
                }
            });
            html! {
                <>
                    <table class="table">
                        <thead><tr><th scope="col">{ "Name" }</th><th scope="col">{ "Email" }</th><th scope="col">{ "Role" }</th><th scope="col">{ "Key" }</th><th scope="col"><span class="sr-only">{ "Actions" }</span></th></tr></thead>
                        <tbody>{ for rows }</tbody>
                    </table>
                    if !m.pending_invites.is_empty() {
                        <h3>{ "Pending invites" }</h3>
                        <ul class="plain">{ for m.pending_invites.iter().map(|i| html! { <li>{ format!("{} — invited as {}, expires {}", i.email, role_label(i.role).to_lowercase(), when(i.expires_at)) }</li> }) }</ul>
                    }
                </>
            }
        }
    };
    html! {
        <>
            <h1>{ practice.name.clone() }</h1>
            <p class="muted">
                { kind_label(practice.kind) }
                { practice.specialty.as_ref().map(|s| format!(" · {}", ctx.session.specialty_name(s))).unwrap_or_default() }
                { practice.region.as_ref().map(|r| format!(" · {}", ctx.session.region_name(r))).unwrap_or_default() }
            </p>
            { verification_badge(&practice) }
            if practice.kind == PracticeKind::Specialist && !practice.verified {
                <p class="help">{ "Handoff staff check every specialist practice before it can receive referrals. You will get an email when it is verified." }</p>
            }
            if practice.kind == PracticeKind::Specialist { <FreeIntakeToggle practice={practice.clone()} {admin} /> }
            <KeyGroup practice={p.id} {admin} health={(*health).clone()} on_changed={{ let r = reload.clone(); Callback::from(move |_| r.set(*r + 1)) }} />
            <super::rooms::RoomsCard practice={p.id} />
            <section class="card" aria-labelledby="members-title">
                <h2 id="members-title">{ "Members" }</h2>
                <ErrorBox error={(*action_error).clone()} />
                { member_rows }
                if admin { <Invite id={p.id} on_sent={{ let r = reload.clone(); Callback::from(move |_| r.set(*r + 1)) }} /> }
            </section>
            if admin {
                <section class="card" aria-labelledby="audit-link-title">
                    <h2 id="audit-link-title">{ "Audit log" }</h2>
                    <p class="help">{ "Who signed in, opened referrals, joined or left, and changed the key group, with times and addresses." }</p>
                    <a href={Route::PracticeAudit(p.id).path()} data-testid="open-audit" onclick={{
                        let (nav, id) = (ctx.nav.clone(), p.id);
                        Callback::from(move |e: MouseEvent| { e.prevent_default(); nav.emit(Route::PracticeAudit(id)); })
                    }}>{ "Open the audit log" }</a>
                </section>
                <DeletePractice practice={practice.clone()} />
            }
        </>
    }
}

/// Props for [`FreeIntakeToggle`].
#[derive(Properties)]
pub struct FreeIntakeProps {
    /// The (specialist) practice.
    pub practice: Practice,
    /// Whether the signed-in user is one of its admins (only they may change it).
    pub admin: bool,
}

impl PartialEq for FreeIntakeProps {
    fn eq(&self, o: &Self) -> bool {
        self.practice.id == o.practice.id
            && self.practice.accepts_free_referrals == o.practice.accepts_free_referrals
            && self.admin == o.admin
    }
}

/// Whether the practice receives free referrals (from senders without an
/// account): admins switch it, everyone sees it.
#[function_component(FreeIntakeToggle)]
fn free_intake_toggle(p: &FreeIntakeProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let accepts = use_state(|| p.practice.accepts_free_referrals);
    let error = use_state(|| None::<ApiError>);
    let busy = use_state(|| false);
    let onchange = {
        let (accepts, error, busy, id, refresh) = (accepts.clone(), error.clone(), busy.clone(), p.practice.id, ctx.refresh.clone());
        Callback::from(move |e: Event| {
            let want = crate::ui::checked(&e);
            let (accepts, error, busy, refresh) = (accepts.clone(), error.clone(), busy.clone(), refresh.clone());
            busy.set(true);
            error.set(None);
            spawn(async move {
                match api::call::<SetFreeIntake>(&id, &FreeIntake { accepts: want }).await {
                    Ok(answer) => {
                        accepts.set(answer.accepts);
                        refresh.emit(());
                    }
                    Err(e) => error.set(Some(e)),
                }
                busy.set(false);
            });
        })
    };
    html! {
        <section class="card" aria-labelledby="free-intake-title">
            <h2 id="free-intake-title">{ "Free referrals" }</h2>
            <p class="help">{ "Free referrals come from offices without a Handoff account. They have no conversation and no later attachments; accepting or declining one emails the sender the number and the outcome (never the note)." }</p>
            <ErrorBox error={(*error).clone()} />
            if p.admin {
                <div class="confirm">
                    <label for="free-intake">
                        <input id="free-intake" type="checkbox" checked={*accepts} disabled={*busy} {onchange} />
                        { " Receive free referrals" }
                    </label>
                </div>
            } else {
                <p data-testid="free-intake-state">{ if *accepts { "This practice receives free referrals. An admin can change this." } else { "This practice does not receive free referrals. An admin can change this." } }</p>
            }
        </section>
    }
}

/// Milliseconds at 00:00 UTC of a `YYYY-MM-DD` day (a date input's value).
fn day_millis(day: &str) -> Option<i64> {
    let mut parts = day.trim().splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400_000)
}

/// A start date as the server takes it: that day's start (UTC), or now if the day is today.
fn start_of(day: &str) -> Option<i64> {
    let now = js_sys::Date::now() as i64;
    day_millis(day).map(|t| if t < now && now - t < 86_400_000 { now + 60_000 } else { t })
}

/// An end date as the server takes it: access ends at the end of that day (UTC).
fn end_of(day: &str) -> Option<i64> {
    day_millis(day).map(|t| t + 86_400_000)
}

/// Props for [`EndDate`].
#[derive(Properties, PartialEq)]
struct EndDateProps {
    id: PracticeId,
    user: handoff_protocol::UserId,
    name: String,
    ends_at: Option<i64>,
    delegate: bool,
    on_saved: Callback<()>,
}

/// An admin's control for one member's end date: set, change or (not for a delegate) clear it.
#[function_component(EndDate)]
fn end_date(p: &EndDateProps) -> Html {
    let day = use_state(String::new);
    let error = use_state(|| None::<ApiError>);
    let save = |clear: bool| {
        let (day, error, id, user, done) = (day.clone(), error.clone(), p.id, p.user, p.on_saved.clone());
        Callback::from(move |_: MouseEvent| {
            let ends_at = if clear { None } else { end_of(&day) };
            if !clear && ends_at.is_none() {
                return;
            }
            let (error, done) = (error.clone(), done.clone());
            // The start is not changed here: an invited member's start stays as it was.
            spawn(async move {
                let members = api::members(id).await;
                let starts_at = members.ok().and_then(|m| m.members.into_iter().find(|m| m.user_id == user)).and_then(|m| m.starts_at);
                match api::call::<handoff_protocol::api::SetMemberDates>(&(id, user), &MemberDates { starts_at, ends_at }).await {
                    Ok(_) => {
                        error.set(None);
                        done.emit(());
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };
    html! {
        <span class="end-date">
            <label class="sr-only" for={format!("end-{}", p.user)}>{ format!("End date for {}", p.name) }</label>
            <input id={format!("end-{}", p.user)} type="date" class="small" value={(*day).clone()} oninput={bind(&day)} />
            <button class="small" onclick={save(false)}>{ if p.ends_at.is_some() { "Change end date" } else { "Set end date" } }</button>
            if p.ends_at.is_some() && !p.delegate { <button class="small" onclick={save(true)}>{ "Clear end date" }</button> }
            <ErrorBox error={(*error).clone()} />
        </span>
    }
}

/// A role as the members page names it.
fn role_label(r: Role) -> &'static str {
    match r {
        Role::Admin => "Admin",
        Role::Member => "Member",
        Role::Delegate => "Delegate",
    }
}

/// Props for [`Invite`].
#[derive(Properties, PartialEq)]
pub struct InviteFormProps {
    /// The practice the colleague is invited to.
    pub id: PracticeId,
    /// Called once the invite is sent.
    pub on_sent: Callback<()>,
}

#[function_component(Invite)]
fn invite(p: &InviteFormProps) -> Html {
    let email = use_state(String::new);
    let role = use_state(|| "member".to_string());
    let start = use_state(String::new);
    let end = use_state(String::new);
    let error = use_state(|| None::<ApiError>);
    let sent = use_state(|| None::<String>);
    let onsubmit = {
        let (email, role, error, sent, id, done) = (email.clone(), role.clone(), error.clone(), sent.clone(), p.id, p.on_sent.clone());
        let (start, end) = (start.clone(), end.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let req = InviteRequest {
                email: email.trim().to_string(),
                role: match role.as_str() {
                    "admin" => Role::Admin,
                    "delegate" => Role::Delegate,
                    _ => Role::Member,
                },
                starts_at: start_of(&start),
                ends_at: end_of(&end),
            };
            let (email, error, sent, done) = (email.clone(), error.clone(), sent.clone(), done.clone());
            spawn(async move {
                match api::call::<handoff_protocol::api::InviteMember>(&id, &req).await {
                    Ok(i) => {
                        error.set(None);
                        sent.set(Some(format!("Invite emailed to {}.", i.email)));
                        email.set(String::new());
                        done.emit(());
                    }
                    Err(e) => {
                        sent.set(None);
                        error.set(Some(e));
                    }
                }
            });
        })
    };
    html! {
        <form class="inline-form" {onsubmit} aria-labelledby="invite-title">
            <h3 id="invite-title">{ "Invite a colleague" }</h3>
            <ErrorBox error={(*error).clone()} />
            if let Some(s) = &*sent { <div class="alert ok" role="status">{ s.clone() }</div> }
            <div class="row">
                <div class="grow">
                    <label for="inv-email">{ "Email" }</label>
                    <input id="inv-email" type="email" required=true value={(*email).clone()} oninput={bind(&email)} />
                </div>
                <div>
                    <label for="inv-role">{ "Role" }</label>
                    <select id="inv-role" onchange={bind_select(&role)}>
                        <option value="member" selected={*role == "member"}>{ "Member" }</option>
                        <option value="admin" selected={*role == "admin"}>{ "Admin" }</option>
                        <option value="delegate" selected={*role == "delegate"}>{ "Delegate (on my behalf)" }</option>
                    </select>
                </div>
                <div>
                    <label for="inv-start">{ if *role == "delegate" { "Start date" } else { "Start date (optional)" } }</label>
                    <input id="inv-start" type="date" required={*role == "delegate"} value={(*start).clone()} oninput={bind(&start)} />
                </div>
                <div>
                    <label for="inv-end">{ if *role == "delegate" { "End date" } else { "End date (optional)" } }</label>
                    <input id="inv-end" type="date" required={*role == "delegate"} value={(*end).clone()} oninput={bind(&end)} />
                </div>
                <button class="primary" type="submit">{ "Send invite" }</button>
            </div>
        </form>
    }
}

/// Props for [`DeletePractice`].
#[derive(Properties)]
pub struct DeleteProps {
    /// The practice.
    pub practice: Practice,
}

impl PartialEq for DeleteProps {
    fn eq(&self, o: &Self) -> bool {
        self.practice.id == o.practice.id && self.practice.name == o.practice.name
    }
}

#[function_component(DeletePractice)]
fn delete_practice(p: &DeleteProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let typed = use_state(String::new);
    let error = use_state(|| None::<ApiError>);
    let onsubmit = {
        let (typed, error, id, ctx) = (typed.clone(), error.clone(), p.practice.id, ctx.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (typed, error, ctx) = ((*typed).clone(), error.clone(), ctx.clone());
            spawn(async move {
                match api::call::<handoff_protocol::api::DeletePractice>(&id, &DeletePracticeRequest { confirm_name: typed }).await {
                    Ok(()) => {
                        ctx.refresh.emit(());
                        ctx.nav.emit(Route::Practices);
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };
    html! {
        <section class="card danger-zone" aria-labelledby="delete-title">
            <h2 id="delete-title">{ "Delete this practice" }</h2>
            <p>{ "Deleting removes every member's access to this practice's referrals. It cannot be undone." }</p>
            <form {onsubmit}>
                <ErrorBox error={(*error).clone()} />
                <label for="del-name">{ format!("Type the practice's name, {}, to confirm", p.practice.name) }</label>
                <input id="del-name" autocomplete="off" value={(*typed).clone()} oninput={bind(&typed)} />
                <button class="danger" type="submit" disabled={*typed != p.practice.name}>{ "Delete practice" }</button>
            </form>
        </section>
    }
}

/// Props for [`AcceptInvite`].
#[derive(Properties, PartialEq)]
pub struct AcceptProps {
    /// The invite token.
    pub token: String,
}

/// A signed-in user opening an invite link.
#[function_component(AcceptInvite)]
pub fn accept_invite(p: &AcceptProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let info = use_state(|| None::<Result<InviteInfo, ApiError>>);
    let error = use_state(|| None::<ApiError>);
    {
        let (info, token) = (info.clone(), p.token.clone());
        use_effect_with(token.clone(), move |_| {
            spawn(async move { info.set(Some(api::call::<handoff_protocol::api::GetInvite>(&token, &()).await)) });
        });
    }
    let accept = {
        let (token, error, ctx) = (p.token.clone(), error.clone(), ctx.clone());
        Callback::from(move |_| {
            let (token, error, ctx) = (token.clone(), error.clone(), ctx.clone());
            spawn(async move {
                match api::call::<handoff_protocol::api::AcceptInvite>(&token, &()).await {
                    Ok(p) => {
                        ctx.refresh.emit(());
                        ctx.nav.emit(Route::Practice(p.id));
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };
    html! {
        <section class="card">
            <h1>{ "Practice invite" }</h1>
            <ErrorBox error={(*error).clone()} />
            { match &*info {
                None => html! { <p aria-busy="true">{ "Checking the invite…" }</p> },
                Some(Err(e)) => html! { <ErrorBox error={Some(e.clone())} /> },
                Some(Ok(i)) => html! {
                    <>
                        <p>{ format!("{} invited {} to join {}.", i.invited_by, i.email, i.practice_name) }</p>
                        <button class="primary" onclick={accept}>{ format!("Join {}", i.practice_name) }</button>
                    </>
                },
            } }
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::day_millis;

    #[test]
    fn a_date_inputs_day_is_read_as_midnight_utc() {
        assert_eq!(day_millis("1970-01-01"), Some(0));
        assert_eq!(day_millis("2000-02-29"), Some(951_782_400_000));
        assert_eq!(day_millis("2027-01-01"), Some(1_798_761_600_000));
        assert_eq!(day_millis(""), None);
        assert_eq!(day_millis("2027-13-01"), None);
        assert_eq!(day_millis("not a date"), None);
    }
}
