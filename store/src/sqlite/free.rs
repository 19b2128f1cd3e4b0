//! [`FreeStore`](crate::FreeStore) on SQLite: free referral drafts, sender
//! blocks and practices' opt-out.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use handoff_protocol::free::{BlockKind, DraftId};
use handoff_protocol::ws::{BlobId, IdemKey, ReferralId};
use handoff_protocol::{PracticeId, UnixMillis};

use super::{SqliteStore, backend, changed, db, is_unique_violation, uuid_of};
use crate::{BlockRecord, CodeCheck, DraftRecord, DraftSend, FreeError, FreeStore, NewDraft, Verification};

const DRAFT_COLS: &str =
    "id, email, code_expires_at, tries, resends, verified_at, expires_at, sent_idem, sent_referral, sent_answer, created_at";

fn draft_row(r: &Row<'_>) -> rusqlite::Result<DraftRecord> {
    let idem: Option<Vec<u8>> = r.get(7)?;
    let referral: Option<Vec<u8>> = r.get(8)?;
    let answer: Option<String> = r.get(9)?;
    let sent = match (idem, referral, answer) {
        (Some(i), Some(rf), Some(a)) => Some(DraftSend { idem: IdemKey(uuid_of(i)?), referral: ReferralId(uuid_of(rf)?), answer: a }),
        _ => None,
    };
    Ok(DraftRecord {
        id: DraftId(uuid_of(r.get(0)?)?),
        email: r.get(1)?,
        code_expires_at: r.get(2)?,
        tries: r.get(3)?,
        resends: r.get(4)?,
        verified_at: r.get(5)?,
        expires_at: r.get(6)?,
        sent,
        created_at: r.get(10)?,
    })
}

fn kind_str(k: BlockKind) -> &'static str {
    match k {
        BlockKind::Email => "email",
        BlockKind::Address => "address",
    }
}

fn kind_of(s: &str) -> BlockKind {
    if s == "email" { BlockKind::Email } else { BlockKind::Address }
}

