//! [`TaxonomyStore`](crate::TaxonomyStore) on SQLite: the taxonomy and category requests.

use async_trait::async_trait;
use rusqlite::{TransactionBehavior, params};

use handoff_protocol::v1::{Category, CategoryRequestStatus, Region, Specialty, Subcategory, Taxonomy, TaxonomyEdit};
use handoff_protocol::{CategoryRequestId, PracticeId, UnixMillis};

use super::{SqliteStore, backend, changed, db, is_unique_violation, uuid_of};
use crate::{CategoryRequestRecord, TaxonomyError, TaxonomyStore};

/// Drops the cached taxonomy; called on the connection's thread, holding its
/// mutex, before a taxonomy write, so the next read sees the write.
fn forget(cached: &std::sync::Mutex<Option<Taxonomy>>) {
    if let Ok(mut slot) = cached.lock() {
        *slot = None;
    }
}

#[async_trait]
impl TaxonomyStore for SqliteStore {
    async fn seed_taxonomy(&self, t: &Taxonomy) -> Result<bool, TaxonomyError> {
        let t = t.clone();
        let cached = self.taxonomy.clone();
        self.run(move |c| {
            forget(&cached);
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let n: i64 = tx.query_row("SELECT count(*) FROM specialties", [], |r| r.get(0)).map_err(db)?;
            if n > 0 {
                return Ok(false);
            }
            for (i, r) in t.regions.iter().enumerate() {
                tx.execute("INSERT INTO regions (slug, name, position) VALUES (?1, ?2, ?3)", params![r.slug, r.name, i as i64])
                    .map_err(db)?;
            }
            for (i, s) in t.specialties.iter().enumerate() {
                tx.execute("INSERT INTO specialties (slug, name, position) VALUES (?1, ?2, ?3)", params![s.slug, s.name, i as i64])
                    .map_err(db)?;
                for (j, cat) in s.categories.iter().enumerate() {
                    tx.execute(
                        "INSERT INTO categories (specialty, slug, name, position) VALUES (?1, ?2, ?3, ?4)",
                        params![s.slug, cat.slug, cat.name, j as i64],
                    )
                    .map_err(db)?;
                    for (k, sub) in cat.subcategories.iter().enumerate() {
                        tx.execute(
                            "INSERT INTO subcategories (specialty, category, slug, name, position) VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![s.slug, cat.slug, sub.slug, sub.name, k as i64],
                        )
                        .map_err(db)?;
                    }
                }
            }
            tx.commit().map_err(db)?;
            Ok(true)
        })
        .await
    }

