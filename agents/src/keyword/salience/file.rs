//! The extraction ranker in the model file: its weights by feature name, every feature
//! present and none unknown.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Linear, PROJECT_FEATURES, Ranker, TICKER_FEATURES};

/// The model file's `extraction` block.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankerFile {
    ticker: LinearFile,
    project: LinearFile,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinearFile {
    bias: f64,
    weights: BTreeMap<String, f64>,
}

impl RankerFile {
    /// The block of `ranker`, its numbers passed through `round`.
    pub fn of(ranker: &Ranker, round: fn(f64) -> f64) -> RankerFile {
        RankerFile {
            ticker: LinearFile::of(&ranker.ticker, TICKER_FEATURES, round),
            project: LinearFile::of(&ranker.project, PROJECT_FEATURES, round),
        }
    }

    /// The ranker; the error names the field (under `field`) that is wrong.
    pub fn read(&self, field: &str) -> Result<Ranker, String> {
        Ok(Ranker {
            ticker: self
                .ticker
                .read(&format!("{field}.ticker"), TICKER_FEATURES)?,
            project: self
                .project
                .read(&format!("{field}.project"), PROJECT_FEATURES)?,
        })
    }
}

impl LinearFile {
    fn of(linear: &Linear, names: &[&str], round: fn(f64) -> f64) -> LinearFile {
        LinearFile {
            bias: round(linear.bias),
            weights: names
                .iter()
                .zip(&linear.weights)
                .map(|(name, weight)| ((*name).to_owned(), round(*weight)))
                .collect(),
        }
    }

    fn read(&self, field: &str, names: &[&str]) -> Result<Linear, String> {
        if !self.bias.is_finite() {
            return Err(format!("{field}: bias is not finite"));
        }
        if let Some(unknown) = self
            .weights
            .keys()
            .find(|name| !names.contains(&name.as_str()))
        {
            return Err(format!("{field}: unknown feature `{unknown}`"));
        }
        let mut weights = Vec::with_capacity(names.len());
        for name in names {
            match self.weights.get(*name) {
                Some(weight) if weight.is_finite() => weights.push(*weight),
                Some(_) => return Err(format!("{field}: weight of `{name}` is not finite")),
                None => return Err(format!("{field}: no weight for feature `{name}`")),
            }
        }
        Ok(Linear {
            bias: self.bias,
            weights,
        })
    }
}
