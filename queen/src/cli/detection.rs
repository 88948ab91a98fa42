//! The detection commands: `classify` scores JSON Lines offline, `eval` measures the model on
//! a labelled corpus, `train` fits it (docs/detection.md).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use swarm_agents::keyword::corpus::{
    CORPUS_YEAR, CategoryCounts, LabelledItem, evaluate, read_labelled,
};
use swarm_agents::keyword::current_year;
use swarm_agents::keyword::model::Model;
use swarm_agents::keyword::scorer::Scorer;
use swarm_agents::keyword::train::{
    BAND_TOLERANCE, Example, TrainOptions, add_extraction, examples_of, extraction_examples, train,
};
use swarm_queen::classify::{ClassifyInput, classify_one};
use swarm_shared::config::Config;

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

pub(crate) fn classify(config: &Config, input: &str, model: Option<&Path>) -> anyhow::Result<()> {
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
pub(crate) struct EvalArgs {
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

pub(crate) fn eval(config: &Config, args: &EvalArgs) -> anyhow::Result<()> {
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
pub(crate) struct TrainArgs {
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
    /// L2 penalty per weight of the extraction ranker (project and ticker).
    #[arg(long, default_value_t = TrainOptions::default().l2_extraction)]
    l2_extraction: f64,
    /// Which feature blocks to use: `both`, `structured` or `text` (for ablations).
    #[arg(long, default_value = "both")]
    blocks: String,
}

pub(crate) fn train_model(config: &Config, args: &TrainArgs) -> anyhow::Result<()> {
    let options = TrainOptions {
        l2: args.l2,
        l2_text: args.l2_text,
        l2_embedding: args.l2_embedding,
        l2_extraction: args.l2_extraction,
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
    anyhow::ensure!(
        options.l2_extraction >= 0.0 && options.l2_extraction.is_finite(),
        "--l2-extraction must be a non-negative number"
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
    let (mut model, out_of_fold) = train(&examples, &options, &data);
    // The extraction ranker learns from the corpus's positives (not the extra texts: their
    // names were written for this project).
    let ranked = extraction_examples(&extractor, &refs, args.year);
    let figures = add_extraction(&mut model, &ranked, &options)
        .map_err(|err| anyhow::anyhow!("extraction patterns: {err}"))?;
    eprintln!(
        "extraction ranker: {} positives; out of fold project {}/{} ({:.3}), ticker {}/{} ({:.3})",
        ranked.len(),
        figures.project.right,
        figures.project.judged,
        figures.project.share(),
        figures.ticker.right,
        figures.ticker.judged,
        figures.ticker.share()
    );
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