    async fn taxonomy(&self) -> Result<Taxonomy, TaxonomyError> {
        if let Ok(cached) = self.taxonomy.lock()
            && let Some(t) = cached.as_ref()
        {
            return Ok(t.clone());
        }
        let cached = self.taxonomy.clone();
        self.run(move |c| {
            // Deferred: a read snapshot of the four tables, without the write lock.
            let tx = c.transaction_with_behavior(TransactionBehavior::Deferred).map_err(db)?;
            let regions = {
                let mut st = tx.prepare("SELECT slug, name FROM regions ORDER BY position, slug").map_err(db)?;
                let rows = st.query_map([], |r| Ok(Region { slug: r.get(0)?, name: r.get(1)? })).map_err(db)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db)?
            };
            let mut specialties: Vec<Specialty> = {
                let mut st = tx.prepare("SELECT slug, name FROM specialties ORDER BY position, slug").map_err(db)?;
                let rows = st.query_map([], |r| Ok(Specialty { slug: r.get(0)?, name: r.get(1)?, categories: vec![] })).map_err(db)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db)?
            };
            let cats: Vec<(String, Category)> = {
                let mut st = tx.prepare("SELECT specialty, slug, name FROM categories ORDER BY position, slug").map_err(db)?;
                let rows = st
                    .query_map([], |r| Ok((r.get(0)?, Category { slug: r.get(1)?, name: r.get(2)?, subcategories: vec![] })))
                    .map_err(db)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db)?
            };
            let subs: Vec<(String, String, Subcategory)> = {
                let mut st = tx.prepare("SELECT specialty, category, slug, name FROM subcategories ORDER BY position, slug").map_err(db)?;
                let rows =
                    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, Subcategory { slug: r.get(2)?, name: r.get(3)? }))).map_err(db)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db)?
            };
            for (spec, cat) in cats {
                if let Some(s) = specialties.iter_mut().find(|s| s.slug == spec) {
                    s.categories.push(cat);
                }
            }
            for (spec, cat, sub) in subs {
                if let Some(c) =
                    specialties.iter_mut().find(|s| s.slug == spec).and_then(|s| s.categories.iter_mut().find(|c| c.slug == cat))
                {
                    c.subcategories.push(sub);
                }
            }
            let t = Taxonomy { regions, specialties };
            drop(tx);
            // Read on the connection every taxonomy write also goes through (holding its
            // mutex), so no write can slip between this read and the caching.
            if let Ok(mut slot) = cached.lock() {
                *slot = Some(t.clone());
            }
            Ok(t)
        })
        .await
    }

    async fn edit_taxonomy(&self, e: &TaxonomyEdit) -> Result<(), TaxonomyError> {
        let e = e.clone();
        let cached = self.taxonomy.clone();
        self.run(move |c| {
            forget(&cached);
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            match (&e.category, &e.subcategory) {
                (None, None) => {
                    tx.execute(
                        "INSERT INTO specialties (slug, name, position) VALUES (?1, ?2, (SELECT coalesce(max(position), -1) + 1 FROM specialties)) \
                         ON CONFLICT (slug) DO UPDATE SET name = excluded.name",
                        params![e.specialty, e.name],
                    )
                    .map_err(db)?;
                }
                (Some(cat), None) => {
                    let parent: i64 = tx
                        .query_row("SELECT count(*) FROM specialties WHERE slug = ?1", [&e.specialty], |r| r.get(0))
                        .map_err(db)?;
                    if parent == 0 {
                        return Err(TaxonomyError::NoSuchSpecialty);
                    }
                    tx.execute(
                        "INSERT INTO categories (specialty, slug, name, position) VALUES (?1, ?2, ?3, \
                         (SELECT coalesce(max(position), -1) + 1 FROM categories WHERE specialty = ?1)) \
                         ON CONFLICT (specialty, slug) DO UPDATE SET name = excluded.name",
                        params![e.specialty, cat, e.name],
                    )
                    .map_err(db)?;
                }
                (Some(cat), Some(sub)) => {
                    let parent: i64 = tx
                        .query_row("SELECT count(*) FROM categories WHERE specialty = ?1 AND slug = ?2", [&e.specialty, cat], |r| r.get(0))
                        .map_err(db)?;
                    if parent == 0 {
                        return Err(TaxonomyError::NoSuchCategory);
                    }
                    tx.execute(
                        "INSERT INTO subcategories (specialty, category, slug, name, position) VALUES (?1, ?2, ?3, ?4, \
                         (SELECT coalesce(max(position), -1) + 1 FROM subcategories WHERE specialty = ?1 AND category = ?2)) \
                         ON CONFLICT (specialty, category, slug) DO UPDATE SET name = excluded.name",
                        params![e.specialty, cat, sub, e.name],
                    )
                    .map_err(db)?;
                }
                (None, Some(_)) => return Err(TaxonomyError::NoSuchCategory),
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn create_category_request(&self, r: CategoryRequestRecord) -> Result<(), TaxonomyError> {
        self.run(move |c| {
            c.execute(
                "INSERT INTO category_requests (id, practice_id, specialty, name, note, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![r.id.as_bytes().as_slice(), r.practice_id.as_bytes().as_slice(), r.specialty, r.name, r.note, r.status.as_str(), r.created_at],
            )
            .map_err(|e| if is_unique_violation(&e) { TaxonomyError::RequestExists } else { backend(e) })?;
            Ok(())
        })
        .await
    }

    async fn category_requests(&self) -> Result<Vec<CategoryRequestRecord>, TaxonomyError> {
        self.run(|c| {
            let mut st = c
                .prepare(
                    "SELECT id, practice_id, specialty, name, note, status, created_at FROM category_requests ORDER BY created_at DESC, id",
                )
                .map_err(db)?;
            let rows = st
                .query_map([], |r| {
                    Ok(CategoryRequestRecord {
                        id: CategoryRequestId(uuid_of(r.get(0)?)?),
                        practice_id: PracticeId(uuid_of(r.get(1)?)?),
                        specialty: r.get(2)?,
                        name: r.get(3)?,
                        note: r.get(4)?,
                        status: status_of(&r.get::<_, String>(5)?)?,
                        created_at: r.get(6)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn resolve_category_request(
        &self,
        id: CategoryRequestId,
        status: CategoryRequestStatus,
        now: UnixMillis,
    ) -> Result<(), TaxonomyError> {
        let status = status.as_str();
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE category_requests SET status = ?2, resolved_at = ?3 WHERE id = ?1",
                    params![id.as_bytes().as_slice(), status, now],
                )
                .map_err(db)?;
            changed(n, TaxonomyError::NoSuchRequest)
        })
        .await
    }
}

/// A stored category-request status (its wire text); anything else is a decode error.
fn status_of(s: &str) -> rusqlite::Result<CategoryRequestStatus> {
    s.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, Box::new(e)))
}
