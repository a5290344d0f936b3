//! Per-row timing statistics: how a row's samples become its median, spread
//! and run count, and which statistic the `median_us` column holds.

/// Timing statistics of one op, in microseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct OpStats {
    /// Median: the value the estimator uses.
    pub median_us: f64,
    /// 10th percentile.
    pub p10_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Standard deviation.
    pub std_us: f64,
    /// Number of timed runs.
    pub runs: u64,
    /// When the row was measured (UTC, RFC 3339).
    pub measured_at: String,
}

impl OpStats {
    /// The same row with every time multiplied by `factor` (a change of
    /// unit or of reference level); counts and date stay.
    pub fn scaled(&self, factor: f64) -> OpStats {
        OpStats {
            median_us: self.median_us * factor,
            p10_us: self.p10_us * factor,
            p90_us: self.p90_us * factor,
            mean_us: self.mean_us * factor,
            std_us: self.std_us * factor,
            runs: self.runs,
            measured_at: self.measured_at.clone(),
        }
    }

    /// Statistics of samples recorded at a resolution of `step` µs: the
    /// quantiles are grouped-data quantiles ([`grouped_quantile`]), so the
    /// resolution does not round small ops to whole steps.
    pub(crate) fn from_quantized_samples(samples: &[f64], step: f64) -> Self {
        let mut stats = Self::from_samples(samples);
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        stats.median_us = grouped_quantile(&sorted, 0.5, step);
        stats.p10_us = grouped_quantile(&sorted, 0.1, step);
        stats.p90_us = grouped_quantile(&sorted, 0.9, step);
        stats
    }

    /// Statistics of samples recorded at a resolution of `step` µs (0 for
    /// wall-clock samples) whose `median_us` is `statistic`; p10, p90, mean
    /// and std still describe all samples, so a bimodal row shows its
    /// spread.
    pub fn with_statistic(samples: &[f64], step: f64, statistic: Statistic) -> Self {
        let mut stats = if step > 0.0 {
            Self::from_quantized_samples(samples, step)
        } else {
            Self::from_samples(samples)
        };
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        stats.median_us = statistic.of_sorted(&sorted, step);
        stats
    }

    /// Statistics of a set of samples (µs), measured now.
    pub fn from_samples(samples: &[f64]) -> Self {
        assert!(!samples.is_empty(), "statistics need at least one sample");
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let var = sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        OpStats {
            median_us: quantile(&sorted, 0.5),
            p10_us: quantile(&sorted, 0.1),
            p90_us: quantile(&sorted, 0.9),
            mean_us: mean,
            std_us: var.sqrt(),
            runs: sorted.len() as u64,
            measured_at: crate::time::utc_now_rfc3339(),
        }
    }
}

/// Which per-row statistic a table's `median_us` column holds (recorded in
/// the provenance as `x-statistic = NAME`; a table without the line holds
/// [`Statistic::Median`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    /// The (grouped-data) median of all samples.
    Median,
    /// The median of the faster cluster when the samples are clearly
    /// bimodal (a device flipping between speed modes), else the median
    /// (see `lower_mode`).
    LowerMode,
}

impl Statistic {
    /// The provenance name.
    pub fn name(self) -> &'static str {
        match self {
            Statistic::Median => "median",
            Statistic::LowerMode => "lower-mode",
        }
    }

    /// The provenance line's value: the name and, for the lower mode, its
    /// thresholds, so a reader knows exactly what was computed.
    pub fn provenance_text(self) -> String {
        match self {
            Statistic::Median => "median".into(),
            Statistic::LowerMode => {
                let m = ModeSplit::default();
                format!(
                    "lower-mode (split when n >= {}, each cluster >= {:.0}% of samples, gap >= {} x the larger cluster IQR and >= {:.0}% of the faster median; else the median)",
                    m.min_samples,
                    m.min_share * 100.0,
                    m.min_gap_spreads,
                    m.min_gap_rel * 100.0
                )
            }
        }
    }

    /// The statistic of sorted samples recorded at a resolution of `step`
    /// µs (0 for wall-clock samples: the linear-interpolated quantile).
    pub(crate) fn of_sorted(self, sorted: &[f64], step: f64) -> f64 {
        let used = match self {
            Statistic::Median => sorted,
            Statistic::LowerMode => lower_mode(sorted, step, &ModeSplit::default()),
        };
        if step > 0.0 {
            grouped_quantile(used, 0.5, step)
        } else {
            quantile(used, 0.5)
        }
    }
}

