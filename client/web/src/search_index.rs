//! The sealed search index (issue 16, wt-inbox): per user, referral id → the
//! patient name the inbox searches and the referral stream's seq it was read
//! at, kept in IndexedDB as one XChaCha20-Poly1305 box under a key derived
//! (HKDF) from the user's unlocked private keys
//! ([`Session::search_index_key`](crate::session::Session::search_index_key)).
//! So a reload shows and searches every row without decrypting every
//! referral again; a referral's content is decrypted when its screen opens.
//!
//! Each entry also keeps the practice it was read through and the row's
//! metadata as last read (the referral without its sealed content, wrapped
//! keys or attachments), so that after a reload the list shows and searches
//! the rows the index knows before the server's pages come
//! ([`cached`]). The index is only a cache; the server's pages decide what
//! exists: entries of practices the user no longer belongs to are dropped
//! when the index is loaded, rows the index shows are replaced by the
//! server's as they come and dropped when the practice's snapshot is loaded
//! without them, and so are their entries ([`retain_listed`]).
//!
//! What is stored: only the sealed bytes, under the key `index.<user id>` in
//! the database `handoff`, store `search`. No key is stored: without the
//! user's password (which unwraps their private keys) the box is useless.
//! Sign-out keeps it (the next unlock reuses it); a box that does not open
//! (another key after a kit reset, damage) is ignored and written anew.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use handoff_protocol::v1::InboxRow;
use handoff_protocol::ws::{ReferralId, SentFrom};
use handoff_protocol::{B64, PracticeId, UserId};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;

use crate::session::Session;

const DB: &str = "handoff";
const STORE: &str = "search";

/// One referral's searchable fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The patient's name.
    pub name: String,
    /// The referral stream's seq the entry was read at.
    pub seq: u64,
    /// The user's practice it was read through (none in an index written
    /// before entries recorded it).
    #[serde(default)]
    pub practice: Option<PracticeId>,
    /// The row as last read, without ciphertext ([`Entry::of_row`]).
    #[serde(default)]
    pub row: Option<InboxRow>,
}

