//! Reliability primitives, pure: the per-host circuit breaker and retry delays.

pub mod breaker;
