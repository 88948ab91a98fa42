//! Wiring of a swarm process: ports (embedded adapters, or Redis/Postgres/Consul when their
//! URLs are set), first-start seeding, the bootstrap admin key, the agent host with the
//! actors of the process's [`Role`], the REST API (queen and all-in-one only) and the metrics
//! server with `/healthz` and `/readyz`. `tge-swarm run|queen|agent|memory-coordinator` and the
//! end-to-end tests all start through [`Swarm::start_role`].
//!
//! Files: the ports and the process here; which actors a role runs in `children.rs`; what a
//! fresh store is given in `seeding.rs`.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use ractor::{Actor, ActorRef};
use swarm_shared::channels::QUEUE_QUALITY;
use swarm_shared::config::Config;
use swarm_shared::context::AgentContext;
use swarm_shared::domain::AgentKind;
use swarm_shared::faults::FaultHooks;
use swarm_shared::ports::consul::ConsulRegistry;
use swarm_shared::ports::embedded_bus::EmbeddedBus;
use swarm_shared::ports::embedded_queue::EmbeddedQueue;
use swarm_shared::ports::embedded_registry::EmbeddedRegistry;
use swarm_shared::ports::partitioned::PartitionedQueue;
use swarm_shared::ports::postgres::PgStore;
use swarm_shared::ports::redis::{RedisBus, RedisQueue, RedisRegistry, RedisSettings, redact};
use swarm_shared::ports::sqlite::SqliteStore;
use swarm_shared::ports::{Bus, Registry, Store, WorkQueue};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{Doing as _, StartError};
use crate::host::{AgentHost, HostArgs, HostMsg, WorkerFactory};

mod children;
mod seeding;

pub use children::*;
pub use seeding::*;

/// What one process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every actor, the API and metrics (`tge-swarm run`).
    All,
    /// The queen and the API (`tge-swarm queen`).
    Queen,
    /// The memory coordinator (`tge-swarm memory-coordinator`).
    MemoryCoordinator,
    /// The agents of one specialist kind (`tge-swarm agent <kind>`).
    Agent(AgentKind),
}

impl Role {
    /// Default metrics port: queen and all-in-one 8001, memory coordinator 8002, agents
    /// 8010 (scraping) to 8014 (data quality).
    pub fn metrics_port(self) -> u16 {
        match self {
            Role::All | Role::Queen => 8001,
            Role::MemoryCoordinator => 8002,
            Role::Agent(AgentKind::Scraping) => 8010,
            Role::Agent(AgentKind::Keyword) => 8011,
            Role::Agent(AgentKind::ApiReliability) => 8012,
            Role::Agent(AgentKind::Performance) => 8013,
            Role::Agent(AgentKind::DataQuality) => 8014,
            Role::Agent(AgentKind::Queen) => 8001,
            Role::Agent(AgentKind::MemoryCoordinator) => 8002,
        }
    }

    /// Whether the process serves the REST API.
    pub fn serves_api(self) -> bool {
        matches!(self, Role::All | Role::Queen)
    }

    /// Whether the process runs an actor of `kind`.
    pub fn runs(self, kind: AgentKind) -> bool {
        match self {
            Role::All => true,
            Role::Queen => kind == AgentKind::Queen,
            Role::MemoryCoordinator => kind == AgentKind::MemoryCoordinator,
            Role::Agent(own) => own == kind,
        }
    }

    /// Name in logs.
    pub fn name(self) -> String {
        match self {
            Role::All => "all-in-one".into(),
            Role::Queen => "queen".into(),
            Role::MemoryCoordinator => "memory-coordinator".into(),
            Role::Agent(kind) => format!("agent {kind}"),
        }
    }
}

/// The adapters a process uses, chosen by which connection URLs are set.
pub struct Ports {
    /// Pub/sub.
    pub bus: Arc<dyn Bus>,
    /// Work queues.
    pub queue: Arc<dyn WorkQueue>,
    /// Store.
    pub store: Arc<dyn Store>,
    /// Registry.
    pub registry: Arc<dyn Registry>,
    /// Which adapters, for the start-up log line.
    pub summary: String,
}

/// An open store and its description for logs.
pub type OpenedStore = (Arc<dyn Store>, String);

/// Opens the store: Postgres or SQLite from `connections.database_url`, else SQLite under the
/// data dir. Migrations run on open. Returns the store and a description for logs. Boxed for
/// the reason given at [`Swarm::start_role`].
#[inline(never)]
pub fn connect_store(config: &Config) -> BoxFuture<'_, Result<OpenedStore, StartError>> {
    Box::pin(connect_store_inner(config))
}

