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
pub(crate) fn os_description() -> String {
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
pub(crate) fn local_device_name() -> String {
    let host = fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("local:{host} ({})", std::env::consts::ARCH)
}

/// Pins the calling process to one CPU core (Linux `sched_setaffinity`
/// through `taskset`, which every Linux and Android has). Returns what was
/// done, for the provenance.
pub(crate) fn pin_to_core(core: usize) -> Result<String, String> {
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

/// Pins the calling process (all its threads) to a set of CPU cores with
/// `taskset -a -p -c LIST PID`. Returns what was done, for the provenance.
pub(crate) fn pin_to_cores(cores: &[usize]) -> Result<String, String> {
    if cores.is_empty() {
        return Err("no cores to pin to".into());
    }
    if let [core] = cores {
        return pin_to_core(*core);
    }
    let list = core_list(cores);
    let pid = std::process::id().to_string();
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &list, &pid])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run taskset to pin to cores {list}: {e}"))?;
    if !status.success() {
        return Err(format!("taskset could not pin to cores {list}"));
    }
    Ok(format!("cores {list}"))
}

/// `0,1,4` for taskset and provenance.
pub(crate) fn core_list(cores: &[usize]) -> String {
    cores
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The Linux `/sys` tree the hygiene facts come from. A field so that tests
/// can point it at a made-up tree; [`Sysfs::system`] is the real one.
#[derive(Clone, Debug)]
pub(crate) struct Sysfs {
    root: std::path::PathBuf,
}

/// One CPU core's frequency facts (kHz, as the kernel reports them).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CoreFrequency {
    /// Core number (`cpuN`).
    pub core: usize,
    /// `cpuinfo_max_freq`, if readable.
    pub max_khz: Option<u64>,
    /// `scaling_cur_freq` (or `cpuinfo_cur_freq`), if readable.
    pub cur_khz: Option<u64>,
    /// `scaling_governor`, if readable.
    pub governor: Option<String>,
}

/// Governor, frequencies and temperatures at one moment: what can make a
/// phone's timings drift, recorded before and after profiling.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct ThermalSnapshot {
    /// Per-core frequency facts (empty when `/sys/.../cpufreq` is absent).
    pub cores: Vec<CoreFrequency>,
    /// Thermal zones: (zone name, type, °C).
    pub zones: Vec<(String, String, f64)>,
}

impl Sysfs {
    /// The running system's `/sys`.
    pub(crate) fn system() -> Self {
        Sysfs {
            root: "/sys".into(),
        }
    }

    /// A `/sys` look-alike rooted elsewhere (tests).
    #[cfg(test)]
    pub(crate) fn at(root: impl Into<std::path::PathBuf>) -> Self {
        Sysfs { root: root.into() }
    }

