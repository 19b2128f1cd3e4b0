//! Group commit: the referral commits and audit entries queued behind one
//! fsync share it.
//!
//! Every [`Commit`], and every audit entry (`AuditStore::append_audit`),
//! goes to one writer connection through a FIFO queue. An audit entry is on
//! no [`Chain`]: it fails alone, like a commit, but breaks nothing.
//! Submitting queues the commit and wakes a task on tokio's blocking pool;
//! whichever task holds the writer connection next takes *everything*
//! queued by then as one batch: `BEGIN IMMEDIATE`, each commit in its own
//! `SAVEPOINT` (a failing commit is rolled back to its savepoint and fails
//! alone), one `COMMIT` (one fsync, `synchronous=FULL`), and only then is
//! each submitter answered, in queue order. While one batch waits for its
//! fsync, the next one queues, so under load a batch holds roughly what
//! arrived during the previous fsync; with one submitter at a time it is a
//! batch of one, as before.
//!
//! A failing commit marks its [`Chain`] broken before anything later runs,
//! so every later commit on that chain (decided on top of the failed one)
//! fails with [`ReferralError::ChainBroken`] without being applied. If the
//! batch's transaction itself fails (its `COMMIT`, or an error that makes
//! SQLite roll the whole transaction back), every commit of the batch fails
//! and nothing of it is stored.
//!
//! The writer has its own connection, apart from the one every other call
//! uses: readers never wait for a batch's fsync (WAL), and other writes wait
//! on SQLite's lock (`busy_timeout`), each in an immediate transaction.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use super::referrals::status_text;
use super::{backend, changed, db, is_unique_violation};
use crate::{AuditError, AuditRecord, Chain, Commit, NewAuditEntry, ReferralError, StoredEvent, Submitted};

type Answer = Result<Vec<StoredEvent>, ReferralError>;

/// One queued write and where its answer goes.
enum Job {
    /// A referral commit on its chain.
    Commit { commit: Box<Commit>, chain: Chain, reply: oneshot::Sender<Answer> },
    /// An audit entry appended to its practice's chain (on no [`Chain`]: it fails alone).
    Audit { entry: NewAuditEntry, reply: oneshot::Sender<Result<AuditRecord, AuditError>> },
}

impl Job {
    /// Answers a job that was not applied, with `why`.
    fn fail(self, why: &str) {
        match self {
            Job::Commit { chain, reply, .. } => {
                chain.set_broken();
                let _ = reply.send(Err(backend(why.to_string())));
            }
            Job::Audit { reply, .. } => {
                let _ = reply.send(Err(backend(why.to_string())));
            }
        }
    }
}

/// A job applied in the batch's transaction, with its answer (sent once the batch is durable).
enum Done {
    Commit { chain: Chain, reply: oneshot::Sender<Answer>, answer: Answer },
    Audit { reply: oneshot::Sender<Result<AuditRecord, AuditError>>, answer: Result<AuditRecord, AuditError> },
}

/// The writer connection and its queue.
pub(super) struct Writer {
    queue: Mutex<VecDeque<Job>>,
    conn: Mutex<Connection>,
    /// Whether a batch takes every queued commit (`true`) or one (`false`:
    /// one transaction and one fsync per commit, for comparison).
    grouped: AtomicBool,
    /// Whether a task is draining the queue (at most one is scheduled at a time).
    draining: AtomicBool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("grouped", &self.grouped.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

impl Writer {
    pub(super) fn new(conn: Connection) -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            conn: Mutex::new(conn),
            grouped: AtomicBool::new(true),
            draining: AtomicBool::new(false),
        }
    }

    pub(super) fn set_grouped(&self, on: bool) {
        self.grouped.store(on, Ordering::Relaxed);
    }

    /// Queues `commit` now and answers once it is durable (or failed).
    pub(super) fn submit(self: &Arc<Self>, commit: Commit, chain: &Chain) -> Submitted {
        let (reply, answer) = oneshot::channel();
        if let Err(why) = self.queue_job(Job::Commit { commit: Box::new(commit), chain: chain.clone(), reply }) {
            return Box::pin(std::future::ready(Err(backend(why))));
        }
        Box::pin(async move { answer.await.map_err(|_| backend::<ReferralError>("the store's writer dropped a commit"))? })
    }

