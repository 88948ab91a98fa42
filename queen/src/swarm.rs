//! Wiring of an in-process swarm: ports (embedded adapters), first-start seeding, the
//! bootstrap admin key, the agent host with all seven actors, the REST API and the metrics
//! server. `tge-swarm run` and the end-to-end tests both start a swarm through [`Swarm::start`].

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use futures::FutureExt;
use memory_coordinator::{MemoryArgs, MemoryCoordinatorActor};
use ractor::{Actor, ActorCell, ActorRef};
use sha2::{Digest, Sha256};
use swarm_agents::api_reliability::{ApiReliabilityActor, ApiReliabilityArgs};
use swarm_agents::data_quality::DataQualityActor;
use swarm_agents::keyword::KeywordActor;
use swarm_agents::performance::{PerformanceActor, PerformanceArgs};
use swarm_agents::scraping::ScrapingActor;
use swarm_agents::worker::WorkerArgs;
use swarm_shared::config::Config;
use swarm_shared::context::AgentContext;
use swarm_shared::domain::AgentKind;
use swarm_shared::faults::FaultHooks;
use swarm_shared::ports::Store;
use swarm_shared::ports::embedded_bus::EmbeddedBus;
use swarm_shared::ports::embedded_queue::EmbeddedQueue;
use swarm_shared::ports::embedded_registry::EmbeddedRegistry;
use swarm_shared::ports::sqlite::SqliteStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::host::{AgentHost, ChildSpec, HostArgs, HostMsg, StartFn};
use crate::queen::{QUEEN_ID, QueenActor, QueenArgs};

/// Registry name of a node's queen actor (the API finds the current instance by name).
pub fn queen_name(node: &str) -> String {
    format!("{node}:queen")
}

/// Registry name of a node's memory coordinator actor.
pub fn memory_name(node: &str) -> String {
    format!("{node}:memory-coordinator")
}

/// Scope of the bootstrap key.
pub const ADMIN_SCOPE: &str = "admin";

/// Hash under which an API key is stored (the key itself is never stored).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A running in-process swarm.
pub struct Swarm {
    ctx: AgentContext,
    host: ActorRef<HostMsg>,
    host_task: JoinHandle<()>,
    api_addr: SocketAddr,
    metrics_addr: SocketAddr,
    cancel: CancellationToken,
    servers: Vec<JoinHandle<()>>,
    generated_admin_key: Option<String>,
}

impl std::fmt::Debug for Swarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swarm")
            .field("api_addr", &self.api_addr)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

/// A child spec. `args` builds the actor's start arguments from its restart count; `name`, if
/// given, registers the actor under that ractor name (for actors the API looks up).
fn spec<A, F>(id: &str, kind: AgentKind, name: Option<String>, args: F) -> ChildSpec
where
    A: Actor + Default,
    F: Fn(u32) -> A::Arguments + Send + Sync + 'static,
{
    let start: StartFn = Arc::new(move |supervisor: ActorCell, restarts: u32| {
        let arguments = args(restarts);
        let name = name.clone();
        async move {
            let (actor, _) = A::spawn_linked(name, A::default(), arguments, supervisor).await?;
            Ok(actor.get_cell())
        }
        .boxed()
    });
    ChildSpec {
        id: id.to_owned(),
        kind,
        start,
    }
}

fn worker_spec<A>(id: String, kind: AgentKind, ctx: &AgentContext) -> ChildSpec
where
    A: Actor<Arguments = WorkerArgs> + Default,
{
    let ctx = ctx.clone();
    let agent_id = id.clone();
    spec::<A, _>(&id, kind, None, move |restarts| WorkerArgs {
        agent_id: agent_id.clone(),
        ctx: ctx.clone(),
        restarts,
    })
}