#[async_trait]
impl FreeStore for SqliteStore {
    async fn create_draft(&self, d: NewDraft) -> Result<(), FreeError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO free_drafts (id, email, code_hash, code_expires_at, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![d.id.as_bytes().as_slice(), d.email, d.code_hash, d.code_expires_at, d.expires_at, d.created_at],
            )
            .map_err(|e| if is_unique_violation(&e) { FreeError::DraftExists } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn draft(&self, id: DraftId) -> Result<Option<DraftRecord>, FreeError> {
        self.run(move |c| {
            c.query_row(&format!("SELECT {DRAFT_COLS} FROM free_drafts WHERE id = ?1"), [id.as_bytes().as_slice()], draft_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn replace_code(&self, id: DraftId, code_hash: Vec<u8>, code_expires_at: UnixMillis, max_resends: u32) -> Result<u32, FreeError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let key = id.as_bytes().as_slice();
            let (resends, verified): (u32, Option<i64>) = tx
                .query_row("SELECT resends, verified_at FROM free_drafts WHERE id = ?1", [key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(db)?
                .ok_or(FreeError::NoSuchDraft)?;
            if verified.is_some() {
                return Err(FreeError::AlreadyVerified);
            }
            if resends >= max_resends {
                return Err(FreeError::ResendsExhausted);
            }
            tx.execute(
                "UPDATE free_drafts SET code_hash = ?2, code_expires_at = ?3, tries = 0, resends = resends + 1 WHERE id = ?1",
                params![key, code_hash, code_expires_at],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(resends + 1)
        })
        .await
    }

    async fn try_code(
        &self,
        id: DraftId,
        code_hash: Vec<u8>,
        max_tries: u32,
        verify: Verification,
        now: UnixMillis,
    ) -> Result<CodeCheck, FreeError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let key = id.as_bytes().as_slice();
            let (stored, expires, tries, verified): (Vec<u8>, i64, u32, Option<i64>) = tx
                .query_row("SELECT code_hash, code_expires_at, tries, verified_at FROM free_drafts WHERE id = ?1", [key], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
                .map_err(db)?
                .ok_or(FreeError::NoSuchDraft)?;
            if verified.is_some() {
                return Ok(CodeCheck::Used);
            }
            if tries >= max_tries {
                return Ok(CodeCheck::Exhausted);
            }
            if expires <= now {
                return Ok(CodeCheck::Expired);
            }
            let outcome = if stored == code_hash {
                tx.execute(
                    "UPDATE free_drafts SET tries = tries + 1, token_hash = ?2, verified_at = ?3, expires_at = ?4 WHERE id = ?1",
                    params![key, verify.token_hash, now, verify.expires_at],
                )
                .map_err(db)?;
                CodeCheck::Verified
            } else {
                tx.execute("UPDATE free_drafts SET tries = tries + 1 WHERE id = ?1", [key]).map_err(db)?;
                CodeCheck::Wrong { tries_left: max_tries.saturating_sub(tries + 1) }
            };
            tx.commit().map_err(db)?;
            Ok(outcome)
        })
        .await
    }

    async fn verified_draft(&self, token_hash: Vec<u8>) -> Result<Option<DraftRecord>, FreeError> {
        self.run(move |c| {
            c.query_row(
                &format!("SELECT {DRAFT_COLS} FROM free_drafts WHERE token_hash = ?1 AND verified_at IS NOT NULL"),
                [token_hash],
                draft_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn claim_send(&self, id: DraftId, idem: IdemKey) -> Result<(), FreeError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let key = id.as_bytes().as_slice();
            let (verified, claimed): (Option<i64>, Option<Vec<u8>>) = tx
                .query_row("SELECT verified_at, sent_idem FROM free_drafts WHERE id = ?1", [key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(db)?
                .ok_or(FreeError::NoSuchDraft)?;
            match (verified, claimed) {
                (None, _) => Err(FreeError::DraftSent),
                (Some(_), Some(k)) if k.as_slice() == idem.as_bytes().as_slice() => Ok(()),
                (Some(_), Some(_)) => Err(FreeError::DraftSent),
                (Some(_), None) => {
                    tx.execute("UPDATE free_drafts SET sent_idem = ?2 WHERE id = ?1", params![key, idem.as_bytes().as_slice()])
                        .map_err(db)?;
                    tx.commit().map_err(backend)
                }
            }
        })
        .await
    }

    async fn release_send(&self, id: DraftId, idem: IdemKey) -> Result<(), FreeError> {
        self.run(move |c| {
            c.execute(
                "UPDATE free_drafts SET sent_idem = NULL WHERE id = ?1 AND sent_idem = ?2 AND sent_referral IS NULL",
                params![id.as_bytes().as_slice(), idem.as_bytes().as_slice()],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn record_send(&self, id: DraftId, send: DraftSend) -> Result<(), FreeError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let key = id.as_bytes().as_slice();
            let exists: Option<i64> =
                tx.query_row("SELECT 1 FROM free_drafts WHERE id = ?1", [key], |r| r.get(0)).optional().map_err(db)?;
            if exists.is_none() {
                return Err(FreeError::NoSuchDraft);
            }
            let referral = send.referral.as_bytes().as_slice();
            let n = tx
                .execute(
                    "UPDATE free_drafts SET sent_referral = ?3, sent_answer = coalesce(sent_answer, ?4) \
                     WHERE id = ?1 AND sent_idem = ?2 AND (sent_referral IS NULL OR sent_referral = ?3)",
                    params![key, send.idem.as_bytes().as_slice(), referral, send.answer],
                )
                .map_err(db)?;
            changed(n, FreeError::DraftSent)?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn begin_draft_blob(&self, id: BlobId, draft: DraftId, max_blobs: u32, now: UnixMillis) -> Result<(), FreeError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let owner = draft.as_bytes().as_slice();
            let held: i64 = tx.query_row("SELECT count(*) FROM blobs WHERE owner = ?1", [owner], |r| r.get(0)).map_err(db)?;
            if held >= i64::from(max_blobs) {
                return Err(FreeError::TooManyBlobs);
            }
            tx.execute(
                "INSERT INTO blobs (id, owner, referral, size, complete, created_at) VALUES (?1, ?2, NULL, 0, 0, ?3)",
                params![id.as_bytes().as_slice(), owner, now],
            )
            .map_err(|e| if is_unique_violation(&e) { FreeError::BlobExists } else { backend(e) })?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn purge_drafts(&self, now: UnixMillis) -> Result<u64, FreeError> {
        self.run(move |c| {
            let n = c.execute("DELETE FROM free_drafts WHERE expires_at <= ?1", [now]).map_err(db)?;
            Ok(n as u64)
        })
        .await
    }

    async fn put_block(&self, b: BlockRecord) -> Result<(), FreeError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO free_blocks (kind, value, reason, created_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (kind, value) DO UPDATE SET reason = excluded.reason, created_at = excluded.created_at",
                params![kind_str(b.kind), b.value, b.reason, b.created_at],
            )
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn lift_block(&self, kind: BlockKind, value: String) -> Result<(), FreeError> {
        self.run(move |c| {
            let n = c.execute("DELETE FROM free_blocks WHERE kind = ?1 AND value = ?2", params![kind_str(kind), value]).map_err(db)?;
            changed(n, FreeError::NoSuchBlock)
        })
        .await
    }

    async fn blocks(&self) -> Result<Vec<BlockRecord>, FreeError> {
        self.run(move |c| {
            let mut st =
                c.prepare("SELECT kind, value, reason, created_at FROM free_blocks ORDER BY created_at DESC, kind, value").map_err(db)?;
            let rows = st
                .query_map([], |r| {
                    let kind: String = r.get(0)?;
                    Ok(BlockRecord { kind: kind_of(&kind), value: r.get(1)?, reason: r.get(2)?, created_at: r.get(3)? })
                })
                .map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn is_blocked(&self, keys: Vec<(BlockKind, String)>) -> Result<bool, FreeError> {
        self.run(move |c| {
            let mut st = c.prepare("SELECT 1 FROM free_blocks WHERE kind = ?1 AND value = ?2").map_err(db)?;
            for (kind, value) in &keys {
                if st.exists(params![kind_str(*kind), value]).map_err(db)? {
                    return Ok(true);
                }
            }
            Ok(false)
        })
        .await
    }

    async fn set_accepts_free(&self, practice: PracticeId, accepts: bool) -> Result<(), FreeError> {
        self.run(move |c| {
            let n = c
                .execute("UPDATE practices SET accepts_free = ?2 WHERE id = ?1", params![practice.as_bytes().as_slice(), accepts])
                .map_err(db)?;
            changed(n, FreeError::NoSuchPractice)
        })
        .await
    }
}