    fn read(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.root.join(rel))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// Numbered entries `PREFIX<N>` of a folder, sorted by N.
    fn numbered(&self, rel: &str, prefix: &str) -> Vec<(usize, String)> {
        let mut found: Vec<(usize, String)> = fs::read_dir(self.root.join(rel))
            .map(|dir| {
                dir.filter_map(|e| {
                    let name = e.ok()?.file_name().into_string().ok()?;
                    let n = name.strip_prefix(prefix)?.parse().ok()?;
                    Some((n, name))
                })
                .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }

    /// Frequency facts of every core that has a `cpufreq` folder.
    pub(crate) fn core_frequencies(&self) -> Vec<CoreFrequency> {
        self.numbered("devices/system/cpu", "cpu")
            .into_iter()
            .filter_map(|(core, name)| {
                let base = format!("devices/system/cpu/{name}/cpufreq");
                if !self.root.join(&base).is_dir() {
                    return None;
                }
                let num = |f: &str| self.read(&format!("{base}/{f}"))?.parse::<u64>().ok();
                Some(CoreFrequency {
                    core,
                    max_khz: num("cpuinfo_max_freq"),
                    cur_khz: num("scaling_cur_freq").or_else(|| num("cpuinfo_cur_freq")),
                    governor: self.read(&format!("{base}/scaling_governor")),
                })
            })
            .collect()
    }

    /// The big cores: those with the highest `cpuinfo_max_freq`. Empty when
    /// no core reports one (no cpufreq, as in many containers and VMs).
    pub(crate) fn big_cores(&self) -> Vec<usize> {
        let cores = self.core_frequencies();
        let Some(top) = cores.iter().filter_map(|c| c.max_khz).max() else {
            return Vec::new();
        };
        cores
            .iter()
            .filter(|c| c.max_khz == Some(top))
            .map(|c| c.core)
            .collect()
    }

    /// Thermal zones with a readable temperature (millidegrees → °C).
    pub(crate) fn thermal_zones(&self) -> Vec<(String, String, f64)> {
        self.numbered("class/thermal", "thermal_zone")
            .into_iter()
            .filter_map(|(_, name)| {
                let milli: f64 = self
                    .read(&format!("class/thermal/{name}/temp"))?
                    .parse()
                    .ok()?;
                let kind = self
                    .read(&format!("class/thermal/{name}/type"))
                    .unwrap_or_else(|| "?".into());
                Some((name, kind, milli / 1000.0))
            })
            .collect()
    }

    /// Governor, frequencies and temperatures now.
    pub(crate) fn snapshot(&self) -> ThermalSnapshot {
        ThermalSnapshot {
            cores: self.core_frequencies(),
            zones: self.thermal_zones(),
        }
    }
}

impl ThermalSnapshot {
    /// Distinct governors, e.g. `schedutil` or `performance (cpu0-3), schedutil (cpu4-7)`;
    /// `unknown (no cpufreq)` when absent.
    pub(crate) fn governor_text(&self) -> String {
        let mut by: Vec<(String, Vec<usize>)> = Vec::new();
        for c in &self.cores {
            let g = c.governor.clone().unwrap_or_else(|| "?".into());
            match by.iter_mut().find(|(name, _)| *name == g) {
                Some((_, cores)) => cores.push(c.core),
                None => by.push((g, vec![c.core])),
            }
        }
        match by.len() {
            0 => "unknown (no cpufreq)".into(),
            1 => by.remove(0).0,
            _ => by
                .iter()
                .map(|(g, cores)| format!("{g} (cpu {})", core_list(cores)))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// `cpu0 1804/2016 MHz; cpu1 ...` (current/max); `unknown (no cpufreq)` when absent.
    pub(crate) fn frequencies_text(&self) -> String {
        if self.cores.is_empty() {
            return "unknown (no cpufreq)".into();
        }
        let mhz = |k: Option<u64>| k.map_or("?".to_string(), |k| (k / 1000).to_string());
        self.cores
            .iter()
            .map(|c| format!("cpu{} {}/{} MHz", c.core, mhz(c.cur_khz), mhz(c.max_khz)))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// `thermal_zone0 (cpu-thermal) 41.2 C; ...`; `unknown (no thermal zones)` when absent.
    pub(crate) fn temperatures_text(&self) -> String {
        if self.zones.is_empty() {
            return "unknown (no thermal zones)".into();
        }
        self.zones
            .iter()
            .map(|(zone, kind, c)| format!("{zone} ({kind}) {c:.1} C"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The hottest zone (°C), if any.
    #[cfg(test)]
    pub(crate) fn max_temperature(&self) -> Option<f64> {
        self.zones.iter().map(|z| z.2).max_by(f64::total_cmp)
    }

    /// Adds `x-<when>-governor`, `x-<when>-freq-mhz` and `x-<when>-temp-c`
    /// to provenance extras.
    pub(crate) fn record(
        &self,
        when: &str,
        extra: &mut std::collections::BTreeMap<String, String>,
    ) {
        extra.insert(format!("x-{when}-governor"), self.governor_text());
        extra.insert(format!("x-{when}-freq-mhz"), self.frequencies_text());
        extra.insert(format!("x-{when}-temp-c"), self.temperatures_text());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &std::path::Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn big_cores_governors_and_zones_come_from_sysfs() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for (cpu, max, cur, gov) in [
            (0, 1_800_000, 1_200_000, "schedutil"),
            (1, 1_800_000, 1_800_000, "schedutil"),
            (2, 2_850_000, 2_400_000, "performance"),
            (3, 2_850_000, 2_850_000, "performance"),
        ] {
            let base = format!("devices/system/cpu/cpu{cpu}/cpufreq");
            write(r, &format!("{base}/cpuinfo_max_freq"), &format!("{max}\n"));
            write(r, &format!("{base}/scaling_cur_freq"), &format!("{cur}\n"));
            write(r, &format!("{base}/scaling_governor"), &format!("{gov}\n"));
        }
        // A core without cpufreq and a non-core entry are ignored.
        fs::create_dir_all(r.join("devices/system/cpu/cpu4")).unwrap();
        fs::create_dir_all(r.join("devices/system/cpu/cpufreq")).unwrap();
        write(r, "class/thermal/thermal_zone0/temp", "41250\n");
        write(r, "class/thermal/thermal_zone0/type", "cpu-thermal\n");
        write(r, "class/thermal/thermal_zone1/type", "no temp\n");
        let sys = Sysfs::at(r);
        assert_eq!(sys.big_cores(), vec![2, 3]);
        let snap = sys.snapshot();
        assert_eq!(
            snap.governor_text(),
            "schedutil (cpu 0,1), performance (cpu 2,3)"
        );
        assert!(
            snap.frequencies_text()
                .starts_with("cpu0 1200/1800 MHz; cpu1 1800/1800 MHz"),
            "{}",
            snap.frequencies_text()
        );
        assert_eq!(
            snap.temperatures_text(),
            "thermal_zone0 (cpu-thermal) 41.2 C"
        );
        assert_eq!(snap.max_temperature(), Some(41.25));
    }

    #[test]
    fn absent_sysfs_degrades_to_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let sys = Sysfs::at(dir.path().join("nothing"));
        assert!(sys.big_cores().is_empty());
        let snap = sys.snapshot();
        assert_eq!(snap.governor_text(), "unknown (no cpufreq)");
        assert_eq!(snap.frequencies_text(), "unknown (no cpufreq)");
        assert_eq!(snap.temperatures_text(), "unknown (no thermal zones)");
        let mut extra = Default::default();
        snap.record("before", &mut extra);
        assert_eq!(extra.len(), 3);
    }
}
