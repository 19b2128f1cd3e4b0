//! What the tab knows, as one Yew reducer: every referral of the user's
//! practices (first from the inbox snapshot's pages, then kept current by
//! the practice streams' events from the snapshot's head), each referral's
//! history (from its own stream, once its screen opened it), unread marks,
//! toasts and the live connection's state.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use handoff_crypto::ReferralContent;
use handoff_protocol::v1::InboxRow;
use handoff_protocol::ws::{Event, Referral, ReferralId, Status, StreamId, Urgency};
use handoff_protocol::{PracticeId, UserId};
use yew::Reducible;

use crate::live::{LiveState, Pushed};

/// One referral as the tab holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The latest snapshot.
    pub referral: Referral,
    /// The decrypted content, or why it could not be decrypted
    /// ([`NOT_DECRYPTED`] while the row is shown from the search index).
    pub content: Result<ReferralContent, String>,
    /// The patient's name, from the content or the sealed search index.
    pub name: Option<String>,
    /// Every event known, oldest first: complete once the referral's own
    /// stream was followed (the detail screen does); for a row of the inbox
    /// snapshot, until then only the events after the snapshot.
    pub history: Vec<Event>,
    /// How many of its events were made by someone else (for unread marks).
    pub foreign: usize,
    /// For a snapshot row: the practice stream and head the row reflects
    /// (events up to it on that stream are already applied).
    pub as_of: Option<(PracticeId, u64)>,
    /// For a snapshot row: the referral stream's head the row reflects; its
    /// stream's events up to it only fill in the history.
    pub seq: u64,
    /// How many of those earlier events were put in the history so far.
    prefix: usize,
}

/// The content of a row shown from the search index: decrypted when its screen opens.
pub const NOT_DECRYPTED: &str = "not decrypted";

impl Item {
    /// A row of the inbox snapshot read at `head` of `practice`'s stream.
    pub fn from_row(practice: PracticeId, head: u64, row: InboxRow, content: Result<ReferralContent, String>) -> Item {
        Item {
            referral: row.referral,
            name: content.as_ref().ok().map(|c| c.patient.name.clone()),
            content,
            history: Vec::new(),
            foreign: usize::try_from(row.foreign).unwrap_or(usize::MAX),
            as_of: Some((practice, head)),
            seq: row.seq,
            prefix: 0,
        }
    }
}

/// A message in the corner.
#[derive(Clone, Debug, PartialEq)]
pub struct Toast {
    /// Its number within the tab, to dismiss it by.
    pub id: u64,
    /// What it says (never patient data: a number and what happened).
    pub text: String,
    /// The referral a click on it opens, if any.
    pub referral: Option<ReferralId>,
}

/// The tab's state.
#[derive(Clone, Debug, PartialEq)]
pub struct Data {
    /// Referrals by id (shared, so a change clones one item, not all).
    pub items: BTreeMap<ReferralId, Rc<Item>>,
    /// Rows shown from the sealed search index until the server's page
    /// has them (then they move to `items`) or the practice's snapshot is
    /// loaded without them (then they go): display only, no event applies
    /// to them.
    pub cached: BTreeMap<ReferralId, Rc<Item>>,
    /// Per referral, how many foreign events the user has seen.
    pub seen: HashMap<ReferralId, usize>,
    /// Toasts, newest last.
    pub toasts: Vec<Toast>,
    /// The live connection's state, for the header.
    pub live: LiveState,
    next_toast: u64,
    /// Bumped when the session's practices change.
    pub version: u64,
    me: Option<UserId>,
    /// Events about referrals the tab does not hold yet: while
    /// the inbox snapshot loads, an event can arrive before the row of its
    /// referral is merged, from a page read before the event. Re-applied when
    /// that row is merged (those its page reflects are skipped then); at most
    /// [`EARLY_KEPT`].
    early: Vec<Pushed>,
}

/// How many events about referrals not held yet [`Data`] keeps.
const EARLY_KEPT: usize = 10_000;

impl Default for Data {
    fn default() -> Self {
        Self {
            items: BTreeMap::new(),
            cached: BTreeMap::new(),
            seen: HashMap::new(),
            toasts: Vec::new(),
            live: LiveState::Connecting,
            next_toast: 1,
            version: 0,
            me: None,
            early: Vec::new(),
        }
    }
}

