//! Softmax cross-entropy with label smoothing, and accuracy.
//!
//! The smoothed target of a row with label `y` over `k` classes is
//! `(1 − ε)·onehot(y) + ε/k`. Nothing is kept: the loss and its gradient
//! come out of one call.

use ndarray::{Array2, ArrayView1, ArrayView2, Axis};

fn check(logits: &ArrayView2<'_, f32>, labels: &[usize]) {
    let (n, k) = logits.dim();
    assert_eq!(
        n,
        labels.len(),
        "softmax_cross_entropy: {n} rows of logits but {} labels",
        labels.len()
    );
    if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l >= k) {
        panic!("softmax_cross_entropy: label {l} of row {i} is not below the {k} classes");
    }
}

/// Numerically stable log-softmax of one row, written into `out`.
fn log_softmax_row(row: ArrayView1<'_, f32>, out: &mut [f32]) {
    let max = row.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0f64;
    for &v in row {
        sum += f64::from((v - max).exp());
    }
    let log_z = max + sum.ln() as f32;
    for (o, &v) in out.iter_mut().zip(row) {
        *o = v - log_z;
    }
}

/// Mean cross-entropy over the batch against label-smoothed targets, and its
/// gradient w.r.t. the logits: `(softmax − target) / n`.
///
/// # Shapes
/// `logits: [n, classes]`, `labels: [n]` (each `< classes`) →
/// (`loss`, `[n, classes]`).
pub(crate) fn softmax_cross_entropy(
    logits: ArrayView2<'_, f32>,
    labels: &[usize],
    label_smoothing: f32,
) -> (f32, Array2<f32>) {
    check(&logits, labels);
    assert!(
        (0.0..=1.0).contains(&label_smoothing),
        "softmax_cross_entropy: label_smoothing {label_smoothing} outside [0, 1]"
    );
    let (n, k) = logits.dim();
    let off = label_smoothing / k as f32;
    let on = 1.0 - label_smoothing + off;
    let mut dlogits = Array2::<f32>::zeros((n, k));
    let mut loss = 0.0f64;
    let mut logp = vec![0.0f32; k];
    let inv_n = 1.0 / n as f32;
    for ((row, mut drow), &label) in logits
        .outer_iter()
        .zip(dlogits.outer_iter_mut())
        .zip(labels)
    {
        log_softmax_row(row, &mut logp);
        for (c, (&lp, d)) in logp.iter().zip(drow.iter_mut()).enumerate() {
            let t = if c == label { on } else { off };
            loss -= f64::from(t * lp);
            *d = (lp.exp() - t) * inv_n;
        }
    }
    ((loss / n as f64) as f32, dlogits)
}

/// Number of rows whose largest logit is at the label (first maximum wins
/// ties).
///
/// # Shapes
/// `logits: [n, classes]`, `labels: [n]`.
pub(crate) fn correct_count(logits: ArrayView2<'_, f32>, labels: &[usize]) -> usize {
    check(&logits, labels);
    logits
        .axis_iter(Axis(0))
        .zip(labels)
        .filter(|(row, label)| {
            let mut best = 0;
            for (c, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = c;
                }
            }
            best == **label
        })
        .count()
}

/// Fraction of rows classified correctly (see [`correct_count`]); 0 for an
/// empty batch.
///
/// # Shapes
/// `logits: [n, classes]`, `labels: [n]`.
pub(crate) fn accuracy(logits: ArrayView2<'_, f32>, labels: &[usize]) -> f32 {
    if labels.is_empty() {
        return 0.0;
    }
    correct_count(logits, labels) as f32 / labels.len() as f32
}

/// Mean over the rows of the softmax probability at the label; 0 for an
/// empty batch.
///
/// # Shapes
/// `logits: [n, classes]`, `labels: [n]`.
pub(crate) fn mean_true_class_probability(logits: ArrayView2<'_, f32>, labels: &[usize]) -> f32 {
    check(&logits, labels);
    if labels.is_empty() {
        return 0.0;
    }
    let mut logp = vec![0.0f32; logits.ncols()];
    let mut sum = 0.0f64;
    for (row, &label) in logits.outer_iter().zip(labels) {
        log_softmax_row(row, &mut logp);
        sum += f64::from(logp[label].exp());
    }
    (sum / labels.len() as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::testing::{check_grad, rng, uniform};
    use ndarray::array;

    #[test]
    fn exact_values() {
        // Uniform logits: loss is ln(k) whatever the smoothing.
        let logits = Array2::<f32>::zeros((2, 4));
        let (loss, d) = softmax_cross_entropy(logits.view(), &[0, 3], 0.1);
        assert!((loss - 4.0f32.ln()).abs() < 1e-6);
        // d = (0.25 - t) / 2 with t = 0.925 on the label, 0.025 elsewhere.
        assert!((d[[0, 0]] - (0.25 - 0.925) / 2.0).abs() < 1e-6);
        assert!((d[[0, 1]] - (0.25 - 0.025) / 2.0).abs() < 1e-6);
        assert!((d[[1, 3]] - (0.25 - 0.925) / 2.0).abs() < 1e-6);
        assert!(d.sum().abs() < 1e-6);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let logits = uniform(&mut rng(41), (3, 5), -2.0, 2.0);
        let labels = [4, 0, 2];
        let (_, d) = softmax_cross_entropy(logits.view(), &labels, 0.1);
        let mut ls = logits.clone();
        check_grad(
            "xent",
            ls.as_slice_mut().unwrap(),
            d.as_slice().unwrap(),
            1e-2,
            1e-2,
            1e-4,
            |v| {
                f64::from(
                    softmax_cross_entropy(ArrayView2::from_shape((3, 5), v).unwrap(), &labels, 0.1)
                        .0,
                )
            },
        );
    }

    #[test]
    fn accuracy_counts_argmax() {
        let logits = array![[0.1f32, 0.9, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 5.0]];
        assert_eq!(correct_count(logits.view(), &[1, 1, 2]), 2);
        assert!((accuracy(logits.view(), &[1, 1, 2]) - 2.0 / 3.0).abs() < 1e-7);
    }

    #[test]
    fn true_class_probability_matches_a_naive_softmax() {
        let logits = uniform(&mut rng(43), (4, 6), -30.0, 30.0);
        let labels = [5, 0, 3, 3];
        let naive: f64 = logits
            .outer_iter()
            .zip(&labels)
            .map(|(row, &l)| {
                let e: Vec<f64> = row.iter().map(|&v| f64::from(v).exp()).collect();
                e[l] / e.iter().sum::<f64>()
            })
            .sum::<f64>()
            / labels.len() as f64;
        let p = mean_true_class_probability(logits.view(), &labels);
        assert!((f64::from(p) - naive).abs() < 1e-6, "{p} against {naive}");
        // Uniform logits: 1/k; a dominant true logit: close to 1.
        let flat = Array2::<f32>::zeros((2, 4));
        assert!((mean_true_class_probability(flat.view(), &[1, 2]) - 0.25).abs() < 1e-7);
        let sure = array![[0.0f32, 200.0, 0.0]];
        assert!((mean_true_class_probability(sure.view(), &[1]) - 1.0).abs() < 1e-7);
    }

    #[test]
    #[should_panic(expected = "label 3 of row 1")]
    fn label_out_of_range_panics() {
        let _ = softmax_cross_entropy(Array2::<f32>::zeros((2, 3)).view(), &[0, 3], 0.0);
    }
}
