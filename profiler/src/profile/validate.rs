//! Validation: random networks timed end to end against the table's
//! estimates.

use rand::SeedableRng;
use serde::Serialize;
use tunas_shared::{Architecture, LatencyTable, SearchSpace};

use super::error::ProfileError;
use super::measure::measure_architecture;
use super::settings::TimingSettings;
use crate::agreement::Agreement;
use crate::device;
use crate::runtime::Runtime;

/// The outcome of `validate`.
#[derive(Clone, Debug, Serialize)]
pub struct ValidationReport {
    /// Space name.
    pub space: String,
    /// Table file.
    pub table: String,
    /// Seed of the sampled architectures.
    pub seed: u64,
    /// Rounds every network was timed in (its figure is their median).
    pub rounds: usize,
    /// Agreement figures (`samples`, `within_5pct`, ...), flattened.
    #[serde(flatten)]
    pub agreement: Agreement,
    /// Runtime and version.
    pub runtime: String,
    /// Intra-op threads.
    pub threads: usize,
    /// Execution provider.
    pub execution_provider: String,
    /// Device description.
    pub device: String,
    /// CPU.
    pub cpu: String,
    /// The statistic of the measured times (`lower-mode`, `median`), and
    /// the reference op they were scaled by, if the table has one.
    pub statistic: String,
    /// Per network: architecture, estimate (ms), measured median (ms).
    pub networks: Vec<ValidatedNetwork>,
}

/// One validated network.
#[derive(Clone, Debug, Serialize)]
pub struct ValidatedNetwork {
    /// Compact architecture.
    pub arch: String,
    /// Table estimate (ms).
    pub estimate_ms: f64,
    /// Measured (ms): the round's statistic, or the median of the rounds'.
    pub measured_ms: f64,
    /// Each round's statistic (ms), in the order they were timed.
    pub rounds_ms: Vec<f64>,
}

/// Which networks `validate` times, and how often.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ValidationPlan {
    /// Random architectures.
    pub samples: usize,
    /// Their seed.
    pub seed: u64,
    /// Rounds over all of them: each round times every network once (a
    /// whole timing loop), and a network's figure is the median of its
    /// rounds. An episode of drift then spoils one round of the networks
    /// it meets, not their figures.
    pub rounds: usize,
}

/// Median of a non-empty slice.
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    tunas_shared::table::quantile(&sorted, 0.5)
}

/// Times the plan's random architectures end to end and compares them with
/// the table's estimates.
pub fn validate(
    runtime: &Runtime,
    space: &SearchSpace,
    table: &LatencyTable,
    plan: ValidationPlan,
    t: &TimingSettings,
    show_progress: bool,
) -> Result<ValidationReport, ProfileError> {
    table.check_space(space)?;
    let ValidationPlan {
        samples,
        seed,
        rounds,
    } = plan;
    let rounds = rounds.max(1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let archs: Vec<Architecture> = (0..samples)
        .map(|_| Architecture::sample_uniform(space, &mut rng))
        .collect();
    let estimates: Vec<f64> = archs
        .iter()
        .map(|a| table.estimate_us(space, a))
        .collect::<Result<_, _>>()?;
    let mut progress = tunas_shared::progress::Progress::new(
        "validate",
        (samples * rounds) as u64,
        "networks",
        show_progress,
    );
    let mut rounds_ms = vec![Vec::with_capacity(rounds); samples];
    for _ in 0..rounds {
        for (arch, times) in archs.iter().zip(&mut rounds_ms) {
            let measured = measure_architecture(runtime, space, arch, t)?;
            times.push(measured.median_us / 1000.0);
            progress.inc(1);
        }
    }
    progress.finish();
    let networks: Vec<ValidatedNetwork> = archs
        .iter()
        .zip(estimates)
        .zip(rounds_ms)
        .map(|((arch, estimate), times)| ValidatedNetwork {
            arch: arch.to_compact(),
            estimate_ms: estimate / 1000.0,
            measured_ms: median(&times),
            rounds_ms: times,
        })
        .collect();
    let pairs: Vec<(f64, f64)> = networks
        .iter()
        .map(|n| (n.estimate_ms, n.measured_ms))
        .collect();
    Ok(ValidationReport {
        space: space.name.clone(),
        table: table
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        seed,
        rounds,
        agreement: Agreement::of(&pairs),
        runtime: format!("onnxruntime {}", runtime.version()),
        threads: t.threads,
        execution_provider: t.provider.name().into(),
        device: t.device.clone(),
        cpu: device::cpu_description(),
        statistic: match rounds {
            1 => t.statistic_text(),
            n => format!("median over {n} rounds of the {}", t.statistic_text()),
        },
        networks,
    })
}

/// Human summary of a validation.
pub fn validation_text(r: &ValidationReport) -> String {
    let a = &r.agreement;
    format!(
        "{} networks of {} (seed {}), {} with {} thread(s) on {}, measured as the {}\n  within ±5%: {:.1}%   within ±10%: {:.1}%   MAPE {:.2}%   max |err| {:.2}%   mean signed err {:+.2}%\n  Kendall τ {:.3}   Spearman ρ {:.3}\n",
        a.samples,
        r.space,
        r.seed,
        r.runtime,
        r.threads,
        r.cpu,
        r.statistic,
        a.within_5pct * 100.0,
        a.within_10pct * 100.0,
        a.mape,
        a.max_abs_err,
        a.mean_signed_err,
        a.kendall_tau,
        a.spearman
    )
}