/// The children of an all-in-one process, in start order (consumers before producers, the
/// queen last so nothing is scheduled before it can be processed).
pub fn children(ctx: &AgentContext) -> Vec<ChildSpec> {
    let node = ctx.config.node.name.clone();
    let mut specs = Vec::new();

    let memory_ctx = ctx.clone();
    specs.push(spec::<MemoryCoordinatorActor, _>(
        "memory-coordinator",
        AgentKind::MemoryCoordinator,
        Some(memory_name(&node)),
        move |restarts| MemoryArgs {
            agent_id: "memory-coordinator".into(),
            ctx: memory_ctx.clone(),
            restarts,
        },
    ));
    let reliability_ctx = ctx.clone();
    specs.push(spec::<ApiReliabilityActor, _>(
        "api-reliability-0",
        AgentKind::ApiReliability,
        None,
        move |restarts| ApiReliabilityArgs {
            agent_id: "api-reliability-0".into(),
            ctx: reliability_ctx.clone(),
            restarts,
        },
    ));
    let performance_ctx = ctx.clone();
    specs.push(spec::<PerformanceActor, _>(
        "performance-0",
        AgentKind::Performance,
        None,
        move |restarts| PerformanceArgs {
            agent_id: "performance-0".into(),
            ctx: performance_ctx.clone(),
            restarts,
        },
    ));
    for index in 0..ctx.config.quality.replicas {
        let id = format!("data-quality-{index}");
        specs.push(worker_spec::<DataQualityActor>(
            id,
            AgentKind::DataQuality,
            ctx,
        ));
    }
    for index in 0..ctx.config.detection.replicas {
        let id = format!("keyword-{index}");
        specs.push(worker_spec::<KeywordActor>(id, AgentKind::Keyword, ctx));
    }
    for index in 0..ctx.config.scraping.replicas {
        let id = format!("scraping-{index}");
        specs.push(worker_spec::<ScrapingActor>(id, AgentKind::Scraping, ctx));
    }
    let queen_ctx = ctx.clone();
    specs.push(spec::<QueenActor, _>(
        QUEEN_ID,
        AgentKind::Queen,
        Some(queen_name(&node)),
        move |restarts| QueenArgs {
            ctx: queen_ctx.clone(),
            restarts,
        },
    ));
    specs
}

/// Checks the CSS selectors of the config's sources (the shared config crate cannot parse
/// CSS); the error names the source.
pub fn validate_config_selectors(config: &Config) -> anyhow::Result<()> {
    for (index, source) in config.sources.iter().enumerate() {
        if let Some(selectors) = &source.selectors
            && let Err(err) = swarm_agents::scraping::parse::validate_selectors(selectors)
        {
            anyhow::bail!(
                "invalid config at `sources[{index}]` ({}): {err}",
                source.name
            );
        }
    }
    Ok(())
}

/// Seeds the config's sources and watchlist into the store, once per store.
async fn seed(store: &dyn Store, config: &Config) -> anyhow::Result<()> {
    if !store.claim_once("seeded:config").await? {
        return Ok(());
    }
    for source in &config.sources {
        match store.create_source(source).await {
            Ok(_) | Err(swarm_shared::Error::Conflict(_)) => {}
            Err(err) => return Err(err).with_context(|| format!("seeding source {}", source.name)),
        }
    }
    for company in &config.companies {
        match store.create_company(company).await {
            Ok(_) | Err(swarm_shared::Error::Conflict(_)) => {}
            Err(err) => {
                return Err(err).with_context(|| format!("seeding company {}", company.name));
            }
        }
    }
    tracing::info!(
        sources = config.sources.len(),
        companies = config.companies.len(),
        "seeded store from config"
    );
    Ok(())
}

/// Stores the bootstrap admin key: `admin_key` if given, else a generated one when the store
/// has no key yet. Returns the generated key (to print once).
async fn bootstrap_admin_key(
    store: &dyn Store,
    admin_key: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let scopes = vec![ADMIN_SCOPE.to_owned()];
    if let Some(key) = admin_key {
        anyhow::ensure!(
            key.len() >= 16,
            "TGE_SWARM_ADMIN_KEY must be at least 16 characters"
        );
        store
            .insert_api_key("bootstrap-admin", &hash_key(key), &scopes)
            .await?;
        return Ok(None);
    }
    if store.count_api_keys().await? > 0 {
        return Ok(None);
    }
    let bytes: [u8; 24] = rand::random();
    let key = format!("tgs_{}", hex::encode(bytes));
    store
        .insert_api_key("bootstrap-admin", &hash_key(&key), &scopes)
        .await?;
    Ok(Some(key))
}

