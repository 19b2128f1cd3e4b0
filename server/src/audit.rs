//! The audit log's server side: recording what the server serves and who
//! changed what ([`record`]), and reading a practice's log or the platform's
//! (`GET /practices/{id}/audit`, its CSV twin, `GET /admin/audit`).
//!
//! Entries carry ids, an action word and the client address, never content
//! (no names, no message text, no email addresses). The server logs what it
//! serves; a client that decrypts what it already holds is invisible to it.
//! The chain itself (hashing, verification, pruning anchors) is in
//! `handoff_store::audit`.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, web};

use handoff_protocol::audit::{AUDIT_PAGE, AuditAction, AuditPage, AuditQuery, AuditRow};
use handoff_protocol::{PracticeId, UnixMillis, UserId};
use handoff_store::{AuditFilter, AuditRecord, NewAuditEntry, ReferralRecord, Store};

use crate::auth::{Authed, client_ip};
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, now};

/// The user `user` acts on behalf of in `practice`: their sponsor, if they
/// are a delegate there (`TermsStore::sponsor_of`), so every audit entry a
/// delegate makes names the sponsor without touching the callers. The stored
/// sponsor is read, not only one in force: an entry about a delegate whose
/// term has just ended still says for whom they acted.
pub async fn on_behalf_of(store: &dyn Store, practice: PracticeId, user: UserId) -> ApiResult<Option<UserId>> {
    Ok(store.sponsor_of(practice, user).await?)
}

/// What happened, to whom and where; [`record`] adds the time, the client
/// address and, for a practice entry, the actor's sponsor.
#[derive(Clone, Debug)]
pub struct Event {
    /// What happened.
    pub action: AuditAction,
    /// Who did it.
    pub actor: Option<UserId>,
    /// The chain: the practice, or `None` for the platform chain.
    pub practice: Option<PracticeId>,
    /// What it was done to, as an id.
    pub target: Option<String>,
}

impl Event {
    /// `actor` did `action` in `practice`'s chain (or the platform's).
    pub fn new(action: AuditAction, actor: Option<UserId>, practice: Option<PracticeId>) -> Self {
        Self { action, actor, practice, target: None }
    }

    /// The same event, done to `target` (an id).
    pub fn target(mut self, target: impl std::fmt::Display) -> Self {
        self.target = Some(target.to_string());
        self
    }
}

/// Appends `event` to its chain with the client address of `req` (the one
/// the rate limits use, `auth::client_ip`), or none for work no request
/// carries. A failure fails the caller's request: nothing is served unrecorded.
pub async fn record(state: &AppState, req: Option<&HttpRequest>, event: Event) -> ApiResult<()> {
    let address = req.map(|r| client_ip(r, state).to_string());
    record_at(state, address, event).await
}

/// As [`record`], with the client address already known (the WebSocket keeps it from its upgrade).
pub async fn record_at(state: &AppState, address: Option<String>, event: Event) -> ApiResult<()> {
    record_in(&*state.store, address, event).await
}

/// As [`record_at`], on a store alone (for the actors' side and the CLI).
pub async fn record_in(store: &dyn Store, address: Option<String>, event: Event) -> ApiResult<()> {
    let on_behalf_of = match (event.practice, event.actor) {
        (Some(p), Some(u)) => on_behalf_of(store, p, u).await?,
        _ => None,
    };
    store
        .append_audit(NewAuditEntry {
            at: now(),
            actor: event.actor,
            on_behalf_of,
            practice: event.practice,
            action: event.action,
            target: event.target,
            address,
        })
        .await?;
    Ok(())
}

/// An invite's target: a short, one-way id of its token (the invitee's email
/// is never recorded) and the role it grants. The same id names the invite
/// when it is accepted.
pub fn invite_target(token_hash: &[u8], role: handoff_protocol::v1::Role) -> String {
    let role = match role {
        handoff_protocol::v1::Role::Admin => "admin",
        handoff_protocol::v1::Role::Member => "member",
        handoff_protocol::v1::Role::Delegate => "delegate",
    };
    format!("invite:{}:{role}", hex(token_hash.get(..8).unwrap_or(token_hash)))
}

/// The entry for `user` accepting `inv`, in the invite's practice chain.
pub fn invite_accepted(inv: &handoff_store::InviteRecord, user: UserId) -> Event {
    Event::new(AuditAction::InviteAccepted, Some(user), Some(inv.practice_id)).target(invite_target(&inv.token_hash, inv.role))
}

/// Records an account event (sign-in, sign-out, a failed sign-in, a kit
/// reset, a two-factor change) in the platform chain, and in the chain of
/// every practice `user` belongs to, so each practice's admins see their
/// members' account events.
pub async fn record_account(state: &AppState, req: &HttpRequest, action: AuditAction, user: UserId) -> ApiResult<()> {
    let address = Some(client_ip(req, state).to_string());
    record_at(state, address.clone(), Event::new(action, Some(user), None).target(user)).await?;
    for (p, _) in state.store.practices_of(user).await? {
        record_at(state, address.clone(), Event::new(action, Some(user), Some(p.id)).target(user)).await?;
    }
    Ok(())
}

