//! `tge-swarm`: the command-line entry point.
//!
//! * `run`: the whole swarm in one process with embedded defaults.
//! * `queen`, `memory-coordinator`, `agent <kind>`: one role of a distributed swarm, over
//!   Redis, a shared database and (optionally) Consul.
//! * `check-config`: validate a configuration and print what it sets up.
//! * `classify`: score JSON Lines documents offline; `eval` and `train`: measure and fit the
//!   detection model on a labelled corpus.
//! * `migrate`: create or upgrade the store.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use swarm_agents::keyword::corpus::{
    CORPUS_YEAR, CategoryCounts, LabelledItem, evaluate, read_labelled,
};
use swarm_agents::keyword::current_year;
use swarm_agents::keyword::model::Model;
use swarm_agents::keyword::scorer::Scorer;
use swarm_agents::keyword::train::{BAND_TOLERANCE, Example, TrainOptions, examples_of, train};
use swarm_queen::classify::{ClassifyInput, classify_one};
use swarm_queen::swarm::Role;
use swarm_shared::config::Config;
use swarm_shared::domain::AgentKind;

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

fn open_input(input: &str) -> anyhow::Result<Box<dyn BufRead>> {
    if input == "-" {
        return Ok(Box::new(std::io::stdin().lock()));
    }
    let file = std::fs::File::open(input).with_context(|| format!("opening {input}"))?;
    Ok(Box::new(std::io::BufReader::new(file)))
}

fn shipped_scorer(config: &Config, model_path: Option<&Path>) -> anyhow::Result<Scorer> {
    let model = match model_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading model {}", path.display()))?;
            Model::from_json(&text).with_context(|| format!("model {}", path.display()))?
        }
        None => Model::shipped()?,
    };
    let watchlist = config.watchlist();
    // Offline there is no store: the configured list and the watchlist's `has_token`
    // companies count; the operator's API list and launched events need a running swarm.
    let trading = swarm_agents::keyword::trading::TradingTokens::from_parts(
        swarm_agents::keyword::trading::Parts {
            configured: &config.detection.trading_tokens,
            companies: &watchlist,
            ..Default::default()
        },
        chrono::Utc::now(),
        config.quality.merge_window,
    );
    Ok(
        Scorer::new(&watchlist, model, config.detection.threshold)?.with_trading(
            std::sync::Arc::new(trading),
            config.detection.already_trading_shift,
        ),
    )
}

fn classify(config: &Config, input: &str, model: Option<&Path>) -> anyhow::Result<()> {
    let scorer = shipped_scorer(config, model)?;
    let reader = open_input(input)?;
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
                eprintln!(
                    "{input}:{line_number}: skipped: not a {{\"id\", \"text\", \"title\"?, \"url\"?}} object: {err}"
                );
                continue;
            }
        };
        match classify_one(&scorer, record) {
            Ok(output) => {
                serde_json::to_writer(&mut out, &output)?;
                out.write_all(b"\n")?;
            }
            Err(err) => {
                errors += 1;
                eprintln!("{input}:{line_number}: skipped: {err}");
            }
        }
    }
    out.flush()?;
    anyhow::ensure!(
        errors == 0,
        "{errors} input line(s) could not be classified (see above)"
    );
    Ok(())
}

fn read_corpus(input: &str) -> anyhow::Result<Vec<LabelledItem>> {
    let reader = open_input(input)?;
    let items = read_labelled(reader, input)?;
    anyhow::ensure!(!items.is_empty(), "{input}: no labelled items");
    Ok(items)
}

