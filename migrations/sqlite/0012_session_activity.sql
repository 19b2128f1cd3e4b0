-- Sessions: idle timeout and the session list (issue 14, "Sessions").
--
-- `handle` is a random 16-byte id that names the session in the session list
-- and in `DELETE /account/sessions/{handle}`; it is neither the token nor its
-- hash, so a listed handle signs nobody in. `last_seen_at` is the last
-- activity the server wrote through (it keeps a fresher value in memory and
-- writes it at most once a minute). `user_agent` (truncated to 256 bytes) and
-- `client_addr` are what the session was created with, shown in the list.
ALTER TABLE sessions ADD COLUMN handle BLOB NOT NULL DEFAULT x'';
ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN client_addr TEXT NOT NULL DEFAULT '';
UPDATE sessions SET handle = randomblob(16), last_seen_at = created_at;
CREATE UNIQUE INDEX sessions_by_handle ON sessions(handle);