/// Changes to [`Data`].
#[derive(Debug)]
pub enum Action {
    /// A new signed-in user: start empty, load their read marks.
    Reset(Option<UserId>),
    /// The connection changed.
    Live(LiveState),
    /// An event arrived; `content` is the decryption of a new referral.
    Pushed(Box<Pushed>, Option<Result<ReferralContent, String>>),
    /// Show a toast.
    Toast(String, Option<ReferralId>),
    /// Hide a toast.
    Dismiss(u64),
    /// The user looked at a referral.
    Seen(ReferralId),
    /// A referral's content was decrypted (after its practice key was loaded).
    Decrypted(ReferralId, Result<ReferralContent, String>),
    /// Practices or keys changed: re-render.
    Bump,
    /// Rows of the inbox snapshot, decrypted: referrals the tab does not
    /// hold yet are added; those it holds are newer already.
    Rows(Vec<Item>),
    /// Rows the sealed search index holds, shown until the server's pages
    /// decide (referrals the tab holds already are skipped).
    Cached(Vec<Item>),
    /// The practice's snapshot is loaded (or its loading ended): the rows
    /// shown from the index that its pages did not list go.
    Listed(PracticeId),
}

fn seen_key(me: UserId) -> String {
    format!("handoff.seen.{me}")
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

/// Who did an event.
pub fn author(e: &Event) -> Option<UserId> {
    match e {
        Event::ReferralSent { referral } => referral.sent_by(),
        Event::Opened { by, .. }
        | Event::StatusChanged { by, .. }
        | Event::CategoryChanged { by, .. }
        | Event::UrgencyChanged { by, .. }
        | Event::AttachmentAdded { by, .. }
        | Event::MessagePosted { by, .. } => Some(*by),
        // A key change is the practice's, not a referral's: no one to credit on a referral.
        Event::EpochAdvanced { .. } => None,
    }
}

/// Which referral an event is about (none for practice-level events).
pub fn referral_of(e: &Event) -> Option<ReferralId> {
    Some(match e {
        Event::ReferralSent { referral } => referral.id,
        Event::Opened { referral, .. }
        | Event::StatusChanged { referral, .. }
        | Event::CategoryChanged { referral, .. }
        | Event::UrgencyChanged { referral, .. }
        | Event::AttachmentAdded { referral, .. }
        | Event::MessagePosted { referral, .. } => *referral,
        Event::EpochAdvanced { .. } => return None,
    })
}

/// Human words for a status.
pub fn status_label(s: Status) -> &'static str {
    match s {
        Status::Sent => "Awaiting review",
        Status::Accepted => "Accepted",
        Status::Rejected => "Declined",
        Status::Cancelled => "Cancelled",
    }
}

/// Human words for an urgency.
pub fn urgency_label(u: Urgency) -> &'static str {
    match u {
        Urgency::Urgent => "Urgent",
        Urgency::Semi => "Semi-urgent",
        Urgency::Routine => "Routine",
    }
}

impl Data {
    /// Whether a referral has activity by others the user has not seen.
    pub fn unread(&self, id: ReferralId) -> bool {
        self.items.get(&id).is_some_and(|i| self.unread_item(i))
    }

    /// Whether `item` (held, or shown from the index) has activity by others the user has not seen.
    pub fn unread_item(&self, item: &Item) -> bool {
        item.foreign > self.seen.get(&item.referral.id).copied().unwrap_or(0)
    }

    /// Every row the lists show: the referrals held, then those shown from the index only.
    pub fn rows(&self) -> impl Iterator<Item = &Rc<Item>> {
        self.items.values().chain(self.cached.values().filter(|c| !self.items.contains_key(&c.referral.id)))
    }

    fn save_seen(&self) {
        if let (Some(me), Some(s)) = (self.me, storage()) {
            let map: HashMap<String, usize> = self.seen.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            let _ = s.set_item(&seen_key(me), &serde_json::to_string(&map).unwrap_or_default());
        }
    }

    fn toast(&mut self, text: String, referral: Option<ReferralId>) {
        let id = self.next_toast;
        self.next_toast += 1;
        self.toasts.push(Toast { id, text, referral });
        if self.toasts.len() > 5 {
            self.toasts.remove(0);
        }
    }