async fn connect_store_inner(config: &Config) -> Result<OpenedStore, StartError> {
    match &config.connections.database_url {
        Some(url) if url.starts_with("postgres") => {
            let store = PgStore::connect(url).await.doing(|| {
                format!(
                    "connecting the store to {} (TGE_SWARM_DATABASE_URL)",
                    redact(url)
                )
            })?;
            Ok((Arc::new(store), format!("postgres {}", redact(url))))
        }
        Some(url) => {
            let path = std::path::PathBuf::from(
                url.trim_start_matches("sqlite:").trim_start_matches("//"),
            );
            let store = SqliteStore::open(&path).await.doing(|| {
                format!(
                    "opening the store at {} (TGE_SWARM_DATABASE_URL)",
                    path.display()
                )
            })?;
            Ok((Arc::new(store), format!("sqlite {}", path.display())))
        }
        None => {
            let path = config.sqlite_path();
            let store = SqliteStore::open(&path)
                .await
                .doing(|| format!("opening the store at {}", path.display()))?;
            Ok((Arc::new(store), format!("sqlite {}", path.display())))
        }
    }
}

/// Connects the ports: Redis for bus and queues when `connections.redis_url` is set, Postgres
/// or SQLite from `connections.database_url` (SQLite under the data dir when unset), Consul
/// when `connections.consul_url` is set (else Redis, when set, for the registry too);
/// embedded adapters otherwise. Every error names the
/// server (without its password) and the setting. Boxed for the reason given at
/// [`Swarm::start_role`].
#[inline(never)]
pub fn connect_ports(config: &Config) -> BoxFuture<'_, Result<Ports, StartError>> {
    Box::pin(connect_ports_inner(config))
}

async fn connect_ports_inner(config: &Config) -> Result<Ports, StartError> {
    let connections = &config.connections;
    // One parsed Redis setting for the bus, the queues and (without Consul) the registry.
    let redis = match &connections.redis_url {
        Some(url) => Some((url, RedisSettings::new(url, config.queues.bus_buffer)?)),
        None => None,
    };
    let connecting = |what: &str, url: &str| {
        format!(
            "connecting the {what} to {} (TGE_SWARM_REDIS_URL)",
            redact(url)
        )
    };
    let (bus, queue, bus_name): (Arc<dyn Bus>, Arc<dyn WorkQueue>, String) = match &redis {
        Some((url, settings)) => {
            let bus = RedisBus::connect(settings)
                .await
                .doing(|| connecting("bus", url))?;
            let queue = RedisQueue::connect(settings, config.queues.visibility_timeout)
                .await
                .doing(|| connecting("work queues", url))?;
            (
                Arc::new(bus),
                Arc::new(queue),
                format!("redis {}", redact(url)),
            )
        }
        None => (
            Arc::new(EmbeddedBus::new(config.queues.bus_buffer)),
            Arc::new(EmbeddedQueue::new(config.queues.visibility_timeout)),
            "embedded".to_owned(),
        ),
    };
    // The data quality queue, partitioned by merge key (docs/runtime.md, "Partitioned data
    // quality"); every other queue passes through.
    let queue: Arc<dyn WorkQueue> = Arc::new(PartitionedQueue::new(
        queue,
        QUEUE_QUALITY,
        config.quality.partitions,
        config.quality.lease,
    ));
    let (store, store_name) = connect_store(config).await?;
    // Consul when configured; otherwise Redis, which every process of a distributed swarm
    // shares (a stack without Consul still discovers its agents); otherwise in process.
    let (registry, registry_name): (Arc<dyn Registry>, String) =
        match (&connections.consul_url, &redis) {
            (Some(url), _) => (
                Arc::new(ConsulRegistry::new(url, connections.consul_token.clone())?),
                format!("consul {url}"),
            ),
            (None, Some((url, settings))) => {
                let registry = RedisRegistry::connect(settings)
                    .await
                    .doing(|| connecting("service registry", url))?;
                (Arc::new(registry), format!("redis {}", redact(url)))
            }
            (None, None) => (Arc::new(EmbeddedRegistry::new()), "embedded".to_owned()),
        };
    Ok(Ports {
        bus,
        queue,
        store,
        registry,
        summary: format!(
            "bus and queues: {bus_name}; store: {store_name}; registry: {registry_name}"
        ),
    })
}

/// A running in-process swarm.
pub struct Swarm {
    ctx: AgentContext,
    host: ActorRef<HostMsg>,
    host_task: JoinHandle<()>,
    api_addr: Option<SocketAddr>,
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

impl Swarm {
    /// Starts an all-in-one swarm. `admin_key` is the bootstrap admin key
    /// (`TGE_SWARM_ADMIN_KEY`).
    pub fn start(
        config: Config,
        admin_key: Option<String>,
    ) -> BoxFuture<'static, Result<Swarm, StartError>> {
        Swarm::start_role(config, Role::All, admin_key)
    }