    /// Queues an audit entry now; answers it as appended once it is durable
    /// (it shares the fsync of whatever else is queued with it).
    pub(super) async fn append_audit(self: &Arc<Self>, entry: NewAuditEntry) -> Result<AuditRecord, AuditError> {
        let (reply, answer) = oneshot::channel();
        self.queue_job(Job::Audit { entry, reply }).map_err(backend::<AuditError>)?;
        answer.await.map_err(|_| backend::<AuditError>("the store's writer dropped an audit entry"))?
    }

    /// Queues `job` and, unless a task is draining the queue already, starts
    /// one on the blocking pool.
    fn queue_job(self: &Arc<Self>, job: Job) -> Result<(), &'static str> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| "a commit needs the tokio runtime")?;
        self.queue.lock().map_err(|_| "the commit queue's mutex is poisoned")?.push_back(job);
        if !self.draining.swap(true, Ordering::AcqRel) {
            let me = self.clone();
            // Detached: the task answers through each job's reply whether or not anyone still waits.
            drop(runtime.spawn_blocking(move || me.drain()));
        }
        Ok(())
    }

    /// Takes the writer connection, then commits what is queued as one batch,
    /// again and again until the queue is empty. A job queued while a batch
    /// runs waits for the next batch, so a batch holds what arrived during
    /// the previous one's fsync.
    fn drain(&self) {
        let mut conn = match self.conn.lock() {
            Ok(c) => c,
            Err(_) => {
                for job in self.take() {
                    job.fail("the store's writer mutex is poisoned");
                }
                self.draining.store(false, Ordering::Release);
                return;
            }
        };
        loop {
            let batch = self.take();
            if batch.is_empty() {
                self.draining.store(false, Ordering::Release);
                // A job queued after `take` by a submitter that still saw this task draining (and so
                // started none): take the queue back unless a new task has it already.
                if self.queue_is_empty() || self.draining.swap(true, Ordering::AcqRel) {
                    return;
                }
                continue;
            }
            run_batch(&mut conn, batch);
        }
    }

    fn queue_is_empty(&self) -> bool {
        self.queue.lock().map(|q| q.is_empty()).unwrap_or(true)
    }

    /// Everything queued (or, ungrouped, the oldest commit).
    fn take(&self) -> Vec<Job> {
        let Ok(mut q) = self.queue.lock() else { return Vec::new() };
        if self.grouped.load(Ordering::Relaxed) { q.drain(..).collect() } else { q.pop_front().into_iter().collect() }
    }
}

/// Commits one batch in one transaction, each job in its own savepoint, then answers every job in order.
fn run_batch(conn: &mut Connection, batch: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let why = e.to_string();
        for job in batch {
            job.fail(&why);
        }
        return;
    }
    let mut done: Vec<Done> = Vec::with_capacity(batch.len());
    let mut lost: Option<String> = None;
    for job in batch {
        match job {
            Job::Commit { commit, chain, reply } => {
                let answer =
                    if lost.is_some() || chain.is_broken() { Err(ReferralError::ChainBroken) } else { in_savepoint(conn, &commit) };
                if answer.is_err() {
                    chain.set_broken();
                }
                done.push(Done::Commit { chain, reply, answer });
            }
            Job::Audit { entry, reply } => {
                let answer = match &lost {
                    Some(why) => Err(backend(why.clone())),
                    None => audit_in_savepoint(conn, entry),
                };
                done.push(Done::Audit { reply, answer });
            }
        }
        if lost.is_none() && conn.is_autocommit() {
            // SQLite rolled the whole transaction back (e.g. the disk is full): nothing of the batch is stored.
            lost = Some("the batch's transaction was rolled back".into());
        }
    }
    let outcome = match &lost {
        Some(why) => Err(why.clone()),
        None => conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            e.to_string()
        }),
    };
    for d in done {
        match (d, &outcome) {
            (Done::Commit { reply, answer, .. }, Ok(())) => {
                let _ = reply.send(answer);
            }
            (Done::Commit { chain, reply, .. }, Err(why)) => {
                chain.set_broken();
                let _ = reply.send(Err(backend(why.clone())));
            }
            (Done::Audit { reply, answer }, Ok(())) => {
                let _ = reply.send(answer);
            }
            (Done::Audit { reply, .. }, Err(why)) => {
                let _ = reply.send(Err(backend(why.clone())));
            }
        }
    }
}

/// Appends one audit entry inside its own savepoint (the batch's transaction holds the write lock, so the chain's head cannot move under it).
fn audit_in_savepoint(conn: &mut Connection, entry: NewAuditEntry) -> Result<AuditRecord, AuditError> {
    let sp = conn.savepoint().map_err(db)?;
    let rec = super::audit::append(&sp, entry)?;
    sp.commit().map_err(db)?;
    Ok(rec)
}