    fn apply(&mut self, p: Pushed, content: Option<Result<ReferralContent, String>>) {
        let Some(id) = referral_of(&p.event) else { return };
        if !self.items.contains_key(&id) && !matches!(p.event, Event::ReferralSent { .. }) && self.early.len() < EARLY_KEPT {
            // Its row may still be on its way: keep the event for it.
            self.early.push(p);
            return;
        }
        let by = author(&p.event);
        if let Some(item) = self.items.get_mut(&id) {
            // Both practices' streams (and the referral's own) carry the event: keep it once.
            if item.history.contains(&p.event) {
                return;
            }
            match p.stream {
                // Already in the snapshot row: it only fills in the history, in order.
                StreamId::Referral(_) if p.seq <= item.seq => {
                    let item = Rc::make_mut(item);
                    let at = item.prefix.min(item.history.len());
                    item.history.insert(at, p.event.clone());
                    item.prefix = at + 1;
                    return;
                }
                StreamId::Practice(practice) if item.as_of.is_some_and(|(q, head)| q == practice && p.seq <= head) => return,
                _ => {}
            }
        }
        let foreign = by.is_some() && by != self.me;
        let number = self.items.get(&id).map(|i| i.referral.number.clone());
        match &p.event {
            Event::ReferralSent { referral } => {
                let content = content.unwrap_or_else(|| Err(NOT_DECRYPTED.into()));
                let item = Item {
                    referral: (**referral).clone(),
                    name: content.as_ref().ok().map(|c| c.patient.name.clone()),
                    content,
                    history: vec![p.event.clone()],
                    foreign: usize::from(foreign),
                    as_of: None,
                    seq: 0,
                    prefix: 0,
                };
                if foreign && !p.replay {
                    self.toast(format!("New referral {} received", referral.number), Some(id));
                }
                self.items.insert(id, Rc::new(item));
                return;
            }
            Event::Opened { .. }
            | Event::StatusChanged { .. }
            | Event::CategoryChanged { .. }
            | Event::UrgencyChanged { .. }
            | Event::AttachmentAdded { .. }
            | Event::MessagePosted { .. }
            | Event::EpochAdvanced { .. } => {
                let Some(item) = self.items.get_mut(&id) else { return };
                let item = Rc::make_mut(item);
                let r = &mut item.referral;
                match &p.event {
                    Event::Opened { at, .. } => r.first_opened_at = r.first_opened_at.or(Some(*at)),
                    Event::StatusChanged { status, reason, .. } => {
                        r.status = *status;
                        r.reject_reason = *reason;
                    }
                    Event::CategoryChanged { category, subcategory, .. } => {
                        r.routing.category = category.clone();
                        r.routing.subcategory = subcategory.clone();
                    }
                    Event::UrgencyChanged { urgency, .. } => r.routing.urgency = *urgency,
                    Event::AttachmentAdded { attachment, .. } => r.attachments.push(attachment.clone()),
                    // A message changes only the history; the others are handled above or carry no referral.
                    Event::MessagePosted { .. } | Event::ReferralSent { .. } | Event::EpochAdvanced { .. } => {}
                }
                item.history.push(p.event.clone());
                item.foreign += usize::from(foreign);
            }
        }
        if foreign && !p.replay {
            let n = number.unwrap_or_default();
            let text = match &p.event {
                Event::Opened { .. } => format!("{n} was opened by the specialist's office"),
                Event::StatusChanged { status, .. } => format!("{n}: {}", status_label(*status)),
                Event::CategoryChanged { .. } => format!("{n}: category changed"),
                Event::UrgencyChanged { urgency, .. } => format!("{n}: urgency changed to {}", urgency_label(*urgency)),
                Event::AttachmentAdded { .. } => format!("{n}: new attachment"),
                Event::MessagePosted { .. } => format!("New message on {n}"),
                Event::ReferralSent { .. } | Event::EpochAdvanced { .. } => return,
            };
            self.toast(text, Some(id));
        }
    }
}

