//! Membership terms on a timer: an end date that passes ends the member's
//! access by itself, and the practice's admins hear of an end date a week ahead.
//!
//! Every [`Config::member_terms_check_ms`](crate::config::Config) the server
//! (one [`check_once`] pass, against the configured [`Clock`]):
//!
//! - removes each member whose end date has passed, with the delegates they
//!   sponsor, and ends their access ([`crate::practices::remove_with_delegates`],
//!   the path a manual removal takes): their live subscriptions to the
//!   practice's streams are cut with `access_ended`, and the key group lists
//!   them for removal, so the first member client online commits it. The
//!   server refused them from the end date on already, before this pass
//!   (`handoff_actors::access::standing` reads the dates on every request);
//! - emails the practice's admins, once per end date, about each member whose
//!   end date is at most [`REMINDER_AHEAD_MS`] away (through the outbox).
//!
//! [`Clock`]: handoff_actors::clock::Clock

use std::time::Duration;

use handoff_protocol::UnixMillis;
use handoff_protocol::v1::Role;

use crate::error::ApiError;
use crate::state::AppState;

/// How far ahead of a member's end date the admins are reminded: one week.
pub const REMINDER_AHEAD_MS: i64 = 7 * 24 * 3600 * 1000;

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Memberships ended (their delegates not counted).
    pub ended: u64,
    /// Reminder emails queued.
    pub reminded: u64,
}

/// A day as `YYYY-MM-DD` (UTC), for the reminder's text.
fn day(at: UnixMillis) -> String {
    // The date part of the audit log's `YYYY-MM-DD HH:MM:SS` (one civil-date conversion for both).
    let mut t = handoff_protocol::audit::utc(at);
    t.truncate("YYYY-MM-DD".len());
    t
}

/// One pass at the configured clock's now.
pub async fn check_once(state: &AppState) -> Checked {
    let now = state.config.clock.now();
    let mut done = Checked::default();
    match state.store.ended(now).await {
        Ok(ended) => {
            for e in ended {
                match crate::practices::remove_with_delegates(state, e.practice, e.user).await {
                    Ok(()) => {
                        done.ended += 1;
                        let event = crate::audit::Event::new(handoff_protocol::audit::AuditAction::MembershipEnded, None, Some(e.practice));
                        if let Err(err) = crate::audit::record(state, None, event.target(e.user)).await {
                            log_failure("record a membership's end in the audit log", &err);
                        }
                        tracing::info!(practice = %e.practice, member = %e.user, "membership ended at its end date");
                    }
                    Err(err) => log_failure("end a membership", &err),
                }
            }
        }
        Err(err) => log_failure("list ended memberships", &ApiError::from(err)),
    }
    match remind(state, now).await {
        Ok(n) => done.reminded = n,
        Err(err) => log_failure("remind admins of end dates", &err),
    }
    done
}

fn log_failure(what: &str, err: &ApiError) {
    tracing::warn!(part = what, error = %err.message, "member terms: part failed; the next pass retries");
}

/// Emails each practice's admins about end dates within a week, once each.
async fn remind(state: &AppState, now: UnixMillis) -> Result<u64, ApiError> {
    let mut sent = 0;
    for e in state.store.reminders_due(now, now.saturating_add(REMINDER_AHEAD_MS)).await? {
        // Marked first: a reminder goes at most once, even if two passes overlap.
        if !state.store.mark_reminded(e.practice, e.user, e.ends_at).await? {
            continue;
        }
        let Some(p) = state.store.practice(e.practice).await? else { continue };
        let members = state.store.members(e.practice).await?;
        let Some(who) = members.iter().find(|m| m.user.id == e.user) else { continue };
        let (name, when) = (who.user.display_name.clone(), day(e.ends_at));
        for admin in members.iter().filter(|m| m.role == Role::Admin && m.user.id != e.user) {
            let body = format!(
                "{name}'s membership of {practice} on Handoff ends on {when} (UTC). From then on they can no longer see \
                 the practice's referrals, and the practice's key group removes them.\n\n\
                 To keep them, change or clear the end date on the practice's members page: {url}/\n",
                practice = p.name,
                url = state.config.public_url(),
            );
            state.send_mail(&admin.user.email, &format!("Handoff: {name}'s membership of {} ends on {when}", p.name), body).await?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// Runs [`check_once`] every `config.member_terms_check_ms` on the current
/// actix runtime, until the server stops.
pub fn start(state: AppState) {
    let every = Duration::from_millis(state.config.member_terms_check_ms.max(10));
    actix_web::rt::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            check_once(&state).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reminder_names_the_day_in_utc() {
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(951_782_400_000), "2000-02-29");
        assert_eq!(day(1_798_761_600_000 - 1), "2026-12-31");
        assert_eq!(day(1_798_761_600_000), "2027-01-01");
    }

    #[test]
    fn practice_errors_map_to_api_errors() {
        let e: ApiError = handoff_store::PracticeError::NotMember.into();
        assert!(!e.message.is_empty());
    }
}
