//! `tge-swarm`: the command-line entry point.
//!
//! * `run`: the whole swarm in one process with embedded defaults.
//! * `queen`, `memory-coordinator`, `agent <kind>`: one role of a distributed swarm, over
//!   Redis, a shared database and (optionally) Consul.
//! * `check-config`: validate a configuration and print what it sets up.
//! * `classify`: score JSON Lines documents offline.
//! * `migrate`: create or upgrade the store.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use swarm_agents::keyword::scorer::{Input, Scorer, Weights};
use swarm_queen::swarm::Role;
use swarm_shared::config::Config;
use swarm_shared::domain::{AgentKind, Company};

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
    },
    /// Create or upgrade the store (TGE_SWARM_DATABASE_URL, else SQLite under the data dir).
    Migrate,
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

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TGE_SWARM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    let path = config_path(cli.config.as_deref());
    let config = Config::load(path.as_deref()).map_err(|err| anyhow::anyhow!("{err}"))?;
    swarm_queen::swarm::validate_config_selectors(&config)?;
    let origin = path.map_or_else(
        || "built-in defaults".to_owned(),
        |p| p.display().to_string(),
    );
    match cli.command {
        Command::CheckConfig => check_config(&config, &origin),
        Command::Classify { input } => classify(&config, &input),
        Command::Migrate => runtime()?.block_on(migrate(&config)),
        Command::Run => runtime()?.block_on(run(config, Role::All, &origin)),
        Command::Queen => runtime()?.block_on(run(config, Role::Queen, &origin)),
        Command::MemoryCoordinator => {
            runtime()?.block_on(run(config, Role::MemoryCoordinator, &origin))
        }
        Command::Agent { kind } => runtime()?.block_on(run(config, Role::Agent(kind), &origin)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassifyInput {
    id: serde_json::Value,
    text: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Debug, Serialize)]
struct ClassifyOutput {
    id: serde_json::Value,
    is_tge: bool,
    score: f64,
    project: Option<String>,
    token: Option<String>,
    event_date: Option<String>,
    evidence: Vec<String>,
}

fn classify(config: &Config, input: &str) -> anyhow::Result<()> {
    let companies: Vec<Company> = config
        .companies
        .iter()
        .enumerate()
        .map(|(index, company)| Company {
            id: index as i64 + 1,
            name: company.name.clone(),
            aliases: company.aliases.clone(),
            tickers: company.tickers.clone(),
            priority: company.priority,
            status: company.status.clone(),
            exclusions: company.exclusions.clone(),
        })
        .collect();
    let scorer = Scorer::new(&companies, Weights::default(), config.detection.threshold)?;
    let reader: Box<dyn BufRead> = if input == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(input).with_context(|| format!("opening {input}"))?;
        Box::new(std::io::BufReader::new(file))
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut errors = 0usize;
    for (index, line) in reader.lines().enumerate() {
        let line_number = index + 1;
        let line = line.with_context(|| format!("{input}: reading line {line_number}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: ClassifyInput = match serde_json::from_str(&line) {
            Ok(record) => record,
            Err(err) => {
                errors += 1;
                eprintln!("{input}:{line_number}: skipped: {err}");
                continue;
            }
        };
        let _ = record.url;
        let detection = scorer.score(Input {
            title: record.title.as_deref().unwrap_or(""),
            text: &record.text,
            tier: 2,
        });
        let output = ClassifyOutput {
            id: record.id,
            is_tge: detection.is_tge,
            score: detection.score,
            project: detection.project,
            token: detection.token,
            event_date: detection.event_date,
            evidence: detection.evidence.into_iter().map(|e| e.snippet).collect(),
        };
        serde_json::to_writer(&mut out, &output)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    anyhow::ensure!(
        errors == 0,
        "{errors} input line(s) could not be read (see above)"
    );
    Ok(())
}
