-- Handoff embedded store, schema 8: free referrals, sent from the public page
-- without an account (issue 13).
--
-- A draft lives from the first emailed code to its one send. Its code and its
-- token are stored only as hashes: the code as a keyed hash (HMAC-SHA-256
-- under a server secret: a 6-digit code has too little entropy for a plain
-- hash), the token (256 random bits) as SHA-256, as session tokens are. The
-- email address is kept in plain text: the accept and decline emails go to it.
-- `sent_*` records the one send, so that a replay with the same key answers
-- the same `FreeSent` (its JSON) and any other send is refused.
CREATE TABLE free_drafts (
    id              BLOB PRIMARY KEY,
    email           TEXT NOT NULL,                 -- normalised (trimmed, lowercase)
    code_hash       BLOB NOT NULL,                 -- HMAC of the current code
    code_expires_at INTEGER NOT NULL,
    tries           INTEGER NOT NULL DEFAULT 0,    -- tries of the current code
    resends         INTEGER NOT NULL DEFAULT 0,
    token_hash      BLOB UNIQUE,                   -- SHA-256 of the verified draft's token
    verified_at     INTEGER,
    expires_at      INTEGER NOT NULL,              -- the draft (verified or not) is unusable after
    sent_idem       BLOB,
    sent_referral   BLOB,
    sent_answer     TEXT,                          -- JSON protocol FreeSent
    created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX free_drafts_expiry ON free_drafts(expires_at);

-- Senders staff blocked from free referrals: an email address (normalised
-- lowercase) or a client address (an IPv4 address, or an IPv6 /64 as `a:b:c:d::/64`).
CREATE TABLE free_blocks (
    kind       TEXT NOT NULL CHECK (kind IN ('email', 'address')),
    value      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
) STRICT, WITHOUT ROWID;

-- A practice's admins may opt out of receiving free referrals.
ALTER TABLE practices ADD COLUMN accepts_free INTEGER NOT NULL DEFAULT 1;
