//! Running programs: cargo in the workspace, a step that must succeed, a
//! probe that may fail, and a step whose stdout is JSON.

use std::env;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::paths::workspace_root;

/// `cargo` (the one running xtask) in the workspace root.
pub(crate) fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

/// Runs a step, saying what it does; fails unless it succeeds.
pub(crate) fn run(mut cmd: Command, what: &str) -> Result<()> {
    eprintln!("xtask: {what}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start: {what}"))?;
    if !status.success() {
        bail!("failed ({status}): {what}");
    }
    Ok(())
}

/// Whether a program runs successfully, its output discarded.
pub(crate) fn quiet_ok(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs a step whose stdout is JSON (stderr passes through) and parses it.
pub(crate) fn output_json(mut cmd: Command, what: &str) -> Result<serde_json::Value> {
    eprintln!("xtask: {what}");
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start: {what}"))?;
    if !out.status.success() {
        bail!("failed ({}): {what}", out.status);
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("{what}: output is not JSON"))
}
