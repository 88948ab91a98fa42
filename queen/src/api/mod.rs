//! The REST API (axum): routes under `/api/v1`, health endpoints, the OpenAPI document at
//! `/api/v1/openapi.json`, problem+json errors, API-key auth, request metrics.

pub mod auth;
pub mod error;
pub mod events_cache;
pub mod export;
pub mod keys;
pub mod limits;
pub mod routes;
pub mod stream;
pub mod subscriptions;
pub mod supervision;
pub mod trading;
pub mod ui;
pub mod workflow;

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
    /// What sources may reach, built once from the config (an error only for a config that
    /// skipped validation).
    pub outbound: std::sync::Arc<swarm_shared::Result<swarm_shared::outbound::OutboundPolicy>>,
    /// What the sentence encoder may still read for `POST /classify`, shared by every request
    /// (the keyword agents' budget, `detection.sentence_stage_per_second`).
    pub sentence_budget: std::sync::Arc<std::sync::Mutex<swarm_agents::keyword::sentence::Budget>>,
    /// Sends alerts: the delivery loop of this process, and test alerts.
    pub deliverer: crate::delivery::Deliverer,
    /// New events for `GET /events/stream` clients; call [`stream::StreamFeed::spawn`] so
    /// that they flow.
    pub stream: stream::StreamFeed,
}

impl AppState {
    /// State over a context.
    pub fn new(ctx: AgentContext) -> Self {
        let events = events_cache::EventsCache::new(ctx.config.server.events_cache_ttl);
        let outbound = std::sync::Arc::new(ctx.config.scraping.outbound());
        let sentence_budget = std::sync::Arc::new(std::sync::Mutex::new(
            swarm_agents::keyword::sentence::Budget::new(
                ctx.config.detection.sentence_stage_per_second,
            ),
        ));
        let deliverer = crate::delivery::Deliverer::new(ctx.store.clone(), &ctx.config);
        AppState {
            deliverer,
            stream: stream::StreamFeed::default(),
            ctx,
            scorer: ScorerCache::default(),
            events,
            outbound,
            sentence_budget,
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

/// Declares on every operation the answers every operation can give, and serves every
/// problem answer as `application/problem+json`, as the server does:
/// - everywhere: 401 (unknown, revoked or expired key, or a missing one when keys are
///   required), 414, 429, 431, 500, 503;
/// - with a request body: 400 (not JSON), 413, 415, 422;
/// - with parameters: 400.
struct CommonResponses;

impl CommonResponses {
    fn problem(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
        let content =
            utoipa::openapi::Content::new(Some(utoipa::openapi::Ref::from_schema_name("Problem")));
        utoipa::openapi::RefOr::T(
            utoipa::openapi::ResponseBuilder::new()
                .description(description)
                .content("application/problem+json", content)
                .build(),
        )
    }
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        const EVERYWHERE: [(&str, &str); 4] = [
            (
                "401",
                "API key missing where one is required, unknown, revoked or expired",
            ),
            (
                "429",
                "too many requests from this address or key; Retry-After says when to retry",
            ),
            ("500", "internal error (details are logged, not sent)"),
            (
                "503",
                "a dependency (store, queues) is unavailable; try again shortly",
            ),
        ];
        const WITH_BODY: [(&str, &str); 4] = [
            ("400", "body is not valid JSON"),
            ("413", "body larger than server.max_request_bytes"),
            ("415", "body is not application/json"),
            ("422", "a field is missing, unknown or out of range"),
        ];
        // The size limits' texts come from the limits themselves.
        let sizes = [
            (
                "414",
                format!(
                    "request target longer than {} KiB",
                    limits::MAX_URI_BYTES / 1024
                ),
            ),
            (
                "431",
                format!(
                    "request headers larger than {} KiB",
                    limits::MAX_HEADER_BYTES / 1024
                ),
            ),
        ];
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.patch,
                &mut item.post,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                let mut add: Vec<(&str, &str)> = EVERYWHERE.to_vec();
                add.extend(sizes.iter().map(|(status, text)| (*status, text.as_str())));
                if operation.request_body.is_some() {
                    add.extend(WITH_BODY);
                }
                if operation
                    .parameters
                    .as_ref()
                    .is_some_and(|parameters| !parameters.is_empty())
                {
                    add.push(("400", "a parameter does not parse or is out of range"));
                }
                let responses = &mut operation.responses.responses;
                for (status, description) in add {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| Self::problem(description));
                }
                for response in responses.values_mut() {
                    let utoipa::openapi::RefOr::T(response) = response else {
                        continue;
                    };
                    let is_problem = matches!(
                        response.content.get("application/json"),
                        Some(utoipa::openapi::RefOr::T(content))
                            if matches!(&content.schema, Some(utoipa::openapi::RefOr::Ref(reference))
                                if reference.ref_location.ends_with("/Problem"))
                    );
                    if is_problem
                        && let Some(content) = response.content.shift_remove("application/json")
                    {
                        response
                            .content
                            .insert("application/problem+json".to_owned(), content);
                    }
                }
            }
        }
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
        keys::list_keys, keys::create_key, keys::rotate_key, keys::revoke_key,
        trading::get_trading_tokens, trading::put_trading_tokens,
        export::calendar, export::export, stream::stream,
        subscriptions::list_subscriptions, subscriptions::create_subscription,
        subscriptions::get_subscription, subscriptions::delete_subscription,
        subscriptions::list_deliveries, subscriptions::test_subscription,
        workflow::update_event, workflow::bulk_update, workflow::event_history,
    ),
    components(schemas(error::Problem)),
    modifiers(&SecurityAddon, &CommonResponses),
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
    telemetry::api_request(
        route,
        method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The API router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.ctx.config.server.max_request_bytes;
    let api = Router::new()
        .route("/events", get(routes::list_events))
        .route("/events/export", get(export::export))
        .route("/events/stream", get(stream::stream))
        .route("/events/bulk", post(workflow::bulk_update))
        .route(
            "/events/{id}",
            get(routes::get_event).patch(workflow::update_event),
        )
        .route("/events/{id}/history", get(workflow::event_history))
        .route("/events/{id}/feedback", post(routes::create_feedback))
        .route("/classify", post(routes::classify))
        .route("/calendar.ics", get(export::calendar))
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
        .route("/keys", get(keys::list_keys).post(keys::create_key))
        .route("/keys/{id}", axum::routing::delete(keys::revoke_key))
        .route("/keys/{id}/rotate", post(keys::rotate_key))
        .route(
            "/trading-tokens",
            get(trading::get_trading_tokens).put(trading::put_trading_tokens),
        )
        .route(
            "/subscriptions",
            get(subscriptions::list_subscriptions).post(subscriptions::create_subscription),
        )
        .route(
            "/subscriptions/{id}",
            get(subscriptions::get_subscription).delete(subscriptions::delete_subscription),
        )
        .route(
            "/subscriptions/{id}/deliveries",
            get(subscriptions::list_deliveries),
        )
        .route(
            "/subscriptions/{id}/test",
            post(subscriptions::test_subscription),
        )
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
        .route("/", get(ui::index))
        .route("/ui/app.js", get(ui::script))
        .route("/ui/app.css", get(ui::stylesheet))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(middleware::from_fn(record_metrics))
        .layer(DefaultBodyLimit::max(body_limit));
    router = limits::apply(router, &state.ctx.config.server);
    router = router.layer(middleware::from_fn(limits::request_size));
    for (name, value) in security_headers() {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    router.with_state(state)
}
