//! [`Registry`] on Consul's HTTP agent API, through reqwest. The Consul crates on crates.io are
//! abandoned or only register through the catalog (no agent registration, no TTL checks), so
//! this is a thin client for the four endpoints the swarm uses:
//!
//! * `PUT /v1/agent/service/register` with a TTL check and `DeregisterCriticalServiceAfter`;
//! * `PUT /v1/agent/check/pass/service:<id>` on every heartbeat;
//! * `PUT /v1/agent/service/deregister/<id>` on a clean stop;
//! * `GET /v1/health/service/<name>?passing` for discovery.
//!
//! The ACL token, if any, goes in `X-Consul-Token`. The client remembers what it registered:
//! when a pass fails because Consul does not know the check (Consul restarted, or the first
//! registration failed while Consul was down), it registers again and passes, so a registry
//! outage heals at the next heartbeat. Callers log failures and carry on.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use super::{Registry, ServiceInstance};
use crate::domain::Meta;
use crate::error::{Error, Result};

/// Consul marks a service critical when its TTL lapses; after this long critical it removes
/// the service (a process killed without deregistering disappears on its own).
pub const DEREGISTER_CRITICAL_AFTER: Duration = Duration::from_secs(60);

/// The Consul registry.
#[derive(Debug)]
pub struct ConsulRegistry {
    http: reqwest::Client,
    base: url::Url,
    token: Option<String>,
    registered: Mutex<HashMap<String, (ServiceInstance, Duration)>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Registration<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    name: &'a str,
    tags: &'a [String],
    meta: &'a Meta,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    check: Check,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Check {
    #[serde(rename = "CheckID")]
    check_id: String,
    name: String,
    #[serde(rename = "TTL")]
    ttl: String,
    deregister_critical_service_after: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthEntry {
    service: HealthService,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthService {
    #[serde(rename = "ID")]
    id: String,
    service: String,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    meta: Option<Meta>,
}

/// Consul's duration syntax (`10s`, `1500ms`).
fn consul_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The check id Consul gives a service's inline check.
fn check_id(service_id: &str) -> String {
    format!("service:{service_id}")
}

/// Host and port of the instance's metrics endpoint, from its meta (`metrics_addr`).
fn metrics_endpoint(meta: &Meta) -> (Option<String>, Option<u16>) {
    let Some(addr) = meta.get("metrics_addr") else {
        return (None, None);
    };
    match addr.parse::<std::net::SocketAddr>() {
        Ok(socket) if socket.ip().is_unspecified() => (None, Some(socket.port())),
        Ok(socket) => (Some(socket.ip().to_string()), Some(socket.port())),
        Err(_) => (None, None),
    }
}

impl ConsulRegistry {
    /// A client for the Consul agent at `url` (`http://127.0.0.1:8500`), with an optional ACL
    /// token. Nothing is contacted until the first call.
    pub fn new(url: &str, token: Option<String>) -> Result<ConsulRegistry> {
        let base = url::Url::parse(url)
            .map_err(|err| Error::Invalid(format!("TGE_SWARM_CONSUL_URL: {err}: {url}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Invalid(format!(
                "TGE_SWARM_CONSUL_URL: must be http:// or https://, got {url}"
            )));
        }
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|err| Error::unavailable("consul", err))?;
        Ok(ConsulRegistry {
            http,
            base,
            token: token.filter(|token| !token.is_empty()),
            registered: Mutex::new(HashMap::new()),
        })
    }

    /// `base` + `prefix` + one path segment (percent-encoded: instance ids contain `/`).
    fn endpoint(&self, prefix: &str, segment: Option<&str>) -> Result<url::Url> {
        let mut url = self
            .base
            .join(prefix)
            .map_err(|err| Error::Invalid(format!("consul path {prefix}: {err}")))?;
        if let Some(segment) = segment {
            url.path_segments_mut()
                .map_err(|_| Error::Invalid("consul url cannot be a base".into()))?
                .pop_if_empty()
                .push(segment);
        }
        Ok(url)
    }

