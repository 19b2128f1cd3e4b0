-- Handoff embedded store, schema 2: referrals, event streams, idempotency, blobs.
-- Referral content, notes, messages and attachments are ciphertext sealed in
-- the sender's browser; only routing metadata is plaintext.

CREATE TABLE referrals (
    id              BLOB PRIMARY KEY,
    number          TEXT NOT NULL UNIQUE,
    -- No foreign keys on the practices: when one side deletes its practice, the
    -- other side keeps its referral history.
    from_practice   BLOB NOT NULL,
    to_practice     BLOB NOT NULL,
    routed_category TEXT NOT NULL,                 -- category at routing time (balancing counts)
    routed_sub      TEXT,
    status          TEXT NOT NULL,
    body            TEXT NOT NULL,                 -- JSON protocol Referral: current metadata, ciphertext inside
    created_at      INTEGER NOT NULL,
    first_opened_at INTEGER
) STRICT;
CREATE INDEX referrals_routing ON referrals(to_practice, routed_category, routed_sub);
CREATE INDEX referrals_from ON referrals(from_practice, created_at);
CREATE INDEX referrals_to ON referrals(to_practice, created_at);

-- One row per event per stream; seq is dense from 1 within a stream.
CREATE TABLE events (
    stream     TEXT NOT NULL,                      -- "practice:<uuid>" or "referral:<uuid>"
    seq        INTEGER NOT NULL,
    body       TEXT NOT NULL,                      -- JSON protocol Event
    created_at INTEGER NOT NULL,
    PRIMARY KEY (stream, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE idempotency (
    user_id    BLOB NOT NULL,
    key        BLOB NOT NULL,
    command    BLOB NOT NULL,                      -- SHA-256 of the command JSON
    result     TEXT NOT NULL,                      -- JSON protocol AckBody
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE blobs (
    id         BLOB PRIMARY KEY,
    owner      BLOB NOT NULL,
    referral   BLOB,                               -- set when attached
    bytes      BLOB NOT NULL,                      -- ciphertext
    created_at INTEGER NOT NULL
) STRICT;

ALTER TABLE members ADD COLUMN notify_email INTEGER NOT NULL DEFAULT 0;
