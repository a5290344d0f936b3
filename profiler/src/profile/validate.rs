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
    /// Measured median (ms).
    pub measured_ms: f64,
}

/// Times `samples` random architectures end to end and compares them with
/// the table's estimates.
pub fn validate(
    runtime: &Runtime,
    space: &SearchSpace,
    table: &LatencyTable,
    samples: usize,
    seed: u64,
    t: &TimingSettings,
    show_progress: bool,
) -> Result<ValidationReport, ProfileError> {
    table.check_space(space)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut progress = tunas_shared::progress::Progress::new(
        "validate",
        samples as u64,
        "networks",
        show_progress,
    );
    let mut networks = Vec::with_capacity(samples);
    for _ in 0..samples {
        let arch = Architecture::sample_uniform(space, &mut rng);
        let estimate = table.estimate_us(space, &arch)?;
        let measured = measure_architecture(runtime, space, &arch, t)?;
        networks.push(ValidatedNetwork {
            arch: arch.to_compact(),
            estimate_ms: estimate / 1000.0,
            measured_ms: measured.median_us / 1000.0,
        });
        progress.inc(1);
    }
    progress.finish();
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
        agreement: Agreement::of(&pairs),
        runtime: format!("onnxruntime {}", runtime.version()),
        threads: t.threads,
        execution_provider: t.provider.name().into(),
        device: t.device.clone(),
        cpu: device::cpu_description(),
        statistic: t.statistic_text(),
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
