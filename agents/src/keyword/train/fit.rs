//! The solver: the objective over the blocks a stage reads, and L-BFGS.

use crate::keyword::features::FEATURE_COUNT;
use crate::keyword::model::sigmoid;
use crate::keyword::sentence;
use crate::keyword::text::DIM;

use super::*;

/// Parameters in the solver's layout: the bias, the structured weights, the text weights,
/// the embedding weights.
pub(super) const DENSE: usize = 1 + FEATURE_COUNT;
pub(super) const EMBEDDING: usize = DENSE + DIM;
pub(super) const PARAMS: usize = EMBEDDING + sentence::DIM;

/// Which blocks a stage of the cascade reads; the blocks it does not read keep their zero
/// start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Blocks {
    /// The first stage: the structured features.
    Structured,
    /// The second stage: and the n-grams.
    Text,
    /// The third stage: and the embedding.
    Sentence,
}

impl Blocks {
    fn text(self) -> bool {
        self != Blocks::Structured
    }

    fn embedding(self) -> bool {
        self == Blocks::Sentence
    }
}

/// Mean log-loss plus the L2 terms, and its gradient into `gradient`, over the blocks given.
pub(super) fn objective(
    theta: &[f64],
    examples: &[&Example],
    options: &TrainOptions,
    blocks: Blocks,
    gradient: &mut [f64],
) -> f64 {
    gradient.iter_mut().for_each(|g| *g = 0.0);
    let n = examples.len().max(1) as f64;
    let mut loss = 0.0;
    for example in examples {
        let mut z = theta[0];
        for (index, value) in example.values.iter().enumerate() {
            z += theta[1 + index] * value;
        }
        let text: &[(u32, f32)] = if blocks.text() { &example.text } else { &[] };
        for (bucket, value) in text {
            z += theta[DENSE + *bucket as usize] * f64::from(*value);
        }
        let embedding: &[f32] = if blocks.embedding() {
            &example.embedding
        } else {
            &[]
        };
        for (index, value) in embedding.iter().enumerate() {
            z += theta[EMBEDDING + index] * f64::from(*value);
        }
        let y = if example.label { 1.0 } else { 0.0 };
        // log(1 + e^z) - y z, stably.
        let softplus = z.max(0.0) + (-z.abs()).exp().ln_1p();
        loss += softplus - y * z;
        let error = (sigmoid(z) - y) / n;
        gradient[0] += error;
        for (index, value) in example.values.iter().enumerate() {
            gradient[1 + index] += error * value;
        }
        for (bucket, value) in text {
            gradient[DENSE + *bucket as usize] += error * f64::from(*value);
        }
        for (index, value) in embedding.iter().enumerate() {
            gradient[EMBEDDING + index] += error * f64::from(*value);
        }
    }
    loss /= n;
    for index in 1..PARAMS {
        let l2 = if index < DENSE {
            options.l2
        } else if index < EMBEDDING {
            options.l2_text
        } else {
            options.l2_embedding
        };
        loss += 0.5 * l2 * theta[index] * theta[index];
        gradient[index] += l2 * theta[index];
    }
    loss
}

pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimises [`objective`] over the blocks given, from zero.
pub(super) fn fit(examples: &[&Example], options: &TrainOptions, blocks: Blocks) -> Vec<f64> {
    if examples.is_empty() {
        return vec![0.0; PARAMS];
    }
    minimise(PARAMS, options.iterations, |theta, gradient| {
        objective(theta, examples, options, blocks, gradient)
    })
}

/// Minimises a smooth convex `objective` (the loss, its gradient written into the slice) of
/// `params` parameters from zero by L-BFGS (ten corrections) with a backtracking Armijo line
/// search, at most `iterations` steps.
pub(super) fn minimise(
    params: usize,
    iterations: usize,
    mut objective: impl FnMut(&[f64], &mut [f64]) -> f64,
) -> Vec<f64> {
    const MEMORY: usize = 10;
    let mut theta = vec![0.0; params];
    let mut gradient = vec![0.0; params];
    let mut loss = objective(&theta, &mut gradient);
    let mut history: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> =
        std::collections::VecDeque::with_capacity(MEMORY);
    let mut candidate = vec![0.0; params];
    let mut candidate_gradient = vec![0.0; params];
    for _ in 0..iterations {
        // Two-loop recursion: direction = -H g.
        let mut direction: Vec<f64> = gradient.iter().map(|g| -g).collect();
        let mut alphas = Vec::with_capacity(history.len());
        for (s, y, rho) in history.iter().rev() {
            let alpha = rho * dot(s, &direction);
            for (d, yi) in direction.iter_mut().zip(y) {
                *d -= alpha * yi;
            }
            alphas.push(alpha);
        }
        if let Some((s, y, _)) = history.back() {
            let scale = dot(s, y) / dot(y, y).max(1e-300);
            direction.iter_mut().for_each(|d| *d *= scale);
        }
        for ((s, y, rho), alpha) in history.iter().zip(alphas.iter().rev()) {
            let beta = rho * dot(y, &direction);
            for (d, si) in direction.iter_mut().zip(s) {
                *d += (alpha - beta) * si;
            }
        }
        let mut slope = dot(&gradient, &direction);
        if slope >= 0.0 {
            // Not a descent direction (curvature went stale): restart from steepest descent.
            history.clear();
            direction = gradient.iter().map(|g| -g).collect();
            slope = dot(&gradient, &direction);
        }
        let mut step = if history.is_empty() {
            1.0 / dot(&gradient, &gradient).sqrt().max(1e-12)
        } else {
            1.0
        };
        let mut accepted = false;
        for _ in 0..40 {
            for ((c, t), d) in candidate.iter_mut().zip(&theta).zip(&direction) {
                *c = t + step * d;
            }
            let candidate_loss = objective(&candidate, &mut candidate_gradient);
            if candidate_loss <= loss + 1e-4 * step * slope {
                let s: Vec<f64> = candidate.iter().zip(&theta).map(|(c, t)| c - t).collect();
                let y: Vec<f64> = candidate_gradient
                    .iter()
                    .zip(&gradient)
                    .map(|(c, g)| c - g)
                    .collect();
                let sy = dot(&s, &y);
                if sy > 1e-12 {
                    if history.len() == MEMORY {
                        history.pop_front();
                    }
                    history.push_back((s, y, 1.0 / sy));
                }
                std::mem::swap(&mut theta, &mut candidate);
                std::mem::swap(&mut gradient, &mut candidate_gradient);
                let improvement = loss - candidate_loss;
                loss = candidate_loss;
                accepted = true;
                if improvement < 1e-10 * loss.abs().max(1.0) {
                    return theta;
                }
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            break;
        }
        if gradient.iter().map(|g| g.abs()).fold(0.0, f64::max) < 1e-7 {
            break;
        }
    }
    theta
}

/// Logit of an example under fitted parameters.
pub(super) fn logit(theta: &[f64], example: &Example) -> f64 {
    let mut z = theta[0];
    for (index, value) in example.values.iter().enumerate() {
        z += theta[1 + index] * value;
    }
    for (bucket, value) in &example.text {
        z += theta[DENSE + *bucket as usize] * f64::from(*value);
    }
    for (index, value) in example.embedding.iter().enumerate() {
        z += theta[EMBEDDING + index] * f64::from(*value);
    }
    z
}
