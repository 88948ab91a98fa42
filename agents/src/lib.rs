//! The five specialist agents of tge-swarm, one folder each. Each folder has its actor shell
//! (`mod.rs`) and pure modules beside it; the queue-consuming agents share the
//! [`worker::WorkerActor`] shell.

pub mod api_reliability;
pub mod data_quality;
pub mod html;
pub mod keyword;
pub mod normalize;
pub mod performance;
pub mod scraping;
pub mod worker;
