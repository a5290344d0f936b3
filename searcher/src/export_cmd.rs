//! Arguments and glue of `export`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use tunas_searcher::data::DEFAULT_FASHION_MNIST_DIR;
use tunas_searcher::export::export_searched;
use tunas_searcher::search::{RunFiles, RunInputs, SearchResult};
use tunas_searcher::supernet::Supernet;
use tunas_searcher::weights::load_store;
use tunas_shared::{Architecture, SearchSpace};

use crate::search_cmd::threads_pool;

/// Arguments of `export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A search run folder (with result.json and supernet.weights).
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Where to write the ONNX model.
    #[arg(long, value_name = "FILE.onnx")]
    onnx: PathBuf,
    /// Export this architecture instead of the searched one.
    #[arg(long)]
    arch: Option<String>,
    /// Dataset folder (training batches recalibrate BN; the test set is
    /// evaluated) [default: the run's].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// How to read --data [default: as the run did].
    #[arg(long, value_name = "FORMAT")]
    data_format: Option<String>,
    /// Training batches averaged into the BN statistics.
    #[arg(long, default_value_t = 40)]
    calibration_batches: usize,
    /// Threads.
    #[arg(long)]
    threads: Option<usize>,
    /// No progress on stderr.
    #[arg(long)]
    quiet: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `export`.
pub fn run_export(a: ExportArgs) -> Result<()> {
    if a.calibration_batches == 0 {
        bail!(
            "--calibration-batches: at least 1 (BN statistics are averaged over training batches)"
        );
    }
    tunas_shared::output::check_output_file(&a.onnx, "ONNX models", &["onnx"]).context("--onnx")?;
    let files = RunFiles { dir: a.run.clone() };
    let (space, result) = read_run(&a, &files)?;
    let arch = Architecture::parse_spec(&space, a.arch.as_deref().unwrap_or(&result.arch))
        .context("--arch")?;
    let mut net = Supernet::new(&space, 0);
    load_store(&files.weights(), &mut net.store)?;
    let loaded = run_data(&a, &files, &space)?;
    tunas_searcher::train::check_data(&space, &loaded.data.test)?;
    let classes = Some(loaded.classes.clone());
    let quiet = a.quiet;
    let log = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let exported = threads_pool(a.threads, || {
        export_searched(
            &mut net,
            &arch,
            &loaded.data,
            &result,
            classes,
            a.calibration_batches,
            &log,
        )
    })?
    .context("cannot write the network as ONNX")?;
    tunas_shared::write_atomic(&a.onnx, &exported.onnx)
        .with_context(|| format!("cannot write {}", a.onnx.display()))?;
    print_export(
        &a,
        &exported.onnx,
        &arch,
        &result,
        &exported.maker,
        exported.test_accuracy,
    )
}

/// The run folder's space and search result.
fn read_run(a: &ExportArgs, files: &RunFiles) -> Result<(SearchSpace, SearchResult)> {
    let space = SearchSpace::from_toml_file(&files.space())
        .with_context(|| format!("--run {}: not a search run folder", a.run.display()))?;
    let result_path = files.result();
    let text = std::fs::read_to_string(&result_path).with_context(|| {
        format!(
            "{}: the run has no result (did the search finish? resume it with `tunas-searcher search --resume {}`)",
            result_path.display(),
            tunas_shared::output::shell_quote(&a.run.display().to_string())
        )
    })?;
    let result = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a search result", result_path.display()))?;
    Ok((space, result))
}

/// The images to recalibrate and evaluate on: `--data` (and
/// `--data-format`) when given, else what the run was searched on.
fn run_data(
    a: &ExportArgs,
    files: &RunFiles,
    space: &SearchSpace,
) -> Result<tunas_searcher::data::LoadedData> {
    let stored = RunInputs::read(files).ok();
    let data_dir = match (&a.data, &stored) {
        (Some(d), _) => d.clone(),
        (None, Some(i)) => PathBuf::from(&i.data),
        (None, None) => PathBuf::from(DEFAULT_FASHION_MNIST_DIR),
    };
    let flags = crate::data_cmd::DataFlags {
        data_format: a
            .data_format
            .clone()
            .or_else(|| stored.as_ref().map(|i| i.data_format.clone()))
            .unwrap_or_else(|| "auto".into()),
        skip_bad_images: stored.as_ref().is_some_and(|i| i.skip_bad_images),
    };
    crate::data_cmd::load_images(&data_dir, &flags, space)
}

/// The export's report on stdout: JSON, or a line and the next step.
fn print_export(
    a: &ExportArgs,
    onnx: &[u8],
    arch: &Architecture,
    result: &SearchResult,
    maker: &tunas_searcher::data::BatchMaker,
    accuracy: f64,
) -> Result<()> {
    let v = serde_json::json!({
        "onnx": a.onnx.display().to_string(),
        "arch": arch.to_compact(),
        "test_accuracy": accuracy,
        "est_latency_ms": result.est_latency_ms,
        "normalization": {"mean": maker.mean, "std": maker.std, "applied": "inside the model: feed pixels / 255"},
        "input": "NCHW float pixels in [0, 1], batch dynamic",
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "wrote {} ({} bytes): {} — test accuracy {:.2}% (shared weights, BN recalibrated), estimated latency {}",
            a.onnx.display(),
            onnx.len(),
            arch.to_compact(),
            accuracy * 100.0,
            result
                .est_latency_ms
                .map(|m| format!("{m:.4} ms"))
                .unwrap_or_else(|| "n/a".into())
        );
        println!(
            "time it on the device: tunas-profiler measure --model {}",
            tunas_shared::output::shell_quote(&a.onnx.display().to_string())
        );
    }
    Ok(())
}
