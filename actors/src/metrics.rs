//! The server's Prometheus metrics: one [`Metrics`] per server, shared by
//! the hub's actors (store commits) and the HTTP and WebSocket layers
//! (requests, sockets, commands, events, slow consumers), rendered in the
//! OpenMetrics text format for the metrics listener (`--metrics-bind`).
//!
//! **No label carries an identifier.** Every label value is a `&'static
//! str` (or an HTTP status): a route pattern from `protocol::api`, a command
//! name from `protocol::ws::COMMANDS`, an error code's wire name, a stream
//! kind, a store call's name. Nothing built at run time (an id, an email, a
//! token, a path, a referral number) can become a label, because none of
//! those is `'static`. `server/tests/integration/metrics.rs` scrapes after a
//! scenario and checks that no identifier appears.
//!
//! There is no global registry: each server (and each test server in one
//! process) has its own, so what one scrape reports is that server's alone.

use std::future::Future;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The media type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A stream kind, for the live-actor gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// A WebSocket command and what came of it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    command: &'static str,
    outcome: &'static str,
}

/// The store call an actor made.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    call: &'static str,
}

/// An HTTP request: its method, route pattern and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

/// An HTTP request's route, for the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 0.5 ms to about 16 s (doubling).
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every series the server reports, and its registry.
pub struct Metrics {
    registry: Registry,
    sockets: Gauge,
    actors: Family<KindLabels, Gauge>,
    commands: Family<CommandLabels, Counter>,
    commit_seconds: HistogramFamily<CallLabels>,
    commits: Family<CallLabels, Counter>,
    events: Counter,
    slow_consumers: Counter,
    outbox_depth: Gauge,
    outbox_oldest: Gauge<f64, std::sync::atomic::AtomicU64>,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: HistogramFamily<RouteLabels>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of series, all at zero, registered under the `handoff_` prefix.
    pub fn new() -> Self {
        let mut root = Registry::default();
        let r = root.sub_registry_with_prefix("handoff");
        let sockets = Gauge::default();
        r.register("ws_sockets", "Open WebSockets", sockets.clone());
        let actors = Family::<KindLabels, Gauge>::default();
        r.register("live_actors", "Live stream actors by kind (practice, referral), counted when scraped", actors.clone());
        let commands = Family::<CommandLabels, Counter>::default();
        r.register("ws_commands", "WebSocket commands by type and outcome (ok or the error code)", commands.clone());
        let commit_seconds: HistogramFamily<CallLabels> = Family::new_with_constructor(latency);
        r.register(
            "store_commit_seconds",
            "Latency of the durable store writes the actors make (commit, mls_append)",
            commit_seconds.clone(),
        );
        let commits = Family::<CallLabels, Counter>::default();
        r.register(
            "store_commits",
            "Durable store writes the actors make, each one transaction synced to disk (an fsync of the WAL)",
            commits.clone(),
        );
        let events = Counter::default();
        r.register("ws_events_pushed", "Stream events written to WebSockets (live and replayed)", events.clone());
        let slow_consumers = Counter::default();
        r.register("ws_slow_consumer_closes", "WebSockets closed as slow consumers (close code 4008)", slow_consumers.clone());
        let outbox_depth = Gauge::default();
        r.register("mail_outbox_depth", "Mail queued and not yet sent, read from the store when scraped", outbox_depth.clone());
        let outbox_oldest = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        r.register(
            "mail_outbox_oldest_age_seconds",
            "Age of the oldest unsent mail (0 when none), read when scraped",
            outbox_oldest.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        r.register("http_requests", "HTTP requests by method, route pattern and status", http_requests.clone());
        let http_seconds: HistogramFamily<RouteLabels> = Family::new_with_constructor(latency);
        r.register("http_request_seconds", "HTTP request latency by method and route pattern", http_seconds.clone());
        Self {
            registry: root,
            sockets,
            actors,
            commands,
            commit_seconds,
            commits,
            events,
            slow_consumers,
            outbox_depth,
            outbox_oldest,
            http_requests,
            http_seconds,
        }
    }

    /// Counts a socket as open until the returned guard is dropped.
    pub fn socket_opened(&self) -> SocketGuard {
        self.sockets.inc();
        SocketGuard { gauge: self.sockets.clone() }
    }

    /// Records a WebSocket command (`command`: its wire name, or `unknown`)
    /// and its outcome (`ok`, or the error code's wire name).
    pub fn command(&self, command: &'static str, outcome: &'static str) {
        self.commands.get_or_create(&CommandLabels { command, outcome }).inc();
    }

    /// Records one durable store write by an actor: which call, how long it
    /// took, and (if it committed) one more commit synced to disk.
    pub fn commit(&self, call: &'static str, took: Duration, committed: bool) {
        if committed {
            self.commits.get_or_create(&CallLabels { call }).inc();
        }
        self.commit_seconds.get_or_create(&CallLabels { call }).observe(took.as_secs_f64());
    }

    /// Runs the store write `write` (named `call`) and records it with [`Metrics::commit`].
    pub async fn timed<T, E>(&self, call: &'static str, write: impl Future<Output = Result<T, E>>) -> Result<T, E> {
        let started = Instant::now();
        let res = write.await;
        self.commit(call, started.elapsed(), res.is_ok());
        res
    }

    /// Counts `n` stream events written to a socket.
    pub fn events_pushed(&self, n: u64) {
        self.events.inc_by(n);
    }

    /// Counts a socket closed as a slow consumer.
    pub fn slow_consumer_closed(&self) {
        self.slow_consumers.inc();
    }

    /// Sets the live actor counts (at scrape time).
    pub fn set_live(&self, practices: usize, referrals: usize) {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.actors.get_or_create(&KindLabels { kind: "practice" }).set(n(practices));
        self.actors.get_or_create(&KindLabels { kind: "referral" }).set(n(referrals));
    }

    /// Sets the mail outbox's depth and the age of its oldest unsent mail.
    pub fn set_outbox(&self, depth: u64, oldest_age: Duration) {
        self.outbox_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.outbox_oldest.set(oldest_age.as_secs_f64());
    }

    /// Records an HTTP request by its route pattern (never its path).
    pub fn http(&self, method: &'static str, route: &'static str, status: u16, took: Duration) {
        self.http_requests.get_or_create(&HttpLabels { method, route, status }).inc();
        self.http_seconds.get_or_create(&RouteLabels { method, route }).observe(took.as_secs_f64());
    }

    /// Every series, in the OpenMetrics text format (which Prometheus scrapes).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an encoding error would leave a partial text.
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        out
    }
}

