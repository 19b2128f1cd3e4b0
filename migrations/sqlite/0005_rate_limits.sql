-- Handoff embedded store, schema 5: rate-limit lock-outs, written through so
-- that a restart does not reset them. Only counters that reached their limit
-- are stored. `key` is a keyed hash (HMAC-SHA-256 under a server secret) of
-- the limit's scope, the account and the client address: no email or address
-- in the clear.
CREATE TABLE rate_lockouts (
    key   BLOB PRIMARY KEY,
    count INTEGER NOT NULL,
    until INTEGER NOT NULL                     -- Unix ms when the lock-out lifts
) STRICT;
CREATE INDEX rate_lockouts_until ON rate_lockouts(until);