impl Reducible for Data {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut d = (*self).clone();
        match action {
            Action::Reset(me) => {
                d = Data { me, version: self.version + 1, ..Data::default() };
                if let (Some(me), Some(s)) = (me, storage())
                    && let Ok(Some(json)) = s.get_item(&seen_key(me))
                    && let Ok(map) = serde_json::from_str::<HashMap<String, usize>>(&json)
                {
                    d.seen = map.into_iter().filter_map(|(k, v)| Some((ReferralId(uuid::Uuid::parse_str(&k).ok()?), v))).collect();
                }
            }
            Action::Live(s) => d.live = s,
            Action::Pushed(p, content) => d.apply(*p, content),
            Action::Toast(t, r) => d.toast(t, r),
            Action::Dismiss(id) => d.toasts.retain(|t| t.id != id),
            Action::Seen(id) => {
                let n = d.items.get(&id).map(|i| i.foreign).unwrap_or(0);
                if d.seen.get(&id).copied().unwrap_or(0) != n {
                    d.seen.insert(id, n);
                    d.save_seen();
                }
            }
            Action::Decrypted(id, content) => {
                if let Some(i) = d.items.get_mut(&id) {
                    let i = Rc::make_mut(i);
                    if let Ok(c) = &content {
                        i.name = Some(c.patient.name.clone());
                    }
                    i.content = content;
                }
            }
            Action::Bump => d.version += 1,
            Action::Cached(rows) => {
                for item in rows {
                    if !d.items.contains_key(&item.referral.id) {
                        d.cached.insert(item.referral.id, Rc::new(item));
                    }
                }
            }
            Action::Listed(practice) => d.cached.retain(|_, i| i.as_of.is_none_or(|(p, _)| p != practice)),
            Action::Rows(rows) => {
                let mut added = std::collections::HashSet::new();
                for item in rows {
                    let id = item.referral.id;
                    d.cached.remove(&id);
                    if let std::collections::btree_map::Entry::Vacant(e) = d.items.entry(id) {
                        e.insert(Rc::new(item));
                        added.insert(id);
                    }
                }
                // Events that came before their row: those after the row's page apply now.
                if !d.early.is_empty() && !added.is_empty() {
                    let (now, later): (Vec<_>, Vec<_>) =
                        std::mem::take(&mut d.early).into_iter().partition(|p| referral_of(&p.event).is_some_and(|id| added.contains(&id)));
                    d.early = later;
                    for p in now {
                        d.apply(Pushed { replay: true, ..p }, None);
                    }
                }
            }
        }
        Rc::new(d)
    }
}

#[cfg(test)]
mod tests {
    use handoff_protocol::ws::{Routing, SentFrom, Status, StreamId, WrappedKey};
    use handoff_protocol::{B64, PracticeId};

    use super::*;

    fn referral(id: u8, by: UserId) -> Referral {
        let wrap = |p| WrappedKey { practice: PracticeId::from_bytes([p; 16]), epoch: 0, sealed: B64(vec![1]) };
        Referral {
            id: ReferralId::from_bytes([id; 16]),
            number: format!("HR-AAAA-000{id}"),
            from: SentFrom::Practice { practice: PracticeId::from_bytes([1; 16]), user: by, key: wrap(1), on_behalf_of: None },
            to_practice: PracticeId::from_bytes([2; 16]),
            routing: Routing {
                specialty: "cardiology".into(),
                category: "arrhythmia".into(),
                subcategory: None,
                region: "fraser".into(),
                urgency: Urgency::Routine,
            },
            status: Status::Sent,
            reject_reason: None,
            content: B64(vec![2]),
            to_key: wrap(2),
            attachments: vec![],
            created_at: 1,
            first_opened_at: None,
        }
    }

    fn pushed(seq: u64, event: Event, replay: bool) -> Pushed {
        Pushed { stream: StreamId::Practice(PracticeId::from_bytes([2; 16])), seq, event, replay }
    }

