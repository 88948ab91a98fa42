//! `tge-swarm`: the command-line entry point.
//!
//! * `run`: the whole swarm in one process with embedded defaults.
//! * `queen`, `memory-coordinator`, `agent <kind>`: one role of a distributed swarm, over
//!   Redis, a shared database and (optionally) Consul.
//! * `check-config`: validate a configuration and print what it sets up.
//! * `classify`: score JSON Lines documents offline; `eval` and `train`: measure and fit the
//!   detection model on a labelled corpus.
//! * `migrate`: create or upgrade the store.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use swarm_queen::swarm::Role;
use swarm_shared::config::Config;
use swarm_shared::domain::AgentKind;

/// The commands that are more than a call into the library.
mod cli {
    /// `classify`, `eval`, `train`.
    pub mod detection;
}

use cli::detection::{EvalArgs, TrainArgs, classify, eval, train_model};

/// See [`swarm_queen::Allocator`].
#[global_allocator]
static ALLOCATOR: swarm_queen::Allocator = swarm_queen::Allocator;

const DEFAULT_CONFIG: &str = "config/tge-swarm.toml";

#[derive(Debug, Parser)]
#[command(
    name = "tge-swarm",
    version,
    about = "Finds Token Generation Event announcements and serves them to analysts"
)]
struct Cli {
    /// Configuration file. Default: config/tge-swarm.toml if present, else the built-in defaults.
    #[arg(long, global = true, env = "TGE_SWARM_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every actor, the API and metrics in one process.
    Run,
    /// Run the queen (scheduler, agent table) and the REST API of a distributed swarm.
    Queen,
    /// Run the memory coordinator of a distributed swarm.
    MemoryCoordinator,
    /// Run the agents of one specialist kind of a distributed swarm.
    Agent {
        /// scraping, keyword, api-reliability, performance or data-quality.
        #[arg(value_parser = parse_kind)]
        kind: AgentKind,
    },
    /// Validate the configuration and print a summary.
    CheckConfig,
    /// Score documents offline: JSON Lines in, one JSON line per document out.
    Classify {
        /// Input file of `{"id", "text", "title"?, "url"?}` lines, or `-` for stdin.
        #[arg(long, default_value = "-")]
        input: String,
        /// A model file from `tge-swarm train` instead of the shipped one.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Measure the shipped model on a labelled corpus: precision, recall and F1 with 95 %
    /// bootstrap intervals, errors by category, format, language and false-alarm kind,
    /// calibration, and extraction of project and ticker.
    Eval(EvalArgs),
    /// Fit the detection model on a labelled corpus and write it as JSON. The shipped model
    /// (`agents/src/keyword/model.json`) is `tge-swarm train --input
    /// ../shared/corpus/labelled.jsonl --extra agents/src/keyword/corpus/own-train.jsonl --out
    /// agents/src/keyword/model.json` (docs/detection.md, "Training").
    Train(TrainArgs),
    /// Create or upgrade the store (TGE_SWARM_DATABASE_URL, else SQLite under the data dir).
    Migrate,
    /// Probe the swarm process on this host (Docker's HEALTHCHECK): exit 0 when its `/readyz`
    /// answers 200, 1 otherwise, with the reason on stderr.
    Healthcheck {
        /// URL to probe. Default: `/readyz` at `server.metrics_addr` when it is set, else the
        /// first of the roles' default metrics ports on 127.0.0.1 (8001, 8002, 8010-8014) that
        /// answers.
        #[arg(long)]
        url: Option<String>,
    },
    /// Manage API keys in the store directly, without a running swarm or a key: list, create,
    /// rotate and revoke. Secrets are printed once.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Every key (never a secret): id, name, scopes, created, expires, last used, revoked.
    List,
    /// A new key; prints it with its secret, shown this once.
    Create {
        /// Who or what holds it (letters, digits, `.`, `_`, `-`).
        #[arg(long)]
        name: String,
        /// Scopes: read, write, admin (repeat or separate with commas).
        #[arg(long = "scope", value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Lifetime (`90days`, `12h`); none: until revoked.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
    },
    /// A new secret for key ID (same name, scopes and expiry); the old one stops working.
    Rotate {
        /// The key's id (`keys list`).
        id: i64,
    },
    /// Revokes key ID at once (the last working admin key cannot be).
    Revoke {
        /// The key's id (`keys list`).
        id: i64,
    },
}

fn parse_kind(text: &str) -> Result<AgentKind, String> {
    let specialists = [
        AgentKind::Scraping,
        AgentKind::Keyword,
        AgentKind::ApiReliability,
        AgentKind::Performance,
        AgentKind::DataQuality,
    ];
    specialists
        .into_iter()
        .find(|kind| kind.as_str() == text)
        .ok_or_else(|| {
            format!(
                "unknown agent kind `{text}`; expected one of: scraping, keyword, api-reliability, performance, data-quality"
            )
        })
}

fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_owned()),
        None => {
            let default = PathBuf::from(DEFAULT_CONFIG);
            default.exists().then_some(default)
        }
    }
}

