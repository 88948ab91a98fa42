//! The REST API (axum): routes under `/api/v1`, health endpoints, the OpenAPI document at
//! `/api/v1/openapi.json`, problem+json errors, API-key auth, request metrics.

pub mod auth;
pub mod error;
pub mod events_cache;
pub mod routes;
pub mod supervision;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use swarm_agents::keyword::load_scorer;
use swarm_agents::keyword::scorer::Scorer;
use swarm_shared::context::AgentContext;
use swarm_shared::telemetry;
use tokio::time::Instant;
use tower_http::set_header::SetResponseHeaderLayer;
use tracing::Instrument as _;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use error::ApiError;

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Ports and config.
    pub ctx: AgentContext,
    /// The scorer `POST /classify` uses.
    pub scorer: ScorerCache,
    /// Pages of `GET /events`; call [`events_cache::EventsCache::follow`] so that event
    /// changes reach it.
    pub events: events_cache::EventsCache,
}

impl AppState {
    /// State over a context.
    pub fn new(ctx: AgentContext) -> Self {
        let events = events_cache::EventsCache::new(ctx.config.server.events_cache_ttl);
        AppState {
            ctx,
            scorer: ScorerCache::default(),
            events,
        }
    }
}

/// How long `POST /classify` reuses a scorer. Changes made through this API (feedback, the
/// watchlist) take effect at once; changes made elsewhere within this time.
const SCORER_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The scorer of `POST /classify`, built from the store's watchlist and feedback (two reads and
/// an automaton build, about 20 ms) at most once per [`SCORER_TTL`].
#[derive(Debug, Clone, Default)]
pub struct ScorerCache {
    cached: std::sync::Arc<tokio::sync::Mutex<Option<BuiltScorer>>>,
}

/// A scorer and when it was built.
type BuiltScorer = (Instant, std::sync::Arc<Scorer>);

impl ScorerCache {
    /// The current scorer, built when missing or older than the TTL.
    pub async fn get(
        &self,
        ctx: &AgentContext,
    ) -> Result<std::sync::Arc<Scorer>, ractor::ActorProcessingErr> {
        let mut cached = self.cached.lock().await;
        if let Some((built, scorer)) = cached.as_ref()
            && built.elapsed() < SCORER_TTL
        {
            return Ok(scorer.clone());
        }
        let scorer = std::sync::Arc::new(load_scorer(ctx).await?);
        *cached = Some((Instant::now(), scorer.clone()));
        Ok(scorer)
    }

    /// Forgets the scorer (after feedback or a watchlist change).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(auth::API_KEY_HEADER))),
        );
    }
}

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "tge-swarm API", description = "TGE announcements found by the swarm, and its control surface"),
    paths(
        routes::list_events, routes::get_event, routes::create_feedback, routes::classify,
        routes::list_sources, routes::get_source, routes::create_source, routes::update_source, routes::delete_source,
        routes::list_companies, routes::get_company, routes::create_company, routes::update_company, routes::delete_company,
        routes::list_agents, routes::get_memory, routes::latest_synthesis,
        routes::create_command, routes::list_commands, routes::list_instances,
        routes::healthz, routes::readyz,
        supervision::list_actions, supervision::scale, supervision::restart, supervision::recreate,
        supervision::inject_fault, supervision::list_dead_letters,
    ),
    components(schemas(error::Problem)),
    modifiers(&SecurityAddon),
)]
pub struct ApiDoc;

async fn openapi() -> impl IntoResponse {
    axum::Json(ApiDoc::openapi())
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; see /api/v1/openapi.json")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this path does not take that method; see /api/v1/openapi.json",
    )
}

/// Headers every answer carries unless its handler set them: the API serves JSON only, so
/// nothing of it may be sniffed as another type, framed, or leak the page it came from.
fn security_headers() -> [(axum::http::HeaderName, axum::http::HeaderValue); 4] {
    use axum::http::{HeaderValue, header};
    [
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ),
    ]
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    let status = response.status().as_u16().to_string();
    metrics::counter!(telemetry::API_REQUESTS_TOTAL, "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(telemetry::API_REQUEST_DURATION_SECONDS, "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The API router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.ctx.config.server.max_request_bytes;
    let api = Router::new()
        .route("/events", get(routes::list_events))
        .route("/events/{id}", get(routes::get_event))
        .route("/events/{id}/feedback", post(routes::create_feedback))
        .route("/classify", post(routes::classify))
        .route(
            "/sources",
            get(routes::list_sources).post(routes::create_source),
        )
        .route(
            "/sources/{id}",
            get(routes::get_source)
                .put(routes::update_source)
                .delete(routes::delete_source),
        )
        .route(
            "/companies",
            get(routes::list_companies).post(routes::create_company),
        )
        .route(
            "/companies/{id}",
            get(routes::get_company)
                .put(routes::update_company)
                .delete(routes::delete_company),
        )
        .route("/agents", get(routes::list_agents))
        .route("/instances", get(routes::list_instances))
        .route("/agents/{id}/scale", post(supervision::scale))
        .route("/agents/{id}/restart", post(supervision::restart))
        .route("/agents/{id}/recreate", post(supervision::recreate))
        .route("/supervisor/actions", get(supervision::list_actions))
        .route("/faults", post(supervision::inject_fault))
        .route("/dead-letters", get(supervision::list_dead_letters))
        .route("/memory/{namespace}", get(routes::get_memory))
        .route("/synthesis/latest", get(routes::latest_synthesis))
        .route(
            "/commands",
            get(routes::list_commands).post(routes::create_command),
        )
        .route("/openapi.json", get(openapi))
        .method_not_allowed_fallback(method_not_allowed);
    let mut router = Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(middleware::from_fn(record_metrics))
        .layer(DefaultBodyLimit::max(body_limit));
    for (name, value) in security_headers() {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    router.with_state(state)
}