impl Swarm {
    /// Starts a swarm. `admin_key` is the bootstrap admin key (`TGE_SWARM_ADMIN_KEY`).
    pub async fn start(config: Config, admin_key: Option<String>) -> anyhow::Result<Swarm> {
        swarm_agents::scraping::fetch::install_crypto_provider();
        validate_config_selectors(&config)?;
        let handle = crate::metrics::recorder()?;
        let config = Arc::new(config);
        let store = SqliteStore::open(&config.sqlite_path())
            .await
            .with_context(|| format!("opening the store at {}", config.sqlite_path().display()))?;
        seed(&store, &config).await?;
        let generated_admin_key = bootstrap_admin_key(&store, admin_key.as_deref()).await?;

        let ctx = AgentContext {
            bus: Arc::new(EmbeddedBus::new(config.queues.bus_buffer)),
            queue: Arc::new(EmbeddedQueue::new(config.queues.visibility_timeout)),
            store: Arc::new(store),
            registry: Arc::new(EmbeddedRegistry::new()),
            config: config.clone(),
            faults: FaultHooks::default(),
        };

        let api_listener = tokio::net::TcpListener::bind(config.server.api_addr)
            .await
            .with_context(|| {
                format!(
                    "binding the API to {} (server.api_addr)",
                    config.server.api_addr
                )
            })?;
        let metrics_listener = tokio::net::TcpListener::bind(config.server.metrics_addr)
            .await
            .with_context(|| {
                format!(
                    "binding metrics to {} (server.metrics_addr)",
                    config.server.metrics_addr
                )
            })?;
        let api_addr = api_listener.local_addr()?;
        let metrics_addr = metrics_listener.local_addr()?;

        let host_name = format!("{}:host", config.node.name);
        let args = HostArgs {
            ctx: ctx.clone(),
            children: children(&ctx),
        };
        let (host, host_task) = AgentHost::spawn(Some(host_name), AgentHost, args)
            .await
            .context("starting the agent host")?;

        let cancel = CancellationToken::new();
        let api = crate::api::router(crate::api::AppState::new(ctx.clone()));
        let metrics_router = crate::metrics::router(handle.clone());
        let mut servers = vec![crate::metrics::spawn_upkeep(handle, cancel.clone())];
        for (listener, router, what) in [
            (api_listener, api, "api"),
            (metrics_listener, metrics_router, "metrics"),
        ] {
            let token = cancel.clone();
            servers.push(tokio::spawn(async move {
                let serve = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { token.cancelled().await });
                if let Err(err) = serve.await {
                    tracing::error!(server = what, error = %err, "http server failed");
                }
            }));
        }
        tracing::info!(%api_addr, %metrics_addr, node = %config.node.name, "swarm started");
        Ok(Swarm {
            ctx,
            host,
            host_task,
            api_addr,
            metrics_addr,
            cancel,
            servers,
            generated_admin_key,
        })
    }

    /// The bound API address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The bound metrics address.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The admin key generated at first start, if one was.
    pub fn generated_admin_key(&self) -> Option<&str> {
        self.generated_admin_key.as_deref()
    }

    /// Ports and config.
    pub fn context(&self) -> &AgentContext {
        &self.ctx
    }

    /// Test fault hooks.
    pub fn faults(&self) -> &FaultHooks {
        &self.ctx.faults
    }

    /// Stops the servers, then the actors in reverse start order, then the store.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for server in self.servers {
            let _ = server.await;
        }
        let timeout = self.ctx.config.supervision.stop_timeout * 8;
        match self.host.call(HostMsg::Shutdown, Some(timeout)).await {
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "host shutdown did not complete"),
        }
        self.host.stop(None);
        let _ = self.host_task.await;
        self.ctx.store.close().await;
        tracing::info!("swarm stopped");
    }
}
