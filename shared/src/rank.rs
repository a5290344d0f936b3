//! Rank correlations between two paired samples: Kendall's τ-b and
//! Spearman's ρ (ties share their mean rank). The profiler uses them for
//! estimate-vs-measured agreement, the searcher for shared-weight vs
//! stand-alone accuracy.

/// Kendall's τ-b (ties handled), O(n²).
pub fn kendall_tau_b(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len();
    let (mut concordant, mut discordant, mut ties_a, mut ties_b) = (0f64, 0f64, 0f64, 0f64);
    for i in 0..n {
        for j in i + 1..n {
            let da = (a[i] - a[j]).signum() * f64::from(u8::from(a[i] != a[j]));
            let db = (b[i] - b[j]).signum() * f64::from(u8::from(b[i] != b[j]));
            match (da == 0.0, db == 0.0) {
                (true, true) => {}
                (true, false) => ties_a += 1.0,
                (false, true) => ties_b += 1.0,
                (false, false) if da == db => concordant += 1.0,
                (false, false) => discordant += 1.0,
            }
        }
    }
    let denom = ((concordant + discordant + ties_a) * (concordant + discordant + ties_b)).sqrt();
    if denom == 0.0 {
        0.0
    } else {
        (concordant - discordant) / denom
    }
}

/// Average ranks (1-based), ties sharing the mean rank.
pub fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Pearson correlation.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

/// Spearman's ρ: Pearson correlation of the ranks.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// The highest Kendall τ any predictor can reach against accuracies that
/// each carry independent training noise: with a spread (standard
/// deviation) `spread` over the measured accuracies and a noise standard
/// deviation `noise` of one measurement, the part of the spread that is the
/// architectures' own is √(spread² − noise²), a perfect predictor of it
/// correlates with the measurements at r = that part / spread, and for
/// normal data τ = (2/π)·asin(r). `None` when the spread is not positive.
pub fn kendall_tau_ceiling(spread: f64, noise: f64) -> Option<f64> {
    (spread > 0.0 && spread.is_finite() && noise.is_finite()).then(|| {
        let own = (spread * spread - noise * noise).max(0.0).sqrt();
        std::f64::consts::FRAC_2_PI * (own / spread).asin()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_correlations_on_known_orders() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(kendall_tau_b(&a, &[10.0, 20.0, 30.0, 40.0]), 1.0);
        assert_eq!(kendall_tau_b(&a, &[4.0, 3.0, 2.0, 1.0]), -1.0);
        // One swapped pair out of six: (5 − 1) / 6.
        assert!((kendall_tau_b(&a, &[1.0, 3.0, 2.0, 4.0]) - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(spearman(&a, &[1.0, 4.0, 9.0, 16.0]), 1.0);
        // d² = 0+1+1+0 = 2; ρ = 1 − 6·2 / (4·15) = 0.8.
        assert!((spearman(&a, &[1.0, 3.0, 2.0, 4.0]) - 0.8).abs() < 1e-12);
        assert_eq!(ranks(&[5.0, 1.0, 5.0]), vec![2.5, 1.0, 2.5]);
    }

    #[test]
    fn tau_ceiling_matches_simulated_noisy_measurements() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Box–Muller: one standard normal draw from two uniform ones.
        let mut normal = move || {
            let (u, v): (f64, f64) = (rng.random(), rng.random());
            (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        };
        for (own, noise) in [(0.24, 0.27), (0.44, 0.15), (0.3, 0.0)] {
            let n = 3000;
            let quality: Vec<f64> = (0..n).map(|_| own * normal()).collect();
            let measured: Vec<f64> = quality.iter().map(|q| q + noise * normal()).collect();
            let spread: f64 = (own * own + noise * noise).sqrt();
            let ceiling = kendall_tau_ceiling(spread, noise).unwrap();
            let simulated = kendall_tau_b(&quality, &measured);
            assert!(
                (ceiling - simulated).abs() < 0.02,
                "own {own}, noise {noise}: formula {ceiling}, simulated {simulated}"
            );
        }
        assert_eq!(kendall_tau_ceiling(0.2, 0.3), Some(0.0));
        assert_eq!(kendall_tau_ceiling(0.0, 0.1), None);
    }
}