/// The practices of a referral's parties that `user` is a member of: the
/// chains in which serving it to them is recorded.
pub async fn reader_practices(store: &dyn Store, user: UserId, rec: &ReferralRecord) -> ApiResult<Vec<PracticeId>> {
    handoff_actors::audit::reader_practices(store, user, rec.from_practice.into_iter().chain([rec.to_practice])).await
}

/// Records that part of referral `rec` (`target`: the referral's or a blob's
/// id) was served to `user`, in the chain of each of its practices they belong to.
pub async fn record_served(
    state: &AppState,
    req: &HttpRequest,
    action: AuditAction,
    user: UserId,
    rec: &ReferralRecord,
    target: String,
) -> ApiResult<()> {
    let address = Some(client_ip(req, state).to_string());
    for p in reader_practices(&*state.store, user, rec).await? {
        record_at(state, address.clone(), Event::new(action, Some(user), Some(p)).target(&target)).await?;
    }
    Ok(())
}

/// Records a member's first open of a referral: their first live subscription
/// to its stream, or their `mark_opened` (which the web client sends when a
/// receiver first shows a referral). "First" is decided by the log itself: the entry is written
/// unless the practice's chain already holds a `referral_opened` entry by
/// this user for this referral (so, once per user, referral and practice;
/// after pruning removed that entry, the next open is recorded again). Two
/// subscriptions at the same instant may both be recorded: a duplicate, never a gap.
pub async fn record_first_open(store: &dyn Store, address: Option<String>, user: UserId, rec: &ReferralRecord) -> ApiResult<()> {
    let target = rec.id.to_string();
    for p in reader_practices(store, user, rec).await? {
        let seen = store
            .audit_entries(AuditFilter {
                practice: Some(p),
                member: Some(user),
                action: Some(AuditAction::ReferralOpened),
                target: Some(target.clone()),
                limit: 1,
                ..Default::default()
            })
            .await?;
        if seen.iter().any(|r| r.entry.actor == Some(user)) {
            continue;
        }
        record_in(store, address.clone(), Event::new(AuditAction::ReferralOpened, Some(user), Some(p)).target(&target)).await?;
    }
    Ok(())
}

/// What `handoff admin verify-audit` prints: one line per verified chain
/// (its entries and its head's seq and hash, worth keeping elsewhere: a head
/// recorded outside the server shows a later rewrite of the chain), then the
/// broken link, if any.
pub fn report_text(report: &handoff_store::AuditReport) -> String {
    let mut out = String::new();
    for c in &report.chains {
        let chain = c.practice.map_or_else(|| "platform".to_string(), |p| format!("practice {p}"));
        let head = c.head.as_ref().map_or_else(|| "empty".to_string(), |h| format!("head {} {}", h.seq, hex(&h.hash)));
        out.push_str(&format!("ok\t{chain}\tentries={}\t{head}\n", c.entries));
    }
    match &report.broken {
        Some(b) => out.push_str(&format!("BROKEN\t{b}\n")),
        None => out.push_str(&format!(
            "verified\t{} chains\t{} entries\n",
            report.chains.len(),
            report.chains.iter().map(|c| c.entries).sum::<u64>()
        )),
    }
    out
}

/// A `YYYY-MM-DD` day as the Unix millisecond of its UTC midnight.
fn day_start(field: &str, s: &str) -> ApiResult<UnixMillis> {
    let bad = || ApiError::invalid(format!("{field} must be a date as YYYY-MM-DD, not {s:?}"));
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if d == 0 || d > days_in {
        return Err(bad());
    }
    // Days from the civil date (H. Hinnant's algorithm).
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400_000)
}

/// The store filter a query asks for, checked: a bad date, an unknown action
/// or a range that ends before it starts is `validation_failed`.
fn filter(practice: Option<PracticeId>, q: &AuditQuery) -> ApiResult<AuditFilter> {
    let action = match &q.action {
        None => None,
        Some(a) if a.is_empty() => None,
        Some(a) => Some(a.parse::<AuditAction>().map_err(|e| ApiError::invalid(format!("action: {e}")))?),
    };
    let from = q.from.as_deref().filter(|s| !s.is_empty()).map(|s| day_start("from", s)).transpose()?;
    let until = q.to.as_deref().filter(|s| !s.is_empty()).map(|s| day_start("to", s).map(|t| t + 86_400_000)).transpose()?;
    if let (Some(f), Some(u)) = (from, until)
        && u <= f
    {
        return Err(ApiError::invalid("to must not be before from"));
    }
    Ok(AuditFilter { practice, member: q.member, action, target: None, from, until, before: q.before, limit: AUDIT_PAGE })
}

