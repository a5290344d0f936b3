//! Facts about this machine.

use std::process::Command;

/// The CPU model (`model name` in `/proc/cpuinfo`), if it says.
pub(crate) fn cpu_model_name() -> Option<String> {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// Whether xtask runs as root (else `apt-get` goes through sudo).
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
