-- The telehealth waiting room (issue 15): rooms and their guests.
--
-- A room's `link` is the patient link's token (128 random bits); the room
-- secret is only ever stored sealed under the practice key (`sealed_secret`,
-- `epoch`). `settings` is the JSON `RoomSettings` (no patient data).
-- A guest row is one check-in: only the SHA-256 of its token is kept, with
-- its check-in time (the waiting order across restarts), a removed flag and
-- its expiry. Deleting a practice deletes its rooms, and a room its guests.
CREATE TABLE rooms (
    id            BLOB PRIMARY KEY,
    practice_id   BLOB NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    link          TEXT NOT NULL UNIQUE,
    sealed_secret BLOB NOT NULL,
    epoch         INTEGER NOT NULL,
    settings      TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX rooms_by_practice ON rooms (practice_id, created_at);

CREATE TABLE room_guests (
    id            BLOB PRIMARY KEY,
    room_id       BLOB NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    token_hash    BLOB NOT NULL UNIQUE,
    checked_in_at INTEGER NOT NULL,
    removed       INTEGER NOT NULL DEFAULT 0,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX room_guests_by_room ON room_guests (room_id, removed, expires_at);
CREATE INDEX room_guests_by_expiry ON room_guests (expires_at);
