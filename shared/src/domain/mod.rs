//! Domain types: agents, sources, companies (watchlist), documents, detections and TGE
//! events. These are the shapes stored, queued and served by the API.
//!
//! One file per aggregate; every type is re-exported here, so `crate::domain::X` names them all.

mod agents;
mod alerts;
mod companies;
mod connectors;
mod dates;
mod documents;
mod events;
mod keys;
mod memory;
mod search;
mod source_health;
mod sources;
mod subscriptions;
mod supervision;
mod text;
mod trading;
mod workflow;

pub use agents::*;
pub use alerts::*;
pub use companies::*;
pub use connectors::*;
pub use dates::*;
pub use documents::*;
pub use events::*;
pub use keys::*;
pub use memory::*;
pub use search::*;
pub use source_health::*;
pub use sources::*;
pub use subscriptions::*;
pub use supervision::*;
pub use text::*;
pub use trading::*;
pub use workflow::*;

#[cfg(test)]
mod tests;
