//! The received inbox and the sent list: live, with unread marks, filters by
//! status, urgency and category, and search by patient name over the
//! decrypted referrals (the search never leaves the browser). At most
//! [`PAGE_ROWS`] rows are rendered at a time ("Show more" adds as many), so
//! a practice with tens of thousands of referrals renders as fast as one
//! with fifty.

use handoff_protocol::ws::{Status, Urgency};
use yew::prelude::*;

use crate::Ctx;
use crate::state::{status_label, urgency_label};
use crate::ui::{Route, bind, bind_select, when};

/// How many rows the list renders, and how many more each "Show more" adds.
pub const PAGE_ROWS: usize = 100;

/// Props for [`Referrals`].
#[derive(Properties, PartialEq)]
pub struct ListProps {
    /// Received (inbox) or sent.
    pub received: bool,
}

/// The tag classes a status is shown with.
pub fn status_class(s: Status) -> &'static str {
    match s {
        Status::Sent => "tag wait",
        Status::Accepted => "tag ok",
        Status::Rejected => "tag bad",
        Status::Cancelled => "tag",
    }
}

/// The tag classes an urgency is shown with.
pub fn urgency_class(u: Urgency) -> &'static str {
    match u {
        Urgency::Urgent => "tag bad",
        Urgency::Semi => "tag warn",
        Urgency::Routine => "tag",
    }
}

