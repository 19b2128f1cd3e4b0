//! [`TermsStore`](crate::TermsStore) on SQLite: the dated columns of `members` (migration 0013).

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params};

use handoff_protocol::v1::Role;
use handoff_protocol::{PracticeId, UnixMillis, UserId};

use super::{CachedRow, SqliteStore, backend, db, role_of, uuid_of};
use crate::{Ending, PracticeError, Terms, TermsStore};

fn ending_row(r: &Row<'_>) -> rusqlite::Result<Ending> {
    Ok(Ending { practice: PracticeId(uuid_of(r.get(0)?)?), user: UserId(uuid_of(r.get(1)?)?), ends_at: r.get(2)? })
}

#[async_trait]
impl TermsStore for SqliteStore {
    async fn terms(&self, practice: PracticeId, user: UserId) -> Result<Option<(Role, Terms)>, PracticeError> {
        self.lookup(move |c| {
            c.row(
                "SELECT role, starts_at, ends_at, sponsor FROM members WHERE practice_id = ?1 AND user_id = ?2",
                [practice.as_bytes().as_slice(), user.as_bytes().as_slice()],
                |r| {
                    let role: String = r.get(0)?;
                    let sponsor: Option<Vec<u8>> = r.get(3)?;
                    let sponsor = sponsor.map(uuid_of).transpose()?.map(UserId);
                    Ok((role_of(&role), Terms { starts_at: r.get(1)?, ends_at: r.get(2)?, sponsor }))
                },
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn set_dates(
        &self,
        practice: PracticeId,
        user: UserId,
        starts_at: Option<UnixMillis>,
        ends_at: Option<UnixMillis>,
    ) -> Result<(), PracticeError> {
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE members SET starts_at = ?3, ends_at = ?4, \
                     end_reminded = CASE WHEN ends_at IS ?4 THEN end_reminded ELSE 0 END \
                     WHERE practice_id = ?1 AND user_id = ?2",
                    params![practice.as_bytes().as_slice(), user.as_bytes().as_slice(), starts_at, ends_at],
                )
                .map_err(db)?;
            if n == 0 { Err(PracticeError::NotMember) } else { Ok(()) }
        })
        .await
    }

    async fn sponsor_of(&self, practice: PracticeId, user: UserId) -> Result<Option<UserId>, PracticeError> {
        self.lookup(move |c| {
            let s: Option<Option<Vec<u8>>> = c
                .row(
                    "SELECT sponsor FROM members WHERE practice_id = ?1 AND user_id = ?2",
                    [practice.as_bytes().as_slice(), user.as_bytes().as_slice()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            s.flatten().map(|b| uuid_of(b).map(UserId)).transpose().map_err(backend)
        })
        .await
    }

    async fn delegates_of(&self, practice: PracticeId, sponsor: UserId) -> Result<Vec<UserId>, PracticeError> {
        self.run(move |c| {
            let mut st = c.prepare("SELECT user_id FROM members WHERE practice_id = ?1 AND sponsor = ?2 ORDER BY joined_at").map_err(db)?;
            let rows = st
                .query_map([practice.as_bytes().as_slice(), sponsor.as_bytes().as_slice()], |r| Ok(UserId(uuid_of(r.get(0)?)?)))
                .map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn ended(&self, now: UnixMillis) -> Result<Vec<Ending>, PracticeError> {
        self.run(move |c| {
            let mut st = c
                .prepare("SELECT practice_id, user_id, ends_at FROM members WHERE ends_at IS NOT NULL AND ends_at <= ?1 ORDER BY ends_at")
                .map_err(db)?;
            let rows = st.query_map([now], ending_row).map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn reminders_due(&self, now: UnixMillis, until: UnixMillis) -> Result<Vec<Ending>, PracticeError> {
        self.run(move |c| {
            let mut st = c
                .prepare(
                    "SELECT practice_id, user_id, ends_at FROM members \
                     WHERE ends_at > ?1 AND ends_at <= ?2 AND end_reminded = 0 ORDER BY ends_at",
                )
                .map_err(db)?;
            let rows = st.query_map([now, until], ending_row).map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn mark_reminded(&self, practice: PracticeId, user: UserId, ends_at: UnixMillis) -> Result<bool, PracticeError> {
        self.run(move |c| {
            c.execute(
                "UPDATE members SET end_reminded = 1 WHERE practice_id = ?1 AND user_id = ?2 AND ends_at = ?3 AND end_reminded = 0",
                params![practice.as_bytes().as_slice(), user.as_bytes().as_slice(), ends_at],
            )
            .map(|n| n > 0)
            .map_err(backend)
        })
        .await
    }
}