/// Applies one commit inside its own savepoint: all of it, or (rolled back to the savepoint) none.
fn in_savepoint(conn: &mut Connection, cm: &Commit) -> Answer {
    let sp = conn.savepoint().map_err(db)?;
    let events = apply(&sp, cm)?;
    sp.commit().map_err(db)?;
    Ok(events)
}

/// The writes of one [`Commit`], in the open transaction.
fn apply(tx: &Connection, cm: &Commit) -> Answer {
    if let Some(i) = &cm.idem {
        let seen: Option<i64> = tx
            .prepare_cached("SELECT 1 FROM idempotency WHERE user_id = ?1 AND key = ?2")
            .map_err(db)?
            .query_row([i.user.as_bytes().as_slice(), i.key.as_bytes().as_slice()], |r| r.get(0))
            .optional()
            .map_err(db)?;
        if seen.is_some() {
            return Err(ReferralError::IdempotencyKeyUsed);
        }
        tx.prepare_cached("INSERT INTO idempotency (user_id, key, command, result, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(db)?
            .execute(params![i.user.as_bytes().as_slice(), i.key.as_bytes().as_slice(), i.command, i.result, cm.now])
            .map_err(db)?;
    }
    if let Some(r) = &cm.insert {
        tx.prepare_cached(
            "INSERT INTO referrals (id, number, from_practice, to_practice, routed_category, routed_sub, status, body, \
             created_at, first_opened_at, free_email) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .map_err(db)?
        .execute(params![
            r.id.as_bytes().as_slice(),
            r.number,
            r.from_practice.as_ref().map(|p| p.as_bytes().as_slice()),
            r.to_practice.as_bytes().as_slice(),
            r.routed_category,
            r.routed_sub,
            status_text(r.status),
            r.body,
            r.created_at,
            r.first_opened_at,
            r.free_email
        ])
        .map_err(|e| if is_unique_violation(&e) { ReferralError::ReferralExists } else { backend(e) })?;
    }
    if let Some(r) = &cm.update {
        let n = tx
            .prepare_cached("UPDATE referrals SET status = ?2, body = ?3, first_opened_at = ?4 WHERE id = ?1")
            .map_err(db)?
            .execute(params![r.id.as_bytes().as_slice(), status_text(r.status), r.body, r.first_opened_at])
            .map_err(db)?;
        changed(n, ReferralError::NoSuchReferral)?;
    }
    for (blob, referral) in &cm.attach {
        let n = tx
            .prepare_cached("UPDATE blobs SET referral = ?2 WHERE id = ?1 AND complete = 1 AND (referral IS NULL OR referral = ?2)")
            .map_err(db)?
            .execute([blob.as_bytes().as_slice(), referral.as_bytes().as_slice()])
            .map_err(db)?;
        changed(n, ReferralError::BlobUnavailable)?;
    }
    let mut out = Vec::with_capacity(cm.events.len());
    for (stream, body) in &cm.events {
        let key = stream.to_string();
        let seq: i64 = tx
            .prepare_cached("SELECT coalesce(max(seq), 0) + 1 FROM events WHERE stream = ?1")
            .map_err(db)?
            .query_row([&key], |r| r.get(0))
            .map_err(db)?;
        tx.prepare_cached("INSERT INTO events (stream, seq, body, created_at) VALUES (?1, ?2, ?3, ?4)")
            .map_err(db)?
            .execute(params![key, seq, body, cm.now])
            .map_err(db)?;
        out.push(StoredEvent { stream: *stream, seq: seq as u64, body: body.clone() });
    }
    for e in &cm.audit {
        for f in [&e.target, &e.address].into_iter().flatten() {
            if f.len() > crate::MAX_AUDIT_FIELD {
                return Err(backend(format!("an audit field is {} bytes, over {}", f.len(), crate::MAX_AUDIT_FIELD)));
            }
        }
        super::audit::append(tx, e.clone()).map_err(|e| backend::<ReferralError>(e.to_string()))?;
    }
    for m in &cm.mail {
        tx.prepare_cached("INSERT INTO mail_outbox (recipient, subject, body, created_at, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?4)")
            .map_err(db)?
            .execute(params![m.recipient, m.subject, m.body, m.now])
            .map_err(db)?;
    }
    Ok(out)
}
