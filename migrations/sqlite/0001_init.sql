-- Handoff embedded store, schema 1.
-- Every table is STRICT. Ids are 16-byte UUID blobs; times are Unix milliseconds.
-- Nothing here holds plaintext patient data, passwords, kit words or private keys:
-- user keys are stored only sealed, and verifiers are one-way hashes.

CREATE TABLE users (
    id                  BLOB PRIMARY KEY,
    email               TEXT NOT NULL UNIQUE,      -- lower-cased
    display_name        TEXT NOT NULL,
    salt                BLOB NOT NULL,             -- the client's Argon2id salt
    auth_verifier       TEXT NOT NULL,             -- PHC Argon2id hash of the client's auth key
    kit_verifier        BLOB NOT NULL,             -- SHA-256 of the kit auth key (256-bit input)
    sign_pub            BLOB NOT NULL,
    hpke_pub            BLOB NOT NULL,
    wrapped_by_password BLOB NOT NULL,
    wrapped_by_kit      BLOB NOT NULL,
    is_staff            INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    token_hash  BLOB PRIMARY KEY,                  -- SHA-256 of the bearer token
    user_id     BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_by_user ON sessions(user_id);

CREATE TABLE practices (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('referring', 'specialist')),
    specialty   TEXT,
    region      TEXT,
    intake      TEXT NOT NULL,                     -- JSON array of {category, subcategory}
    verified    INTEGER NOT NULL DEFAULT 0,
    paused      INTEGER NOT NULL DEFAULT 0,
    key_epoch   INTEGER NOT NULL,
    public_key  TEXT NOT NULL,                     -- JSON PracticePublicKey (public only)
    created_by  BLOB NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX practices_directory ON practices(specialty, region) WHERE kind = 'specialist';

CREATE TABLE members (
    practice_id BLOB NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
    user_id     BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    joined_at   INTEGER NOT NULL,
    PRIMARY KEY (practice_id, user_id)
) STRICT;
CREATE INDEX members_by_user ON members(user_id);

CREATE TABLE key_grants (
    practice_id BLOB NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
    user_id     BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    epoch       INTEGER NOT NULL,
    sealed      BLOB NOT NULL,                     -- HPKE box to the member's public key
    granted_by  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (practice_id, user_id, epoch)
) STRICT;

CREATE TABLE invites (
    token_hash  BLOB PRIMARY KEY,                  -- SHA-256 of the emailed token
    practice_id BLOB NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    invited_by  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX invites_by_practice ON invites(practice_id);

CREATE TABLE regions (
    slug     TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    position INTEGER NOT NULL
) STRICT;

CREATE TABLE specialties (
    slug     TEXT PRIMARY KEY,
    name     TEXT NOT NULL,
    position INTEGER NOT NULL
) STRICT;

CREATE TABLE categories (
    specialty TEXT NOT NULL REFERENCES specialties(slug),
    slug      TEXT NOT NULL,
    name      TEXT NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (specialty, slug)
) STRICT;

CREATE TABLE subcategories (
    specialty TEXT NOT NULL,
    category  TEXT NOT NULL,
    slug      TEXT NOT NULL,
    name      TEXT NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (specialty, category, slug),
    FOREIGN KEY (specialty, category) REFERENCES categories(specialty, slug)
) STRICT;

CREATE TABLE category_requests (
    id          BLOB PRIMARY KEY,
    practice_id BLOB NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
    specialty   TEXT NOT NULL,
    name        TEXT NOT NULL,
    note        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('open', 'approved', 'declined')),
    created_at  INTEGER NOT NULL,
    resolved_at INTEGER
) STRICT;

CREATE TABLE mail_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,                 -- cleared once sent: invite links are credentials
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    last_error      TEXT
) STRICT;
CREATE INDEX mail_outbox_due ON mail_outbox(next_attempt_at) WHERE sent_at IS NULL;

CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
