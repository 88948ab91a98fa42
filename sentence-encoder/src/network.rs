//! The encoder's forward pass: token embeddings, three convolution branches over windows of
//! 2, 3 and 5 pieces, layer norms, a sum over the sentence scaled by the square root of its
//! length, four dense layers, tanh, unit length.
//!
//! Sentences are run as one flat batch: the pieces of every sentence are stacked into one
//! matrix, so each weight matrix is read once per batch, and a window slot that would reach
//! into a neighbouring sentence reads zeros instead (the per-sentence zero padding).

use std::io::Cursor;

// Slices by `slice_axis`: ndarray's `s!` macro expands to `allow(unsafe_code)`, which the
// workspace's `forbid` refuses.
use ndarray::{Array, Array1, Array2, ArrayView2, Axis, Dimension, Ix1, Ix2, Slice};
use ndarray_npy::NpzReader;

use crate::{DIM, EncoderError};

/// Rows of each quantised block of the embedding table.
const BLOCK_ROWS: usize = 7530;
/// Number of quantised blocks; piece `p` is row `p / BLOCKS` of block `p % BLOCKS`.
const BLOCKS: usize = 17;
/// Width of each convolution branch.
const BRANCH: usize = 256;
/// (window, pieces to the left) of the three convolution branches.
const ORDERS: [(usize, usize); 3] = [(2, 0), (3, 1), (5, 2)];
/// Width of the features summed over a sentence: the embedding and the three branches.
const FEATURES: usize = DIM + ORDERS.len() * BRANCH;

/// One convolution branch: two window layers with residual connections.
struct Branch {
    window: usize,
    left: usize,
    w1: Array2<f32>,
    b1: Array1<f32>,
    w2: Array2<f32>,
    b2: Array1<f32>,
}

/// The weights.
pub struct Network {
    blocks: Vec<Array2<u8>>,
    scale: Array1<f32>,
    offset: Array1<f32>,
    proj: Array2<f32>,
    proj_b: Array1<f32>,
    proj_g: Array1<f32>,
    proj_beta: Array1<f32>,
    branches: Vec<Branch>,
    ln_g: Array1<f32>,
    ln_b: Array1<f32>,
    cnn_w: Array2<f32>,
    cnn_b: Array1<f32>,
    d0: Array2<f32>,
    d1: Array2<f32>,
    d2: Array2<f32>,
    d3: Array2<f32>,
    p1: Array2<f32>,
    p3: Array2<f32>,
    eps: f32,
}

fn weight_error(name: &str, e: impl std::fmt::Display) -> EncoderError {
    EncoderError::Weights(format!("array `{name}`: {e}"))
}

struct Reader<'a>(NpzReader<Cursor<&'a [u8]>>);

impl Reader<'_> {
    /// The array `name`, which must have exactly `shape`.
    fn array<T: ndarray_npy::ReadableElement, D: Dimension>(
        &mut self,
        name: &str,
        shape: D,
    ) -> Result<Array<T, D>, EncoderError> {
        let array: Array<T, D> = self.0.by_name(name).map_err(|e| weight_error(name, e))?;
        if array.raw_dim() != shape {
            return Err(weight_error(
                name,
                format!("shape {:?}, expected {:?}", array.shape(), shape.slice()),
            ));
        }
        Ok(array)
    }

    fn matrix<T: ndarray_npy::ReadableElement>(
        &mut self,
        name: &str,
        (rows, cols): (usize, usize),
    ) -> Result<Array2<T>, EncoderError> {
        self.array(name, Ix2(rows, cols))
    }

    fn vector(&mut self, name: &str, len: usize) -> Result<Array1<f32>, EncoderError> {
        self.array(name, Ix1(len))
    }
}

fn concat(parts: &[Array1<f32>]) -> Array1<f32> {
    parts.iter().flat_map(|p| p.iter().copied()).collect()
}

