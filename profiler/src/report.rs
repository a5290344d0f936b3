//! Typed reports of the profiler's commands: what the library hands back
//! for the binary to print (as text, or as JSON with `--json`).

use serde::{Deserialize, Serialize};
use tunas_shared::OpStats;

/// What `measure` timed. The fields are in alphabetical order, the order
/// the JSON has always had.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasureReport {
    /// The table's estimate (ms), when a table was given.
    pub estimate_ms: Option<f64>,
    /// Execution provider.
    pub execution_provider: String,
    /// Mean (ms).
    pub mean_ms: f64,
    /// The run's time (ms) by [`MeasureReport::statistic`]: the same
    /// statistic the table's rows and `validate` use (named `median_ms`
    /// since before there was a choice).
    pub median_ms: f64,
    /// 10th percentile (ms).
    pub p10_ms: f64,
    /// 90th percentile (ms).
    pub p90_ms: f64,
    /// Timed runs.
    pub runs: u64,
    /// `onnxruntime VERSION`.
    pub runtime: String,
    /// What `median_ms` is: `lower-mode` (the faster cluster of a bimodal
    /// sample, else the median), as in the table's rows and `validate`,
    /// and the reference op its runs were scaled by, if the table has one.
    pub statistic: String,
    /// Standard deviation (ms).
    pub std_ms: f64,
    /// Intra-op threads.
    pub threads: usize,
    /// The architecture (compact text) or the model's path.
    pub what: String,
    /// The estimate's difference from the median (percent), computed from
    /// the µs figures (not in the JSON).
    #[serde(skip)]
    pub estimate_vs_measured_pct: Option<f64>,
}

impl MeasureReport {
    /// The report of `stats` (µs) measured of `what`.
    pub fn new(
        what: String,
        stats: &OpStats,
        estimate_ms: Option<f64>,
        runtime_version: &str,
        threads: usize,
        execution_provider: &str,
        statistic: String,
    ) -> Self {
        MeasureReport {
            estimate_ms,
            execution_provider: execution_provider.to_string(),
            mean_ms: stats.mean_us / 1000.0,
            median_ms: stats.median_us / 1000.0,
            p10_ms: stats.p10_us / 1000.0,
            p90_ms: stats.p90_us / 1000.0,
            runs: stats.runs,
            runtime: format!("onnxruntime {runtime_version}"),
            statistic,
            std_ms: stats.std_us / 1000.0,
            threads,
            what,
            estimate_vs_measured_pct: estimate_ms
                .map(|e| (e * 1000.0 / stats.median_us - 1.0) * 100.0),
        }
    }

    /// The text `measure` prints: the timing, and the estimate beside it.
    pub fn text(&self) -> String {
        let mut t = format!(
            "{}: {:.3} ms ({}; p10 {:.3}, p90 {:.3}, {} runs)\n",
            self.what, self.median_ms, self.statistic, self.p10_ms, self.p90_ms, self.runs
        );
        if let (Some(e), Some(pct)) = (self.estimate_ms, self.estimate_vs_measured_pct) {
            t.push_str(&format!(
                "table estimate {e:.3} ms ({pct:+.1}% vs measured)\n"
            ));
        }
        t
    }
}
