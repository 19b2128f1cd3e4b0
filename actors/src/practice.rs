//! The practice stream kind: a practice's inbox (every referral it sent or
//! received, their changes, and its MLS epochs). Its actor is also the
//! practice's MLS delivery service (`mls.rs`).

use std::future::Future;
use std::sync::Arc;

use handoff_protocol::ws::StreamId;
use handoff_protocol::{PracticeId, UserId};
use handoff_store::Store;

use handoff_domain::rights::{Right, may};

use crate::clock::Clock;
use crate::stream::{StreamActor, StreamKind};
use crate::{ApiError, ApiResult};

/// A practice's inbox stream. Activation reads nothing but the stream's head.
pub(crate) struct PracticeStream {
    id: PracticeId,
}

/// The live actor of a practice's inbox.
pub(crate) type PracticeActor = StreamActor<PracticeStream>;

impl StreamKind for PracticeStream {
    type Id = PracticeId;
    const WAKE_ON_DELIVER: bool = true;

    fn stream(id: PracticeId) -> StreamId {
        StreamId::Practice(id)
    }

    fn id(&self) -> PracticeId {
        self.id
    }

    fn load(_: Arc<dyn Store>, id: PracticeId) -> impl Future<Output = ApiResult<Self>> + Send {
        std::future::ready(Ok(Self { id }))
    }

    type Scope = PracticeId;

    fn scope(&self) -> PracticeId {
        self.id
    }

    fn practices(id: PracticeId) -> Vec<PracticeId> {
        vec![id]
    }

    /// Members of the practice in good standing see its inbox
    /// ([`crate::access::standing`]).
    async fn sees(store: Arc<dyn Store>, clock: Clock, user: UserId, id: PracticeId) -> ApiResult<bool> {
        Ok(crate::access::standing(&*store, &clock, id, user).await?.may(Right::Read))
    }

    async fn authorize(store: Arc<dyn Store>, clock: Clock, user: UserId, id: PracticeId) -> ApiResult<()> {
        match crate::access::standing(&*store, &clock, id, user).await? {
            crate::access::Standing::Member(role) if may(role, Right::Read) => Ok(()),
            crate::access::Standing::Member(_) => Err(ApiError::not_found("stream")),
            crate::access::Standing::HeldBack => Err(crate::access::two_factor_required()),
            crate::access::Standing::Outside => Err(ApiError::not_found("stream")),
        }
    }
}
