//! In-process [`Registry`]: instances with TTL checks, like Consul's agent API. An instance is
//! healthy while its last `pass` is younger than its TTL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Registry, ServiceInstance};
use crate::error::{Error, Result};

#[derive(Debug)]
struct Entry {
    instance: ServiceInstance,
    ttl: Duration,
    last_pass: Option<Instant>,
}

/// The in-process registry.
#[derive(Debug, Default)]
pub struct EmbeddedRegistry {
    entries: Mutex<HashMap<String, Entry>>,
}

impl EmbeddedRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        EmbeddedRegistry::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[async_trait]
impl Registry for EmbeddedRegistry {
    async fn register(&self, instance: &ServiceInstance, ttl: Duration) -> Result<()> {
        let entry = Entry {
            instance: instance.clone(),
            ttl,
            last_pass: None,
        };
        self.lock().insert(instance.id.clone(), entry);
        Ok(())
    }

    async fn deregister(&self, id: &str) -> Result<()> {
        self.lock().remove(id);
        Ok(())
    }

    async fn pass(&self, id: &str) -> Result<()> {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(id) else {
            return Err(Error::not_found("service instance", id));
        };
        entry.last_pass = Some(Instant::now());
        Ok(())
    }

    async fn healthy(&self, service: &str) -> Result<Vec<ServiceInstance>> {
        let now = Instant::now();
        let entries = self.lock();
        let mut healthy = Vec::new();
        for entry in entries.values() {
            let passing = entry
                .last_pass
                .is_some_and(|at| now.duration_since(at) <= entry.ttl);
            if entry.instance.service == service && passing {
                healthy.push(entry.instance.clone());
            }
        }
        healthy.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(healthy)
    }
}
