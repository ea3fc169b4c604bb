//! The admin socket's handler: the thin glue between the transport (`admin::server`, which frames,
//! decodes and encodes) and the command layer (`commands`, which decides). Every command the
//! server does not answer itself (`ping`, `version`, `watch`) goes to [`commands::run`], and its
//! error becomes the protocol's error body through the one mapping in `commands`.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::events::EventBus;
use crate::admin::{ErrorBody, Event, Handler, Peer, Reply, Request};
use crate::commands::{self, Context};

/// The gateway's admin handler.
pub struct GatewayHandler {
    ctx: Arc<Context>,
    bus: EventBus,
}

impl GatewayHandler {
    pub fn new(ctx: Arc<Context>, bus: EventBus) -> GatewayHandler {
        GatewayHandler { ctx, bus }
    }
}

impl Handler for GatewayHandler {
    async fn handle(&self, request: Request, _peer: &Peer) -> Result<Reply, ErrorBody> {
        commands::run(&self.ctx, request)
            .await
            .map_err(ErrorBody::from)
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.bus.subscribe()
    }
}
