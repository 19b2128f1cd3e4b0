//! The audit log: a practice's log for its admins (from the practice page),
//! and the platform's for staff (on the staff screen). Filters by member,
//! action and date range; a practice's log exports as CSV with the same
//! filters, and the export's rows are the rows this table shows.
//!
//! The server records what it serves and who changed what; what a browser
//! does with keys it already holds (decrypting a referral it keeps in
//! memory) never reaches the server and is not in this log.

use handoff_protocol::PracticeId;
use handoff_protocol::api::{AdminGetAudit, Endpoint as _, GetPracticeAudit, GetPracticeAuditCsv};
use handoff_protocol::audit::{AuditAction, AuditPage, AuditQuery, AuditRow, utc};
use handoff_protocol::v1::Member;
use yew::prelude::*;

use crate::api::{self, ApiError};
use crate::ui::{ErrorBox, Route, bind, bind_select, spawn};

/// Props for [`AuditLog`].
#[derive(Properties, PartialEq)]
pub struct AuditProps {
    /// The practice whose log to show; `None` for the platform's (staff).
    pub practice: Option<PracticeId>,
}

/// The filters as typed, turned into the query both the table and the CSV use.
fn query_of(member: &str, action: &str, from: &str, to: &str) -> AuditQuery {
    let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    AuditQuery {
        member: uuid::Uuid::parse_str(member).ok().map(handoff_protocol::UserId),
        action: some(action),
        from: some(from),
        to: some(to),
        before: None,
    }
}

async fn load(practice: Option<PracticeId>, q: &AuditQuery) -> Result<AuditPage, ApiError> {
    match practice {
        Some(p) => api::call::<GetPracticeAudit>(&p, q).await,
        None => api::call::<AdminGetAudit>(&(), q).await,
    }
}

fn row(r: &AuditRow) -> Html {
    let cell = |col: &'static str, text: String| html! { <td data-col={col}>{ text }</td> };
    html! {
        <tr key={r.seq.to_string()} data-testid="audit-row">
            { cell("seq", r.seq.to_string()) }
            { cell("time_utc", utc(r.at)) }
            { cell("action", r.action.as_str().to_string()) }
            { cell("actor_name", r.actor_name.clone().unwrap_or_default()) }
            { cell("on_behalf_of_name", r.on_behalf_of_name.clone().unwrap_or_default()) }
            { cell("target", r.target.clone().unwrap_or_default()) }
            { cell("address", r.address.clone().unwrap_or_default()) }
        </tr>
    }
}

