//! Tests of training on synthetic examples.

use super::*;

fn example(label: bool, keys: &[&str], signal: f64, bucket: u32) -> Example {
    let mut values = [0.0; FEATURE_COUNT];
    values[0] = signal;
    Example {
        values,
        text: vec![(bucket, 1.0)],
        embedding: Vec::new(),
        label,
        group_keys: keys.iter().map(|k| k.to_string()).collect(),
        always_train: false,
    }
}

#[test]
fn linked_items_share_a_fold_and_folds_balance() {
    let examples = [
        example(true, &["site:a", "project:x"], 1.0, 1),
        example(false, &["site:a"], 0.0, 2),
        example(true, &["site:b", "project:x"], 1.0, 3),
        example(false, &["site:c"], 0.0, 4),
        example(false, &["site:d"], 0.0, 5),
        example(true, &[], 1.0, 6),
    ];
    let refs: Vec<&Example> = examples.iter().collect();
    let folds = assign_folds(&refs, 3);
    // a, b joined through project x: one group of three.
    assert_eq!(folds[0], folds[1]);
    assert_eq!(folds[0], folds[2]);
    let mut sizes = [0; 3];
    for fold in &folds {
        sizes[*fold] += 1;
    }
    // The group of three fills one fold; the singles go to the emptiest folds.
    assert_eq!(sizes, [3, 2, 1], "{sizes:?}");
    assert_eq!(assign_folds(&refs, 3), folds, "deterministic");
}

#[test]
fn fitting_separates_a_learnable_signal_through_both_blocks() {
    // The label is carried by the structured feature for some items and by a text bucket
    // for others: the fit must use both.
    let mut examples = Vec::new();
    for index in 0..60u32 {
        let label = index % 2 == 0;
        let through_text = index % 3 == 0;
        let mut item = example(
            label,
            &[],
            if label && !through_text { 1.0 } else { 0.0 },
            if label && through_text {
                7
            } else {
                100 + index
            },
        );
        if !label {
            item.text = vec![(200 + index, 1.0)];
        }
        examples.push(item);
    }
    let options = TrainOptions {
        l2: 1e-3,
        l2_text: 1e-3,
        l2_embedding: 1e-3,
        l2_extraction: 1e-3,
        iterations: 200,
        folds: 3,
    };
    let (model, _) = train(&examples, &options, "synthetic");
    assert!(model.weights[0] > 1.0, "{}", model.weights[0]);
    assert!(model.text[7] > 1.0, "{}", model.text[7]);
    let refit = train(&examples, &options, "synthetic").0;
    assert_eq!(model, refit, "deterministic");
}

#[test]
fn a_third_stage_ships_only_when_the_embedding_carries_what_the_rest_misses() {
    // Structured feature 0 and a text bucket say nothing; the first embedding dimension
    // carries the label. Sites group the items in pairs, so folds are not trivial.
    let mut examples = Vec::new();
    for index in 0..80u32 {
        let label = index % 2 == 0;
        let mut item = example(label, &[&format!("site:{}", index / 2)], 0.0, index);
        item.embedding = vec![0.0; sentence::DIM];
        item.embedding[0] = if label { 1.0 } else { -1.0 };
        item.embedding[1] = (index % 7) as f32 / 7.0;
        examples.push(item);
    }
    let options = TrainOptions {
        l2: 1e-3,
        l2_text: 1e-3,
        l2_embedding: 1e-4,
        l2_extraction: 1e-3,
        iterations: 200,
        folds: 4,
    };
    let (model, _) = train(&examples, &options, "synthetic");
    let stage = model.sentence_stage.expect("a third stage");
    assert!(stage.embedding[0] > 1.0, "{}", stage.embedding[0]);
    assert!(
        model.training.cross_validation[2] > 0.95,
        "{:?}",
        model.training
    );

    // Without the embedding the same items give no third stage.
    for item in &mut examples {
        item.embedding.clear();
    }
    let (model, _) = train(&examples, &options, "synthetic");
    assert!(model.sentence_stage.is_none());
}

#[test]
fn threshold_prefers_the_targets_then_precision() {
    // Positives score 0.6 to 0.9, negatives 0.1 to 0.7: above 0.7 precision is perfect.
    let mut scored = Vec::new();
    for step in 0..10 {
        scored.push((0.6 + f64::from(step) * 0.03, true));
        scored.push((0.1 + f64::from(step) * 0.066, false));
    }
    let (threshold, figures) = choose_threshold(&scored);
    assert!(figures[0] >= 0.8, "{figures:?} at {threshold}");
    assert!(threshold > 0.55, "{threshold}");
}

#[test]
fn the_extraction_ranker_learns_which_candidate_is_named() {
    use crate::keyword::train::{ExtractionExample, train_extraction};
    // Each text names its project beside its ticker, and an exchange and a quote currency
    // more often; the ranker must learn the writing, not the counts.
    let names = [
        ("Velmora", "VLM"),
        ("Quintar", "QTR"),
        ("Brisko", "BSK"),
        ("Tallow", "TLW"),
        ("Ondrel", "ODL"),
        ("Parvex", "PVX"),
        ("Caldera Nine", "CDN"),
        ("Mirabo", "MRB"),
        ("Sentoria", "STR"),
        ("Kelvane", "KVN"),
        ("Yorrow", "YRW"),
        ("Hexmire", "HXM"),
    ];
    let examples: Vec<ExtractionExample> = names
        .iter()
        .enumerate()
        .map(|(index, (project, token))| ExtractionExample {
            text: format!(
                "\nZentra Exchange lists {project} ({token}) today\nZentra opens {token}/USDT trading. Zentra users deposit USDT. Zentra fees apply; USDT only. The {token} token of {project} launches at 10:00 UTC."
            ),
            project: Some((*project).to_owned()),
            token: Some((*token).to_owned()),
            group_keys: vec![format!("site:{index}")],
        })
        .collect();
    let (ranker, figures) = train_extraction(&examples, 1e-3, 200, 3).unwrap();
    assert_eq!(figures.ticker.judged, 12);
    assert_eq!(figures.ticker.right, 12, "{figures:?}");
    assert_eq!(figures.project.right, 12, "{figures:?}");
    let salience = crate::keyword::salience::Salience::new(Some(ranker.clone())).unwrap();
    let (project, ticker) = salience.find(
        "\nZentra Exchange lists Dovrel (DVR) today\nZentra opens DVR/USDT trading. Zentra users deposit USDT. Zentra fees apply; USDT only.",
    );
    assert_eq!(ticker.as_deref(), Some("DVR"));
    assert_eq!(project.as_deref(), Some("Dovrel"));
    let (again, _) = train_extraction(&examples, 1e-3, 200, 3).unwrap();
    assert_eq!(ranker, again, "deterministic");
}