/// The service name of a long-running role's spans; None for the one-shot commands, which
/// export nothing.
fn trace_service(command: &Command) -> Option<String> {
    match command {
        Command::Run => Some("tge-swarm".to_owned()),
        Command::Queen => Some("tge-swarm-queen".to_owned()),
        Command::MemoryCoordinator => Some("tge-swarm-memory-coordinator".to_owned()),
        Command::Agent { kind } => Some(format!("tge-swarm-agent-{}", kind.as_str())),
        _ => None,
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let path = config_path(cli.config.as_deref());
    let config = Config::load(path.as_deref()).map_err(|err| anyhow::anyhow!("{err}"))?;
    // Before the runtime starts: the exporter's HTTP client must live outside it. Dropped at
    // the end of main, after the runtime, it flushes the spans still queued.
    let _traces = swarm_queen::traces::init(trace_service(&cli.command).map(|service| {
        swarm_queen::traces::Export {
            config: &config.tracing,
            service,
            node: &config.node.name,
        }
    }))?;
    swarm_queen::swarm::validate_config_selectors(&config)?;
    let origin = path.map_or_else(
        || "built-in defaults".to_owned(),
        |p| p.display().to_string(),
    );
    match cli.command {
        Command::CheckConfig => check_config(&config, &origin),
        Command::Classify { input, model } => classify(&config, &input, model.as_deref()),
        Command::Eval(args) => eval(&config, &args),
        Command::Train(args) => train_model(&config, &args),
        Command::Migrate => block_on(migrate(&config)),
        Command::Healthcheck { url } => block_on(healthcheck(&config, url)),
        Command::Keys(command) => block_on(manage_keys(&config, command)),
        Command::Run => block_on(run(config, Role::All, &origin)),
        Command::Queen => block_on(run(config, Role::Queen, &origin)),
        Command::MemoryCoordinator => block_on(run(config, Role::MemoryCoordinator, &origin)),
        Command::Agent { kind } => block_on(run(config, Role::Agent(kind), &origin)),
    }
}

/// Runs `work` on a multi-threaded runtime. The runtime is then shut down without waiting
/// more than two seconds for blocking threads: a parse still running there gives up on its
/// own (see `agents::html`), and must not hold the process after a stop.
fn block_on<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(work);
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    result
}

fn check_config(config: &Config, origin: &str) -> anyhow::Result<()> {
    println!("config ok: {origin}");
    println!("  node:        {}", config.node.name);
    println!("  api:         {}", config.server.api_addr);
    println!("  metrics:     {}", config.server.metrics_addr);
    println!("  data dir:    {}", config.server.data_dir.display());
    let connections = &config.connections;
    let shown = |value: &Option<String>| {
        value
            .as_deref()
            .map_or_else(|| "embedded".to_owned(), swarm_shared::ports::redis::redact)
    };
    println!("  redis:       {}", shown(&connections.redis_url));
    println!(
        "  database:    {}",
        connections.database_url.as_deref().map_or_else(
            || format!("sqlite under {}", config.server.data_dir.display()),
            swarm_shared::ports::redis::redact
        )
    );
    println!("  consul:      {}", shown(&connections.consul_url));
    println!(
        "  traces:      {}",
        config.tracing.otlp_endpoint.as_deref().map_or_else(
            || "off".to_owned(),
            |endpoint| format!(
                "OTLP/HTTP to {} (sample ratio {})",
                swarm_queen::traces::traces_url(endpoint),
                config.tracing.sample_ratio
            )
        )
    );
    println!(
        "  sources:     {} (seeded into an empty store)",
        config.sources.len()
    );
    println!(
        "  companies:   {} (seeded into an empty store)",
        config.companies.len()
    );
    println!(
        "  replicas:    scraping {}, keyword {}, data-quality {}",
        config.scraping.replicas, config.detection.replicas, config.quality.replicas
    );
    Ok(())
}

