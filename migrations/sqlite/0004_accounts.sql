-- 0004: accounts hardening (issue 12, items 2, 8 and 9).

-- Item 2: a deleted practice's id is never accepted again. Referrals and
-- `practice:<id>` events outlive the practice row, so whoever re-created the
-- id would inherit them.
CREATE TABLE practice_tombstones (
    id          BLOB PRIMARY KEY,
    deleted_at  INTEGER NOT NULL
) STRICT;

-- Item 8: registration is confirmed by an emailed link. Until then the
-- account does not exist; the registration waits here, keyed by the SHA-256
-- of the emailed token. Several may wait for one address; the first
-- confirmed wins.
CREATE TABLE pending_registrations (
    token_hash          BLOB PRIMARY KEY,
    email               TEXT NOT NULL,             -- lower-cased
    display_name        TEXT NOT NULL,
    salt                BLOB NOT NULL,
    auth_verifier       TEXT NOT NULL,
    kit_verifier        BLOB NOT NULL,
    sign_pub            BLOB NOT NULL,
    hpke_pub            BLOB NOT NULL,
    wrapped_by_password BLOB NOT NULL,
    wrapped_by_kit      BLOB NOT NULL,
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL
) STRICT;
CREATE INDEX pending_registrations_by_expiry ON pending_registrations(expires_at);

-- Every account carries when its address was confirmed. Accounts made before
-- confirmation existed count as confirmed when they were created.
ALTER TABLE users ADD COLUMN email_confirmed_at INTEGER;
UPDATE users SET email_confirmed_at = created_at;

-- Item 9: every invite sent, for the per-user and per-practice rate limits
-- (invites themselves are deleted when accepted, so they cannot be counted).
CREATE TABLE invites_sent (
    practice_id BLOB NOT NULL,
    invited_by  BLOB NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX invites_sent_by_practice ON invites_sent(practice_id, created_at);
CREATE INDEX invites_sent_by_user ON invites_sent(invited_by, created_at);
