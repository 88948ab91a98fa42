//! Training the extraction ranker: logistic regression over the candidates of the labelled
//! positives (a candidate is a positive example when it names the labelled project or
//! token, by the rules the evaluation judges with), one scorer for tickers and one for
//! projects; the project's candidates are read with the ticker the ticker scorer picks, as
//! at run time. Judged out of fold on grouped folds (website and project), like the
//! detection model.

use crate::keyword::corpus::{LabelledItem, input_of, same_project, same_token};
use crate::keyword::salience::{
    Candidate, Linear, PROJECT_FEATURES, Ranker, Salience, TICKER_FEATURES, TICKER_FLOOR, pick,
};
use crate::keyword::scorer::Scorer;

use super::fit::minimise;
use super::folds::assign_folds_by_keys;

/// One labelled positive as the ranker sees it.
#[derive(Debug, Clone)]
pub struct ExtractionExample {
    /// The text as the scorer joins it (headline and body).
    pub text: String,
    /// The labelled project, if the item names one.
    pub project: Option<String>,
    /// The labelled token, if the item names one.
    pub token: Option<String>,
    /// Website and project keys, for grouped folds.
    pub group_keys: Vec<String>,
}

/// The extraction examples of `items`: their positives that name a project or a token.
pub fn extraction_examples(
    scorer: &Scorer,
    items: &[&LabelledItem],
    year: i32,
) -> Vec<ExtractionExample> {
    items
        .iter()
        .filter(|item| item.is_tge && (item.project.is_some() || item.token.is_some()))
        .map(|item| {
            let (_, _, joined) = scorer.examples_of(input_of(item, year));
            let mut group_keys = Vec::new();
            if let Some(website) = &item.website {
                group_keys.push(format!("site:{}", website.to_lowercase()));
            }
            if let Some(project) = &item.project {
                group_keys.push(format!("project:{}", project.to_lowercase()));
            }
            ExtractionExample {
                text: joined,
                project: item.project.clone(),
                token: item.token.clone(),
                group_keys,
            }
        })
        .collect()
}

/// Right and judged counts of one field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accuracy {
    /// Items whose pick was right.
    pub right: usize,
    /// Items judged (those labelled with the field).
    pub judged: usize,
}

impl Accuracy {
    /// Counts one item: judged when it is `labelled`, right when `found` is `same`.
    fn judge(&mut self, labelled: Option<&str>, found: Option<&str>, same: fn(&str, &str) -> bool) {
        if let Some(labelled) = labelled {
            self.judged += 1;
            self.right += usize::from(found.is_some_and(|found| same(labelled, found)));
        }
    }

    /// `right / judged` (0 when none was judged).
    pub fn share(&self) -> f64 {
        if self.judged == 0 {
            0.0
        } else {
            self.right as f64 / self.judged as f64
        }
    }
}

/// Out-of-fold figures of the ranker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractionFigures {
    /// Project picks.
    pub project: Accuracy,
    /// Ticker picks.
    pub ticker: Accuracy,
}

/// Fits one scorer: mean log-loss over every candidate row, L2 on the weights (not the bias).
fn fit_linear(rows: &[(&[f64], bool)], features: usize, l2: f64, iterations: usize) -> Linear {
    if rows.is_empty() {
        return Linear {
            bias: 0.0,
            weights: vec![0.0; features],
        };
    }
    let n = rows.len() as f64;
    let theta = minimise(1 + features, iterations, |theta, gradient| {
        gradient.iter_mut().for_each(|g| *g = 0.0);
        let mut loss = 0.0;
        for (values, label) in rows {
            let z = theta[0]
                + theta[1..]
                    .iter()
                    .zip(values.iter())
                    .map(|(w, x)| w * x)
                    .sum::<f64>();
            // log(1 + e^z) - y z, computed stably.
            let softplus = if z > 0.0 {
                z + (-z).exp().ln_1p()
            } else {
                z.exp().ln_1p()
            };
            let y = if *label { 1.0 } else { 0.0 };
            loss += softplus - y * z;
            let residual = crate::keyword::model::sigmoid(z) - y;
            gradient[0] += residual;
            for (g, x) in gradient[1..].iter_mut().zip(values.iter()) {
                *g += residual * x;
            }
        }
        loss /= n;
        gradient.iter_mut().for_each(|g| *g /= n);
        for (index, w) in theta.iter().enumerate().skip(1) {
            loss += l2 * w * w;
            gradient[index] += 2.0 * l2 * w;
        }
        loss
    });
    Linear {
        bias: theta[0],
        weights: theta[1..].to_vec(),
    }
}