/// The rows of one chain matching `q`, newest first, with the actors' names
/// looked up now: what the screen shows and, page after page, what the CSV holds.
async fn rows(state: &AppState, f: AuditFilter) -> ApiResult<(Vec<AuditRow>, Option<u64>)> {
    let records: Vec<AuditRecord> = state.store.audit_entries(f.clone()).await?;
    let next_before = if records.len() as u32 >= f.limit { records.last().map(|r| r.seq) } else { None };
    let mut names: HashMap<UserId, Option<String>> = HashMap::new();
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let mut name_of = async |u: Option<UserId>| -> ApiResult<Option<String>> {
            let Some(u) = u else { return Ok(None) };
            if let Some(n) = names.get(&u) {
                return Ok(n.clone());
            }
            let n = state.store.user_by_id(u).await?.map(|x| x.display_name);
            names.insert(u, n.clone());
            Ok(n)
        };
        let actor_name = name_of(r.entry.actor).await?;
        let on_behalf_of_name = name_of(r.entry.on_behalf_of).await?;
        out.push(AuditRow {
            seq: r.seq,
            at: r.entry.at,
            action: r.entry.action,
            actor: r.entry.actor,
            actor_name,
            on_behalf_of: r.entry.on_behalf_of,
            on_behalf_of_name,
            target: r.entry.target,
            address: r.entry.address,
            hash: hex(&r.hash),
        });
    }
    Ok((out, next_before))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One page of a chain's log.
pub async fn page(state: &AppState, practice: Option<PracticeId>, q: &AuditQuery) -> ApiResult<AuditPage> {
    let (entries, next_before) = rows(state, filter(practice, q)?).await?;
    Ok(AuditPage { practice, entries, next_before })
}

/// Every row matching `q` (all pages, newest first), as the CSV exports them.
pub async fn all_rows(state: &AppState, practice: Option<PracticeId>, q: &AuditQuery) -> ApiResult<Vec<AuditRow>> {
    let mut f = filter(practice, q)?;
    let mut all = Vec::new();
    loop {
        let (mut rows, next) = rows(state, f.clone()).await?;
        all.append(&mut rows);
        match next {
            Some(b) => f.before = Some(b),
            None => return Ok(all),
        }
    }
}

pub use handoff_protocol::audit::{CSV_HEADER, utc};

/// The rows as CSV (RFC 4180, through the `csv` crate), a header line first.
pub fn csv_of(rows: &[AuditRow]) -> ApiResult<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER).map_err(ApiError::internal)?;
    let opt = |u: &Option<UserId>| u.map(|u| u.to_string()).unwrap_or_default();
    for r in rows {
        w.write_record([
            r.seq.to_string(),
            utc(r.at),
            r.action.as_str().to_string(),
            opt(&r.actor),
            r.actor_name.clone().unwrap_or_default(),
            opt(&r.on_behalf_of),
            r.on_behalf_of_name.clone().unwrap_or_default(),
            r.target.clone().unwrap_or_default(),
            r.address.clone().unwrap_or_default(),
            r.hash.clone(),
        ])
        .map_err(ApiError::internal)?;
    }
    w.into_inner().map_err(ApiError::internal)
}

/// `GET /api/v1/practices/{id}/audit`: the practice's admins only. Anyone
/// outside the practice gets `not_found`, a member who is not an admin
/// `forbidden`, as for every admin-only practice route.
pub async fn practice_log(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<PracticeId>,
    q: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    let p = crate::practices::admin_of(&state, *id, &who).await?;
    let page = page(&state, Some(p.id), &q).await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(page))
}

/// `GET /api/v1/practices/{id}/audit.csv`: every entry the same filters
/// select, as a CSV download; the same refusals as [`practice_log`].
pub async fn practice_csv(
    state: web::Data<AppState>,
    who: Authed,
    id: web::Path<PracticeId>,
    q: web::Query<AuditQuery>,
) -> ApiResult<HttpResponse> {
    let p = crate::practices::admin_of(&state, *id, &who).await?;
    let body = csv_of(&all_rows(&state, Some(p.id), &q).await?)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Content-Type", "text/csv; charset=utf-8"))
        .insert_header(("Content-Disposition", format!("attachment; filename=\"audit-{}.csv\"", p.id)))
        .body(body))
}

/// `GET /api/v1/admin/audit`: the platform chain (staff actions, account
/// events tied to no practice); platform staff only.
pub async fn platform_log(state: web::Data<AppState>, who: Authed, q: web::Query<AuditQuery>) -> ApiResult<HttpResponse> {
    crate::admin::staff(&who)?;
    let page = page(&state, None, &q).await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_times_convert_both_ways() {
        assert_eq!(day_start("from", "1970-01-01").unwrap(), 0);
        assert_eq!(day_start("from", "2026-12-01").unwrap(), 1_796_083_200_000);
        assert_eq!(utc(1_796_083_200_000 + 3_723_000), "2026-12-01 01:02:03");
        assert_eq!(utc(day_start("from", "2024-02-29").unwrap()), "2024-02-29 00:00:00");
        for bad in ["2026-02-30", "2026-13-01", "26-01-01", "2026-1-01", "yesterday", "2025-02-29", ""] {
            assert!(day_start("from", bad).is_err(), "{bad}");
        }
    }
}