/// An open socket, counted in the open-sockets gauge until dropped.
#[derive(Debug)]
pub struct SocketGuard {
    gauge: Gauge,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_rendered_with_the_handoff_prefix_and_its_labels() {
        let m = Metrics::new();
        let _s = m.socket_opened();
        m.command("accept", "ok");
        m.commit("commit", Duration::from_millis(3), true);
        m.commit("commit", Duration::from_millis(3), false);
        let route = <handoff_protocol::api::GetReferral as handoff_protocol::api::Endpoint>::PATH;
        m.http("GET", route, 200, Duration::from_millis(1));
        m.set_live(2, 1);
        m.set_outbox(3, Duration::from_secs(5));
        let text = m.render();
        let requests = format!(r#"handoff_http_requests_total{{method="GET",route="{route}",status="200"}} 1"#);
        let latency = format!(r#"handoff_http_request_seconds_count{{method="GET",route="{route}"}} 1"#);
        for line in [
            "handoff_ws_sockets 1",
            r#"handoff_live_actors{kind="practice"} 2"#,
            r#"handoff_ws_commands_total{command="accept",outcome="ok"} 1"#,
            r#"handoff_store_commits_total{call="commit"} 1"#,
            r#"handoff_store_commit_seconds_count{call="commit"} 2"#,
            "handoff_ws_events_pushed_total 0",
            "handoff_ws_slow_consumer_closes_total 0",
            "handoff_mail_outbox_depth 3",
            "handoff_mail_outbox_oldest_age_seconds 5.0",
            requests.as_str(),
            latency.as_str(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing from:\n{text}");
        }
        drop(_s);
        assert!(m.render().lines().any(|l| l == "handoff_ws_sockets 0"), "a dropped guard closes the socket");
    }
}