impl Entry {
    /// The entry for `row` of `practice`'s snapshot, whose patient is `name`:
    /// the row is kept without the referral's sealed content, its wrapped
    /// keys and its attachments (the list needs none of them, and the
    /// referral's screen loads it from the server).
    pub fn of_row(practice: PracticeId, row: &InboxRow, name: String) -> Entry {
        let mut row = row.clone();
        let r = &mut row.referral;
        r.content = B64(Vec::new());
        r.to_key.sealed = B64(Vec::new());
        r.attachments.clear();
        if let SentFrom::Practice { key, .. } = &mut r.from {
            key.sealed = B64(Vec::new());
        }
        Entry { name, seq: row.seq, practice: Some(practice), row: Some(row) }
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Sealed {
    entries: HashMap<ReferralId, Entry>,
}

#[derive(Default)]
struct Index {
    entries: HashMap<ReferralId, Entry>,
    dirty: bool,
}

thread_local! {
    static INDEX: RefCell<Index> = RefCell::new(Index::default());
}

/// The entry of `id`, if the index holds one.
pub fn get(id: ReferralId) -> Option<Entry> {
    INDEX.with(|i| i.borrow().entries.get(&id).cloned())
}

/// The rows the index holds for `practices`, with their patient names: what
/// the list shows before the server's pages come.
pub fn cached(practices: &[PracticeId]) -> Vec<(PracticeId, InboxRow, String)> {
    INDEX.with(|i| {
        i.borrow()
            .entries
            .values()
            .filter_map(|e| match (e.practice, &e.row) {
                (Some(p), Some(row)) if practices.contains(&p) => Some((p, row.clone(), e.name.clone())),
                _ => None,
            })
            .collect()
    })
}

/// Keeps, of the entries read through `practice`, only those of `listed`
/// (the referrals its whole snapshot held): the others no longer exist for
/// the user.
pub fn retain_listed(practice: PracticeId, listed: &HashSet<ReferralId>) {
    INDEX.with(|i| {
        let mut i = i.borrow_mut();
        let before = i.entries.len();
        i.entries.retain(|id, e| e.practice != Some(practice) || listed.contains(id));
        if i.entries.len() != before {
            i.dirty = true;
        }
    });
}

/// Drops the entries read through a practice not in `practices` (one the
/// user left); returns whether any was dropped.
fn retain_members(entries: &mut HashMap<ReferralId, Entry>, practices: &[PracticeId]) -> bool {
    let before = entries.len();
    entries.retain(|_, e| e.practice.is_none_or(|p| practices.contains(&p)));
    entries.len() != before
}

/// Records (or updates) `id`'s entry; [`save`] writes it.
pub fn put(id: ReferralId, entry: Entry) {
    INDEX.with(|i| {
        let mut i = i.borrow_mut();
        if i.entries.get(&id) != Some(&entry) {
            i.entries.insert(id, entry);
            i.dirty = true;
        }
    });
}

fn key(user: UserId) -> String {
    format!("index.{user}")
}

/// Waits for an IndexedDB request to succeed and returns its result.
async fn done(req: &web_sys::IdbRequest) -> Result<JsValue, JsValue> {
    let promise = js_sys::Promise::new(&mut |resolve: js_sys::Function, reject: js_sys::Function| {
        let ok = Closure::once_into_js(move |_: JsValue| {
            let _ = resolve.call0(&JsValue::NULL);
        });
        let err = Closure::once_into_js(move |e: JsValue| {
            let _ = reject.call1(&JsValue::NULL, &e);
        });
        req.set_onsuccess(Some(ok.unchecked_ref()));
        req.set_onerror(Some(err.unchecked_ref()));
    });
    wasm_bindgen_futures::JsFuture::from(promise).await?;
    req.result()
}

async fn open_db() -> Result<web_sys::IdbDatabase, JsValue> {
    let factory = web_sys::window().ok_or("no window")?.indexed_db()?.ok_or("no IndexedDB")?;
    let req = factory.open_with_u32(DB, 1)?;
    let upgrade = Closure::once_into_js({
        let req = req.clone();
        move |_: JsValue| {
            if let Ok(db) = req.result().and_then(|r| r.dyn_into::<web_sys::IdbDatabase>())
                && !db.object_store_names().contains(STORE)
            {
                let _ = db.create_object_store(STORE);
            }
        }
    });
    req.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
    let db = done(&req).await?;
    db.dyn_into::<web_sys::IdbDatabase>()
}

/// Whether the database exists (`indexedDB.databases()`; true where the
/// browser lacks it), so that reading never creates it: a user with nothing
/// to index leaves no database behind.
async fn exists() -> bool {
    let Some(factory) = web_sys::window().and_then(|w| w.indexed_db().ok().flatten()) else { return false };
    let Ok(list) = js_sys::Reflect::get(&factory, &JsValue::from_str("databases")) else { return true };
    let Ok(list) = list.dyn_into::<js_sys::Function>() else { return true };
    let Ok(promise) = list.call0(&factory).and_then(|p| p.dyn_into::<js_sys::Promise>()) else { return true };
    let Ok(names) = wasm_bindgen_futures::JsFuture::from(promise).await else { return true };
    js_sys::Array::from(&names)
        .iter()
        .any(|d| js_sys::Reflect::get(&d, &JsValue::from_str("name")).ok().and_then(|n| n.as_string()).as_deref() == Some(DB))
}

async fn read(user: UserId) -> Result<Option<Vec<u8>>, JsValue> {
    if !exists().await {
        return Ok(None);
    }
    let db = open_db().await?;
    let store = db.transaction_with_str(STORE)?.object_store(STORE)?;
    let v = done(&store.get(&JsValue::from_str(&key(user)))?).await?;
    db.close();
    Ok(v.dyn_into::<js_sys::Uint8Array>().ok().map(|a| a.to_vec()))
}

async fn write(user: UserId, bytes: &[u8]) -> Result<(), JsValue> {
    let db = open_db().await?;
    let store = db.transaction_with_str_and_mode(STORE, web_sys::IdbTransactionMode::Readwrite)?.object_store(STORE)?;
    done(&store.put_with_key(&js_sys::Uint8Array::from(bytes), &JsValue::from_str(&key(user)))?).await?;
    db.close();
    Ok(())
}

/// Loads and opens the signed-in user's index (an empty one if there is
/// none, or if it does not open under this session's key), without the
/// entries of practices the user no longer belongs to.
pub async fn load(s: &Session) {
    let mut entries = match read(s.me.id).await {
        Ok(Some(bytes)) => s
            .search_index_key()
            .open(s.me.id.as_bytes(), &bytes)
            .ok()
            .and_then(|plain| serde_json::from_slice::<Sealed>(&plain).ok())
            .map(|i| i.entries)
            .unwrap_or_default(),
        Ok(None) | Err(_) => HashMap::new(),
    };
    let mine: Vec<PracticeId> = s.practices().iter().map(|p| p.id).collect();
    let dirty = retain_members(&mut entries, &mine);
    INDEX.with(|i| *i.borrow_mut() = Index { entries, dirty });
}

/// Seals the index and writes it, if it changed since it was loaded or last written.
pub async fn save(s: &Session) {
    let plain = INDEX.with(|i| {
        let mut i = i.borrow_mut();
        if !i.dirty {
            return None;
        }
        i.dirty = false;
        serde_json::to_vec(&Sealed { entries: i.entries.clone() }).ok()
    });
    let Some(plain) = plain else { return };
    if let Ok(sealed) = s.search_index_key().seal(s.me.id.as_bytes(), &plain) {
        let _ = write(s.me.id, &sealed).await;
    }
}

/// Forgets the index held in memory (a new session loads its own).
pub fn forget() {
    INDEX.with(|i| *i.borrow_mut() = Index::default());
}

#[cfg(test)]
mod tests {
    use handoff_protocol::ws::{Routing, Status, Urgency, WrappedKey};

    use super::*;

    fn row(id: u8, practice: PracticeId) -> InboxRow {
        let wrap = |p| WrappedKey { practice: p, epoch: 0, sealed: B64(vec![9; 40]) };
        let referral = handoff_protocol::ws::Referral {
            id: ReferralId::from_bytes([id; 16]),
            number: format!("HR-AAAA-000{id}"),
            from: SentFrom::Practice { practice, user: UserId::from_bytes([7; 16]), key: wrap(practice), on_behalf_of: None },
            to_practice: practice,
            routing: Routing {
                specialty: "cardiology".into(),
                category: "arrhythmia".into(),
                subcategory: None,
                region: "fraser".into(),
                urgency: Urgency::Routine,
            },
            status: Status::Sent,
            reject_reason: None,
            content: B64(vec![1; 200]),
            to_key: wrap(practice),
            attachments: vec![],
            created_at: 1,
            first_opened_at: None,
        };
        InboxRow { referral, seq: 3, foreign: 1 }
    }

    #[test]
    fn an_entry_keeps_the_rows_metadata_but_no_ciphertext_or_wrapped_key() {
        let p = PracticeId::from_bytes([2; 16]);
        let e = Entry::of_row(p, &row(1, p), "Ada".into());
        let kept = e.row.as_ref().map(|r| &r.referral);
        assert_eq!(kept.map(|r| r.number.as_str()), Some("HR-AAAA-0001"));
        assert_eq!((e.seq, e.practice), (3, Some(p)));
        assert!(kept.is_some_and(|r| r.content.0.is_empty() && r.to_key.sealed.0.is_empty()));
        assert!(kept.is_some_and(|r| matches!(&r.from, SentFrom::Practice { key, .. } if key.sealed.0.is_empty())));
    }

    #[test]
    fn entries_of_a_practice_the_user_left_are_dropped_and_only_listed_rows_stay_cached() {
        let (kept, left) = (PracticeId::from_bytes([2; 16]), PracticeId::from_bytes([3; 16]));
        let mut entries = HashMap::new();
        for (id, p) in [(1, kept), (2, kept), (3, left)] {
            entries.insert(ReferralId::from_bytes([id; 16]), Entry::of_row(p, &row(id, p), format!("patient {id}")));
        }
        // An entry of an older index, without its practice, stays (it only names a row the server lists).
        entries.insert(ReferralId::from_bytes([4; 16]), Entry { name: "old".into(), seq: 1, practice: None, row: None });
        assert!(retain_members(&mut entries, &[kept]), "the left practice's entry is dropped");
        assert!(!entries.contains_key(&ReferralId::from_bytes([3; 16])));
        assert_eq!(entries.len(), 3);
        INDEX.with(|i| *i.borrow_mut() = Index { entries, dirty: false });
        let mut shown: Vec<_> = cached(&[kept]).into_iter().map(|(_, r, name)| (r.referral.id, name)).collect();
        shown.sort();
        assert_eq!(
            shown,
            vec![(ReferralId::from_bytes([1; 16]), "patient 1".into()), (ReferralId::from_bytes([2; 16]), "patient 2".into())]
        );
        assert!(cached(&[left]).is_empty(), "nothing is shown for a practice not asked for");
        // The practice's whole snapshot listed only referral 1: referral 2 no longer exists for the user.
        retain_listed(kept, &HashSet::from([ReferralId::from_bytes([1; 16])]));
        assert!(get(ReferralId::from_bytes([2; 16])).is_none());
        assert!(get(ReferralId::from_bytes([1; 16])).is_some());
        assert!(get(ReferralId::from_bytes([4; 16])).is_some(), "another practice's (or an old) entry is untouched");
        assert!(INDEX.with(|i| i.borrow().dirty), "the change is written at the next save");
        forget();
    }
}