    #[test]
    fn events_build_the_referral_and_unread_marks_count_only_others() {
        let (me, other) = (UserId::from_bytes([7; 16]), UserId::from_bytes([8; 16]));
        let mut d = Data { me: Some(me), ..Data::default() };
        let r = referral(3, other);
        d.apply(pushed(1, Event::ReferralSent { referral: Box::new(r.clone()) }, false), Some(Ok(ReferralContent::default())));
        assert!(d.unread(r.id), "a referral from someone else is unread");
        assert_eq!(d.toasts.len(), 1, "a live arrival is announced");
        d.seen.insert(r.id, 1);
        assert!(!d.unread(r.id));
        // My own change does not make it unread or raise a toast.
        let mine = Event::UrgencyChanged { referral: r.id, urgency: Urgency::Urgent, by: me, on_behalf_of: None, at: 2 };
        d.apply(pushed(2, mine.clone(), false), None);
        assert!(!d.unread(r.id));
        assert_eq!(d.toasts.len(), 1);
        assert_eq!(d.items[&r.id].referral.routing.urgency, Urgency::Urgent);
        // The same event on a second stream (member of both practices) applies once.
        d.apply(pushed(9, mine, false), None);
        assert_eq!(d.items[&r.id].history.len(), 2);
        // Someone else's change during a replay: unread, but no toast.
        let accepted = Event::StatusChanged {
            referral: r.id,
            number: r.number.clone(),
            status: Status::Accepted,
            reason: None,
            note: None,
            by: other,
            on_behalf_of: None,
            at: 3,
        };
        d.apply(pushed(3, accepted, true), None);
        assert_eq!(d.items[&r.id].referral.status, Status::Accepted);
        assert!(d.unread(r.id));
        assert_eq!(d.toasts.len(), 1, "replayed events are not announced");
    }

    #[test]
    fn a_snapshot_row_takes_later_events_once_and_its_own_stream_only_fills_the_history() {
        let (me, other) = (UserId::from_bytes([7; 16]), UserId::from_bytes([8; 16]));
        let practice = PracticeId::from_bytes([2; 16]);
        let mut d = Data { me: Some(me), ..Data::default() };
        let mut r = referral(5, other);
        r.status = Status::Accepted;
        let row = InboxRow { referral: r.clone(), seq: 2, foreign: 1 };
        // The row was read at the practice stream's head 10; its referral stream was at 2.
        let item = Item::from_row(practice, 10, row, Ok(ReferralContent::default()));
        let reduced = Rc::new(d.clone()).reduce(Action::Rows(vec![item]));
        d = (*reduced).clone();
        assert!(d.unread(r.id), "the row's count of others' events makes it unread");
        let accepted = Event::StatusChanged {
            referral: r.id,
            number: r.number.clone(),
            status: Status::Accepted,
            reason: None,
            note: None,
            by: other,
            on_behalf_of: None,
            at: 3,
        };
        // An event the row reflects, on the practice stream: skipped.
        d.apply(pushed(9, accepted.clone(), true), None);
        assert_eq!(d.items[&r.id].foreign, 1);
        assert!(d.items[&r.id].history.is_empty());
        // A later one: applied once, though it comes on both the practice and the referral stream.
        let urgent = Event::UrgencyChanged { referral: r.id, urgency: Urgency::Urgent, by: other, on_behalf_of: None, at: 4 };
        d.apply(pushed(11, urgent.clone(), false), None);
        let on_referral = |seq, event| Pushed { stream: StreamId::Referral(r.id), seq, event, replay: true };
        d.apply(on_referral(3, urgent.clone()), None);
        assert_eq!(d.items[&r.id].foreign, 2);
        assert_eq!(d.items[&r.id].referral.routing.urgency, Urgency::Urgent);
        // The detail screen follows the referral's stream from 0: the events the row reflects fill in the history, in order, and change nothing else.
        let sent = Event::ReferralSent { referral: Box::new(referral(5, other)) };
        d.apply(on_referral(1, sent.clone()), None);
        d.apply(on_referral(2, accepted.clone()), None);
        let item = &d.items[&r.id];
        assert_eq!(item.history, vec![sent, accepted, urgent]);
        assert_eq!((item.foreign, item.referral.status), (2, Status::Accepted));
        assert_eq!(d.toasts.len(), 1, "only the live urgency change was announced");
        // A row for a referral the tab holds already changes nothing: the tab's copy is newer.
        let stale = Item::from_row(practice, 10, InboxRow { referral: referral(5, other), seq: 1, foreign: 0 }, Err("x".into()));
        let d = Rc::new(d).reduce(Action::Rows(vec![stale]));
        assert_eq!(d.items[&r.id].referral.routing.urgency, Urgency::Urgent);
    }

