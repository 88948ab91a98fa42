//! Grouped folds and the out-of-fold predictions of every stage.

use std::collections::{BTreeMap, HashMap};

use crate::keyword::model::sigmoid;

use super::*;

/// Assigns each example a fold: examples linked by a shared group key (website, project)
/// form one group, groups are dealt to folds largest first onto the fold with the fewest
/// examples (ties by fold number), so folds are balanced and deterministic.
pub fn assign_folds(examples: &[&Example], folds: usize) -> Vec<usize> {
    let keys: Vec<&[String]> = examples
        .iter()
        .map(|example| example.group_keys.as_slice())
        .collect();
    assign_folds_by_keys(&keys, folds)
}

/// [`assign_folds`] over each item's group keys.
pub fn assign_folds_by_keys(keys: &[&[String]], folds: usize) -> Vec<usize> {
    let examples = keys;
    let folds = folds.max(2);
    // Union-find over examples through their keys.
    let mut parent: Vec<usize> = (0..examples.len()).collect();
    fn root(parent: &mut [usize], mut index: usize) -> usize {
        while parent[index] != index {
            parent[index] = parent[parent[index]];
            index = parent[index];
        }
        index
    }
    let mut first_with_key: HashMap<&str, usize> = HashMap::new();
    for (index, item_keys) in examples.iter().enumerate() {
        for key in item_keys.iter() {
            match first_with_key.get(key.as_str()) {
                Some(&other) => {
                    let a = root(&mut parent, index);
                    let b = root(&mut parent, other);
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                }
                None => {
                    first_with_key.insert(key.as_str(), index);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for index in 0..examples.len() {
        let group = root(&mut parent, index);
        groups.entry(group).or_default().push(index);
    }
    let mut ordered: Vec<Vec<usize>> = groups.into_values().collect();
    // Largest first; among equals, the group of the earliest example first.
    ordered.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    let mut sizes = vec![0usize; folds];
    let mut assignment = vec![0usize; examples.len()];
    for group in ordered {
        let mut target = 0;
        for fold in 1..folds {
            if sizes[fold] < sizes[target] {
                target = fold;
            }
        }
        sizes[target] += group.len();
        for index in group {
            assignment[index] = target;
        }
    }
    assignment
}

/// Out-of-fold predictions of one judged example: the first stage's probability, the
/// second's (the full model without the embedding), the third's, and whether the example
/// passed the text gate.
#[derive(Debug, Clone, Copy)]
pub(super) struct Folded {
    pub(super) first: f64,
    pub(super) full: f64,
    pub(super) sentence: f64,
    pub(super) gated: bool,
}

/// Out-of-fold predictions of every judged example (grouped folds), in the order of the
/// examples that are not always trained on.
pub(super) fn folded(examples: &[Example], options: &TrainOptions) -> Vec<Folded> {
    let folds = options.folds.max(2);
    let judged: Vec<&Example> = examples
        .iter()
        .filter(|example| !example.always_train)
        .collect();
    let assignment = assign_folds(&judged, folds);
    let mut out = vec![
        Folded {
            first: 0.0,
            full: 0.0,
            sentence: 0.0,
            gated: false,
        };
        judged.len()
    ];
    for fold in 0..folds {
        let mut training: Vec<&Example> = judged
            .iter()
            .zip(&assignment)
            .filter(|(_, assigned)| **assigned != fold)
            .map(|(example, _)| *example)
            .collect();
        training.extend(examples.iter().filter(|example| example.always_train));
        // A stage's unread blocks keep zero weights, so `logit` reads only its own.
        let full = fit(&training, options, Blocks::Text);
        let first = fit(&training, options, Blocks::Structured);
        let third = fit(&training, options, Blocks::Sentence);
        for (index, example) in judged.iter().enumerate() {
            if assignment[index] == fold {
                out[index] = Folded {
                    first: sigmoid(logit(&first, example)),
                    full: sigmoid(logit(&full, example)),
                    sentence: sigmoid(logit(&third, example)),
                    gated: !example.text.is_empty(),
                };
            }
        }
    }
    out
}
