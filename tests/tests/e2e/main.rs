//! End-to-end tests: whole swarms in process, over a local HTTP server.

// Tests: a panic is how a helper reports a failed expectation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod binance;
mod browser;
mod bus;
mod channels;
mod commands;
mod detection;
mod exchanges;
mod faults;
mod memory;
mod networked;
mod pipeline;
mod social;
mod sources;
mod supervision;
