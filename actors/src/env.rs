//! What every hub actor shares: the store, the tunables, the mailer, the
//! arbiter they run on, the registry of live stream actors, the record of
//! when access last ended at each practice, and a way to hand committed
//! events to the actors that own their streams.
//!
//! The hub owns the one [`Env`]; actors hold it weakly. Delivering to another
//! stream's actor may need to start it, which only the hub can (it alone
//! knows every stream kind), so `Env` reaches the hub through the [`Router`]
//! trait: the actors depend on `Env`, never on the hub's module.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use actix::{Addr, ArbiterHandle};

use handoff_store::{Store, StoredEvent};

use crate::access::Revocations;
use crate::clock::Clock;
use crate::mailer::{Kick, Mailer};
use crate::metrics::Metrics;
use crate::registry::Registry;

/// The hub's tunables, from the server's configuration.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Mailbox capacity of every hub actor.
    pub mailbox: usize,
    /// An actor with no subscribers passivates after this long idle.
    pub idle: Duration,
    /// The public URL, for links in notification emails.
    pub public_url: String,
    /// The server's metrics (the actors record their store commits there).
    pub metrics: Arc<Metrics>,
    /// The clock membership dates are read against (tests move it).
    pub clock: Clock,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            mailbox: 256,
            idle: Duration::from_secs(60),
            public_url: "http://localhost".into(),
            metrics: Arc::default(),
            clock: Clock::default(),
        }
    }
}

/// Hands persisted events to the actors that own their streams (the hub).
pub(crate) trait Router: Send + Sync {
    /// Delivers `events`, grouped by stream, to their streams' actors.
    fn deliver(self: Arc<Self>, events: Vec<StoredEvent>) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// What every hub actor shares.
pub(crate) struct Env {
    pub store: Arc<dyn Store>,
    pub config: HubConfig,
    pub mailer: Addr<Mailer>,
    pub arbiter: ArbiterHandle,
    pub registry: Registry,
    /// When access last ended at each practice (see [`Revocations`]).
    pub revocations: Revocations,
    pub router: Weak<dyn Router>,
}

impl Env {
    /// Delivers committed events to their streams' actors, in the background.
    pub(crate) fn deliver(&self, events: Vec<StoredEvent>) {
        if events.is_empty() {
            return;
        }
        if let Some(router) = self.router.upgrade() {
            actix::spawn(router.deliver(events));
        }
    }

    /// Wakes the mailer: mail was queued in a commit.
    pub(crate) fn kick_mailer(&self) {
        let _ = self.mailer.try_send(Kick);
    }
}