/// The log, its filters and (for a practice) its CSV export.
#[function_component(AuditLog)]
pub fn audit_log(p: &AuditProps) -> Html {
    let (member, action, from, to) = (use_state(String::new), use_state(String::new), use_state(String::new), use_state(String::new));
    let applied = use_state(AuditQuery::default);
    let rows = use_state(|| None::<Result<Vec<AuditRow>, ApiError>>);
    let older = use_state(|| None::<u64>);
    let members = use_state(Vec::<Member>::new);
    {
        let (members, practice) = (members.clone(), p.practice);
        use_effect_with(practice, move |_| {
            if let Some(id) = practice {
                spawn(async move {
                    if let Ok(m) = api::members(id).await {
                        members.set(m.members);
                    }
                });
            }
        });
    }
    {
        let (rows, older, practice) = (rows.clone(), older.clone(), p.practice);
        use_effect_with(((*applied).clone(), practice), move |(q, _)| {
            let q = q.clone();
            rows.set(None);
            spawn(async move {
                match load(practice, &q).await {
                    Ok(page) => {
                        older.set(page.next_before);
                        rows.set(Some(Ok(page.entries)));
                    }
                    Err(e) => rows.set(Some(Err(e))),
                }
            });
        });
    }
    let apply = {
        let (member, action, from, to, applied) = (member.clone(), action.clone(), from.clone(), to.clone(), applied.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            applied.set(query_of(&member, &action, &from, &to));
        })
    };
    let more = {
        let (rows, older, applied, practice) = (rows.clone(), older.clone(), applied.clone(), p.practice);
        Callback::from(move |_| {
            let (rows, older) = (rows.clone(), older.clone());
            let q = AuditQuery { before: *older, ..(*applied).clone() };
            spawn(async move {
                match load(practice, &q).await {
                    Ok(page) => {
                        let mut all = match &*rows {
                            Some(Ok(r)) => r.clone(),
                            _ => Vec::new(),
                        };
                        all.extend(page.entries);
                        older.set(page.next_before);
                        rows.set(Some(Ok(all)));
                    }
                    Err(e) => rows.set(Some(Err(e))),
                }
            });
        })
    };
    let csv_href = p.practice.and_then(|id| GetPracticeAuditCsv::request(&id, &*applied).ok().map(|r| r.path));
    let table = match &*rows {
        None => html! { <p aria-busy="true">{ "Loading the log…" }</p> },
        Some(Err(e)) => html! { <ErrorBox error={Some(e.clone())} /> },
        Some(Ok(list)) if list.is_empty() => html! { <p class="muted" data-testid="audit-empty">{ "No entries match these filters." }</p> },
        Some(Ok(list)) => html! {
            <table class="table" data-testid="audit-table">
                <thead><tr>
                    <th scope="col">{ "#" }</th><th scope="col">{ "Time (UTC)" }</th><th scope="col">{ "Action" }</th>
                    <th scope="col">{ "Member" }</th><th scope="col">{ "On behalf of" }</th><th scope="col">{ "Target" }</th><th scope="col">{ "Address" }</th>
                </tr></thead>
                <tbody>{ for list.iter().map(row) }</tbody>
            </table>
        },
    };
    html! {
        <section class="card" aria-labelledby="audit-title">
            <h2 id="audit-title">{ if p.practice.is_some() { "Audit log" } else { "Platform audit log" } }</h2>
            <p class="help">{ "Every sign-in, referral served or opened, membership change and key-group commit the server handled, with who, when and from which address. It never holds content. A browser decrypting what it already has does not reach the server and is not recorded." }</p>
            <form class="row" onsubmit={apply} aria-label="Filter the audit log">
                if p.practice.is_some() {
                    <label>{ "Member " }
                        <select data-testid="audit-member" onchange={bind_select(&member)}>
                            <option value="" selected={member.is_empty()}>{ "Everyone" }</option>
                            { for members.iter().map(|m| html! { <option value={m.user_id.to_string()} selected={*member == m.user_id.to_string()}>{ m.display_name.clone() }</option> }) }
                        </select>
                    </label>
                }
                <label>{ "Action " }
                    <select data-testid="audit-action" onchange={bind_select(&action)}>
                        <option value="" selected={action.is_empty()}>{ "Any action" }</option>
                        { for AuditAction::ALL.iter().map(|a| html! { <option value={a.as_str()} selected={*action == a.as_str()}>{ a.as_str() }</option> }) }
                    </select>
                </label>
                <label>{ "From " }<input type="date" data-testid="audit-from" value={(*from).clone()} oninput={bind(&from)} /></label>
                <label>{ "To " }<input type="date" data-testid="audit-to" value={(*to).clone()} oninput={bind(&to)} /></label>
                <button type="submit">{ "Apply filters" }</button>
                if let Some(href) = csv_href {
                    <a class="button" href={href} download="audit.csv" data-testid="audit-csv">{ "Export CSV" }</a>
                }
            </form>
            { table }
            if older.is_some() { <button class="small" onclick={more}>{ "Older entries" }</button> }
        </section>
    }
}

/// Props for [`PracticeAudit`].
#[derive(Properties, PartialEq)]
pub struct PracticeAuditProps {
    /// The practice.
    pub id: PracticeId,
}

/// `/practices/<id>/audit`: the practice's log, for its admins.
#[function_component(PracticeAudit)]
pub fn practice_audit(p: &PracticeAuditProps) -> Html {
    let ctx = use_context::<crate::Ctx>().expect("context");
    let name = ctx.session.practice(p.id).map(|x| x.name).unwrap_or_default();
    let back = {
        let (nav, id) = (ctx.nav.clone(), p.id);
        Callback::from(move |e: MouseEvent| {
            e.prevent_default();
            nav.emit(Route::Practice(id));
        })
    };
    html! {
        <>
            <p><a href={Route::Practice(p.id).path()} onclick={back}>{ format!("← {name}") }</a></p>
            <h1>{ format!("{name}: audit log") }</h1>
            <AuditLog practice={Some(p.id)} />
        </>
    }
}