/// What `tge-swarm eval` was asked.
#[derive(Debug, clap::Args)]
struct EvalArgs {
    /// JSON Lines of `{"id", "is_tge", "text", ...}` or of the labelled real-text corpus
    /// (`../shared/corpus/labelled.jsonl`), or `-`.
    #[arg(long)]
    input: String,
    /// Only the items of this split (`heldout`, `train`), when the corpus has splits.
    #[arg(long)]
    split: Option<String>,
    /// Include the items the two labelling passes disagreed on (left out by default).
    #[arg(long)]
    all_items: bool,
    /// A model file from `tge-swarm train` instead of the shipped one.
    #[arg(long)]
    model: Option<PathBuf>,
    /// The year the texts were written in (years before it read as past). Default: this year.
    #[arg(long)]
    year: Option<i32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn eval(config: &Config, args: &EvalArgs) -> anyhow::Result<()> {
    let scorer = shipped_scorer(config, args.model.as_deref())?;
    let mut items = read_corpus(&args.input)?;
    if let Some(split) = &args.split {
        items.retain(|item| item.split.as_deref() == Some(split.as_str()));
        anyhow::ensure!(
            !items.is_empty(),
            "{}: no items of split `{split}`",
            args.input
        );
    }
    let disagreed = items.iter().filter(|item| !item.consensus).count();
    if !args.all_items {
        items.retain(|item| item.consensus);
    }
    let report = evaluate(&scorer, &items, args.year.unwrap_or_else(current_year));
    use std::fmt::Write as _;
    if args.json {
        return write_stdout(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    }
    let mut out = String::new();
    let interval = |bounds: [f64; 2]| format!("[{:.3}, {:.3}]", bounds[0], bounds[1]);
    writeln!(
        out,
        "items      {} ({} the labellers disagreed on {})",
        report.items,
        disagreed,
        if args.all_items {
            "included"
        } else {
            "left out"
        }
    )?;
    writeln!(out, "threshold  {:.2}", report.threshold)?;
    writeln!(
        out,
        "precision  {:.3}  95% {}",
        report.precision,
        interval(report.intervals.precision)
    )?;
    writeln!(
        out,
        "recall     {:.3}  95% {}",
        report.recall,
        interval(report.intervals.recall)
    )?;
    writeln!(
        out,
        "f1         {:.3}  95% {}",
        report.f1,
        interval(report.intervals.f1)
    )?;
    writeln!(out, "brier      {:.3}", report.brier)?;
    writeln!(
        out,
        "confusion  tp {}  fp {}  fn {}  tn {}",
        report.true_positives,
        report.false_positives,
        report.false_negatives,
        report.true_negatives
    )?;
    writeln!(
        out,
        "encoder    the third stage read {} of {} items",
        report.sentence_stage_items, report.items
    )?;
    let extraction = &report.extraction;
    let share = |right: usize, all: usize| {
        if all == 0 {
            "n/a".to_owned()
        } else {
            format!("{:.3} ({right}/{all})", right as f64 / all as f64)
        }
    };
    writeln!(
        out,
        "extraction project {}  ticker {}  event date found {}",
        share(extraction.projects_right, extraction.projects),
        share(extraction.tokens_right, extraction.tokens),
        share(extraction.dates_found, extraction.positives)
    )?;
    let table = |out: &mut String,
                 title: &str,
                 rows: &std::collections::BTreeMap<String, CategoryCounts>|
     -> std::fmt::Result {
        writeln!(out)?;
        writeln!(
            out,
            "{title:<40} {:>6} {:>6} {:>7} {:>7} {:>7}",
            "items", "pos", "errors", "f.alarm", "missed"
        )?;
        for (name, counts) in rows {
            writeln!(
                out,
                "{name:<40} {:>6} {:>6} {:>7} {:>7} {:>7}",
                counts.items, counts.positives, counts.errors, counts.false_alarms, counts.misses
            )?;
        }
        Ok(())
    };
    table(
        &mut out,
        "false-alarm kind (negatives)",
        &report.false_alarm_kinds,
    )?;
    table(&mut out, "format", &report.formats)?;
    table(&mut out, "language", &report.languages)?;
    table(&mut out, "category", &report.categories)?;
    writeln!(out)?;
    writeln!(out, "reliability (predicted probability -> observed rate)")?;
    for bin in &report.reliability {
        if bin.items == 0 {
            continue;
        }
        writeln!(
            out,
            "  {:.1}-{:.1}  items {:>4}  predicted {:.3}  observed {:.3}",
            bin.from, bin.to, bin.items, bin.mean_probability, bin.observed_rate
        )?;
    }
    if !report.misses.is_empty() {
        writeln!(out)?;
        writeln!(out, "errors:")?;
        for miss in &report.misses {
            let kind = if miss.is_tge { "missed" } else { "false alarm" };
            writeln!(
                out,
                "  {:<12} {:<12} {:<28} score {:.3}  {}",
                miss.id,
                kind,
                miss.category,
                miss.score,
                miss.evidence.join(", ")
            )?;
        }
    }
    if !extraction.wrong.is_empty() {
        writeln!(out)?;
        writeln!(out, "extraction errors (labelled -> extracted):")?;
        for wrong in &extraction.wrong {
            writeln!(
                out,
                "  {:<12} project {:?} -> {:?}  token {:?} -> {:?}",
                wrong.id, wrong.project.0, wrong.project.1, wrong.token.0, wrong.token.1
            )?;
        }
    }
    write_stdout(&out)
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// What `tge-swarm train` was asked.
#[derive(Debug, clap::Args)]
struct TrainArgs {
    /// JSON Lines of labelled items (either format), or `-`.
    #[arg(long)]
    input: String,
    /// Train on this split only, when the corpus has splits.
    #[arg(long, default_value = "train")]
    split: String,
    /// More labelled texts that take part in training but in no figure (each fold trains
    /// on them; none is judged), e.g. `agents/src/keyword/corpus/own-train.jsonl`.
    #[arg(long)]
    extra: Vec<String>,
    /// Where to write the model. Default: stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The year the texts were written in, for items without a date.
    #[arg(long, default_value_t = CORPUS_YEAR)]
    year: i32,
    /// L2 penalty per structured weight.
    #[arg(long, default_value_t = TrainOptions::default().l2)]
    l2: f64,
    /// L2 penalty per text weight.
    #[arg(long, default_value_t = TrainOptions::default().l2_text)]
    l2_text: f64,
    /// L2 penalty per embedding weight (the cascade's third stage).
    #[arg(long, default_value_t = TrainOptions::default().l2_embedding)]
    l2_embedding: f64,
    /// Which feature blocks to use: `both`, `structured` or `text` (for ablations).
    #[arg(long, default_value = "both")]
    blocks: String,
}

fn train_model(config: &Config, args: &TrainArgs) -> anyhow::Result<()> {
    let options = TrainOptions {
        l2: args.l2,
        l2_text: args.l2_text,
        l2_embedding: args.l2_embedding,
        ..TrainOptions::default()
    };
    anyhow::ensure!(
        options.l2 >= 0.0 && options.l2.is_finite(),
        "--l2 must be a non-negative number"
    );
    anyhow::ensure!(
        options.l2_text >= 0.0 && options.l2_text.is_finite(),
        "--l2-text must be a non-negative number"
    );
    anyhow::ensure!(
        options.l2_embedding >= 0.0 && options.l2_embedding.is_finite(),
        "--l2-embedding must be a non-negative number"
    );
    let (use_structured, use_text) = match args.blocks.as_str() {
        "both" => (true, true),
        "structured" => (true, false),
        "text" => (false, true),
        other => anyhow::bail!("--blocks must be both, structured or text, not `{other}`"),
    };
    let mut items = read_corpus(&args.input)?;
    if items.iter().any(|item| item.split.is_some()) {
        items.retain(|item| item.split.as_deref() == Some(args.split.as_str()));
        anyhow::ensure!(
            !items.is_empty(),
            "{}: no items of split `{}`",
            args.input,
            args.split
        );
    }
    // Features do not depend on the model, so any model extracts them.
    let extractor = Scorer::new(&config.watchlist(), Model::untrained(), None)?;
    let refs: Vec<&LabelledItem> = items.iter().collect();
    let mut examples: Vec<Example> = examples_of(&extractor, &refs, args.year, false);
    let mut data = format!(
        "{} (split {}, {} items)",
        args.input,
        args.split,
        items.len()
    );
    for extra in &args.extra {
        let extra_items = read_corpus(extra)?;
        data.push_str(&format!(
            "; {extra} ({} items, training only)",
            extra_items.len()
        ));
        let refs: Vec<&LabelledItem> = extra_items.iter().collect();
        examples.extend(examples_of(&extractor, &refs, args.year, true));
    }
    for example in &mut examples {
        if !use_structured {
            example.values = [0.0; swarm_agents::keyword::features::FEATURE_COUNT];
        }
        if !use_text {
            example.text.clear();
        }
        if args.blocks != "both" {
            // The ablations are of the first two stages.
            example.embedding.clear();
        }
    }
    if args.blocks != "both" {
        data.push_str(&format!("; blocks {}", args.blocks));
    }
    let (model, out_of_fold) = train(&examples, &options, &data);
    for (item, probability) in items.iter().zip(out_of_fold.iter()) {
        let Some(probability) = probability else {
            continue;
        };
        if (*probability >= model.threshold) != item.is_tge {
            eprintln!(
                "out-of-fold error: {} ({}) probability {probability:.3}",
                item.id, item.category
            );
        }
    }
    let scored: Vec<(f64, bool)> = out_of_fold
        .iter()
        .zip(examples.iter())
        .filter_map(|(p, example)| p.map(|p| (p, example.label)))
        .collect();
    eprintln!("out-of-fold precision / recall / f1 by threshold:");
    for step in (10..=90).step_by(5) {
        let threshold = f64::from(step) / 100.0;
        let [p, r, f] = swarm_agents::keyword::model::precision_recall_f1(&scored, threshold);
        eprintln!("  {threshold:.2}  {p:.3}  {r:.3}  {f:.3}");
    }
    let [precision, recall, f1] = model.training.cross_validation;
    eprintln!(
        "trained on {} items ({} positive); threshold {:.2}; {}-fold grouped out-of-fold precision {precision:.3} recall {recall:.3} f1 {f1:.3}",
        model.training.items, model.training.positives, model.threshold, model.training.folds
    );
    if let Some(first) = &model.first_stage {
        eprintln!(
            "cascade: the first stage decides alone below {:.2} and above {:.2} ({:.0}% of the gated training texts, out of fold)",
            first.low,
            first.high,
            model.training.skipped_text_stage * 100.0
        );
    }
    match &model.sentence_stage {
        Some(stage) => eprintln!(
            "cascade: the sentence encoder decides where the second stage gives {:.2} to {:.2} ({:.0}% of the gated training texts, out of fold)",
            stage.low,
            stage.high,
            model.training.sentence_stage_share * 100.0
        ),
        None => eprintln!(
            "cascade: no third stage (the sentence encoder did not gain {BAND_TOLERANCE} F1 out of fold)"
        ),
    }
    let text = model.to_json();
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}
