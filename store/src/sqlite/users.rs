//! [`UserStore`](crate::UserStore) on SQLite: accounts, sessions, server secrets.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use handoff_protocol::{UnixMillis, UserId};

use super::{CachedRow, SqliteStore, USER_COLS, backend, changed, db, is_unique_violation, user_row, uuid_of};
use crate::{
    PasswordChange, PendingProof, PendingRegistration, RecoveryCodeUse, SessionRecord, TotpRecord, UserError, UserRecord, UserStore,
};

/// Inserts an account row; [`UserError::EmailTaken`] if the address has one.
fn insert_user(c: &rusqlite::Connection, u: &UserRecord) -> Result<(), UserError> {
    c.execute(
        "INSERT INTO users (id, email, display_name, salt, auth_verifier, kit_verifier, sign_pub, hpke_pub, \
         wrapped_by_password, wrapped_by_kit, is_staff, created_at, updated_at, email_confirmed_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)",
        params![
            u.id.as_bytes().as_slice(),
            u.email,
            u.display_name,
            u.salt,
            u.auth_verifier,
            u.kit_verifier,
            u.sign_pub,
            u.hpke_pub,
            u.wrapped_by_password,
            u.wrapped_by_kit,
            u.is_staff,
            u.created_at,
            u.email_confirmed_at
        ],
    )
    .map_err(|e| if is_unique_violation(&e) { UserError::EmailTaken } else { backend(e) })?;
    Ok(())
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn schema_version(&self) -> Result<u32, UserError> {
        self.run(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(backend)).await
    }

    async fn server_secret(&self, name: &str, init: Vec<u8>) -> Result<Vec<u8>, UserError> {
        let name = name.to_owned();
        self.run(move |c| {
            c.execute("INSERT OR IGNORE INTO server_secrets (name, value) VALUES (?1, ?2)", params![name, init]).map_err(db)?;
            c.query_row("SELECT value FROM server_secrets WHERE name = ?1", [name], |r| r.get(0)).map_err(backend)
        })
        .await
    }

    async fn create_user(&self, u: UserRecord) -> Result<(), UserError> {
        self.run(move |c| insert_user(c, &u)).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, UserError> {
        let email = email.to_owned();
        self.run(move |c| {
            c.query_row(&format!("SELECT {USER_COLS} FROM users u WHERE u.email = ?1"), [email], user_row).optional().map_err(backend)
        })
        .await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<UserRecord>, UserError> {
        self.lookup(move |c| {
            c.row(&format!("SELECT {USER_COLS} FROM users u WHERE u.id = ?1"), [id.as_bytes().as_slice()], user_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn reset_password(&self, id: UserId, ch: PasswordChange) -> Result<(), UserError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let n = tx
                .execute(
                    "UPDATE users SET salt = ?2, auth_verifier = ?3, wrapped_by_password = ?4, updated_at = ?5 WHERE id = ?1",
                    params![id.as_bytes().as_slice(), ch.salt, ch.auth_verifier, ch.wrapped_by_password, ch.now],
                )
                .map_err(db)?;
            changed(n, UserError::NoSuchUser)?;
            tx.execute("DELETE FROM sessions WHERE user_id = ?1", [id.as_bytes().as_slice()]).map_err(db)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn set_staff(&self, email: &str, staff: bool) -> Result<(), UserError> {
        let email = email.to_owned();
        self.run(move |c| {
            let n = c.execute("UPDATE users SET is_staff = ?2 WHERE email = ?1", params![email, staff]).map_err(db)?;
            changed(n, UserError::NoSuchUser)
        })
        .await
    }

    async fn create_session(&self, s: SessionRecord) -> Result<(), UserError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, handle, last_seen_at, user_agent, client_addr) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    s.token_hash,
                    s.user_id.as_bytes().as_slice(),
                    s.created_at,
                    s.expires_at,
                    s.handle,
                    s.last_seen_at,
                    s.user_agent,
                    s.client_addr
                ],
            )
            .map_err(|e| if is_unique_violation(&e) { UserError::SessionExists } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRecord>, UserError> {
        let th = token_hash.to_vec();
        self.lookup(move |c| {
            c.row(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = ?1"), [th], session_row).optional().map_err(backend)
        })
        .await
    }

    async fn delete_session(&self, token_hash: &[u8]) -> Result<(), UserError> {
        let th = token_hash.to_vec();
        self.run(move |c| c.execute("DELETE FROM sessions WHERE token_hash = ?1", [th]).map(|_| ()).map_err(backend)).await
    }

    async fn purge_sessions(&self, now: UnixMillis) -> Result<u64, UserError> {
        self.run(move |c| c.execute("DELETE FROM sessions WHERE expires_at < ?1", [now]).map(|n| n as u64).map_err(backend)).await
    }

    async fn touch_session(&self, token_hash: &[u8], at: UnixMillis) -> Result<(), UserError> {
        let th = token_hash.to_vec();
        self.run(move |c| {
            c.execute("UPDATE sessions SET last_seen_at = ?2 WHERE token_hash = ?1 AND last_seen_at < ?2", params![th, at])
                .map(|_| ())
                .map_err(backend)
        })
        .await
    }

    async fn sessions_of(&self, user: UserId) -> Result<Vec<SessionRecord>, UserError> {
        self.run(move |c| {
            let mut st =
                c.prepare(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 ORDER BY created_at, handle")).map_err(db)?;
            let rows = st.query_map([user.as_bytes().as_slice()], session_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn end_session_by_handle(&self, user: UserId, handle: &[u8]) -> Result<Vec<u8>, UserError> {
        let handle = handle.to_vec();
        self.run(move |c| {
            c.query_row(
                "DELETE FROM sessions WHERE user_id = ?1 AND handle = ?2 RETURNING token_hash",
                params![user.as_bytes().as_slice(), handle],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()
            .map_err(db)?
            .ok_or(UserError::NoSuchSession)
        })
        .await
    }

    async fn end_other_sessions(&self, user: UserId, keep: &[u8]) -> Result<Vec<Vec<u8>>, UserError> {
        let keep = keep.to_vec();
        self.run(move |c| {
            let mut st = c.prepare("DELETE FROM sessions WHERE user_id = ?1 AND token_hash <> ?2 RETURNING token_hash").map_err(db)?;
            let rows = st.query_map(params![user.as_bytes().as_slice(), keep], |r| r.get::<_, Vec<u8>>(0)).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn purge_idle_sessions(&self, seen_before: UnixMillis) -> Result<u64, UserError> {
        self.run(move |c| c.execute("DELETE FROM sessions WHERE last_seen_at < ?1", [seen_before]).map(|n| n as u64).map_err(backend)).await
    }

    async fn create_pending_registration(&self, p: PendingRegistration) -> Result<(), UserError> {
        self.run(move |c| {
            let u = &p.user;
            c.execute(
                "INSERT INTO pending_registrations (token_hash, email, display_name, salt, auth_verifier, kit_verifier, \
                 sign_pub, hpke_pub, wrapped_by_password, wrapped_by_kit, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    p.token_hash,
                    u.email,
                    u.display_name,
                    u.salt,
                    u.auth_verifier,
                    u.kit_verifier,
                    u.sign_pub,
                    u.hpke_pub,
                    u.wrapped_by_password,
                    u.wrapped_by_kit,
                    u.created_at,
                    p.expires_at
                ],
            )
            .map_err(|e| if is_unique_violation(&e) { UserError::RegistrationExists } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn pending_proof(&self, token_hash: &[u8], now: UnixMillis) -> Result<Option<PendingProof>, UserError> {
        let th = token_hash.to_vec();
        self.run(move |c| {
            c.query_row(
                "SELECT salt, auth_verifier FROM pending_registrations WHERE token_hash = ?1 AND expires_at > ?2",
                params![th, now],
                |r| Ok(PendingProof { salt: r.get(0)?, auth_verifier: r.get(1)? }),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn confirm_registration(&self, token_hash: &[u8], id: UserId, now: UnixMillis) -> Result<UserRecord, UserError> {
        let th = token_hash.to_vec();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let pending = tx
                .query_row(
                    "SELECT email, display_name, salt, auth_verifier, kit_verifier, sign_pub, hpke_pub, wrapped_by_password, \
                     wrapped_by_kit FROM pending_registrations WHERE token_hash = ?1 AND expires_at > ?2",
                    params![th, now],
                    |r| {
                        Ok(UserRecord {
                            id,
                            email: r.get(0)?,
                            display_name: r.get(1)?,
                            salt: r.get(2)?,
                            auth_verifier: r.get(3)?,
                            kit_verifier: r.get(4)?,
                            sign_pub: r.get(5)?,
                            hpke_pub: r.get(6)?,
                            wrapped_by_password: r.get(7)?,
                            wrapped_by_kit: r.get(8)?,
                            is_staff: false,
                            created_at: now,
                            email_confirmed_at: Some(now),
                        })
                    },
                )
                .optional()
                .map_err(db)?;
            let Some(user) = pending else { return Err(UserError::NoSuchRegistration) };
            // Whatever happens next, no pending registration for this address
            // stays usable: the first confirmation wins.
            tx.execute("DELETE FROM pending_registrations WHERE email = ?1", [&user.email]).map_err(db)?;
            let created = insert_user(&tx, &user);
            tx.commit().map_err(db)?;
            created.map(|()| user)
        })
        .await
    }

    async fn purge_pending_registrations(&self, now: UnixMillis) -> Result<u64, UserError> {
        self.run(move |c| c.execute("DELETE FROM pending_registrations WHERE expires_at < ?1", [now]).map(|n| n as u64).map_err(backend))
            .await
    }

    async fn totp(&self, user: UserId) -> Result<Option<TotpRecord>, UserError> {
        self.run(move |c| {
            c.query_row(
                "SELECT t.secret, t.enabled_at, t.last_step, \
                 (SELECT COUNT(*) FROM totp_recovery_codes r WHERE r.user_id = t.user_id AND r.used_at IS NULL) \
                 FROM user_totp t WHERE t.user_id = ?1",
                [user.as_bytes().as_slice()],
                |r| {
                    Ok(TotpRecord {
                        user_id: user,
                        sealed_secret: r.get(0)?,
                        enabled_at: r.get(1)?,
                        last_step: r.get(2)?,
                        recovery_codes_left: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn start_totp(&self, user: UserId, sealed_secret: Vec<u8>, now: UnixMillis) -> Result<(), UserError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let uid = user.as_bytes().as_slice();
            let exists: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1)", [uid], |r| r.get(0)).map_err(db)?;
            if !exists {
                return Err(UserError::NoSuchUser);
            }
            let enabled: Option<Option<UnixMillis>> =
                tx.query_row("SELECT enabled_at FROM user_totp WHERE user_id = ?1", [uid], |r| r.get(0)).optional().map_err(db)?;
            if matches!(enabled, Some(Some(_))) {
                return Err(UserError::TotpEnabled);
            }
            tx.execute(
                "INSERT INTO user_totp (user_id, secret, enabled_at, last_step, created_at) VALUES (?1, ?2, NULL, -1, ?3) \
                 ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, last_step = -1, created_at = excluded.created_at",
                params![uid, sealed_secret, now],
            )
            .map_err(db)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn enable_totp(&self, user: UserId, step: i64, recovery_hashes: Vec<Vec<u8>>, now: UnixMillis) -> Result<(), UserError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let uid = user.as_bytes().as_slice();
            let enabled: Option<Option<UnixMillis>> =
                tx.query_row("SELECT enabled_at FROM user_totp WHERE user_id = ?1", [uid], |r| r.get(0)).optional().map_err(db)?;
            match enabled {
                None => return Err(UserError::NoTotp),
                Some(Some(_)) => return Err(UserError::TotpEnabled),
                Some(None) => {}
            }
            tx.execute("UPDATE user_totp SET enabled_at = ?2, last_step = ?3 WHERE user_id = ?1", params![uid, now, step]).map_err(db)?;
            tx.execute("DELETE FROM totp_recovery_codes WHERE user_id = ?1", [uid]).map_err(db)?;
            for h in &recovery_hashes {
                tx.execute("INSERT OR IGNORE INTO totp_recovery_codes (user_id, code_hash) VALUES (?1, ?2)", params![uid, h])
                    .map_err(db)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool, UserError> {
        self.run(move |c| {
            c.execute(
                "UPDATE user_totp SET last_step = ?2 WHERE user_id = ?1 AND last_step < ?2",
                params![user.as_bytes().as_slice(), step],
            )
            .map(|n| n == 1)
            .map_err(backend)
        })
        .await
    }

    async fn use_recovery_code(&self, user: UserId, code_hash: &[u8], now: UnixMillis) -> Result<RecoveryCodeUse, UserError> {
        let h = code_hash.to_vec();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let uid = user.as_bytes().as_slice();
            let used: Option<Option<UnixMillis>> = tx
                .query_row("SELECT used_at FROM totp_recovery_codes WHERE user_id = ?1 AND code_hash = ?2", params![uid, h], |r| r.get(0))
                .optional()
                .map_err(db)?;
            let out = match used {
                None => RecoveryCodeUse::Unknown,
                Some(Some(_)) => RecoveryCodeUse::AlreadyUsed,
                Some(None) => {
                    tx.execute("UPDATE totp_recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND code_hash = ?2", params![uid, h, now])
                        .map_err(db)?;
                    RecoveryCodeUse::Accepted
                }
            };
            tx.commit().map_err(db)?;
            Ok(out)
        })
        .await
    }

    async fn disable_totp(&self, user: UserId) -> Result<(), UserError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let uid = user.as_bytes().as_slice();
            let n = tx.execute("DELETE FROM user_totp WHERE user_id = ?1 AND enabled_at IS NOT NULL", [uid]).map_err(db)?;
            changed(n, UserError::NoTotp)?;
            tx.execute("DELETE FROM totp_recovery_codes WHERE user_id = ?1", [uid]).map_err(db)?;
            tx.commit().map_err(backend)
        })
        .await
    }
}

/// The columns [`session_row`] reads, in order.
const SESSION_COLUMNS: &str = "token_hash, user_id, created_at, expires_at, handle, last_seen_at, user_agent, client_addr";

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        token_hash: r.get(0)?,
        user_id: UserId(uuid_of(r.get(1)?)?),
        created_at: r.get(2)?,
        expires_at: r.get(3)?,
        handle: r.get(4)?,
        last_seen_at: r.get(5)?,
        user_agent: r.get(6)?,
        client_addr: r.get(7)?,
    })
}
