//! Timing one thing: a one-op model, an op in the context of a network
//! (per-node profile attributed by op scope), or a whole network end to end.

use std::path::Path;

use tunas_shared::onnx::{RandomWeights, network_model, network_sites, op_model};
use tunas_shared::{Architecture, OpKey, OpStats, SearchSpace};

use super::error::ProfileError;
use super::settings::{TimingSettings, session_config};
use crate::runtime::{ModelSession, Runtime};
use crate::timing::{
    BenchmarkConfig, Measurement, ROW_STATISTIC, benchmark_beside, benchmark_session,
};

/// Runs `config`'s timing loop on `session`, beside the settings' reference
/// op when there is one (every run then carries its reference scale).
fn timing_loop(
    runtime: &Runtime,
    session: &mut ModelSession,
    config: &BenchmarkConfig,
    t: &TimingSettings,
) -> Result<Measurement, ProfileError> {
    let Some(reference) = &t.reference else {
        return Ok(benchmark_session(session, config)?);
    };
    let model = reference_model(&reference.key)?;
    let mut beside = ModelSession::new(runtime, &model, &session_config(t, None))?;
    let m = benchmark_beside(
        config,
        || session.run(),
        || beside.run(),
        reference.level_us,
    )?;
    if let Some(log) = &t.reference_log {
        log.extend(&m.reference_us);
    }
    Ok(m)
}

/// The one-op model of a reference or sentinel op (fixed weights, so every
/// command times the same model).
pub(super) fn reference_model(key: &OpKey) -> Result<Vec<u8>, ProfileError> {
    op_model(key, &mut RandomWeights::new(3)).map_err(|e| ProfileError::Model {
        what: key.to_string(),
        source: e,
    })
}

/// Runs the op timing loop on `model` with per-node profiling (the profile
/// file is written under `prefix` and removed after reading; warm-up runs
/// are left out).
fn profiled_benchmark(
    runtime: &Runtime,
    model: &[u8],
    t: &TimingSettings,
    prefix: &Path,
) -> Result<(Measurement, crate::runtime::NodeProfile), ProfileError> {
    let config = session_config(t, Some(prefix.to_path_buf()));
    let mut session = ModelSession::new(runtime, model, &config)?;
    let m = timing_loop(runtime, &mut session, &t.op_loop, t)?;
    let profile_path = session.end_profiling()?;
    let profile = crate::runtime::read_profile(&profile_path, m.warmup_runs);
    let _ = std::fs::remove_file(&profile_path);
    Ok((m, profile?))
}

/// ONNX Runtime's profiler records node durations in whole microseconds.
const PROFILER_RESOLUTION_US: f64 = 1.0;

/// A row from pooled per-run node times: whole µs as the profiler
/// recorded them, or scaled by the reference (no longer on that grid).
pub(super) fn row_stats(runs: &[f64], t: &TimingSettings) -> OpStats {
    let step = match t.reference {
        Some(_) => 0.0,
        None => PROFILER_RESOLUTION_US,
    };
    OpStats::with_statistic(runs, step, ROW_STATISTIC)
}

/// Raw cost of one op: its own nodes' mean time, with the wall-time spread.
pub(super) fn time_op(
    runtime: &Runtime,
    key: &OpKey,
    t: &TimingSettings,
    scratch: &Path,
) -> Result<OpStats, ProfileError> {
    let model = op_model(key, &mut RandomWeights::new(1)).map_err(|e| ProfileError::Model {
        what: key.to_string(),
        source: e,
    })?;
    let (m, profile) = profiled_benchmark(runtime, &model, t, &scratch.join("op"))?;
    let own_us = if m.reference_scales.is_empty() {
        profile.attribute(&["op"]).0[0]
    } else {
        OpStats::from_samples(&m.scaled(&profile.attribute_per_run(&["op"])[0])).mean_us
    };
    let wall = m.scaled(&m.samples_us);
    let wall_mean = OpStats::from_samples(&wall).mean_us;
    // Shift the wall-time distribution so its mean is the op's own time.
    let shift = wall_mean - own_us;
    let samples: Vec<f64> = wall.iter().map(|s| (s - shift).max(0.0)).collect();
    Ok(OpStats::with_statistic(&samples, 0.0, ROW_STATISTIC))
}

/// Times a whole network with per-node profiling and returns, per op, the
/// per-run times of its own nodes (µs).
pub(super) fn time_in_context(
    runtime: &Runtime,
    space: &SearchSpace,
    arch: &Architecture,
    t: &TimingSettings,
    scratch: &Path,
) -> Result<Vec<(OpKey, Vec<f64>)>, ProfileError> {
    let model = network_model(space, arch, &mut RandomWeights::new(7), t.batch).map_err(|e| {
        ProfileError::Model {
            what: arch.to_compact(),
            source: e,
        }
    })?;
    let sites = network_sites(space, arch, t.batch);
    let (m, profile) = profiled_benchmark(runtime, &model, t, &scratch.join("net"))?;
    let scopes: Vec<&str> = sites.iter().map(|s| s.scope.as_str()).collect();
    let per_run = profile.attribute_per_run(&scopes);
    Ok(sites
        .iter()
        .zip(per_run)
        .filter(|(_, runs)| !runs.is_empty())
        .map(|(site, runs)| (site.key, m.scaled(&runs)))
        .collect())
}

/// End-to-end timing of a model.
pub fn time_model(
    runtime: &Runtime,
    model: &[u8],
    t: &TimingSettings,
) -> Result<Measurement, ProfileError> {
    let mut session = ModelSession::new(runtime, model, &session_config(t, None))?;
    timing_loop(runtime, &mut session, &t.network_loop, t)
}

/// End-to-end timing of one architecture (random weights).
pub fn measure_architecture(
    runtime: &Runtime,
    space: &SearchSpace,
    arch: &Architecture,
    t: &TimingSettings,
) -> Result<OpStats, ProfileError> {
    let model = network_model(space, arch, &mut RandomWeights::new(7), t.batch).map_err(|e| {
        ProfileError::Model {
            what: arch.to_compact(),
            source: e,
        }
    })?;
    Ok(time_model(runtime, &model, t)?.stats())
}

/// Nodes the ONNX writer emits for an op (before the runtime's fusions):
/// the per-node cost of the executor scales with it.
pub fn op_node_count(key: &OpKey) -> usize {
    let mut g = tunas_shared::onnx::GraphBuilder::new("count");
    let input = g.input("x", &tunas_shared::onnx::network::input_dims(key));
    match tunas_shared::onnx::emit_op(&mut g, "op", key, &input, &mut RandomWeights::new(0)) {
        Ok(_) => g.node_count(),
        Err(_) => 1,
    }
}
