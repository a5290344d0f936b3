//! `cargo xtask tables`: this machine's reference tables with their
//! validation reports, the figures the README quotes.

use std::process::Command;

use anyhow::Result;

use crate::command::{cargo, output_json, run};
use crate::machine::cpu_model_name;
use crate::paths::{release_binary, target_dir, workspace_root};
use crate::setup::setup;

/// `tables/<arch>-<cpu>-1t/`: a folder name for this machine's tables.
fn device_folder() -> String {
    let model = cpu_model_name()
        .map(|name| name.to_lowercase())
        .unwrap_or_else(|| "cpu".into());
    let slug: String = model
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    format!("{}-{slug}-1t", std::env::consts::ARCH)
}

/// Reference tables of this machine with their validation reports: the
/// figures the README quotes. Takes a few minutes on 2 cores; run it on an
/// otherwise idle machine.
pub(crate) fn reference_tables() -> Result<()> {
    setup()?;
    let mut build = cargo();
    build.args(["build", "--release", "--workspace", "--bins"]);
    run(build, "build the release binaries")?;
    let profiler = release_binary("tunas-profiler");
    let dir = workspace_root().join("tables").join(device_folder());
    std::fs::create_dir_all(&dir)?;
    for (space, samples) in [("tiny28", "200"), ("proxylessnas", "50")] {
        let table = dir.join(format!("{space}.csv"));
        let mut p = Command::new(&profiler);
        p.args(["profile", "--space", space, "--force", "--out"])
            .arg(&table);
        run(p, &format!("profile {space}"))?;
        let mut v = Command::new(&profiler);
        v.args([
            "validate",
            "--space",
            space,
            "--samples",
            samples,
            "--seed",
            "1",
            "--json",
            "--table",
        ])
        .arg(&table)
        .arg("--plot")
        .arg(dir.join(format!("{space}.validate.svg")));
        let report = output_json(v, &format!("validate {space} on {samples} networks"))?;
        std::fs::write(
            dir.join(format!("{space}.validate.json")),
            serde_json::to_string_pretty(&report)? + "\n",
        )?;
        eprintln!(
            "{space}: {:.1}% within ±10%, MAPE {:.2}%, Kendall τ {:.3}",
            report["within_10pct"].as_f64().unwrap_or(f64::NAN) * 100.0,
            report["mape"].as_f64().unwrap_or(f64::NAN),
            report["kendall_tau"].as_f64().unwrap_or(f64::NAN)
        );
    }
    // Repeatability: a second tiny28 table compared key by key.
    let second = target_dir().join("tiny28.repeat.csv");
    let mut p = Command::new(&profiler);
    p.args([
        "profile", "--space", "tiny28", "--force", "--quiet", "--out",
    ])
    .arg(&second);
    run(p, "profile tiny28 again (repeatability)")?;
    let mut c = Command::new(&profiler);
    c.args(["compare", "--json"])
        .arg(dir.join("tiny28.csv"))
        .arg(&second);
    let cmp = output_json(c, "compare the two tiny28 tables")?;
    std::fs::write(
        dir.join("tiny28.repeatability.json"),
        serde_json::to_string_pretty(&cmp)? + "\n",
    )?;
    eprintln!("wrote {}", dir.display());
    Ok(())
}
