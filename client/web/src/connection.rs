//! The live connection of a signed-in tab and its wiring into the tab's
//! state: start it once the keys are unlocked, load every practice's inbox
//! snapshot (the first rows decrypted and shown first, the rest decrypted in
//! chunks that yield to the event loop) and follow its stream from the
//! snapshot's head, decrypt new referrals as they arrive, notify the browser when the tab is
//! in the background, end the session when the server does, and keep the
//! practices' key groups up to date.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use handoff_protocol::PracticeId;
use handoff_protocol::api::GetInbox;
use handoff_protocol::v1::{INBOX_PAGE_MAX, InboxPage, InboxQuery, InboxRow};
use handoff_protocol::ws::{Event, ReferralId, StreamId};
use yew::prelude::*;

use crate::live::{Live, LiveState, Pushed};
use crate::search_index;
use crate::session::Session;
use crate::state::{self, Action, Data, Item};
use crate::ui::spawn;

/// How often the key groups are swept for colleagues who joined or left.
const UPKEEP_MS: u32 = 30_000;

/// The rows of the inbox snapshot's first page: what the list shows first,
/// before any other page is read.
const FIRST_PAGE: u32 = 50;
/// How long (ms) the rest of the inbox is decrypted between two yields to
/// the event loop, so the tab stays responsive meanwhile.
const SLICE_MS: f64 = 40.0;
/// The longest (ms) decrypted rows wait before they are merged into the
/// tab's state (see [`merge_now`]).
const MERGE_MAX_WAIT_MS: f64 = 1_500.0;
/// How often (ms), at most, the sealed search index is written while the
/// inbox loads (and once when it is loaded).
const SAVE_EVERY_MS: f64 = 5_000.0;
/// How many times a later page is asked for again after a failure.
const PAGE_TRIES: u32 = 3;

thread_local! {
    /// Referral numbers by id, for browser notifications about later events
    /// (from the snapshot's rows and from `referral_sent` events).
    static NUMBERS: RefCell<HashMap<ReferralId, String>> = RefCell::new(HashMap::new());
}

fn note_number(id: ReferralId, number: &str) {
    NUMBERS.with(|n| n.borrow_mut().insert(id, number.to_string()));
}

/// A snapshot row read at `head` of `practice`'s stream, as an item: a row
/// the sealed search index knows is shown from it (the first page too: the
/// list needs only the name) and decrypted when its screen opens; any other row
/// is decrypted now (loading a practice key the tab does not hold yet first)
/// and recorded in the index.
async fn open_row(s: &Session, practice: PracticeId, head: u64, row: InboxRow) -> Item {
    let id = row.referral.id;
    note_number(id, &row.referral.number);
    if let Some(known) = search_index::get(id) {
        // Keep the entry's row current (status, routing, first open) for the next reload.
        search_index::put(id, search_index::Entry::of_row(practice, &row, known.name.clone()));
        let mut item = Item::from_row(practice, head, row, Err(state::NOT_DECRYPTED.into()));
        item.name = Some(known.name);
        return item;
    }
    let content = match s.open_content(&row.referral) {
        Ok(c) => Ok(c),
        Err(_) => s.load_content(&row.referral).await.map_err(|e| e.message),
    };
    if let Ok(c) = &content {
        search_index::put(id, search_index::Entry::of_row(practice, &row, c.patient.name.clone()));
    }
    Item::from_row(practice, head, row, content)
}