    /// Starts the process of `role`. Distributed roles need Redis and a shared database.
    ///
    /// A boxed future, built here: the state machine of a swarm's start (every actor it
    /// spawns, every adapter it connects) is then compiled once, in this crate. Returned as
    /// an `async fn`'s future, it was compiled again in every crate that awaited it: 44 s of
    /// the `tge-swarm` binary's release build (BENCHMARKS.md, "Build time").
    #[inline(never)]
    pub fn start_role(
        config: Config,
        role: Role,
        admin_key: Option<String>,
    ) -> BoxFuture<'static, Result<Swarm, StartError>> {
        Box::pin(Swarm::start_role_inner(config, role, admin_key))
    }

    async fn start_role_inner(
        mut config: Config,
        role: Role,
        admin_key: Option<String>,
    ) -> Result<Swarm, StartError> {
        swarm_agents::scraping::fetch::install_crypto_provider();
        validate_config_selectors(&config)?;
        if role != Role::All {
            if config.connections.redis_url.is_none() {
                return Err(StartError::Config(format!(
                    "`tge-swarm {}` runs one role of a distributed swarm and needs Redis: set TGE_SWARM_REDIS_URL",
                    role.name()
                )));
            }
            if config.connections.database_url.is_none() {
                return Err(StartError::Config(format!(
                    "`tge-swarm {}` runs one role of a distributed swarm and needs a shared database: set TGE_SWARM_DATABASE_URL",
                    role.name()
                )));
            }
        }
        config.use_role_metrics_port(role.metrics_port());
        let metrics_listener = tokio::net::TcpListener::bind(config.server.metrics_addr)
            .await
            .doing(|| {
                format!(
                    "binding metrics to {} (server.metrics_addr)",
                    config.server.metrics_addr
                )
            })?;
        // The bound address (port 0 picks one) is what the registry advertises.
        config.server.metrics_addr = metrics_listener.local_addr()?;
        let handle = crate::metrics::recorder()?;
        let config = Arc::new(config);
        let ports = connect_ports(&config).await?;
        tracing::info!(role = %role.name(), adapters = %ports.summary, "ports connected");
        let generated_admin_key = if role.serves_api() {
            seed(ports.store.as_ref(), &config).await?;
            bootstrap_admin_key(ports.store.as_ref(), admin_key.as_deref()).await?
        } else {
            None
        };

        let ctx = AgentContext {
            bus: ports.bus,
            queue: ports.queue,
            store: ports.store,
            registry: ports.registry,
            config: config.clone(),
            faults: FaultHooks::new(config.supervision.fault_injection),
        };

        let api_listener = if role.serves_api() {
            let listener = tokio::net::TcpListener::bind(config.server.api_addr)
                .await
                .doing(|| {
                    format!(
                        "binding the API to {} (server.api_addr)",
                        config.server.api_addr
                    )
                })?;
            Some(listener)
        } else {
            None
        };
        let api_addr = match &api_listener {
            Some(listener) => Some(listener.local_addr()?),
            None => None,
        };
        let metrics_addr = metrics_listener.local_addr()?;

        let host_name = format!("{}:host", config.node.name);
        let args = HostArgs {
            ctx: ctx.clone(),
            children: children_for(&ctx, role),
            workers: WorkerFactory::new(worker_child),
        };
        let (host, host_task) = AgentHost::spawn(Some(host_name), AgentHost, args)
            .await
            .doing(|| "starting the agent host".into())?;

        let cancel = CancellationToken::new();
        let health = crate::metrics::HealthState {
            ctx: ctx.clone(),
            host: host.clone(),
        };
        let metrics_router = crate::metrics::router(handle.clone(), health);
        let mut servers = vec![crate::metrics::spawn_upkeep(
            handle,
            ctx.clone(),
            cancel.clone(),
        )];
        let mut listeners = vec![(metrics_listener, metrics_router, "metrics")];
        if let Some(listener) = api_listener {
            let state = crate::api::AppState::new(ctx.clone());
            if state.events.enabled() {
                let follower =
                    state.events.follow(&ctx, cancel.clone()).await.doing(|| {
                        "following event announcements for the API's page cache".into()
                    })?;
                servers.push(follower);
            }
            // Alerts are sent, and old rows deleted, by the process that serves the API: one
            // per swarm.
            servers.push(state.deliverer.clone().spawn(cancel.clone()));
            let retention =
                crate::retention::Retention::new(ctx.store.clone(), config.retention.clone());
            if retention.enabled() {
                servers.push(retention.spawn(cancel.clone()));
            }
            servers.push(state.stream.spawn(
                ctx.store.clone(),
                config.delivery.poll_interval,
                cancel.clone(),
            ));
            listeners.push((listener, crate::api::router(state), "api"));
        }
        for (listener, router, what) in listeners {
            let token = cancel.clone();
            servers.push(tokio::spawn(async move {
                // With the peer's address, for the API's rate limits per client.
                let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
                let serve = axum::serve(listener, service)
                    .with_graceful_shutdown(async move { token.cancelled().await });
                if let Err(err) = serve.await {
                    tracing::error!(server = what, error = %err, "http server failed");
                }
            }));
        }
        tracing::info!(role = %role.name(), ?api_addr, %metrics_addr, node = %config.node.name, "swarm process started");
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

    /// The bound API address (roles that serve the API).
    pub fn api_addr(&self) -> Option<SocketAddr> {
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

    /// Stops the servers, then the actors in reverse start order, then the store. Boxed
    /// for the reason given at [`Swarm::start_role`].
    #[inline(never)]
    pub fn shutdown(self) -> BoxFuture<'static, ()> {
        Box::pin(self.shutdown_inner())
    }

    async fn shutdown_inner(self) {
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
