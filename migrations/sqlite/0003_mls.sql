-- Handoff embedded store, schema 3: MLS practice groups (delivery service).
-- MLS messages are opaque here; the server keeps only what it routes.
-- Nothing here decrypts: user MLS states are sealed by the user's client.

-- Published key packages. A row outlives its claim (key_package set to NULL)
-- so a key package can never be published or handed out twice.
CREATE TABLE mls_key_packages (
    hash        BLOB PRIMARY KEY,                  -- SHA-256 of the key package bytes
    user_id     BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key_package BLOB,                              -- NULL once claimed
    created_at  INTEGER NOT NULL,
    claimed_by  BLOB,
    claimed_at  INTEGER
) STRICT;
CREATE INDEX mls_key_packages_unclaimed ON mls_key_packages(user_id, created_at) WHERE key_package IS NOT NULL;

-- Each practice's accepted changes, one per epoch: the primary key is what
-- makes "exactly one commit per epoch" hold.
CREATE TABLE mls_log (
    practice_id BLOB NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
    epoch       INTEGER NOT NULL,
    committer   BLOB NOT NULL,
    commit_msg  BLOB,                              -- NULL for epoch 1 (group creation)
    welcome     BLOB,
    added       TEXT NOT NULL,                     -- JSON array of user ids
    removed     TEXT NOT NULL,                     -- JSON array of user ids
    public_key  TEXT NOT NULL,                     -- JSON PracticePublicKey of this epoch
    history     BLOB NOT NULL,                     -- previous epoch key sealed under this one
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (practice_id, epoch)
) STRICT, WITHOUT ROWID;

-- The latest welcome each member was added with (the bytes live in mls_log).
CREATE TABLE mls_welcomes (
    practice_id BLOB NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
    user_id     BLOB NOT NULL,
    epoch       INTEGER NOT NULL,
    PRIMARY KEY (practice_id, user_id)
) STRICT, WITHOUT ROWID;

-- Who is in each practice's MLS group, as the accepted commits declared it.
CREATE TABLE mls_roster (
    practice_id BLOB NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
    user_id     BLOB NOT NULL,
    PRIMARY KEY (practice_id, user_id)
) STRICT, WITHOUT ROWID;

-- Each user's MLS state, sealed by their client; version is a compare-and-swap counter.
CREATE TABLE mls_states (
    user_id     BLOB PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    sealed      BLOB NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