/// Fits both scorers on `examples` (`candidates[i]` holds example i's ticker candidates).
fn fit_ranker(
    salience: &Salience,
    examples: &[&ExtractionExample],
    candidates: &[&Vec<Candidate>],
    l2: f64,
    iterations: usize,
) -> Ranker {
    let ticker_rows: Vec<(&[f64], bool)> = examples
        .iter()
        .zip(candidates)
        .filter_map(|(example, found)| example.token.as_deref().map(|token| (token, found)))
        .flat_map(|(token, found)| {
            found.iter().map(move |candidate| {
                (
                    candidate.values.as_slice(),
                    same_token(token, &candidate.name),
                )
            })
        })
        .collect();
    let ticker = fit_linear(&ticker_rows, TICKER_FEATURES.len(), l2, iterations);
    let project_candidates: Vec<(&str, Vec<Candidate>)> = examples
        .iter()
        .zip(candidates)
        .filter_map(|(example, found)| {
            let project = example.project.as_deref()?;
            let chosen = pick(&ticker, (*found).clone(), TICKER_FLOOR);
            Some((
                project,
                salience.project_candidates(&example.text, chosen.as_deref()),
            ))
        })
        .collect();
    let project_rows: Vec<(&[f64], bool)> = project_candidates
        .iter()
        .flat_map(|(project, found)| {
            found.iter().map(move |candidate| {
                (
                    candidate.values.as_slice(),
                    same_project(project, &candidate.name),
                )
            })
        })
        .collect();
    let project = fit_linear(&project_rows, PROJECT_FEATURES.len(), l2, iterations);
    Ranker { ticker, project }
}

/// Fits the ranker on every example, and judges it out of fold (`folds` grouped folds).
pub fn train_extraction(
    examples: &[ExtractionExample],
    l2: f64,
    iterations: usize,
    folds: usize,
) -> Result<(Ranker, ExtractionFigures), regex::Error> {
    // Candidates do not depend on the weights.
    let salience = Salience::new(None)?;
    // Each example's ticker candidates (its project candidates depend on the ticker picked,
    // so they are read per fit).
    let candidates: Vec<Vec<Candidate>> = examples
        .iter()
        .map(|example| salience.ticker_candidates(&example.text))
        .collect();
    let keys: Vec<&[String]> = examples
        .iter()
        .map(|example| example.group_keys.as_slice())
        .collect();
    let assignment = assign_folds_by_keys(&keys, folds);
    let mut figures = ExtractionFigures::default();
    for fold in 0..folds.max(2) {
        let (training, training_candidates): (Vec<&ExtractionExample>, Vec<&Vec<Candidate>>) =
            examples
                .iter()
                .zip(&candidates)
                .zip(&assignment)
                .filter(|(_, assigned)| **assigned != fold)
                .map(|(pair, _)| pair)
                .unzip();
        let ranker = fit_ranker(&salience, &training, &training_candidates, l2, iterations);
        let judged = Salience::new(Some(ranker))?;
        for (example, _) in examples
            .iter()
            .zip(&assignment)
            .filter(|(_, assigned)| **assigned == fold)
        {
            let (project, ticker) = judged.find(&example.text);
            figures
                .ticker
                .judge(example.token.as_deref(), ticker.as_deref(), same_token);
            figures
                .project
                .judge(example.project.as_deref(), project.as_deref(), same_project);
        }
    }
    let all: Vec<&ExtractionExample> = examples.iter().collect();
    let all_candidates: Vec<&Vec<Candidate>> = candidates.iter().collect();
    let ranker = fit_ranker(&salience, &all, &all_candidates, l2, iterations);
    Ok((ranker, figures))
}

/// Trains the extraction ranker on `examples` into `model` (with `options`' penalty,
/// iterations and folds) and records its out-of-fold figures in the model's training info.
pub fn add_extraction(
    model: &mut crate::keyword::model::Model,
    examples: &[ExtractionExample],
    options: &super::TrainOptions,
) -> Result<ExtractionFigures, regex::Error> {
    let (ranker, figures) = train_extraction(
        examples,
        options.l2_extraction,
        options.iterations,
        options.folds,
    )?;
    model.extraction = Some(ranker);
    model.training.l2_extraction = options.l2_extraction;
    model.training.extraction_cross_validation = [
        crate::keyword::model::round(figures.project.share()),
        crate::keyword::model::round(figures.ticker.share()),
    ];
    Ok(figures)
}