    fn request(&self, method: reqwest::Method, url: url::Url) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.header("X-Consul-Token", token),
            None => request,
        }
    }

    fn remembered(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (ServiceInstance, Duration)>> {
        self.registered
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Sends a request; a failure keeps Consul's status (absent when Consul was not reached)
    /// so a caller can tell "unknown check" from "Consul is down".
    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<(), Failure> {
        let response = request.send().await.map_err(|err| Failure {
            status: None,
            error: Error::unavailable("consul", format!("{what}: {err}")),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(200).collect();
        Err(Failure {
            status: Some(status),
            error: Error::unavailable("consul", format!("{what}: {status}: {}", body.trim())),
        })
    }

    async fn put_registration(&self, instance: &ServiceInstance, ttl: Duration) -> Result<()> {
        let (address, port) = metrics_endpoint(&instance.meta);
        let body = Registration {
            id: &instance.id,
            name: &instance.service,
            tags: &instance.tags,
            meta: &instance.meta,
            address,
            port,
            check: Check {
                check_id: check_id(&instance.id),
                name: format!("{} heartbeat", instance.service),
                ttl: consul_duration(ttl),
                deregister_critical_service_after: consul_duration(DEREGISTER_CRITICAL_AFTER),
            },
        };
        let url = self.endpoint("v1/agent/service/register", None)?;
        let request = self.request(reqwest::Method::PUT, url).json(&body);
        self.send(request, &format!("registering {}", instance.id))
            .await
            .map_err(|failure| failure.error)
    }

    async fn put_pass(&self, id: &str) -> Result<(), Failure> {
        let url = self
            .endpoint("v1/agent/check/pass/", Some(&check_id(id)))
            .map_err(|error| Failure {
                status: None,
                error,
            })?;
        let request = self.request(reqwest::Method::PUT, url);
        self.send(request, &format!("passing {id}")).await
    }
}

/// A failed Consul call: the HTTP status if Consul answered, and the error to report.
struct Failure {
    status: Option<StatusCode>,
    error: Error,
}

#[async_trait]
impl Registry for ConsulRegistry {
    async fn register(&self, instance: &ServiceInstance, ttl: Duration) -> Result<()> {
        // Remembered first: if Consul is down now, the next pass registers it.
        self.remembered()
            .insert(instance.id.clone(), (instance.clone(), ttl));
        self.put_registration(instance, ttl).await
    }

    async fn deregister(&self, id: &str) -> Result<()> {
        self.remembered().remove(id);
        let url = self.endpoint("v1/agent/service/deregister/", Some(id))?;
        let request = self.request(reqwest::Method::PUT, url);
        self.send(request, &format!("deregistering {id}"))
            .await
            .map_err(|failure| failure.error)
    }

    async fn pass(&self, id: &str) -> Result<()> {
        let known = self.remembered().get(id).cloned();
        let Some((instance, ttl)) = known else {
            return Err(Error::not_found("service instance", id));
        };
        match self.put_pass(id).await {
            Ok(()) => Ok(()),
            Err(Failure {
                status: Some(status),
                ..
            }) if status.is_client_error() => {
                // Consul does not know the check: register again, then pass.
                tracing::info!(instance = %id, "consul lost the registration, registering again");
                self.put_registration(&instance, ttl).await?;
                self.put_pass(id).await.map_err(|failure| failure.error)
            }
            Err(failure) => Err(failure.error),
        }
    }

    async fn healthy(&self, service: &str) -> Result<Vec<ServiceInstance>> {
        let mut url = self.endpoint("v1/health/service/", Some(service))?;
        url.set_query(Some("passing"));
        let response = self
            .request(reqwest::Method::GET, url)
            .send()
            .await
            .map_err(|err| Error::unavailable("consul", format!("listing {service}: {err}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::unavailable(
                "consul",
                format!("listing {service}: {status}"),
            ));
        }
        let entries: Vec<HealthEntry> = response.json().await.map_err(|err| {
            Error::unavailable("consul", format!("listing {service}: bad answer: {err}"))
        })?;
        let mut out: Vec<ServiceInstance> = entries
            .into_iter()
            .map(|entry| ServiceInstance {
                id: entry.service.id,
                service: entry.service.service,
                tags: entry.service.tags.unwrap_or_default(),
                meta: entry.service.meta.unwrap_or_default(),
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_consul_syntax() {
        assert_eq!(consul_duration(Duration::from_secs(30)), "30s");
        assert_eq!(consul_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn bad_urls_are_rejected_with_the_variable_named() {
        let err = ConsulRegistry::new("consul:8500", None).unwrap_err();
        assert!(err.to_string().contains("TGE_SWARM_CONSUL_URL"), "{err}");
        let err = ConsulRegistry::new("ftp://consul:8500", None).unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
    }

    #[test]
    fn metrics_port_comes_from_meta() {
        let mut meta = Meta::new();
        meta.insert("metrics_addr".into(), "0.0.0.0:8011".into());
        assert_eq!(metrics_endpoint(&meta), (None, Some(8011)));
        meta.insert("metrics_addr".into(), "10.0.0.5:8011".into());
        assert_eq!(
            metrics_endpoint(&meta),
            (Some("10.0.0.5".into()), Some(8011))
        );
    }
}
