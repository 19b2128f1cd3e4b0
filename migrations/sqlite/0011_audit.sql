-- The tamper-evident audit log (issue 14): one hash chain per practice, and
-- the platform chain under the empty chain key. No foreign keys: entries
-- outlive the users and practices they name. Ids and action words only,
-- never content.
CREATE TABLE audit (
    chain        BLOB    NOT NULL,  -- the practice id, or X'' for the platform chain
    seq          INTEGER NOT NULL,  -- 1, 2, … per chain
    at           INTEGER NOT NULL,
    actor        BLOB,
    on_behalf_of BLOB,
    action       TEXT    NOT NULL,
    target       TEXT,
    address      TEXT,
    prev_hash    BLOB    NOT NULL,
    hash         BLOB    NOT NULL,
    PRIMARY KEY (chain, seq)
) STRICT;

CREATE INDEX audit_by_time ON audit (chain, at);

-- Append-only: the server never rewrites an entry (pruning deletes whole
-- prefixes and records their anchor). This guards against mistakes in the
-- server, not against whoever can write the file: the chain detects those.
CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;

-- Where a pruned chain starts: the last pruned entry's seq and hash.
CREATE TABLE audit_anchors (
    chain BLOB    PRIMARY KEY,
    seq   INTEGER NOT NULL,
    hash  BLOB    NOT NULL
) STRICT;
