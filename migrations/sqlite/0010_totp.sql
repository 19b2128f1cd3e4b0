-- Two-factor sign-in (TOTP, RFC 6238).
--
-- `secret` is the TOTP secret sealed by the server (XChaCha20-Poly1305 under a
-- server key), never the plain secret. `enabled_at` is NULL while an
-- enrollment waits for its first code. `last_step` is the last 30-second step
-- a code was accepted for: a code of that step or an earlier one is refused,
-- so each code signs in once.
CREATE TABLE user_totp (
    user_id     BLOB PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret      BLOB NOT NULL,
    enabled_at  INTEGER,
    last_step   INTEGER NOT NULL DEFAULT -1,
    created_at  INTEGER NOT NULL
) STRICT;

-- Single-use recovery codes, stored as SHA-256 of the code (each has 80 bits
-- of entropy, so a slow hash adds nothing). `used_at` is set on first use.
CREATE TABLE totp_recovery_codes (
    user_id     BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash   BLOB NOT NULL,
    used_at     INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

-- A practice whose admins require two-factor sign-in of every member.
ALTER TABLE practices ADD COLUMN require_2fa INTEGER NOT NULL DEFAULT 0;
