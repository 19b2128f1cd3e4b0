-- Free referrals (issue 13): a referral's sender is a practice or a free
-- sender without an account. `from_practice` becomes nullable (NULL for a free
-- referral), and `free_email` holds the free sender's verified address (the
-- only thing the server keeps about them: it sends the accept and decline
-- emails). The protocol JSON in `body` and in the `referral_sent` events
-- moves from `from_practice`/`sent_by`/`from_key` to one tagged `from`.

CREATE TABLE referrals_new (
    id              BLOB PRIMARY KEY,
    number          TEXT NOT NULL UNIQUE,
    -- No foreign keys on the practices: when one side deletes its practice, the
    -- other side keeps its referral history.
    from_practice   BLOB,                          -- NULL: a free referral
    to_practice     BLOB NOT NULL,
    routed_category TEXT NOT NULL,                 -- category at routing time (balancing counts)
    routed_sub      TEXT,
    status          TEXT NOT NULL,
    body            TEXT NOT NULL,                 -- JSON protocol Referral: current metadata, ciphertext inside
    created_at      INTEGER NOT NULL,
    first_opened_at INTEGER,
    free_email      TEXT,                          -- a free sender's address; NULL otherwise
    CHECK ((from_practice IS NULL) = (free_email IS NOT NULL))
) STRICT;

INSERT INTO referrals_new (id, number, from_practice, to_practice, routed_category, routed_sub, status, body, created_at, first_opened_at)
SELECT id, number, from_practice, to_practice, routed_category, routed_sub, status,
       json_remove(
           json_set(body, '$.from', json_object(
               'kind', 'practice',
               'practice', json_extract(body, '$.from_practice'),
               'user', json_extract(body, '$.sent_by'),
               'key', json(json_extract(body, '$.from_key')))),
           '$.from_practice', '$.sent_by', '$.from_key'),
       created_at, first_opened_at
FROM referrals;

DROP TABLE referrals;
ALTER TABLE referrals_new RENAME TO referrals;
CREATE INDEX referrals_routing ON referrals(to_practice, routed_category, routed_sub);
CREATE INDEX referrals_from ON referrals(from_practice, created_at);
CREATE INDEX referrals_to ON referrals(to_practice, created_at);

UPDATE events SET body = json_remove(
           json_set(body, '$.referral.from', json_object(
               'kind', 'practice',
               'practice', json_extract(body, '$.referral.from_practice'),
               'user', json_extract(body, '$.referral.sent_by'),
               'key', json(json_extract(body, '$.referral.from_key')))),
           '$.referral.from_practice', '$.referral.sent_by', '$.referral.from_key')
WHERE json_extract(body, '$.type') = 'referral_sent' AND json_extract(body, '$.referral.from_practice') IS NOT NULL;
