//! [`RoomStore`](crate::RoomStore) on SQLite: tables `rooms` and `room_guests` (migration 0014).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use handoff_protocol::v1::RoomSettings;
use handoff_protocol::{GuestId, PracticeId, RoomId, UnixMillis};

use super::{CachedRow, SqliteStore, backend, changed, db, is_unique_violation, json_err, uuid_of};
use crate::{GuestRecord, RoomError, RoomRecord, RoomStore};

const ROOM_COLUMNS: &str = "id, practice_id, name, link, sealed_secret, epoch, settings, created_at";

fn room_row(r: &Row<'_>) -> rusqlite::Result<RoomRecord> {
    let settings: String = r.get(6)?;
    let epoch: i64 = r.get(5)?;
    Ok(RoomRecord {
        id: RoomId(uuid_of(r.get(0)?)?),
        practice: PracticeId(uuid_of(r.get(1)?)?),
        name: r.get(2)?,
        link: r.get(3)?,
        sealed_secret: r.get(4)?,
        epoch: u64::try_from(epoch).unwrap_or_default(),
        settings: serde_json::from_str(&settings).map_err(json_err)?,
        created_at: r.get(7)?,
    })
}

fn guest_row(r: &Row<'_>) -> rusqlite::Result<GuestRecord> {
    Ok(GuestRecord {
        id: GuestId(uuid_of(r.get(0)?)?),
        room: RoomId(uuid_of(r.get(1)?)?),
        checked_in_at: r.get(2)?,
        removed: r.get(3)?,
        expires_at: r.get(4)?,
    })
}

