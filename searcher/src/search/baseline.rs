//! Uniform samples: latency percentiles for targets, and TuNAS's
//! random-search baseline within a band.

use super::*;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tunas_shared::{Architecture, LatencyTable, SearchSpace, TableError};

/// Estimated latencies (ms, sorted) of `samples` uniform architectures
/// drawn with `seed`: where latency targets are chosen from.
pub fn latency_samples(
    space: &SearchSpace,
    table: &LatencyTable,
    samples: usize,
    seed: u64,
) -> Result<Vec<f64>, TableError> {
    table.check_space(space)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ms = Vec::with_capacity(samples);
    for _ in 0..samples {
        let arch = Architecture::sample_uniform(space, &mut rng);
        ms.push(table.estimate_us(space, &arch)? / 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    Ok(ms)
}

#[allow(clippy::too_many_arguments)]
/// TuNAS's random-search baseline: uniform samples whose cost is within
/// `band` (relative) of the target.
pub fn random_within_band(
    space: &SearchSpace,
    table: Option<&LatencyTable>,
    resource: Resource,
    target: f64,
    band: f64,
    n: usize,
    seed: u64,
    max_draws: usize,
) -> Result<Vec<(Architecture, f64)>, SearchError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut kept = Vec::new();
    for _ in 0..max_draws {
        if kept.len() == n {
            break;
        }
        let arch = Architecture::sample_uniform(space, &mut rng);
        let cost = cost_of(space, table, resource, &arch)?;
        if (cost / target - 1.0).abs() <= band {
            kept.push((arch, cost));
        }
    }
    Ok(kept)
}
