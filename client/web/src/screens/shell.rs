//! The signed-in frame: header with the live indicator, navigation, toasts.

use yew::prelude::*;

use crate::Ctx;
use crate::live::LiveState;
use crate::state::Action;
use crate::ui::Route;

/// Props for [`Shell`].
#[derive(Properties, PartialEq)]
pub struct ShellProps {
    /// The screen to show.
    pub route: Route,
    /// Signs out.
    pub signout: Callback<()>,
}

/// The signed-in frame.
#[function_component(Shell)]
pub fn shell(p: &ShellProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let s = &ctx.session;
    let practices = s.practices();
    let receives = practices.iter().any(|p| p.kind == handoff_protocol::v1::PracticeKind::Specialist);
    let unread_in = ctx
        .data
        .items
        .values()
        .filter(|i| practices.iter().any(|p| p.id == i.referral.to_practice) && ctx.data.unread(i.referral.id))
        .count();
    let unread_sent = ctx
        .data
        .items
        .values()
        .filter(|i| practices.iter().any(|p| Some(p.id) == i.referral.from_practice()) && ctx.data.unread(i.referral.id))
        .count();
    let (pill_class, pill_text) = match ctx.data.live {
        LiveState::Live => ("pill live", "Live".to_string()),
        LiveState::Connecting => ("pill wait", "Connecting…".to_string()),
        LiveState::Reconnecting { attempt } => ("pill wait", format!("Reconnecting… (try {attempt})")),
        LiveState::SessionEnded | LiveState::SessionIdle => ("pill down", "Signed out".to_string()),
    };
    let link = |r: Route, label: &str, badge: usize| {
        let active = std::mem::discriminant(&r) == std::mem::discriminant(&p.route);
        let nav = ctx.nav.clone();
        let r2 = r.clone();
        let onclick = Callback::from(move |e: MouseEvent| {
            e.prevent_default();
            nav.emit(r2.clone());
        });
        html! {
            <a href={r.path()} class={classes!("navlink", active.then_some("active"))} aria-current={active.then_some("page")} {onclick}>
                <span>{ label.to_string() }</span>
                if badge > 0 { <span class="badge" aria-label={format!("{badge} unread")}>{ badge }</span> }
            </a>
        }
    };
    let screen = match &p.route {
        Route::Inbox | Route::Login | Route::Register | Route::Recover | Route::Confirm(_) | Route::Free | Route::PatientRoom(_) => {
            html! { <super::lists::Referrals received=true /> }
        }
        Route::Sent => html! { <super::lists::Referrals received=false /> },
        Route::Send => html! { <super::send::SendReferral /> },
        Route::Referral(id) => html! { <super::detail::Detail id={*id} key={id.to_string()} /> },
        Route::Practices => html! { <super::practices::Practices /> },
        Route::Practice(id) => html! { <super::practices::PracticePage id={*id} key={id.to_string()} /> },
        Route::Invite(token) => html! { <super::practices::AcceptInvite token={token.clone()} /> },
        Route::Admin => html! { <super::admin::Admin /> },
        Route::Settings => html! { <super::settings::Settings /> },
        Route::PracticeAudit(id) => html! { <super::audit::PracticeAudit id={*id} key={id.to_string()} /> },
        Route::Room(p, r) => html! { <super::rooms::HostRoom practice={*p} room={*r} key={r.to_string()} /> },
    };
    let toasts = ctx.data.toasts.iter().map(|t| {
        let data = ctx.data.clone();
        let nav = ctx.nav.clone();
        let (id, r) = (t.id, t.referral);
        let dismiss = {
            let data = data.clone();
            Callback::from(move |_| data.dispatch(Action::Dismiss(id)))
        };
        let open = Callback::from(move |_| {
            data.dispatch(Action::Dismiss(id));
            if let Some(r) = r {
                nav.emit(Route::Referral(r));
            }
        });
        html! { <Toast key={id} text={t.text.clone()} {open} {dismiss} /> }
    });
    let signout = p.signout.reform(|_: MouseEvent| ());
    html! {
        <div class="app">
            <header class="topbar">
                <a class="logo" href="/inbox" onclick={{ let nav = ctx.nav.clone(); Callback::from(move |e: MouseEvent| { e.prevent_default(); nav.emit(Route::Inbox); }) }}>{ "Handoff" }</a>
                <span class={pill_class} role="status" aria-live="polite" data-testid="live-status">{ pill_text }</span>
                <span class="spacer" />
                <span class="who">{ s.me.display_name.clone() }<small>{ s.me.email.clone() }</small></span>
                <button class="ghost" onclick={signout}>{ "Sign out" }</button>
            </header>
            <div class="body">
                <nav class="sidebar" aria-label="Main">
                    if receives { { link(Route::Inbox, "Received", unread_in) } }
                    { link(Route::Sent, "Sent", unread_sent) }
                    { link(Route::Send, "New referral", 0) }
                    { link(Route::Practices, "Practices", 0) }
                    { link(Route::Settings, "Notifications", 0) }
                    if s.me.is_staff { { link(Route::Admin, "Staff admin", 0) } }
                </nav>
                <main class="content" id="main">{ screen }</main>
            </div>
            <div class="toasts" aria-live="polite">{ for toasts }</div>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct ToastProps {
    text: String,
    open: Callback<MouseEvent>,
    dismiss: Callback<MouseEvent>,
}

/// A notification in the corner; it goes by itself after 10 seconds.
#[function_component(Toast)]
fn toast(p: &ToastProps) -> Html {
    {
        let dismiss = p.dismiss.clone();
        use_effect_with((), move |_| {
            let t = gloo_timers::callback::Timeout::new(10_000, move || {
                if let Ok(e) = MouseEvent::new("click") {
                    dismiss.emit(e);
                }
            });
            move || drop(t)
        });
    }
    html! {
        <div class="toast" role="status">
            <button class="toast-text" onclick={p.open.clone()}>{ p.text.clone() }</button>
            <button class="toast-x" aria-label="Dismiss" onclick={p.dismiss.clone()}>{ "×" }</button>
        </div>
    }
}
