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