fn load(c: &Connection, id: RoomId) -> Result<Option<RoomRecord>, RoomError> {
    c.query_row(&format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = ?1"), [id.as_bytes().as_slice()], room_row)
        .optional()
        .map_err(backend)
}

fn settings_json(s: &RoomSettings) -> Result<String, RoomError> {
    serde_json::to_string(s).map_err(backend)
}

fn epoch_of(epoch: u64) -> Result<i64, RoomError> {
    i64::try_from(epoch).map_err(backend)
}

#[async_trait]
impl RoomStore for SqliteStore {
    async fn create_room(&self, room: RoomRecord) -> Result<(), RoomError> {
        self.run(move |c| {
            let settings = settings_json(&room.settings)?;
            let epoch = epoch_of(room.epoch)?;
            let known: bool = c
                .query_row("SELECT EXISTS (SELECT 1 FROM practices WHERE id = ?1)", [room.practice.as_bytes().as_slice()], |r| r.get(0))
                .map_err(db)?;
            if !known {
                return Err(RoomError::NoSuchPractice);
            }
            if load(c, room.id)?.is_some() {
                return Err(RoomError::RoomExists);
            }
            c.execute(
                &format!("INSERT INTO rooms ({ROOM_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![
                    room.id.as_bytes().as_slice(),
                    room.practice.as_bytes().as_slice(),
                    room.name,
                    room.link,
                    room.sealed_secret,
                    epoch,
                    settings,
                    room.created_at
                ],
            )
            .map_err(|e| if is_unique_violation(&e) { RoomError::LinkTaken } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn room(&self, id: RoomId) -> Result<Option<RoomRecord>, RoomError> {
        self.run(move |c| load(c, id)).await
    }

    async fn room_by_link(&self, link: &str) -> Result<Option<RoomRecord>, RoomError> {
        let link = link.to_owned();
        self.run(move |c| {
            c.query_row(&format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE link = ?1"), [link], room_row).optional().map_err(backend)
        })
        .await
    }

    async fn rooms_of(&self, practice: PracticeId) -> Result<Vec<RoomRecord>, RoomError> {
        self.run(move |c| {
            let mut st =
                c.prepare(&format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE practice_id = ?1 ORDER BY created_at, id")).map_err(db)?;
            let rows = st.query_map([practice.as_bytes().as_slice()], room_row).map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn update_room(&self, id: RoomId, name: Option<String>, settings: Option<RoomSettings>) -> Result<RoomRecord, RoomError> {
        self.run(move |c| {
            let tx = c.transaction().map_err(db)?;
            let settings = settings.as_ref().map(settings_json).transpose()?;
            let n = tx
                .execute(
                    "UPDATE rooms SET name = COALESCE(?2, name), settings = COALESCE(?3, settings) WHERE id = ?1",
                    params![id.as_bytes().as_slice(), name, settings],
                )
                .map_err(db)?;
            changed(n, RoomError::NoSuchRoom)?;
            let room = load(&tx, id)?.ok_or(RoomError::NoSuchRoom)?;
            tx.commit().map_err(db)?;
            Ok(room)
        })
        .await
    }

    async fn rotate_room(&self, id: RoomId, link: String, sealed_secret: Vec<u8>, epoch: u64) -> Result<RoomRecord, RoomError> {
        self.run(move |c| {
            let epoch = epoch_of(epoch)?;
            let tx = c.transaction().map_err(db)?;
            let n = tx
                .execute(
                    "UPDATE rooms SET link = ?2, sealed_secret = ?3, epoch = ?4 WHERE id = ?1",
                    params![id.as_bytes().as_slice(), link, sealed_secret, epoch],
                )
                .map_err(|e| if is_unique_violation(&e) { RoomError::LinkTaken } else { backend(e) })?;
            changed(n, RoomError::NoSuchRoom)?;
            let room = load(&tx, id)?.ok_or(RoomError::NoSuchRoom)?;
            tx.commit().map_err(db)?;
            Ok(room)
        })
        .await
    }

    async fn delete_room(&self, id: RoomId) -> Result<(), RoomError> {
        self.run(move |c| {
            let n = c.execute("DELETE FROM rooms WHERE id = ?1", [id.as_bytes().as_slice()]).map_err(db)?;
            changed(n, RoomError::NoSuchRoom)
        })
        .await
    }

    async fn add_guest(&self, guest: GuestRecord, token_hash: [u8; 32]) -> Result<(), RoomError> {
        self.run(move |c| {
            if load(c, guest.room)?.is_none() {
                return Err(RoomError::NoSuchRoom);
            }
            c.execute(
                "INSERT INTO room_guests (id, room_id, token_hash, checked_in_at, removed, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    guest.id.as_bytes().as_slice(),
                    guest.room.as_bytes().as_slice(),
                    token_hash.as_slice(),
                    guest.checked_in_at,
                    guest.removed,
                    guest.expires_at
                ],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn guest_by_token(&self, token_hash: [u8; 32]) -> Result<Option<GuestRecord>, RoomError> {
        self.lookup(move |c| {
            c.row(
                "SELECT id, room_id, checked_in_at, removed, expires_at FROM room_guests WHERE token_hash = ?1",
                [token_hash.as_slice()],
                guest_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn live_guests(&self, room: RoomId, now: UnixMillis) -> Result<u64, RoomError> {
        self.run(move |c| {
            let n: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM room_guests WHERE room_id = ?1 AND removed = 0 AND expires_at > ?2",
                    params![room.as_bytes().as_slice(), now],
                    |r| r.get(0),
                )
                .map_err(db)?;
            Ok(u64::try_from(n).unwrap_or_default())
        })
        .await
    }

    async fn remove_guest(&self, guest: GuestId) -> Result<(), RoomError> {
        self.run(move |c| {
            let n = c.execute("UPDATE room_guests SET removed = 1 WHERE id = ?1", [guest.as_bytes().as_slice()]).map_err(db)?;
            changed(n, RoomError::NoSuchGuest)
        })
        .await
    }

    async fn sweep_guests(&self, now: UnixMillis) -> Result<u64, RoomError> {
        self.run(move |c| {
            let n = c.execute("DELETE FROM room_guests WHERE expires_at <= ?1", [now]).map_err(db)?;
            Ok(n as u64)
        })
        .await
    }
}