/// When [`lower_mode`] splits a sample in two.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ModeSplit {
    /// Fewer samples are never split.
    pub(crate) min_samples: usize,
    /// Each cluster holds at least this share of the samples.
    pub(crate) min_share: f64,
    /// The gap between the clusters is at least this many times the larger
    /// cluster's interquartile range (or the recording step, if larger).
    pub(crate) min_gap_spreads: f64,
    /// And at least this fraction of the faster cluster's median (two modes
    /// closer than that are one speed).
    pub(crate) min_gap_rel: f64,
}

impl Default for ModeSplit {
    fn default() -> Self {
        ModeSplit {
            min_samples: 20,
            min_share: 0.2,
            min_gap_spreads: 3.0,
            min_gap_rel: 0.05,
        }
    }
}

/// The faster cluster of sorted samples when they are clearly bimodal, else
/// all of them. The split is at the widest gap between neighbouring samples
/// that leaves each side at least `min_share` of them; it is taken when the
/// gap is wide both against the clusters' spreads and against the faster
/// cluster's median.
pub(crate) fn lower_mode<'a>(sorted: &'a [f64], step: f64, m: &ModeSplit) -> &'a [f64] {
    let n = sorted.len();
    if n < m.min_samples.max(4) {
        return sorted;
    }
    let least = ((m.min_share * n as f64).ceil() as usize).max(2);
    if 2 * least > n {
        return sorted;
    }
    let Some(split) = (least..=n - least)
        .max_by(|&a, &b| (sorted[a] - sorted[a - 1]).total_cmp(&(sorted[b] - sorted[b - 1])))
    else {
        return sorted;
    };
    let (low, high) = sorted.split_at(split);
    let gap = high[0] - low[low.len() - 1];
    let iqr = |c: &[f64]| quantile(c, 0.75) - quantile(c, 0.25);
    let spread = iqr(low).max(iqr(high)).max(step);
    let low_median = quantile(low, 0.5);
    let wide = gap >= m.min_gap_spreads * spread && gap > 0.0;
    let far = gap >= m.min_gap_rel * low_median.abs();
    if wide && far { low } else { sorted }
}

/// Quantile of sorted samples that were recorded at a resolution of `step`
/// (ONNX Runtime's profiler reports whole microseconds). Each recorded value
/// `v` stands for the interval `v ± step/2`, and the quantile interpolates
/// inside the interval where the cumulative count crosses `q·n` (the
/// grouped-data median). A 4.4 µs op whose runs read 4 or 5 then reads about
/// 4.4, not 4 or 5 depending on which way a few runs fell.
pub(crate) fn grouped_quantile(sorted: &[f64], q: f64, step: f64) -> f64 {
    assert!(!sorted.is_empty(), "a quantile needs at least one sample");
    let target = q.clamp(0.0, 1.0) * sorted.len() as f64;
    let mut before = 0usize;
    let mut i = 0;
    while i < sorted.len() {
        let value = sorted[i];
        let mut j = i;
        while j < sorted.len() && sorted[j] == value {
            j += 1;
        }
        let count = j - i;
        if (j as f64) >= target {
            let inside = (target - before as f64) / count as f64;
            return value - step / 2.0 + inside.clamp(0.0, 1.0) * step;
        }
        before = j;
        i = j;
    }
    sorted[sorted.len() - 1] + step / 2.0
}

