-- Handoff embedded store, schema 7: the server observes each practice's MLS
-- group as an MLS external observer. It keeps only the group's *public*
-- state (ratchet tree, group context, transcript hash: what mls-rs's
-- ExternalGroup snapshots), checks every commit against it, and replaces it in
-- the same transaction that appends the commit's log entry. Nothing here
-- opens anything: an external observer holds no group secret.

CREATE TABLE mls_public_state (
    practice_id BLOB PRIMARY KEY REFERENCES practices(id) ON DELETE CASCADE,
    epoch       INTEGER NOT NULL,                  -- the Handoff epoch this state is at
    snapshot    BLOB NOT NULL                      -- mls-rs ExternalSnapshot bytes
) STRICT;

-- Recovery from a commit no observer can check (garbage in the encrypted path
-- secrets, a misreported public key): members report an epoch their client
-- cannot process, and an admin's client re-initialises the group as a new MLS
-- group (a new generation) for the same practice. Handoff epochs continue
-- monotonically across generations; the re-initialisation's history link seals
-- the key of the last good epoch (`links_to`), and every epoch after it up to
-- the re-initialisation is revoked: its public key is never handed out again.
ALTER TABLE mls_log ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mls_log ADD COLUMN links_to INTEGER;                -- the epoch `history` seals (NULL: epoch - 1)
ALTER TABLE mls_log ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;

CREATE TABLE mls_reports (
    practice_id BLOB NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
    epoch       INTEGER NOT NULL,
    user_id     BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (practice_id, epoch, user_id)
) STRICT, WITHOUT ROWID;
