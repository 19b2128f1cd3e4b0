//! Metrics over HTTP: the request middleware on the public port, and the
//! metrics listener's app (`GET /metrics` on `--metrics-bind`, never on the
//! public port).
//!
//! The series themselves are [`handoff_actors::metrics::Metrics`]. Every label
//! value recorded here comes from a fixed set: a route pattern of
//! [`handoff_protocol::api::ALL`] (a request no route matched is `unmatched`),
//! a method name, a status, a command name of [`COMMANDS`] (`unknown` for a
//! frame whose command could not be read) and an error code's wire name.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use handoff_actors::metrics::{CONTENT_TYPE, Metrics};
use handoff_protocol::api::ALL;
use handoff_protocol::ws::{COMMANDS, Command};

use crate::error::ApiError;
use crate::state::{AppState, now};

/// The route label of a request no route pattern matched.
pub const UNMATCHED: &str = "unmatched";
/// The command label of a frame whose command could not be read.
pub const UNKNOWN_COMMAND: &str = "unknown";

/// The route label for a matched pattern: the pattern as `protocol::api`
/// spells it, or [`UNMATCHED`] for anything else (never the request's path).
pub fn route_label(pattern: Option<&str>) -> &'static str {
    pattern.and_then(|p| ALL.iter().find(|(_, path)| *path == p)).map_or(UNMATCHED, |(_, path)| path)
}

/// The method label: the standard methods by name, `other` for the rest.
pub fn method_label(m: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method as M;
    match *m {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        M::PATCH => "PATCH",
        _ => "other",
    }
}

/// A command's wire name (one of [`COMMANDS`]).
pub fn command_label(cmd: &Command) -> &'static str {
    match cmd {
        Command::Subscribe { .. } => "subscribe",
        Command::Unsubscribe { .. } => "unsubscribe",
        Command::SendReferral { .. } => "send_referral",
        Command::MarkOpened { .. } => "mark_opened",
        Command::Accept { .. } => "accept",
        Command::Reject { .. } => "reject",
        Command::ChangeCategory { .. } => "change_category",
        Command::ChangeUrgency { .. } => "change_urgency",
        Command::Cancel { .. } => "cancel",
        Command::AddAttachment { .. } => "add_attachment",
        Command::PostMessage { .. } => "post_message",
        Command::RoomHost { .. } => "room_host",
        Command::RoomHostStatus { .. } => "room_host_status",
        Command::RoomLeave { .. } => "room_leave",
        Command::RoomAdmit { .. } => "room_admit",
        Command::RoomReturn { .. } => "room_return",
        Command::RoomRemove { .. } => "room_remove",
        Command::RoomHandOver { .. } => "room_hand_over",
        Command::RoomMessage { .. } => "room_message",
        Command::RoomEnd { .. } => "room_end",
        Command::RoomSignal { .. } => "room_signal",
        Command::GuestCheckIn { .. } => "guest_check_in",
        Command::GuestSignal { .. } => "guest_signal",
        Command::GuestLeave {} => "guest_leave",
    }
}

/// The command label of a frame that could not be decoded: its `cmd.type`
/// if that is a known command's name (taken from [`COMMANDS`], not from the
/// frame), else [`UNKNOWN_COMMAND`].
pub fn undecoded_command_label(text: &str) -> &'static str {
    let v: Option<serde_json::Value> = serde_json::from_str(text).ok();
    let name = v.as_ref().and_then(|v| v.pointer("/cmd/type")).and_then(serde_json::Value::as_str);
    name.and_then(|n| COMMANDS.iter().find(|c| **c == n)).copied().unwrap_or(UNKNOWN_COMMAND)
}

/// Middleware on the public port: counts every request by method, route
/// pattern and status, and observes its latency.
pub async fn record(
    metrics: Arc<Metrics>,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = route_label(req.match_pattern().as_deref());
    let res = next.call(req).await;
    let status = match &res {
        Ok(r) => r.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    metrics.http(method, route, status.as_u16(), started.elapsed());
    res
}

/// `GET /metrics` on the metrics listener: reads the live actor counts and
/// the mail outbox (from the store) into their gauges, then renders every series.
async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    let (practices, referrals) = state.hub.live();
    state.metrics.set_live(practices, referrals);
    match state.store.outbox().await {
        Ok(o) => {
            let age = o.oldest_queued_at.map_or(0, |t| now().saturating_sub(t).max(0));
            state.metrics.set_outbox(o.unsent, Duration::from_millis(u64::try_from(age).unwrap_or(0)));
        }
        Err(e) => tracing::warn!(error = %e, "metrics: the mail outbox is unreadable; its gauges keep their last values"),
    }
    HttpResponse::Ok().content_type(CONTENT_TYPE).insert_header(("Cache-Control", "no-store")).body(state.metrics.render())
}

async fn no_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::no_route())
}

/// The metrics listener's routes: `GET /metrics`, and `no_route` for anything else.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(scrape)).default_service(web::to(no_route));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_listener_is_off_by_default_and_set_by_metrics_bind() {
        let p = std::path::Path::new("handoff.toml");
        let c = crate::Config::parse("", p).unwrap();
        assert_eq!((c.metrics_bind, c.log_format), (None, crate::logging::LogFormat::Text));
        let c = crate::Config::parse("metrics_bind = \"127.0.0.1:9100\"\nlog_format = \"json\"", p).unwrap();
        assert_eq!(c.metrics_bind, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(c.log_format, crate::logging::LogFormat::Json);
    }

    #[test]
    fn route_labels_are_protocol_patterns_and_never_paths() {
        use handoff_protocol::api::{Endpoint as _, GetReferral};
        assert_eq!(route_label(Some(GetReferral::PATH)), GetReferral::PATH);
        let concrete = GetReferral::path(&handoff_protocol::ws::ReferralId(uuid::Uuid::from_u128(0x6f1c2a4e)));
        assert_eq!(route_label(Some(&concrete)), UNMATCHED);
        assert_eq!(route_label(Some("/{tail}*")), UNMATCHED);
        assert_eq!(route_label(None), UNMATCHED);
    }

    #[test]
    fn an_undecoded_frame_is_labelled_by_a_known_command_name_or_unknown() {
        assert_eq!(undecoded_command_label(r#"{"id":1,"cmd":{"type":"accept","referral":42}}"#), "accept");
        assert_eq!(undecoded_command_label(r#"{"id":1,"cmd":{"type":"x@example.org"}}"#), UNKNOWN_COMMAND);
        assert_eq!(undecoded_command_label("{not json"), UNKNOWN_COMMAND);
    }

    #[test]
    fn every_command_label_is_a_wire_command_name() {
        let json = serde_json::json!({"type": "cancel", "referral": "6f1c2a4e-0000-4000-8000-000000000000"});
        let cmd: Command = serde_json::from_value(json).unwrap();
        assert_eq!(command_label(&cmd), "cancel");
        assert!(COMMANDS.contains(&command_label(&cmd)));
    }
}
