//! Arguments and glue of `random` and `targets`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use tunas_searcher::search::{Resource, random_within_band};
use tunas_shared::LatencyTable;

use crate::search_cmd::space_for;

/// Arguments of `random`.
#[derive(Args, Debug)]
pub struct RandomArgs {
    /// A built-in space name or a path to a .toml file [default: the
    /// table's space].
    #[arg(long, value_name = "NAME|FILE.toml")]
    space: Option<String>,
    /// Latency table for the space.
    #[arg(long, value_name = "FILE")]
    table: PathBuf,
    /// Latency target T0 in ms.
    #[arg(long, value_name = "MS")]
    target_ms: f64,
    /// Relative band around the target.
    #[arg(long, default_value_t = 0.03)]
    band: f64,
    /// Architectures to return.
    #[arg(long, default_value_t = 5)]
    n: usize,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `random`.
pub fn run_random(a: RandomArgs) -> Result<()> {
    if !(a.target_ms.is_finite() && a.target_ms > 0.0) {
        bail!(
            "--target-ms {}: must be a positive number of ms",
            a.target_ms
        );
    }
    if !(a.band.is_finite() && a.band > 0.0 && a.band < 1.0) {
        bail!("--band {}: must lie in (0, 1), e.g. 0.03 for ±3%", a.band);
    }
    if a.n == 0 {
        bail!("--n: at least 1");
    }
    let table = LatencyTable::read(&a.table)?;
    let space = space_for(a.space.as_deref(), Some(&table))?;
    table.check_space(&space)?;
    let draws = tunas_searcher::search::BandDraw::DEFAULT_MAX_DRAWS;
    let draw = tunas_searcher::search::BandDraw {
        target: a.target_ms,
        band: a.band,
        n: a.n,
        seed: a.seed,
        max_draws: draws,
    };
    let kept = random_within_band(&space, Some(&table), Resource::Latency, &draw)?;
    if kept.len() < a.n {
        bail!(
            "only {} of {} architectures lie within ±{:.1}% of {} ms in {draws} uniform draws; widen --band or pick a target nearer the middle (`tunas-searcher targets`)",
            kept.len(),
            a.n,
            a.band * 100.0,
            a.target_ms
        );
    }
    if a.json {
        let v: Vec<_> = kept
            .iter()
            .map(|(arch, ms)| serde_json::json!({"arch": arch.to_compact(), "est_latency_ms": ms}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (arch, ms) in kept {
            println!("{} {ms:.4}", arch.to_compact());
        }
    }
    Ok(())
}

/// Arguments of `targets`.
#[derive(Args, Debug)]
pub struct TargetsArgs {
    /// A built-in space name or a path to a .toml file [default: the
    /// table's space].
    #[arg(long, value_name = "NAME|FILE.toml")]
    space: Option<String>,
    /// Latency table for the space.
    #[arg(long, value_name = "FILE")]
    table: PathBuf,
    /// Uniform samples.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON (`p25_ms`, `p50_ms`, `p75_ms`, `min_ms`, `max_ms`).
    #[arg(long)]
    json: bool,
}

/// `targets`.
pub fn run_targets(a: TargetsArgs) -> Result<()> {
    anyhow::ensure!(a.samples >= 1, "--samples must be at least 1");
    anyhow::ensure!(a.samples <= 10_000_000, "--samples: at most 10,000,000");
    let table = LatencyTable::read(&a.table)?;
    let space = space_for(a.space.as_deref(), Some(&table))?;
    let ms = tunas_searcher::search::latency_samples(&space, &table, a.samples, a.seed)?;
    let q = |p: f64| tunas_shared::table::quantile(&ms, p);
    let v = serde_json::json!({
        "space": space.name, "samples": a.samples, "seed": a.seed,
        "min_ms": ms[0], "p25_ms": q(0.25), "p50_ms": q(0.5), "p75_ms": q(0.75), "max_ms": ms[ms.len() - 1],
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} uniform {} architectures: min {:.4} ms, p25 {:.4}, median {:.4}, p75 {:.4}, max {:.4}",
            a.samples,
            space.name,
            ms[0],
            q(0.25),
            q(0.5),
            q(0.75),
            ms[ms.len() - 1]
        );
    }
    Ok(())
}