impl Network {
    /// Reads the weights from the bytes of a `.npz` file.
    pub fn from_npz(bytes: &[u8]) -> Result<Network, EncoderError> {
        let zip = NpzReader::new(Cursor::new(bytes))
            .map_err(|e| EncoderError::Weights(format!("not an npz archive: {e}")))?;
        let mut r = Reader(zip);
        let mut blocks = Vec::with_capacity(BLOCKS);
        for i in 1..=BLOCKS {
            blocks.push(r.matrix::<u8>(&format!("q{i}"), (BLOCK_ROWS, DIM))?);
        }
        let scale = r.vector("scale", BLOCKS)?;
        let offset = r.vector("lo", BLOCKS)?;
        let mut projs = Vec::new();
        let (mut proj_b, mut proj_g, mut proj_beta) = (Vec::new(), Vec::new(), Vec::new());
        let mut branches = Vec::new();
        for (window, left) in ORDERS {
            // The branches are named by their window: `proj2`, `w1_3`, ...
            projs.push(r.matrix::<f32>(&format!("proj{window}"), (DIM, BRANCH))?);
            proj_b.push(r.vector(&format!("proj_b{window}"), BRANCH)?);
            proj_g.push(r.vector(&format!("ln_g{window}"), BRANCH)?);
            proj_beta.push(r.vector(&format!("ln_b{window}"), BRANCH)?);
            branches.push(Branch {
                window,
                left,
                w1: r.matrix(&format!("w1_{window}"), (window * BRANCH, BRANCH))?,
                b1: r.vector(&format!("b1_{window}"), BRANCH)?,
                w2: r.matrix(&format!("w2_{window}"), (window * BRANCH, BRANCH))?,
                b2: r.vector(&format!("b2_{window}"), BRANCH)?,
            });
        }
        let views: Vec<ArrayView2<'_, f32>> = projs.iter().map(|p| p.view()).collect();
        let proj = ndarray::concatenate(Axis(1), &views).map_err(|e| weight_error("proj", e))?;
        let eps: ndarray::Array0<f64> = r.0.by_name("eps").map_err(|e| weight_error("eps", e))?;
        Ok(Network {
            blocks,
            scale,
            offset,
            proj,
            proj_b: concat(&proj_b),
            proj_g: concat(&proj_g),
            proj_beta: concat(&proj_beta),
            branches,
            ln_g: r.vector("ln_g", FEATURES)?,
            ln_b: r.vector("ln_b", FEATURES)?,
            cnn_w: r.matrix("cnn_W", (FEATURES, DIM))?,
            cnn_b: r.vector("cnn_b", DIM)?,
            d0: r.matrix("d0", (DIM, 320))?,
            d1: r.matrix("d1", (320, 320))?,
            p1: r.matrix("p1", (DIM, 320))?,
            d2: r.matrix("d2", (320, DIM))?,
            p3: r.matrix("p3", (320, DIM))?,
            d3: r.matrix("d3", (DIM, DIM))?,
            eps: eps.into_scalar() as f32,
        })
    }

    /// Number of pieces the embedding table holds.
    pub fn pieces(&self) -> usize {
        BLOCKS * BLOCK_ROWS
    }

