//! Thin handlers: decode, call a port or an actor, encode. Every route is in the OpenAPI
//! document ([`super::ApiDoc`]).
//!
//! Files: events, feedback and classify in `events.rs`; sources and the watchlist in
//! `catalogue.rs`; actors, memory, health, commands and the registry in `swarm.rs`.

use std::time::Duration;

use swarm_shared::messages::QueenCommand;
use swarm_shared::ports::publish;

use super::AppState;

mod catalogue;
mod events;
mod swarm;

pub use catalogue::*;
pub use events::*;
pub use swarm::*;

const ACTOR_CALL_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) async fn announce(state: &AppState, command: QueenCommand) {
    if let Err(err) = publish(state.ctx.bus.as_ref(), &command).await {
        tracing::warn!(error = %err, "announcing a change failed");
    }
}