/// Whether the rows decrypted and `waiting` to be merged into the tab's
/// state should be merged now, when `held` rows of the practice are merged
/// already and the last merge was `waited_ms` ago. Every merge re-renders
/// the lists over everything held (filter, sort, categories), so merges are
/// spaced geometrically (at least half as many rows as are held) and at
/// most [`MERGE_MAX_WAIT_MS`] apart: loading N rows costs a few renders of
/// N, not one render of everything per chunk.
pub(crate) fn merge_now(waiting: usize, held: usize, waited_ms: f64) -> bool {
    waiting > 0 && (waiting.saturating_mul(2) >= held.max(FIRST_PAGE as usize) || waited_ms >= MERGE_MAX_WAIT_MS)
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

thread_local! {
    static SAVE_PENDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Writes the sealed search index a moment from now (once for a burst of arrivals).
fn save_index_soon(s: &Rc<Session>) {
    if SAVE_PENDING.with(|p| p.replace(true)) {
        return;
    }
    let s = s.clone();
    spawn(async move {
        gloo_timers::future::TimeoutFuture::new(2_000).await;
        SAVE_PENDING.with(|p| p.set(false));
        search_index::save(&s).await;
    });
}

/// Loads `practice`'s inbox snapshot into the tab and follows its stream
/// from the snapshot's head (so no event is missed or applied twice): the
/// first page of [`FIRST_PAGE`] rows is shown at once (decrypted unless the
/// sealed index names them), the
/// older pages are fetched (the next while one is decrypted) and decrypted after it in slices of
/// [`SLICE_MS`] that yield to the event loop between them, and merged into
/// the tab's state in a few large batches ([`merge_now`]); the sealed index
/// is written every [`SAVE_EVERY_MS`] and at the end. Once the first page
/// answers, the rows the sealed index holds for the practice show at once
/// (display only) until the server's rows replace them; when the whole
/// snapshot is read, those it did not list go, from the list and the index.
/// Does nothing if the stream is
/// followed or being loaded already; if the first page fails (say, the
/// practice requires two-factor sign-in), the next refresh tries again.
pub fn load_inbox(s: &Rc<Session>, data: &UseReducerHandle<Data>, live: &Live, practice: PracticeId) {
    let stream = StreamId::Practice(practice);
    if !live.begin_load(stream) {
        return;
    }
    let (s, data, live) = (s.clone(), data.clone(), live.clone());
    spawn(async move {
        let first = match crate::api::call::<GetInbox>(&practice, &InboxQuery { before: None, limit: Some(FIRST_PAGE) }).await {
            Ok(p) => p,
            Err(_) => {
                live.loaded(stream);
                return;
            }
        };
        let mut listed: HashSet<ReferralId> = first.rows.iter().map(|r| r.referral.id).collect();
        // The server lists the practice for the user: the rows the sealed index knows show at once (before the first
        // page is decrypted), until the server's pages replace them.
        let cached: Vec<Item> = search_index::cached(&[practice])
            .into_iter()
            .map(|(p, row, name)| {
                let mut item = Item::from_row(p, 0, row, Err(state::NOT_DECRYPTED.into()));
                item.name = Some(name);
                item
            })
            .collect();
        if !cached.is_empty() {
            data.dispatch(Action::Cached(cached));
        }
        let (head, mut next) = (first.head_seq, first.next_before);
        let mut shown = Vec::with_capacity(first.rows.len());
        for row in first.rows {
            shown.push(open_row(&s, practice, head, row).await);
        }
        let mut held = shown.len();
        data.dispatch(Action::Rows(shown));
        live.follow_from(stream, head);
        let (mut waiting, mut merged_at, mut saved_at, mut slice_at) = (Vec::new(), now_ms(), now_ms(), now_ms());
        // The next page is read while this one is decrypted.
        let mut complete = next.is_none();
        let mut coming = next.take().map(|before| prefetch(practice, before, &live));
        while let Some(page) = coming.take() {
            let Some(page) = page.await.ok().flatten() else { break };
            if live.stopped() {
                return;
            }
            match page.next_before.clone() {
                Some(before) => coming = Some(prefetch(practice, before, &live)),
                None => complete = true,
            }
            listed.extend(page.rows.iter().map(|r| r.referral.id));
            for row in page.rows {
                if now_ms() - slice_at >= SLICE_MS {
                    // Let the browser render and handle input between slices.
                    gloo_timers::future::TimeoutFuture::new(0).await;
                    if live.stopped() {
                        return;
                    }
                    slice_at = now_ms();
                }
                waiting.push(open_row(&s, practice, page.head_seq, row).await);
                if merge_now(waiting.len(), held, now_ms() - merged_at) {
                    held += waiting.len();
                    data.dispatch(Action::Rows(std::mem::take(&mut waiting)));
                    merged_at = now_ms();
                }
            }
            if now_ms() - saved_at >= SAVE_EVERY_MS {
                search_index::save(&s).await;
                saved_at = now_ms();
            }
        }
        if live.stopped() {
            return;
        }
        if !waiting.is_empty() {
            data.dispatch(Action::Rows(waiting));
        }
        if complete {
            // The whole snapshot: what it did not list no longer exists for the user.
            search_index::retain_listed(practice, &listed);
        }
        data.dispatch(Action::Listed(practice));
        search_index::save(&s).await;
    });
}

/// Reads the page of `practice`'s snapshot older than `before` in the
/// background (asking again up to [`PAGE_TRIES`] times after a failure):
/// `None` if it could not be read or the connection stopped.
fn prefetch(practice: PracticeId, before: String, live: &Live) -> futures_channel::oneshot::Receiver<Option<InboxPage>> {
    let (tx, rx) = futures_channel::oneshot::channel();
    let live = live.clone();
    spawn(async move {
        let query = InboxQuery { before: Some(before), limit: Some(INBOX_PAGE_MAX) };
        for attempt in 0..PAGE_TRIES {
            if live.stopped() {
                break;
            }
            match crate::api::call::<GetInbox>(&practice, &query).await {
                Ok(p) => {
                    let _ = tx.send(Some(p));
                    return;
                }
                Err(_) => gloo_timers::future::TimeoutFuture::new(1_000 << attempt).await,
            }
        }
        let _ = tx.send(None);
    });
    rx
}

/// Shows a browser notification, only while the tab is in the background
/// and only if the user allowed them.
fn browser_notify(text: &str) {
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else { return };
    if doc.visibility_state() != web_sys::VisibilityState::Hidden {
        return;
    }
    if web_sys::Notification::permission() == web_sys::NotificationPermission::Granted {
        let opts = web_sys::NotificationOptions::new();
        opts.set_body(text);
        opts.set_tag("handoff");
        let _ = web_sys::Notification::new_with_options("Handoff", &opts);
    }
}

/// The browser notification's text for someone else's event on referral `n`
/// (a number and what happened, never patient data).
fn notification_text(e: &Event, n: &str) -> String {
    match e {
        Event::ReferralSent { .. } => format!("New referral {n}"),
        Event::StatusChanged { status, .. } => format!("{n}: {}", state::status_label(*status)),
        Event::MessagePosted { .. } => format!("New message on {n}"),
        Event::Opened { .. }
        | Event::CategoryChanged { .. }
        | Event::UrgencyChanged { .. }
        | Event::AttachmentAdded { .. }
        | Event::EpochAdvanced { .. } => format!("{n} was updated"),
    }
}

/// What to do with each pushed event: decrypt a new referral (loading its
/// practice key first if need be), follow a key group's new epoch, notify
/// the browser of others' changes, and hand the event to the tab's state.
fn on_pushed(s: &Rc<Session>, data: &UseReducerHandle<Data>) -> Callback<Pushed> {
    let (s, data) = (s.clone(), data.clone());
    Callback::from(move |p: Pushed| {
        let me = s.me.id;
        let content = match &p.event {
            Event::ReferralSent { referral } => {
                note_number(referral.id, &referral.number);
                let now = s.open_content(referral).map_err(|e| e.message);
                match &now {
                    Ok(c) => {
                        if let StreamId::Practice(practice) = p.stream {
                            // `referral_sent` is the first event of the referral's own stream.
                            let foreign = u64::from(state::author(&p.event).is_some_and(|a| a != me));
                            let row = InboxRow { referral: (**referral).clone(), seq: 1, foreign };
                            search_index::put(referral.id, search_index::Entry::of_row(practice, &row, c.patient.name.clone()));
                            save_index_soon(&s);
                        }
                    }
                    Err(_) => {
                        // The practice key of its epoch is not loaded yet: fetch it, then decrypt.
                        let (s, data, r) = (s.clone(), data.clone(), referral.clone());
                        spawn(async move {
                            let c = s.load_content(&r).await.map_err(|e| e.message);
                            data.dispatch(Action::Decrypted(r.id, c));
                        });
                    }
                }
                Some(now)
            }
            Event::EpochAdvanced { practice, .. } => {
                // A colleague (or another tab of ours) changed the key group.
                let (s, data, practice) = (s.clone(), data.clone(), *practice);
                spawn(async move {
                    let _ = s.maintain(practice).await;
                    let _ = s.refresh_practices().await;
                    data.dispatch(Action::Bump);
                });
                None
            }
            Event::Opened { .. }
            | Event::StatusChanged { .. }
            | Event::CategoryChanged { .. }
            | Event::UrgencyChanged { .. }
            | Event::AttachmentAdded { .. }
            | Event::MessagePosted { .. } => None,
        };
        if !p.replay
            && state::author(&p.event).is_some_and(|a| a != me)
            && let Some(id) = state::referral_of(&p.event)
        {
            let n = NUMBERS.with(|n| n.borrow().get(&id).cloned()).unwrap_or_default();
            browser_notify(&notification_text(&p.event, &n));
        }
        data.dispatch(Action::Pushed(Box::new(p), content));
    })
}

/// Runs key-group upkeep for every practice (join, catch up, add colleagues
/// who joined while we were away, remove those who left), then re-renders.
fn upkeep(s: &Rc<Session>, data: &UseReducerHandle<Data>) {
    let (s, data) = (s.clone(), data.clone());
    spawn(async move {
        let _ = s.maintain_all().await;
        data.dispatch(Action::Bump);
    });
}

/// The live connection of `session`'s tab, once it has started. It starts
/// when the component using this hook mounts with a session, and stops when
/// it unmounts; `signout` is called (without a server call) when the server
/// ends the session, and `idle` when it ends it after its idle timeout.
#[hook]
pub fn use_connection(session: &Rc<Session>, data: &UseReducerHandle<Data>, signout: &Callback<bool>, idle: &Callback<()>) -> Option<Live> {
    let live = use_state(|| None::<Live>);
    {
        let (s, data, signout, idle, live) = (session.clone(), data.clone(), signout.clone(), idle.clone(), live.clone());
        use_effect_with(Rc::as_ptr(session) as usize, move |_| {
            data.dispatch(Action::Reset(Some(s.me.id)));
            NUMBERS.with(|n| n.borrow_mut().clear());
            let on_state = {
                let data = data.clone();
                Callback::from(move |st: LiveState| {
                    data.dispatch(Action::Live(st));
                    if st == LiveState::SessionEnded {
                        signout.emit(false);
                    }
                    if st == LiveState::SessionIdle {
                        idle.emit(());
                    }
                })
            };
            let l = Live::start(on_pushed(&s, &data), on_state);
            search_index::forget();
            {
                // The sealed search index first, so the snapshot's rows need not all be decrypted.
                let (s, data, l) = (s.clone(), data.clone(), l.clone());
                spawn(async move {
                    search_index::load(&s).await;
                    for p in s.practices() {
                        load_inbox(&s, &data, &l, p.id);
                    }
                });
            }
            live.set(Some(l.clone()));
            upkeep(&s, &data);
            let timer = gloo_timers::callback::Interval::new(UPKEEP_MS, move || upkeep(&s, &data));
            move || {
                drop(timer);
                l.stop();
            }
        });
    }
    (*live).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decrypted_rows_are_merged_in_geometrically_growing_batches_not_per_chunk() {
        // Loading 20,000 rows after a first page of 50: count the merges (each a re-render of everything held).
        let (mut held, mut waiting, mut merges) = (50usize, 0usize, 0u32);
        for _ in 50..20_000 {
            waiting += 1;
            if merge_now(waiting, held, 0.0) {
                held += waiting;
                waiting = 0;
                merges += 1;
            }
        }
        held += waiting;
        assert_eq!(held, 20_000, "every row is merged once");
        assert!(merges <= 16, "a few merges, not one per 50 rows: {merges}");
        // Nothing waiting: never a merge, however long ago the last one was.
        assert!(!merge_now(0, 10, MERGE_MAX_WAIT_MS * 10.0));
        // A few rows that waited long enough are merged, so a slow load still shows progress.
        assert!(!merge_now(3, 10_000, 10.0));
        assert!(merge_now(3, 10_000, MERGE_MAX_WAIT_MS));
    }
}
