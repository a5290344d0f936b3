//! Facts about the machine the profiler runs on, for table provenance.

use std::fs;

/// CPU model name from `/proc/cpuinfo` (`model name`, or `Hardware` /
/// `CPU part` on Arm), with the logical CPU count.
pub fn cpu_description() -> String {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let model = field("model name")
        .or_else(|| field("Hardware"))
        .or_else(|| field("CPU part").map(|p| format!("Arm CPU part {p}")))
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{model} ({cpus} logical CPUs)")
}

/// OS name and kernel release, e.g. `Debian GNU/Linux 12 (bookworm), Linux 6.1.0`.
pub fn os_description() -> String {
    let pretty = fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_string())
        .unwrap_or_default();
    if kernel.is_empty() {
        pretty
    } else {
        format!("{pretty}, {} {kernel}", std::env::consts::OS)
    }
}

/// A short device label for file names: architecture and host name.
pub fn local_device_name() -> String {
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("local:{host} ({})", std::env::consts::ARCH)
}

/// Pins the calling process to one CPU core (Linux `sched_setaffinity`
/// through `taskset`, which every Linux and Android has). Returns what was
/// done, for the provenance.
pub fn pin_to_core(core: usize) -> Result<String, String> {
    let pid = std::process::id().to_string();
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &core.to_string(), &pid])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run taskset to pin to core {core}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "taskset could not pin to core {core} (does this machine have it? cores: {})",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        ));
    }
    Ok(format!("core {core}"))
}
