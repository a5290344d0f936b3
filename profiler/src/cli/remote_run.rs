//! `profile` and `refresh` on adb phones and ssh boards: the binary's side
//! of a remote run (what it logs and how it reports each device).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use tunas_profiler::remote::{self, DeviceRequest, DeviceSpec, RemoteError, Transport};

use super::args::DeviceArgs;

fn log_line(line: &str) {
    eprintln!("{line}");
}

/// The flag that changes what a remote error is about, as a suffix.
fn flag_hint(e: &RemoteError) -> &'static str {
    match e {
        RemoteError::NoDeviceBinary { .. } => " (pass it with --device-binary PATH)",
        RemoteError::NoDeviceRuntime { .. } => " (pass it with --device-ort-lib PATH)",
        RemoteError::AmbiguousAdb { .. } | RemoteError::AdbDeviceNotFound { .. } => {
            " (choose with --device)"
        }
        _ => "",
    }
}

/// An error and its causes, `: `-separated (as `{:#}` prints an anyhow
/// error).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// A remote error with its flag hint; errors without one keep their
/// source chain.
fn with_flag(e: RemoteError) -> anyhow::Error {
    match flag_hint(&e) {
        "" => anyhow::Error::new(e),
        hint => anyhow::anyhow!("{e}{hint}"),
    }
}

/// Runs `profile` or `refresh` on the device(s) `device` names.
pub fn run_remote(
    device: &DeviceArgs,
    force: bool,
    request: DeviceRequest,
    out: &Path,
    ort_lib: Option<PathBuf>,
) -> Result<()> {
    let started = std::time::Instant::now();
    match device.spec()? {
        DeviceSpec::Local => unreachable!("local runs do not come here"),
        DeviceSpec::AllAdb => {
            let make = |transport: Transport, table: PathBuf| {
                device.remote_run(transport, request.clone(), table, ort_lib.clone())
            };
            let results =
                remote::profile_all_adb(out, force, &make, &log_line).map_err(with_flag)?;
            let finished: Vec<&remote::FleetResult> =
                results.iter().filter(|r| r.result.is_ok()).collect();
            for r in &results {
                match &r.result {
                    Ok(rep) => eprintln!(
                        "finished {}: {} ({} rows{})",
                        rep.device,
                        rep.out.display(),
                        rep.rows,
                        if rep.skipped {
                            ", already there: kept (--force measures again)"
                        } else if rep.resumed {
                            ", resumed"
                        } else {
                            ""
                        }
                    ),
                    Err(e) => eprintln!("FAILED {}: {}{}", r.device, with_causes(e), flag_hint(e)),
                }
            }
            eprintln!(
                "all-adb: {} of {} device(s) finished ({}) in {:.0} s",
                finished.len(),
                results.len(),
                finished
                    .iter()
                    .map(|r| r.device.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                started.elapsed().as_secs_f64()
            );
            if finished.len() < results.len() {
                bail!(
                    "{} device(s) failed (see above); run the same command again: they resume where they stopped, and finished devices keep their tables",
                    results.len() - finished.len()
                );
            }
        }
        spec => {
            let transport = Transport::for_device(&spec, &device.ssh_options())?;
            let run = device.remote_run(transport, request, out.to_path_buf(), ort_lib);
            let report = run.execute(&log_line).map_err(with_flag)?;
            eprintln!(
                "wrote {} ({} rows, measured on {} in {}{}) in {:.0} s",
                report.out.display(),
                report.rows,
                report.device,
                report.remote_dir,
                if report.resumed { ", resumed" } else { "" },
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