    /// Embeds a batch of sentences, each given as piece ids (at least one piece each; an id
    /// beyond the table reads as the unknown piece). One unit-length vector per sentence.
    pub fn forward(&self, sentences: &[Vec<u32>]) -> Vec<Vec<f32>> {
        let total: usize = sentences.iter().map(|s| s.len()).sum();
        if total == 0 {
            return sentences.iter().map(|_| vec![0.0; DIM]).collect();
        }
        // Sentence of each row, to keep windows inside their sentence.
        let mut owner = Vec::with_capacity(total);
        for (i, s) in sentences.iter().enumerate() {
            owner.extend(std::iter::repeat_n(i, s.len()));
        }

        let mut features = Array2::<f32>::zeros((total, FEATURES));
        {
            let mut emb = features.slice_axis_mut(Axis(1), Slice::from(..DIM));
            for (row, &id) in sentences.iter().flat_map(|s| s.iter()).enumerate() {
                let id = id as usize;
                let id = if id < self.pieces() { id } else { 0 };
                let block = id % BLOCKS;
                let (scale, offset) = (self.scale[block], self.offset[block]);
                let source = self.blocks[block].row(id / BLOCKS);
                for (out, &q) in emb.row_mut(row).iter_mut().zip(source.iter()) {
                    *out = f32::from(q) * scale + offset;
                }
            }
        }

        let mut x = features
            .slice_axis(Axis(1), Slice::from(..DIM))
            .dot(&self.proj);
        x += &self.proj_b;
        layer_norm(&mut x, &self.proj_g, &self.proj_beta, self.eps);

        for (i, branch) in self.branches.iter().enumerate() {
            let xs = x.slice_axis(Axis(1), Slice::from(i * BRANCH..(i + 1) * BRANCH));
            let mut h = windows(xs, branch, &owner).dot(&branch.w1);
            h += &branch.b1;
            h.mapv_inplace(relu);
            h += &xs;
            let mut c = windows(h.view(), branch, &owner).dot(&branch.w2);
            c += &branch.b2;
            c.mapv_inplace(relu);
            c += &h;
            let at = DIM + i * BRANCH;
            features
                .slice_axis_mut(Axis(1), Slice::from(at..at + BRANCH))
                .assign(&c);
        }
        layer_norm(&mut features, &self.ln_g, &self.ln_b, self.eps);

        // The sum over a sentence commutes with the linear projection that follows it, so the
        // projection runs on one row per sentence.
        let mut sums = Array2::<f32>::zeros((sentences.len(), FEATURES));
        for (row, &s) in owner.iter().enumerate() {
            let mut sum = sums.row_mut(s);
            sum += &features.row(row);
        }
        let mut mean = sums.dot(&self.cnn_w);
        for (mut row, s) in mean.rows_mut().into_iter().zip(sentences) {
            let len = s.len().max(1) as f32;
            row.scaled_add(len, &self.cnn_b);
            row /= len.sqrt();
        }

        let y0 = mean.dot(&self.d0).mapv_into(relu);
        let y1 = (mean.dot(&self.p1) + y0.dot(&self.d1)).mapv_into(relu);
        let y2 = y1.dot(&self.d2).mapv_into(relu);
        let z = (y1.dot(&self.p3) + y2.dot(&self.d3)).mapv_into(f32::tanh);
        z.rows()
            .into_iter()
            .map(|row| {
                let norm = row.dot(&row).max(self.eps).sqrt();
                row.iter().map(|v| v / norm).collect()
            })
            .collect()
    }
}

fn relu(v: f32) -> f32 {
    v.max(0.0)
}

/// Each row's window of `branch.window` rows starting `branch.left` rows before it, side by
/// side; rows outside the row's own sentence are zeros.
fn windows(x: ArrayView2<'_, f32>, branch: &Branch, owner: &[usize]) -> Array2<f32> {
    let rows = x.nrows();
    let width = x.ncols();
    let mut out = Array2::<f32>::zeros((rows, branch.window * width));
    for t in 0..rows {
        let mut row = out.row_mut(t);
        for k in 0..branch.window {
            let Some(source) = (t + k).checked_sub(branch.left) else {
                continue;
            };
            if source >= rows || owner[source] != owner[t] {
                continue;
            }
            row.slice_axis_mut(Axis(0), Slice::from(k * width..(k + 1) * width))
                .assign(&x.row(source));
        }
    }
    out
}

/// Layer norm of every row, in place.
fn layer_norm(x: &mut Array2<f32>, gamma: &Array1<f32>, beta: &Array1<f32>, eps: f32) {
    let n = x.ncols() as f32;
    for mut row in x.rows_mut() {
        let mean = row.sum() / n;
        row -= mean;
        let var = row.dot(&row) / n;
        row *= 1.0 / (var + eps).sqrt();
        row *= gamma;
        row += beta;
    }
}
