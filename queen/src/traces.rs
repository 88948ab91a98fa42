//! The process's tracing subscriber: log lines on stderr (level from `TGE_SWARM_LOG`, default
//! `info`) and, when `tracing.otlp_endpoint` is set, the export of spans at `info` and above
//! over OTLP/HTTP (protobuf) to `<endpoint>/v1/traces`: Jaeger (`COLLECTOR_OTLP_ENABLED`) or an
//! OpenTelemetry collector. The spans are the API's requests (`GET /api/v1/events`) and every
//! work batch of every stage (`stage.batch`, with its queue, agent and item count).
//!
//! Export runs on the SDK's own background thread with a bounded queue: a slow or absent
//! collector drops spans (the SDK logs it), never delays the swarm. [`TraceGuard`] flushes
//! what is queued when it is dropped, at the end of `main`.

use crate::error::StartError;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use swarm_shared::config::TracingConfig;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer};

/// How long one export may take before the SDK gives up on it.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Flushes and stops the trace export when dropped.
#[derive(Debug)]
pub struct TraceGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("tge-swarm: flushing traces failed: {err}");
        }
    }
}

/// Where spans go: the service name (`tge-swarm-queen`, `tge-swarm-agent-keyword`) and the
/// node name of this process.
#[derive(Debug)]
pub struct Export<'a> {
    /// Tracing configuration.
    pub config: &'a TracingConfig,
    /// `service.name` of the spans.
    pub service: String,
    /// `service.instance.id` of the spans: the node name.
    pub node: &'a str,
}

/// The OTLP/HTTP traces URL of an endpoint's base URL.
pub fn traces_url(endpoint: &str) -> String {
    format!("{}/v1/traces", endpoint.trim_end_matches('/'))
}

/// Installs the global subscriber. Call once, outside any async runtime (the exporter's
/// blocking HTTP client must not be created or dropped inside one).
pub fn init(export: Option<Export<'_>>) -> Result<TraceGuard, StartError> {
    let log_filter =
        EnvFilter::try_from_env("TGE_SWARM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(log_filter);
    let mut provider = None;
    let mut spans = None;
    if let Some(export) = export
        && let Some(endpoint) = &export.config.otlp_endpoint
    {
        swarm_shared::install_crypto_provider();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(traces_url(endpoint))
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|err| {
                StartError::Config(format!(
                    "tracing.otlp_endpoint (TGE_SWARM_OTLP_ENDPOINT): {err}"
                ))
            })?;
        let resource = Resource::builder()
            .with_service_name(export.service)
            .with_attribute(KeyValue::new("service.instance.id", export.node.to_owned()))
            .with_attribute(KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION").to_owned(),
            ))
            .build();
        let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            export.config.sample_ratio,
        )));
        let sdk = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(sampler)
            .with_resource(resource)
            .build();
        let tracer = sdk.tracer("tge-swarm");
        spans = Some(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(LevelFilter::INFO),
        );
        provider = Some(sdk);
    }
    tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .map_err(|err| StartError::Install(format!("installing the tracing subscriber: {err}")))?;
    Ok(TraceGuard { provider })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_url_appends_the_signal_path_once() {
        assert_eq!(
            traces_url("http://jaeger:4318"),
            "http://jaeger:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://jaeger:4318/"),
            "http://jaeger:4318/v1/traces"
        );
    }
}
