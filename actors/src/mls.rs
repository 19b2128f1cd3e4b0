//! The practice actor as its MLS group's delivery service.
//!
//! Commits for one practice are handled one at a time by that practice's
//! actor. Each is appended to the practice's MLS log only if it is for the
//! next epoch (the store checks this inside its transaction, so it also holds
//! across server processes sharing one store); the log entry, the practice's
//! new public key and an `epoch_advanced` event on the practice stream commit
//! together, and only then is the event pushed to the practice's subscribers.
//! The actor never reads MLS content: commits and the group's public state
//! (checked by the server's observer before they get here) are opaque bytes to it.

use std::sync::Arc;

use actix::prelude::*;

use handoff_protocol::ws::Event;
use handoff_store::{BackendError, MlsEntryRecord, MlsError, StoredEvent};

use crate::hub::Hub;
use crate::messages::{AppendMls, Deliver};
use crate::practice::{PracticeActor, PracticeStream};
use crate::stream;

impl Handler<AppendMls> for PracticeActor {
    type Result = AtomicResponse<Self, Result<StoredEvent, MlsError>>;

    fn handle(&mut self, msg: AppendMls, ctx: &mut Self::Context) -> Self::Result {
        let shared = self.env.upgrade().map(|env| (env.store.clone(), env.config.metrics.clone()));
        let me = ctx.address();
        let (e, public_state) = (msg.entry, msg.public_state);
        let event = Event::EpochAdvanced { practice: e.practice_id, epoch: e.epoch, committer: e.committer, at: e.created_at };
        AtomicResponse::new(Box::pin(
            async move {
                let (store, metrics) = shared.ok_or_else(|| BackendError::new("shutting down"))?;
                let body = serde_json::to_string(&event).map_err(BackendError::new)?;
                metrics.timed("mls_append", store.mls_append(e, public_state, body)).await
            }
            .into_actor(self)
            .map(move |res, _, _| {
                if let Ok(ev) = &res {
                    // Durable first, then told: the event is in the store before anyone sees it.
                    me.do_send(Deliver { events: vec![ev.clone()] });
                }
                res
            }),
        ))
    }
}

/// Submits one MLS log entry, with the group's public state after it, through
/// the practice's actor. [`MlsError::StaleEpoch`] when another member's commit
/// for that epoch was accepted first.
pub async fn append(hub: &Arc<Hub>, entry: MlsEntryRecord, public_state: Vec<u8>) -> Result<StoredEvent, MlsError> {
    let actor = stream::activate::<PracticeStream>(hub.env(), entry.practice_id).await.map_err(|e| BackendError::new(e.to_string()))?;
    actor.send(AppendMls { entry, public_state }).await.map_err(|e| BackendError::new(e.to_string()))?
}
