//! Staff admin: verify and pause practices, edit the taxonomy, resolve
//! specialists' requests for new categories. Staff see metadata only.

use handoff_domain::taxonomy::Lookup as _;
use handoff_protocol::api::{AdminEditTaxonomy, AdminPracticeAction};
use handoff_protocol::v1::{AdminPractice, CategoryRequest, CategoryRequestStatus, PracticeAction, PracticeKind, TaxonomyEdit};
use yew::prelude::*;

use crate::Ctx;
use crate::api::{self, ApiError};
use crate::ui::{ErrorBox, bind, bind_select, spawn, when};

/// The staff screen.
#[function_component(Admin)]
pub fn admin() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let practices = use_state(|| None::<Result<Vec<AdminPractice>, ApiError>>);
    let requests = use_state(|| None::<Result<Vec<CategoryRequest>, ApiError>>);
    let reload = use_state(|| 0u32);
    let error = use_state(|| None::<ApiError>);
    {
        let (practices, requests) = (practices.clone(), requests.clone());
        use_effect_with(*reload, move |_| {
            spawn(async move {
                practices.set(Some(api::admin_practices().await));
                requests.set(Some(api::admin_category_requests().await));
            });
        });
    }
    if !ctx.session.me.is_staff {
        return html! { <div class="alert error" role="alert">{ "Only Handoff staff can open this page." }</div> };
    }
    let act = |id: handoff_protocol::PracticeId, action: PracticeAction| {
        let (reload, error) = (reload.clone(), error.clone());
        Callback::from(move |_| {
            let (reload, error) = (reload.clone(), error.clone());
            spawn(async move {
                match api::call::<AdminPracticeAction>(&(id, action), &()).await {
                    Ok(_) => {
                        error.set(None);
                        reload.set(*reload + 1);
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };
    let table = match &*practices {
        None => html! { <p aria-busy="true">{ "Loading…" }</p> },
        Some(Err(e)) => html! { <ErrorBox error={Some(e.clone())} /> },
        Some(Ok(list)) => html! {
            <table class="table">
                <thead><tr><th scope="col">{ "Practice" }</th><th scope="col">{ "Type" }</th><th scope="col">{ "Specialty · region" }</th><th scope="col">{ "Members" }</th><th scope="col">{ "Status" }</th><th scope="col">{ "Actions" }</th></tr></thead>
                <tbody>
                    { for list.iter().map(|p| html! {
                        <tr key={p.id.to_string()} data-testid="admin-practice">
                            <td>{ p.name.clone() }<small class="muted block">{ format!("created {}", when(p.created_at)) }</small></td>
                            <td>{ if p.kind == PracticeKind::Specialist { "Specialist" } else { "Referring" } }</td>
                            <td>{ format!("{} · {}", p.specialty.as_deref().map(|s| ctx.session.specialty_name(s)).unwrap_or_default(), p.region.as_deref().map(|r| ctx.session.region_name(r)).unwrap_or_default()) }</td>
                            <td>{ p.members }</td>
                            <td>
                                if p.verified { <span class="tag ok">{ "Verified" }</span> } else { <span class="tag wait">{ "Unverified" }</span> }
                                if p.paused { <span class="tag warn">{ "Paused" }</span> }
                            </td>
                            <td class="row">
                                if p.verified { <button class="small" onclick={act(p.id, PracticeAction::Unverify)}>{ "Unverify" }</button> }
                                else { <button class="small primary" onclick={act(p.id, PracticeAction::Verify)} aria-label={format!("Verify {}", p.name)}>{ "Verify" }</button> }
                                if p.paused { <button class="small" onclick={act(p.id, PracticeAction::Unpause)}>{ "Unpause" }</button> }
                                else { <button class="small" onclick={act(p.id, PracticeAction::Pause)}>{ "Pause" }</button> }
                            </td>
                        </tr>
                    }) }
                </tbody>
            </table>
        },
    };
    let reqs = match &*requests {
        Some(Ok(list)) if list.iter().any(|r| r.status == CategoryRequestStatus::Open) => html! {
            <ul class="plain">
                { for list.iter().filter(|r| r.status == CategoryRequestStatus::Open).map(|r| {
                    let resolve = |approve: bool| {
                        let (id, reload, error, name) = (r.id, reload.clone(), error.clone(), r.name.clone());
                        Callback::from(move |_| {
                            let (reload, error) = (reload.clone(), error.clone());
                            let slug = approve.then(|| slugify(&name));
                            spawn(async move {
                                match api::admin_resolve(id, approve, slug).await {
                                    Ok(()) => reload.set(*reload + 1),
                                    Err(e) => error.set(Some(e)),
                                }
                            });
                        })
                    };
                    html! {
                        <li class="row">
                            <span class="grow">{ format!("{} asks for \"{}\" in {}: {}", r.practice_name, r.name, ctx.session.specialty_name(&r.specialty), r.note) }</span>
                            <button class="small primary" onclick={resolve(true)}>{ "Approve" }</button>
                            <button class="small" onclick={resolve(false)}>{ "Decline" }</button>
                        </li>
                    }
                }) }
            </ul>
        },
        Some(Err(e)) => html! { <ErrorBox error={Some(e.clone())} /> },
        _ => html! { <p class="muted">{ "No pending requests." }</p> },
    };
    html! {
        <>
            <h1>{ "Staff admin" }</h1>
            <ErrorBox error={(*error).clone()} />
            <section class="card" aria-labelledby="adm-practices"><h2 id="adm-practices">{ "Practices" }</h2>{ table }</section>
            <section class="card" aria-labelledby="adm-requests"><h2 id="adm-requests">{ "Category requests" }</h2>{ reqs }</section>
            <TaxonomyEditor />
            <super::audit::AuditLog practice={None::<handoff_protocol::PracticeId>} />
        </>
    }
}

fn slugify(name: &str) -> String {
    let mut s: String = name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    s.trim_matches('-').to_string()
}

#[function_component(TaxonomyEditor)]
fn taxonomy_editor() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let tax = use_state(|| ctx.session.taxonomy.clone());
    let specialty = use_state(String::new);
    let category = use_state(String::new);
    let name = use_state(String::new);
    let error = use_state(|| None::<ApiError>);
    let done = use_state(|| None::<String>);
    let spec = tax.specialty(&specialty).cloned();
    let onsubmit = {
        let (tax, specialty, category, name, error, done) =
            (tax.clone(), specialty.clone(), category.clone(), name.clone(), error.clone(), done.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if specialty.is_empty() || name.trim().is_empty() {
                error.set(Some(ApiError::local("Choose a specialty and type the new name.")));
                return;
            }
            // Adding under a category makes a subcategory; otherwise a category.
            let slug = slugify(&name);
            let edit = if category.is_empty() {
                TaxonomyEdit { specialty: (*specialty).clone(), category: Some(slug), subcategory: None, name: name.trim().into() }
            } else {
                TaxonomyEdit {
                    specialty: (*specialty).clone(),
                    category: Some((*category).clone()),
                    subcategory: Some(slug),
                    name: name.trim().into(),
                }
            };
            let (tax, error, done, name) = (tax.clone(), error.clone(), done.clone(), name.clone());
            spawn(async move {
                match api::call::<AdminEditTaxonomy>(&(), &edit).await {
                    Ok(_) => {
                        error.set(None);
                        done.set(Some(format!("Added \"{}\".", edit.name)));
                        name.set(String::new());
                        if let Ok(t) = api::taxonomy().await {
                            tax.set(t);
                        }
                    }
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };
    html! {
        <section class="card" aria-labelledby="adm-tax">
            <h2 id="adm-tax">{ "Taxonomy" }</h2>
            <p class="muted">{ format!("{} specialties, {} categories, {} regions.", tax.specialties.len(), tax.specialties.iter().map(|s| s.categories.len()).sum::<usize>(), tax.regions.len()) }</p>
            <form {onsubmit}>
                <ErrorBox error={(*error).clone()} />
                if let Some(d) = &*done { <div class="alert ok" role="status">{ d.clone() }</div> }
                <div class="grid3">
                    <div>
                        <label for="tx-specialty">{ "Specialty" }</label>
                        <select id="tx-specialty" onchange={{ let (s, c) = (specialty.clone(), category.clone()); Callback::from(move |e: Event| { s.set(crate::ui::select_value(&e)); c.set(String::new()); }) }}>
                            <option value="" selected={specialty.is_empty()}>{ "Choose…" }</option>
                            { for tax.specialties.iter().map(|s| html! { <option value={s.slug.clone()} selected={*specialty == s.slug}>{ s.name.clone() }</option> }) }
                        </select>
                    </div>
                    <div>
                        <label for="tx-category">{ "Under category (for a subcategory)" }</label>
                        <select id="tx-category" onchange={bind_select(&category)} disabled={spec.is_none()}>
                            <option value="" selected={category.is_empty()}>{ "— new category —" }</option>
                            { for spec.iter().flat_map(|s| s.categories.iter()).map(|c| html! { <option value={c.slug.clone()} selected={*category == c.slug}>{ c.name.clone() }</option> }) }
                        </select>
                    </div>
                    <div>
                        <label for="tx-name">{ "Name" }</label>
                        <input id="tx-name" value={(*name).clone()} oninput={bind(&name)} />
                    </div>
                </div>
                <button class="primary" type="submit">{ "Add" }</button>
            </form>
        </section>
    }
}
