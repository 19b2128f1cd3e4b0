-- Membership with dates (issue 14): start and end dates, delegates and their sponsors.
--
-- `members` and `invites` are rebuilt so that their role may be 'delegate'
-- (SQLite cannot change a CHECK constraint in place); no table refers to
-- either. A member's `starts_at` (only for an invited one) and `ends_at` bound
-- when the membership gives access; `sponsor` is the member a delegate acts
-- on behalf of (the delegate's inviter); `end_reminded` is set once the
-- admins were emailed about a coming end date, and cleared when it changes.
CREATE TABLE members_0013 (
    practice_id  BLOB NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
    user_id      BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'member', 'delegate')),
    joined_at    INTEGER NOT NULL,
    notify_email INTEGER NOT NULL DEFAULT 0,
    starts_at    INTEGER,
    ends_at      INTEGER,
    sponsor      BLOB,
    end_reminded INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (practice_id, user_id),
    CHECK ((role = 'delegate') = (sponsor IS NOT NULL))
) STRICT;
INSERT INTO members_0013 (practice_id, user_id, role, joined_at, notify_email)
    SELECT practice_id, user_id, role, joined_at, notify_email FROM members;
DROP TABLE members;
ALTER TABLE members_0013 RENAME TO members;
CREATE INDEX members_by_user ON members(user_id);
CREATE INDEX members_ending ON members(ends_at) WHERE ends_at IS NOT NULL;
CREATE INDEX members_by_sponsor ON members(practice_id, sponsor) WHERE sponsor IS NOT NULL;

CREATE TABLE invites_0013 (
    token_hash  BLOB PRIMARY KEY,
    practice_id BLOB NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'member', 'delegate')),
    invited_by  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    starts_at   INTEGER,
    ends_at     INTEGER
) STRICT;
INSERT INTO invites_0013 (token_hash, practice_id, email, role, invited_by, created_at, expires_at)
    SELECT token_hash, practice_id, email, role, invited_by, created_at, expires_at FROM invites;
DROP TABLE invites;
ALTER TABLE invites_0013 RENAME TO invites;
CREATE INDEX invites_by_practice ON invites(practice_id);
