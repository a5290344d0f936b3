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

/// Which random architectures [`random_within_band`] keeps.
#[derive(Clone, Copy, Debug)]
pub struct BandDraw {
    /// The target cost, in the resource's unit.
    pub target: f64,
    /// Relative half-width of the band (0.03: ±3%).
    pub band: f64,
    /// How many to keep.
    pub n: usize,
    /// Seed of the uniform draws.
    pub seed: u64,
    /// Draws before giving up (fewer than `n` may be kept).
    pub max_draws: usize,
}

impl BandDraw {
    /// Uniform draws allowed by default before giving up (`random` and
    /// the benchmark).
    pub const DEFAULT_MAX_DRAWS: usize = 1_000_000;
}

/// TuNAS's random-search baseline: uniform samples whose cost is within
/// `draw.band` (relative) of `draw.target`.
pub fn random_within_band(
    space: &SearchSpace,
    table: Option<&LatencyTable>,
    resource: Resource,
    draw: &BandDraw,
) -> Result<Vec<(Architecture, f64)>, SearchError> {
    let mut rng = ChaCha8Rng::seed_from_u64(draw.seed);
    let mut kept = Vec::new();
    for _ in 0..draw.max_draws {
        if kept.len() == draw.n {
            break;
        }
        let arch = Architecture::sample_uniform(space, &mut rng);
        let cost = cost_of(space, table, resource, &arch)?;
        if (cost / draw.target - 1.0).abs() <= draw.band {
            kept.push((arch, cost));
        }
    }
    Ok(kept)
}
