//! Handoff's actors, on actix 0.13.
//!
//! Today: the [`mailer::Mailer`], which drains the persisted mail outbox.
//! The hub issue adds the Hub registry, PracticeActor, ReferralActor and
//! RoutingActor here. Actor code stays behind our own small message types so
//! that a move off actix (in passive maintenance upstream) stays cheap.
//!
//! Actors never decrypt: this crate does not depend on `handoff-crypto`.

pub mod mailer;

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
