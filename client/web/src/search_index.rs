//! The sealed search index (issue 16, wt-inbox): per user, referral id → the
//! patient name the inbox searches and the referral stream's seq it was read
//! at, kept in IndexedDB as one XChaCha20-Poly1305 box under a key derived
//! (HKDF) from the user's unlocked private keys
//! ([`Session::search_index_key`](crate::session::Session::search_index_key)).
//! So a reload shows and searches every row without decrypting every
//! referral again; a referral's content is decrypted when its screen opens.
//!
//! What is stored: only the sealed bytes, under the key `index.<user id>` in
//! the database `handoff`, store `search`. No key is stored: without the
//! user's password (which unwraps their private keys) the box is useless.
//! Sign-out keeps it (the next unlock reuses it); a box that does not open
//! (another key after a kit reset, damage) is ignored and written anew.

use std::cell::RefCell;
use std::collections::HashMap;

use handoff_protocol::UserId;
use handoff_protocol::ws::ReferralId;
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
/// none, or if it does not open under this session's key).
pub async fn load(s: &Session) {
    let entries = match read(s.me.id).await {
        Ok(Some(bytes)) => s
            .search_index_key()
            .open(s.me.id.as_bytes(), &bytes)
            .ok()
            .and_then(|plain| serde_json::from_slice::<Sealed>(&plain).ok())
            .map(|i| i.entries)
            .unwrap_or_default(),
        Ok(None) | Err(_) => HashMap::new(),
    };
    INDEX.with(|i| *i.borrow_mut() = Index { entries, dirty: false });
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
