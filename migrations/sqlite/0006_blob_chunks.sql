-- Attachment blobs in chunks: an upload is written chunk by chunk, each in its
-- own short transaction, so a large upload never holds the store (nor the
-- server's memory) for its whole length. `blobs` keeps only the metadata:
-- `size` (bytes so far) counts towards the owner's quota from the first chunk,
-- and `complete` is 0 while the upload is still arriving (such a blob cannot
-- be read or attached). Existing blobs become one chunk each.
CREATE TABLE blob_chunks (
    blob  BLOB NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    idx   INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (blob, idx)
) STRICT;

INSERT INTO blob_chunks (blob, idx, bytes) SELECT id, 0, bytes FROM blobs;
ALTER TABLE blobs ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
ALTER TABLE blobs ADD COLUMN complete INTEGER NOT NULL DEFAULT 1;
UPDATE blobs SET size = length(bytes);
ALTER TABLE blobs DROP COLUMN bytes;

-- The quota sums an owner's blobs; the sweep finds old unattached ones.
CREATE INDEX blobs_owner ON blobs (owner);
CREATE INDEX blobs_unattached ON blobs (created_at) WHERE referral IS NULL;