    #[test]
    fn an_event_that_arrives_before_its_snapshot_row_applies_once_the_row_is_merged() {
        let (me, other) = (UserId::from_bytes([7; 16]), UserId::from_bytes([8; 16]));
        let practice = PracticeId::from_bytes([2; 16]);
        let mut d = Data { me: Some(me), ..Data::default() };
        let r = referral(6, other);
        let status = |seq_at: u64, status| Event::StatusChanged {
            referral: r.id,
            number: r.number.clone(),
            status,
            reason: None,
            note: None,
            by: other,
            on_behalf_of: None,
            at: seq_at as i64,
        };
        // While the snapshot loads, two events about a referral whose row is not merged yet: one its page
        // (read at the practice stream's head 10) reflects already, one after it.
        d.apply(pushed(9, status(9, Status::Rejected), false), None);
        d.apply(pushed(12, status(12, Status::Accepted), false), None);
        assert!(d.items.is_empty(), "nothing is shown before the row");
        let row = InboxRow { referral: r.clone(), seq: 2, foreign: 1 };
        let d = Rc::new(d).reduce(Action::Rows(vec![Item::from_row(practice, 10, row, Err(NOT_DECRYPTED.into()))]));
        let item = &d.items[&r.id];
        assert_eq!(item.referral.status, Status::Accepted, "the later event applies to the row");
        assert_eq!(item.foreign, 2, "the event the row reflects is not counted again");
        assert_eq!(item.history, vec![status(12, Status::Accepted)]);
        assert!(d.early.is_empty(), "applied events are not kept");
        assert!(d.toasts.is_empty(), "late events are not announced");
    }

    #[test]
    fn rows_from_the_index_show_until_the_server_lists_them_or_the_snapshot_is_loaded_without_them() {
        let (me, other) = (UserId::from_bytes([7; 16]), UserId::from_bytes([8; 16]));
        let practice = PracticeId::from_bytes([2; 16]);
        let cached = |id| {
            let mut item =
                Item::from_row(practice, 0, InboxRow { referral: referral(id, other), seq: 1, foreign: 1 }, Err(NOT_DECRYPTED.into()));
            item.name = Some(format!("patient {id}"));
            item
        };
        let d = Rc::new(Data { me: Some(me), ..Data::default() }).reduce(Action::Cached(vec![cached(1), cached(2)]));
        assert_eq!(d.rows().count(), 2, "the index's rows show before any page");
        assert!(d.rows().all(|i| d.unread_item(i)), "with their unread marks");
        // The server's page lists referral 1: its row replaces the index's.
        let mut listed = referral(1, other);
        listed.status = Status::Accepted;
        let row = Item::from_row(practice, 10, InboxRow { referral: listed, seq: 2, foreign: 1 }, Err(NOT_DECRYPTED.into()));
        let d = d.reduce(Action::Rows(vec![row]));
        assert_eq!(d.rows().count(), 2);
        assert_eq!(d.items[&ReferralId::from_bytes([1; 16])].referral.status, Status::Accepted);
        // An event about a referral shown only from the index waits for its server row; it changes no cached row.
        let mut d = (*d).clone();
        let opened = Event::Opened { referral: ReferralId::from_bytes([2; 16]), by: other, on_behalf_of: None, at: 5 };
        d.apply(pushed(11, opened, false), None);
        assert_eq!(d.cached[&ReferralId::from_bytes([2; 16])].foreign, 1);
        // The snapshot is loaded without referral 2: it no longer exists for the user, and goes.
        let d = Rc::new(d).reduce(Action::Listed(practice));
        let ids: Vec<_> = d.rows().map(|i| i.referral.id).collect();
        assert_eq!(ids, vec![ReferralId::from_bytes([1; 16])]);
        // Index rows of a referral the tab holds already are not shown twice.
        let d = d.reduce(Action::Cached(vec![cached(1)]));
        assert_eq!(d.rows().count(), 1);
    }

    #[test]
    fn events_for_unknown_referrals_are_ignored() {
        let mut d = Data::default();
        let e = Event::Opened { referral: ReferralId::from_bytes([4; 16]), by: UserId::from_bytes([8; 16]), on_behalf_of: None, at: 1 };
        d.apply(pushed(1, e, false), None);
        assert!(d.items.is_empty());
        assert!(d.toasts.is_empty());
    }
}