/// Linear-interpolated quantile of sorted samples.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouped_median_of_equal_samples_is_the_value() {
        assert_eq!(grouped_quantile(&[3.0; 9], 0.5, 1.0), 3.0);
    }

    #[test]
    fn grouped_median_interpolates_between_whole_steps() {
        // 6 runs read 4 µs and 4 read 5 µs: the median falls 5/6 of the way
        // through the interval [3.5, 4.5] that 4 stands for.
        let mut sorted = vec![4.0; 6];
        sorted.extend([5.0; 4]);
        let m = grouped_quantile(&sorted, 0.5, 1.0);
        assert!((m - (3.5 + 5.0 / 6.0)).abs() < 1e-12, "{m}");
        // The plain median rounds to a whole step.
        assert_eq!(quantile(&sorted, 0.5), 4.0);
    }

    #[test]
    fn grouped_quantiles_are_monotone_and_stay_within_half_a_step() {
        let sorted = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 7.0];
        let mut last = f64::NEG_INFINITY;
        for i in 0..=20 {
            let v = grouped_quantile(&sorted, i as f64 / 20.0, 1.0);
            assert!(v >= last, "quantile {i}/20 = {v} < {last}");
            assert!((0.5..=7.5).contains(&v));
            last = v;
        }
    }

    /// `n` samples around `centre`, spread evenly over ±`half`.
    fn cluster(centre: f64, half: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| centre - half + 2.0 * half * i as f64 / (n - 1).max(1) as f64)
            .collect()
    }

    fn sorted(mut v: Vec<f64>) -> Vec<f64> {
        v.sort_by(f64::total_cmp);
        v
    }

    #[test]
    fn lower_mode_of_a_unimodal_sample_is_the_median() {
        let s = sorted(cluster(100.0, 3.0, 41));
        assert_eq!(Statistic::LowerMode.of_sorted(&s, 0.0), 100.0);
        assert_eq!(
            Statistic::LowerMode.of_sorted(&s, 1.0),
            grouped_quantile(&s, 0.5, 1.0)
        );
    }

    #[test]
    fn lower_mode_of_a_bimodal_sample_is_the_faster_median() {
        // 30 runs at 100 ± 1 µs, 20 at 150 ± 1 µs (a slow period): the
        // plain median falls in the fast cluster's upper edge or the gap;
        // the lower mode is the fast cluster's median, 100.
        let mut v = cluster(100.0, 1.0, 30);
        v.extend(cluster(150.0, 1.0, 20));
        let s = sorted(v);
        assert_eq!(lower_mode(&s, 0.0, &ModeSplit::default()).len(), 30);
        assert!((Statistic::LowerMode.of_sorted(&s, 0.0) - 100.0).abs() < 1e-9);
        // Mostly slow: the faster mode still wins, as long as it holds 20%.
        let mut v = cluster(100.0, 1.0, 12);
        v.extend(cluster(150.0, 1.0, 38));
        let s = sorted(v);
        assert!((Statistic::LowerMode.of_sorted(&s, 0.0) - 100.0).abs() < 1e-9);
        assert!(Statistic::Median.of_sorted(&s, 0.0) > 140.0);
    }

    #[test]
    fn lower_mode_does_not_split_near_equal_modes_or_few_outliers() {
        // Modes 2% apart are one speed.
        let mut v = cluster(100.0, 0.1, 25);
        v.extend(cluster(102.0, 0.1, 25));
        let s = sorted(v);
        assert_eq!(lower_mode(&s, 0.0, &ModeSplit::default()).len(), 50);
        // Whole-µs readings of a 4.4 µs op (4 or 5) are one mode.
        let s = sorted([vec![4.0; 30], vec![5.0; 20]].concat());
        assert_eq!(
            Statistic::LowerMode.of_sorted(&s, 1.0),
            grouped_quantile(&s, 0.5, 1.0)
        );
        // A few fast outliers (under 20%) are not a mode.
        let s = sorted([cluster(50.0, 1.0, 5), cluster(100.0, 1.0, 45)].concat());
        assert_eq!(lower_mode(&s, 0.0, &ModeSplit::default()).len(), 50);
        // Wide clusters with a gap narrower than 3 spreads are one mode.
        let s = sorted([cluster(100.0, 20.0, 25), cluster(150.0, 20.0, 25)].concat());
        assert_eq!(lower_mode(&s, 0.0, &ModeSplit::default()).len(), 50);
    }

    #[test]
    fn lower_mode_leaves_small_samples_alone() {
        let s = sorted([cluster(100.0, 1.0, 6), cluster(150.0, 1.0, 6)].concat());
        assert_eq!(lower_mode(&s, 0.0, &ModeSplit::default()).len(), 12);
        assert_eq!(Statistic::LowerMode.of_sorted(&s, 0.0), quantile(&s, 0.5));
        assert_eq!(Statistic::LowerMode.of_sorted(&[7.0], 0.0), 7.0);
    }

    #[test]
    fn op_stats_keep_the_spread_of_all_samples() {
        let v = [cluster(100.0, 1.0, 30), cluster(150.0, 1.0, 20)].concat();
        let s = OpStats::with_statistic(&v, 0.0, Statistic::LowerMode);
        let all = OpStats::from_samples(&v);
        assert!((s.median_us - 100.0).abs() < 1e-9);
        assert_eq!(
            (s.p90_us, s.mean_us, s.runs),
            (all.p90_us, all.mean_us, all.runs)
        );
    }
}