/// A live list of referrals.
#[function_component(Referrals)]
pub fn referrals(p: &ListProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let status = use_state(String::new);
    let urgency = use_state(String::new);
    let category = use_state(String::new);
    let search = use_state(String::new);
    let shown = use_state(|| PAGE_ROWS);
    let s = &ctx.session;
    let mine: Vec<_> = s.practices().into_iter().map(|p| p.id).collect();
    let q = search.trim().to_lowercase();
    let mut rows: Vec<_> = ctx
        .data
        .rows()
        .filter(|i| {
            if p.received { mine.contains(&i.referral.to_practice) } else { i.referral.from_practice().is_some_and(|f| mine.contains(&f)) }
        })
        .collect();
    // The distinct (category, specialty) slugs first, so names are looked up once each, not once per row.
    let slugs: std::collections::BTreeSet<(&str, &str)> =
        rows.iter().map(|i| (i.referral.routing.category.as_str(), i.referral.routing.specialty.as_str())).collect();
    let categories: std::collections::BTreeSet<(String, String)> =
        slugs.into_iter().map(|(category, specialty)| (category.to_string(), s.category_name(specialty, category))).collect();
    rows.retain(|i| {
        let r = &i.referral;
        (status.is_empty() || serde_json::to_value(r.status).ok().and_then(|v| v.as_str().map(|x| x == *status)).unwrap_or(false))
            && (urgency.is_empty()
                || serde_json::to_value(r.routing.urgency).ok().and_then(|v| v.as_str().map(|x| x == *urgency)).unwrap_or(false))
            && (category.is_empty() || r.routing.category == *category)
            && (q.is_empty() || i.name.as_ref().is_some_and(|n| n.to_lowercase().contains(&q)) || r.number.to_lowercase().contains(&q))
    });
    rows.sort_by_key(|i| std::cmp::Reverse(i.referral.created_at));
    let matching = rows.len();
    rows.truncate(*shown);
    let title = if p.received { "Received referrals" } else { "Sent referrals" };
    let body = if rows.is_empty() {
        html! {
            <div class="empty">
                if ctx.data.rows().next().is_none() && p.received { <p>{ "No referrals yet. New referrals appear here the moment they arrive." }</p> }
                else if ctx.data.rows().next().is_none() { <p>{ "You have not sent a referral yet." }</p> }
                else { <p>{ "No referral matches these filters." }</p> }
            </div>
        }
    } else {
        let items = rows.iter().map(|i| {
            let r = &i.referral;
            let unread = ctx.data.unread_item(i);
            let nav = ctx.nav.clone();
            let id = r.id;
            let onclick = Callback::from(move |e: MouseEvent| {
                e.prevent_default();
                nav.emit(Route::Referral(id));
            });
            let patient = i.name.clone().unwrap_or_else(|| "(cannot decrypt)".into());
            html! {
                <tr key={r.id.to_string()} class={classes!(unread.then_some("unread"))} data-testid="referral-row">
                    <td>if unread { <span class="dot" aria-label="Unread" title="Unread" /> }</td>
                    <td><a href={Route::Referral(r.id).path()} {onclick}>{ patient }</a>if r.is_free() { <small class="block"><span class="tag free-tag" data-testid="free-referral">{ "Free referral" }</span></small> }</td>
                    <td class="mono">{ r.number.clone() }</td>
                    <td>{ s.category_name(&r.routing.specialty, &r.routing.category) }<small class="muted block">{ s.specialty_name(&r.routing.specialty) }</small></td>
                    <td><span class={urgency_class(r.routing.urgency)}>{ urgency_label(r.routing.urgency) }</span></td>
                    <td><span class={status_class(r.status)} data-testid="status">{ status_label(r.status) }</span></td>
                    <td>{ when(r.created_at) }</td>
                    if !p.received { <td>{ if r.first_opened_at.is_some() { "Opened" } else { "Not yet opened" } }</td> }
                </tr>
            }
        });
        let table = html! {
            <table class="table referrals">
                <thead><tr>
                    <th scope="col"><span class="sr-only">{ "Unread" }</span></th>
                    <th scope="col">{ "Patient" }</th><th scope="col">{ "Number" }</th><th scope="col">{ "Category" }</th>
                    <th scope="col">{ "Urgency" }</th><th scope="col">{ "Status" }</th><th scope="col">{ "Sent" }</th>
                    if !p.received { <th scope="col">{ "Specialist" }</th> }
                </tr></thead>
                <tbody>{ for items }</tbody>
            </table>
        };
        let more = {
            let shown = shown.clone();
            Callback::from(move |_| shown.set(*shown + PAGE_ROWS))
        };
        html! {
            <>
                { table }
                if matching > rows.len() {
                    <p class="muted">
                        { format!("Showing {} of {matching}. ", rows.len()) }
                        <button class="link" data-testid="show-more" onclick={more}>{ "Show more" }</button>
                    </p>
                }
            </>
        }
    };
    html! {
        <>
            <div class="title-row">
                <h1>{ title }</h1>
                if !p.received {
                    <button class="primary" onclick={{ let nav = ctx.nav.clone(); Callback::from(move |_| nav.emit(Route::Send)) }}>{ "New referral" }</button>
                }
            </div>
            <div class="filters" role="search">
                <div>
                    <label for="f-search">{ "Search patient or number" }</label>
                    <input id="f-search" type="search" value={(*search).clone()} oninput={bind(&search)} placeholder="Name or HR-…" />
                </div>
                <div>
                    <label for="f-status">{ "Status" }</label>
                    <select id="f-status" onchange={bind_select(&status)}>
                        <option value="" selected={status.is_empty()}>{ "Any" }</option>
                        { for [Status::Sent, Status::Accepted, Status::Rejected, Status::Cancelled].into_iter().map(|st| {
                            let v = serde_json::to_value(st).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                            html! { <option value={v.clone()} selected={*status == v}>{ status_label(st) }</option> }
                        }) }
                    </select>
                </div>
                <div>
                    <label for="f-urgency">{ "Urgency" }</label>
                    <select id="f-urgency" onchange={bind_select(&urgency)}>
                        <option value="" selected={urgency.is_empty()}>{ "Any" }</option>
                        { for [Urgency::Urgent, Urgency::Semi, Urgency::Routine].into_iter().map(|u| {
                            let v = serde_json::to_value(u).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                            html! { <option value={v.clone()} selected={*urgency == v}>{ urgency_label(u) }</option> }
                        }) }
                    </select>
                </div>
                <div>
                    <label for="f-category">{ "Category" }</label>
                    <select id="f-category" onchange={bind_select(&category)}>
                        <option value="" selected={category.is_empty()}>{ "Any" }</option>
                        { for categories.iter().map(|(slug, name)| html! { <option value={slug.clone()} selected={*category == *slug}>{ name.clone() }</option> }) }
                    </select>
                </div>
            </div>
            { body }
        </>
    }
}