async fn manage_keys(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    use swarm_queen::keys;
    let (store, _) = swarm_queen::swarm::connect_store(config).await?;
    let now = chrono::Utc::now();
    let printed = match command {
        KeysCommand::List => {
            let listed = store.list_api_keys().await;
            listed.map(|keys| serde_json::json!({ "keys": keys }))
        }
        KeysCommand::Create {
            name,
            scopes,
            expires_in,
        } => {
            let input = keys::KeyInput {
                name,
                scopes,
                expires_in,
            };
            let issued = keys::create(store.as_ref(), &input, now).await;
            issued.map(|issued| serde_json::json!(issued))
        }
        KeysCommand::Rotate { id } => {
            let issued = keys::rotate(store.as_ref(), id, now).await;
            issued.map(|issued| serde_json::json!(issued))
        }
        KeysCommand::Revoke { id } => {
            let revoked = keys::revoke(store.as_ref(), id, now).await;
            revoked.map(|key| serde_json::json!(key))
        }
    };
    store.close().await;
    println!("{}", serde_json::to_string_pretty(&printed?)?);
    Ok(())
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let (store, description) = swarm_queen::swarm::connect_store(config).await?;
    store.close().await;
    println!("store is up to date ({description})");
    Ok(())
}

async fn run(config: Config, role: Role, origin: &str) -> anyhow::Result<()> {
    tracing::info!(config = origin, role = %role.name(), "starting tge-swarm");
    let admin_key = std::env::var("TGE_SWARM_ADMIN_KEY")
        .ok()
        .filter(|key| !key.is_empty());
    let swarm = swarm_queen::Swarm::start_role(config, role, admin_key).await?;
    if let Some(key) = swarm.generated_admin_key() {
        // Printed once: only its hash is stored.
        println!("generated admin API key (shown once, store it now): {key}");
    }
    match swarm.api_addr() {
        Some(api) => println!(
            "tge-swarm {} API on http://{api}/api/v1 (metrics on http://{}/metrics)",
            role.name(),
            swarm.metrics_addr()
        ),
        None => println!(
            "tge-swarm {} running (health and metrics on http://{}/readyz, /metrics)",
            role.name(),
            swarm.metrics_addr()
        ),
    }
    wait_for_signal().await;
    tracing::info!("shutting down");
    swarm.shutdown().await;
    Ok(())
}

/// The URLs `healthcheck` tries, in order.
fn healthcheck_urls(config: &Config) -> Vec<String> {
    let configured = config.server.metrics_addr;
    let default = swarm_shared::config::ServerConfig::default().metrics_addr;
    if configured != default {
        let mut target = configured;
        if target.ip().is_unspecified() {
            target.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        return vec![format!("http://{target}/readyz")];
    }
    let roles = [
        Role::All,
        Role::MemoryCoordinator,
        Role::Agent(AgentKind::Scraping),
        Role::Agent(AgentKind::Keyword),
        Role::Agent(AgentKind::ApiReliability),
        Role::Agent(AgentKind::Performance),
        Role::Agent(AgentKind::DataQuality),
    ];
    roles
        .into_iter()
        .map(|role| format!("http://127.0.0.1:{}/readyz", role.metrics_port()))
        .collect()
}

/// Probes the URLs in turn. A port that refuses the connection is not this host's process, so
/// the next one is tried; a process that answers but is not ready fails the check at once.
async fn healthcheck(config: &Config, url: Option<String>) -> anyhow::Result<()> {
    let urls = match url {
        Some(url) => vec![url],
        None => healthcheck_urls(config),
    };
    swarm_shared::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?;
    let mut unreachable = Vec::new();
    for url in &urls {
        match client.get(url).send().await {
            Ok(response) if response.status().is_success() => {
                println!("ready: {url}");
                return Ok(());
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                anyhow::bail!("not ready: {url} answered {status}: {}", body.trim());
            }
            Err(err) => unreachable.push(format!("{url}: {err}")),
        }
    }
    anyhow::bail!("no swarm process answered: {}", unreachable.join("; "))
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        match terminate {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
