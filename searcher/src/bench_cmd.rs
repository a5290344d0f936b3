//! Arguments and glue of `bench`.

use anyhow::{Context, Result};
use tunas_shared::{Architecture, load_space};

/// Arguments of `bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// A built-in space name or a path to a .toml file.
    #[arg(long, value_name = "NAME|FILE.toml", default_value = "tiny28")]
    space: String,
    /// The architecture: compact text, `largest`, or `random:SEED`.
    #[arg(long, value_name = "ARCH", default_value = "largest")]
    arch: String,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Worker threads [default: one per core].
    #[arg(long)]
    threads: Option<usize>,
    /// Measured steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Unmeasured steps before them.
    #[arg(long, default_value_t = 3)]
    warmup_steps: usize,
    /// Which path to train.
    #[arg(
        long,
        value_enum,
        default_value = "single-path",
        conflicts_with = "all_values"
    )]
    variant: tunas_searcher::bench::BenchVariant,
    /// Measure op warm-up (every kernel/SE/skip decision runs all its
    /// values) with and without rematerialization, one after the other.
    #[arg(long)]
    all_values: bool,
    /// Seed of the weights and the random batch.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run every layer serially (ignores --threads).
    #[arg(long)]
    deterministic: bool,
    /// Print JSON (`images_per_s`, `peak_rss_mb`, per-phase timings; with
    /// --all-values one object per variant) instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run_bench(a: BenchArgs) -> Result<()> {
    use tunas_searcher::bench;
    tunas_searcher::layers::set_serial(a.deterministic);
    let space = load_space(&a.space).context("--space")?;
    let arch = Architecture::parse_spec(&space, &a.arch).context("--arch")?;
    anyhow::ensure!(a.batch > 0, "--batch must be at least 1");
    anyhow::ensure!(a.steps > 0, "--steps must be at least 1");
    let cfg = bench::BenchConfig {
        batch: a.batch,
        steps: a.steps,
        warmup_steps: a.warmup_steps,
        seed: a.seed,
    };
    if a.all_values {
        // One fresh process per variant, so neither's memory figures include
        // what the allocator kept from the other.
        let exe = std::env::current_exe().context("locating this executable")?;
        let mut results = Vec::new();
        for v in ["all-values-remat", "all-values-no-remat"] {
            let mut args: Vec<String> = [
                "bench",
                "--space",
                &a.space,
                "--arch",
                &a.arch,
                "--variant",
                v,
                "--json",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            for (flag, value) in [
                ("--batch", a.batch),
                ("--steps", a.steps),
                ("--warmup-steps", a.warmup_steps),
            ] {
                args.extend([flag.to_string(), value.to_string()]);
            }
            args.extend(["--seed".to_string(), a.seed.to_string()]);
            if let Some(t) = a.threads {
                args.extend(["--threads".to_string(), t.to_string()]);
            }
            if a.deterministic {
                args.push("--deterministic".into());
            }
            let r = bench::bench_in_child(&exe, &args)?;
            if !a.json {
                println!("{}", bench::bench_text(&r));
            }
            results.push(r);
        }
        if a.json {
            let json = serde_json::json!({
                "all_values_remat": results[0],
                "all_values_no_remat": results[1],
            });
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
        return Ok(());
    }
    let r = tunas_searcher::train::in_thread_pool(a.threads, || {
        bench::bench(&space, &arch, a.variant, &cfg)
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("{}", bench::bench_text(&r));
    }
    Ok(())
}
