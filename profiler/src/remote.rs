//! Device runners: profile a phone over `adb` or a Linux board over `ssh`.
//!
//! The profiler pushes a device build of itself and `libonnxruntime.so` to
//! a work folder on the device, runs `profile` (or `refresh`) there with
//! `ORT_DYLIB_PATH` set, streams the device's progress lines to stderr, and
//! pulls the table back. The device keeps the measurement journal
//! (`FILE.partial`) while it runs: a dropped connection loses no row; the
//! journal is also pulled when a run fails, and running the same command
//! again resumes it on the device.
//!
//! Every command that runs on the device is one shell script built here,
//! every word of it single-quoted ([`shell_quote`]): no folder name, file
//! name or serial can run anything. Files travel by `adb push`/`adb pull`
//! (no shell involved), or over ssh as `cat > 'PATH'` / `cat 'PATH'`, which
//! behaves the same whether the board's scp speaks SFTP or the legacy
//! protocol, and needs nothing but `cat` on the board.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;

use sha2::{Digest, Sha256};
use thiserror::Error;
use tunas_shared::LatencyTable;

use crate::partial::journal_path;

/// The Android work folder (in /data/local/tmp, which the adb shell user
/// owns and can execute from).
pub const ANDROID_WORK_DIR: &str = "/data/local/tmp/tunas";
/// Defines `tunas_refuse REASON`, which prints `tunas-unsafe=DIR<TAB>REASON`
/// for the work folder `$d` and ends the script.
const REFUSE_FN: &str =
    "tunas_refuse() { printf 'tunas-unsafe=%s\\t%s\\n' \"$d\" \"$1\"; exit 0; }";

/// Refuses a work folder `$d` that is a symbolic link or not a folder
/// (checked before `mkdir -p`, which would follow a link).
const NO_LINK_CHECK: &str = "if [ -L \"$d\" ]; then tunas_refuse 'is a symbolic link'; fi; \
if [ -e \"$d\" ] && [ ! -d \"$d\" ]; then tunas_refuse 'is not a folder'; fi";

/// Checks the work folder `$d` before anything in it is used: the profiler
/// runs the binary it finds there, so a folder another user can write (or a
/// symbolic link to one) would run their program. `ls -ldn` is POSIX and
/// present in toybox, busybox and coreutils alike.
const WORK_DIR_CHECK: &str = "if [ -L \"$d\" ]; then tunas_refuse 'is a symbolic link'; fi; \
if [ ! -d \"$d\" ]; then tunas_refuse 'is not a folder'; fi; \
set -f; set -- $(ls -ldn \"$d\"); set +f; \
case \"$1\" in d????-??-*) ;; *) tunas_refuse \"can be written by other users (mode $1)\";; esac; \
if [ \"$3\" != \"$(id -u)\" ]; then tunas_refuse \"belongs to user id $3, not to this user ($(id -u))\"; fi";

/// Environment variable naming the adb executable.
pub const ADB_ENV: &str = "ADB";
/// Environment variable with extra ssh arguments (split on whitespace).
pub const SSH_OPTS_ENV: &str = "TUNAS_SSH_OPTS";

/// Anything that can stop a remote run.
#[derive(Debug, Error)]
pub enum RemoteError {
    /// `--device` could not be parsed.
    #[error(
        "--device {spec}: {message} (expected local, adb, adb:SERIAL, all-adb or ssh:[USER@]HOST[:PORT])"
    )]
    BadDevice {
        /// What was given.
        spec: String,
        /// What is wrong.
        message: String,
    },
    /// adb or ssh could not be started.
    #[error("cannot run {tool}: {message}; {advice}")]
    ToolMissing {
        /// The program.
        tool: String,
        /// The system's message.
        message: String,
        /// How to get it.
        advice: String,
    },
    /// adb lists no usable device.
    #[error(
        "adb lists no device in state 'device'{listing}; plug the phone in, enable USB debugging and accept the prompt, then check `adb devices`"
    )]
    NoAdbDevice {
        /// What `adb devices` showed.
        listing: String,
    },
    /// More than one phone and no serial.
    #[error(
        "adb lists {} devices ({}); pick one with --device adb:SERIAL, or profile all with --device all-adb",
        serials.len(), serials.join(", ")
    )]
    AmbiguousAdb {
        /// Serials attached.
        serials: Vec<String>,
    },
    /// The serial asked for is not attached.
    #[error("adb does not list {serial} (attached: {attached}); check `adb devices`")]
    AdbDeviceNotFound {
        /// Asked for.
        serial: String,
        /// Listed.
        attached: String,
    },
    /// A command on the device failed.
    #[error("{device}: {what} failed ({status}): {output}")]
    Command {
        /// Device label.
        device: String,
        /// What was being done.
        what: String,
        /// Exit status.
        status: String,
        /// Its output (last lines).
        output: String,
    },
    /// No profiler build for the device's architecture.
    #[error(
        "{device} is {arch} and no profiler build for it was given; {advice}, then pass --device-binary PATH"
    )]
    NoDeviceBinary {
        /// Device label.
        device: String,
        /// The device's `uname -m`.
        arch: String,
        /// How to build one.
        advice: String,
    },
    /// No ONNX Runtime library for the device's architecture.
    #[error(
        "{device} is {arch} and no libonnxruntime.so for it was given; {advice}, then pass --device-ort-lib PATH"
    )]
    NoDeviceRuntime {
        /// Device label.
        device: String,
        /// The device's `uname -m`.
        arch: String,
        /// How to get one.
        advice: String,
    },
    /// The connection dropped before the profiler finished.
    #[error(
        "{device}: the connection dropped before the profiler finished ({status}); the rows measured so far are kept on the device in {remote_journal}{pulled}; run the same command again to resume"
    )]
    Dropped {
        /// Device label.
        device: String,
        /// The transport's exit status.
        status: String,
        /// The journal on the device.
        remote_journal: String,
        /// Where the journal was copied, if it could be.
        pulled: String,
    },
    /// The profiler on the device exited with an error.
    #[error(
        "{device}: the profiler on the device failed (exit {code}):\n{tail}\nthe rows measured so far are kept on the device in {remote_journal}{pulled}"
    )]
    Failed {
        /// Device label.
        device: String,
        /// Its exit code.
        code: i32,
        /// Its last output lines.
        tail: String,
        /// The journal on the device.
        remote_journal: String,
        /// Where the journal was copied, if it could be.
        pulled: String,
    },
    /// The work folder on the device is not this user's alone.
    #[error(
        "{device}: refusing the work folder {dir}: it {reason}; the profiler runs the program it finds there, so the folder must be a real folder owned by the login user that no one else can write. Remove it or make it yours alone (chown, chmod 700), or choose another work folder"
    )]
    UnsafeWorkDir {
        /// Device label.
        device: String,
        /// The folder.
        dir: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A local file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The pulled table does not read back.
    #[error("{device}: the table pulled from the device does not read back: {source}")]
    BadTable {
        /// Device label.
        device: String,
        /// The reader's error.
        source: tunas_shared::TableError,
    },
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> RemoteError {
    RemoteError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Quotes one word for a POSIX shell: wrapped in single quotes, with each
/// embedded single quote written as `'\''`. Nothing inside is interpreted.
///
/// ```
/// use tunas_profiler::remote::shell_quote;
/// assert_eq!(shell_quote("a b"), "'a b'");
/// assert_eq!(shell_quote("it's; rm x"), r"'it'\''s; rm x'");
/// ```
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A command line of quoted words.
pub fn shell_words<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An ssh destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    /// Login name, if given.
    pub user: Option<String>,
    /// Host name or address.
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
}

impl SshTarget {
    /// `USER@HOST` or `HOST`.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

/// Where `profile` runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// This machine.
    Local,
    /// An Android device over adb; without a serial, the only one attached.
    Adb {
        /// The serial (`adb devices`), if given.
        serial: Option<String>,
    },
    /// Every device adb lists, in parallel.
    AllAdb,
    /// A Linux board over ssh.
    Ssh(SshTarget),
}

impl FromStr for DeviceSpec {
    type Err = RemoteError;

    fn from_str(spec: &str) -> Result<Self, RemoteError> {
        let bad = |message: &str| RemoteError::BadDevice {
            spec: spec.to_string(),
            message: message.to_string(),
        };
        if spec == "local" {
            return Ok(DeviceSpec::Local);
        }
        if spec == "adb" {
            return Ok(DeviceSpec::Adb { serial: None });
        }
        if spec == "all-adb" {
            return Ok(DeviceSpec::AllAdb);
        }
        if let Some(serial) = spec.strip_prefix("adb:") {
            if serial.is_empty() {
                return Err(bad("empty serial"));
            }
            return Ok(DeviceSpec::Adb {
                serial: Some(serial.to_string()),
            });
        }
        if let Some(rest) = spec.strip_prefix("ssh:") {
            let (user, hostport) = match rest.rsplit_once('@') {
                Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
                Some(_) => return Err(bad("empty user name before '@'")),
                None => (None, rest),
            };
            // [v6]:port, host:port, or a bare host.
            let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
                let (h, after) = v6
                    .split_once(']')
                    .ok_or_else(|| bad("unclosed '[' in the host"))?;
                match after.strip_prefix(':') {
                    Some(p) => (h.to_string(), Some(p)),
                    None if after.is_empty() => (h.to_string(), None),
                    None => return Err(bad("unexpected text after ']'")),
                }
            } else {
                match hostport.rsplit_once(':') {
                    Some((h, p)) => (h.to_string(), Some(p)),
                    None => (hostport.to_string(), None),
                }
            };
            let port = match port {
                Some(p) => Some(
                    p.parse::<u16>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| bad(&format!("'{p}' is not a port number")))?,
                ),
                None => None,
            };
            if host.is_empty() {
                return Err(bad("empty host"));
            }
            if host.starts_with('-') || user.as_deref().is_some_and(|u| u.starts_with('-')) {
                return Err(bad("a host or user may not start with '-'"));
            }
            return Ok(DeviceSpec::Ssh(SshTarget { user, host, port }));
        }
        Err(bad("unknown device kind"))
    }
}

/// How commands and files reach one device.
#[derive(Clone, Debug)]
pub enum Transport {
    /// `adb -s SERIAL ...`.
    Adb {
        /// The adb program.
        adb: OsString,
        /// The device's serial.
        serial: String,
    },
    /// `ssh -o BatchMode=yes ... DEST`.
    Ssh {
        /// Destination.
        target: SshTarget,
        /// Extra ssh arguments (`--ssh-option`, `$TUNAS_SSH_OPTS`).
        options: Vec<String>,
    },
}

/// The adb program: `$ADB`, else `adb` on the PATH.
pub fn adb_program() -> OsString {
    std::env::var_os(ADB_ENV)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "adb".into())
}

fn start_error(tool: &str, e: std::io::Error) -> RemoteError {
    let advice = if tool.contains("adb") {
        "install Debian's `adb` package (apt-get install adb) or point $ADB at the Android SDK's platform-tools/adb"
    } else {
        "install the OpenSSH client (apt-get install openssh-client)"
    };
    RemoteError::ToolMissing {
        tool: tool.to_string(),
        message: e.to_string(),
        advice: advice.into(),
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Serials of the devices `adb devices` lists in state `device`.
pub fn adb_devices(adb: &OsString) -> Result<Vec<String>, RemoteError> {
    let out = Command::new(adb)
        .arg("devices")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| start_error(&adb.to_string_lossy(), e))?;
    if !out.status.success() {
        return Err(RemoteError::Command {
            device: "adb".into(),
            what: "adb devices".into(),
            status: out.status.to_string(),
            output: tail(&String::from_utf8_lossy(&out.stderr), 5),
        });
    }
    Ok(parse_adb_devices(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `adb devices` output: serials in state `device` (not
/// `unauthorized` or `offline`).
pub fn parse_adb_devices(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with("List of devices") && !l.starts_with('*'))
        .filter_map(|l| {
            let mut cells = l.split_whitespace();
            let serial = cells.next()?;
            (cells.next()? == "device").then(|| serial.to_string())
        })
        .collect()
}

impl Transport {
    /// The transport for a single-device spec (`adb`, `adb:SERIAL`,
    /// `ssh:...`); `ssh_options` are extra ssh arguments.
    pub fn for_device(spec: &DeviceSpec, ssh_options: &[String]) -> Result<Self, RemoteError> {
        match spec {
            DeviceSpec::Adb { serial } => {
                let adb = adb_program();
                let attached = adb_devices(&adb)?;
                let serial = match serial {
                    Some(s) if attached.contains(s) => s.clone(),
                    Some(s) => {
                        return Err(RemoteError::AdbDeviceNotFound {
                            serial: s.clone(),
                            attached: if attached.is_empty() {
                                "none".into()
                            } else {
                                attached.join(", ")
                            },
                        });
                    }
                    None => match attached.as_slice() {
                        [one] => one.clone(),
                        [] => {
                            return Err(RemoteError::NoAdbDevice {
                                listing: String::new(),
                            });
                        }
                        _ => return Err(RemoteError::AmbiguousAdb { serials: attached }),
                    },
                };
                Ok(Transport::Adb { adb, serial })
            }
            DeviceSpec::Ssh(target) => {
                let mut options = ssh_options.to_vec();
                if let Some(env) = std::env::var_os(SSH_OPTS_ENV) {
                    options.extend(env.to_string_lossy().split_whitespace().map(String::from));
                }
                Ok(Transport::Ssh {
                    target: target.clone(),
                    options,
                })
            }
            DeviceSpec::Local | DeviceSpec::AllAdb => Err(RemoteError::BadDevice {
                spec: format!("{spec:?}"),
                message: "not a single remote device".into(),
            }),
        }
    }

    /// `adb:SERIAL` or `ssh:[USER@]HOST[:PORT]`.
    pub fn label(&self) -> String {
        match self {
            Transport::Adb { serial, .. } => format!("adb:{serial}"),
            Transport::Ssh { target, .. } => match target.port {
                Some(p) => format!("ssh:{}:{p}", target.destination()),
                None => format!("ssh:{}", target.destination()),
            },
        }
    }

    fn is_android(&self) -> bool {
        matches!(self, Transport::Adb { .. })
    }

    /// A command that runs `script` in the device's shell.
    pub fn shell(&self, script: &str) -> Command {
        match self {
            Transport::Adb { adb, serial } => {
                let mut c = Command::new(adb);
                c.args(["-s", serial, "shell", script]);
                c
            }
            Transport::Ssh { target, options } => {
                let mut c = Command::new("ssh");
                c.args(["-o", "BatchMode=yes"]).args(options);
                if let Some(p) = target.port {
                    c.args(["-p", &p.to_string()]);
                }
                c.arg("--").arg(target.destination()).arg(script);
                c
            }
        }
    }

    fn program(&self) -> String {
        match self {
            Transport::Adb { adb, .. } => adb.to_string_lossy().into_owned(),
            Transport::Ssh { .. } => "ssh".into(),
        }
    }

    /// Runs `script` on the device and returns its stdout; a non-zero exit
    /// is an error with the output.
    pub fn run(&self, script: &str, what: &str) -> Result<String, RemoteError> {
        let out = self
            .shell(script)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| start_error(&self.program(), e))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(RemoteError::Command {
                device: self.label(),
                what: what.into(),
                status: out.status.to_string(),
                output: tail(
                    &format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
                    10,
                ),
            });
        }
        Ok(stdout)
    }

    /// Copies a local file to `remote` (an absolute device path).
    pub fn push(&self, local: &Path, remote: &str) -> Result<(), RemoteError> {
        let what = format!("copying {} to {remote}", local.display());
        let out = match self {
            Transport::Adb { adb, serial } => Command::new(adb)
                .args(["-s", serial, "push"])
                .arg(local)
                .arg(remote)
                .stdin(Stdio::null())
                .output(),
            Transport::Ssh { .. } => {
                let file = std::fs::File::open(local).map_err(|e| io_error(local, e))?;
                self.shell(&format!("cat > {}", shell_quote(remote)))
                    .stdin(file)
                    .output()
            }
        }
        .map_err(|e| start_error(&self.program(), e))?;
        if !out.status.success() {
            return Err(RemoteError::Command {
                device: self.label(),
                what,
                status: out.status.to_string(),
                output: tail(&String::from_utf8_lossy(&out.stderr), 10),
            });
        }
        Ok(())
    }

    /// Copies `remote` from the device to a local file (through a
    /// temporary file, renamed once complete).
    pub fn pull(&self, remote: &str, local: &Path) -> Result<(), RemoteError> {
        let what = format!("copying {remote} from the device to {}", local.display());
        let mut tmp = local.as_os_str().to_owned();
        tmp.push(".pulling");
        let tmp = PathBuf::from(tmp);
        let out = match self {
            Transport::Adb { adb, serial } => Command::new(adb)
                .args(["-s", serial, "pull", remote])
                .arg(&tmp)
                .stdin(Stdio::null())
                .output(),
            Transport::Ssh { .. } => {
                let file = std::fs::File::create(&tmp).map_err(|e| io_error(&tmp, e))?;
                self.shell(&format!("cat {}", shell_quote(remote)))
                    .stdin(Stdio::null())
                    .stdout(file)
                    .output()
            }
        }
        .map_err(|e| start_error(&self.program(), e))?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&tmp);
            return Err(RemoteError::Command {
                device: self.label(),
                what,
                status: out.status.to_string(),
                output: tail(&String::from_utf8_lossy(&out.stderr), 10),
            });
        }
        std::fs::rename(&tmp, local).map_err(|e| io_error(local, e))
    }
}

/// What the profiler on the device runs.
#[derive(Clone, Debug)]
pub enum RemoteCommand {
    /// `profile`.
    Profile,
    /// `refresh` of this local table.
    Refresh {
        /// The table to refresh (pushed to the device).
        table: PathBuf,
    },
}

/// One run of the profiler on a remote device.
#[derive(Clone, Debug)]
pub struct RemoteRun {
    /// How to reach the device.
    pub transport: Transport,
    /// What to run.
    pub command: RemoteCommand,
    /// `--space` as the user gave it: a built-in name, or a local `.toml`
    /// file (pushed to the device).
    pub space: String,
    /// Further profiler arguments, passed through unchanged.
    pub args: Vec<String>,
    /// Where the table lands on this machine.
    pub out: PathBuf,
    /// The work folder on the device (default: `/data/local/tmp/tunas` on
    /// Android; `~/.cache/tunas`, else `/tmp/tunas-USER` over ssh).
    pub remote_dir: Option<String>,
    /// The profiler build for the device (default: this executable when the
    /// device has this machine's architecture).
    pub device_binary: Option<PathBuf>,
    /// `libonnxruntime.so` for the device (default: this machine's when the
    /// architecture matches).
    pub device_ort_lib: Option<PathBuf>,
    /// This machine's runtime, for a same-architecture device.
    pub local_ort_lib: Option<PathBuf>,
}

/// The outcome of a finished remote run.
#[derive(Clone, Debug)]
pub struct RemoteReport {
    /// Device label, e.g. `adb:SERIAL (Pixel 7)`.
    pub device: String,
    /// The table written here.
    pub out: PathBuf,
    /// Rows in it.
    pub rows: usize,
    /// Whether an interrupted run on the device was resumed.
    pub resumed: bool,
    /// The device's work folder.
    pub remote_dir: String,
    /// The table was already here (all-adb without --force): not measured.
    pub skipped: bool,
}

/// Facts the first command on the device reports.
#[derive(Clone, Debug, Default)]
struct Probe {
    dir: String,
    arch: String,
    model: String,
}

fn normalise_arch(arch: &str) -> &str {
    match arch {
        "arm64" | "armv8l" | "aarch64_be" => "aarch64",
        "amd64" => "x86_64",
        a => a,
    }
}

/// The target folder this executable was built into (`target/`), if it
/// looks like one.
fn target_root() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?;
    let root = profile_dir.parent()?;
    // target/debug/x or target/<triple>/debug/x
    if root.join("debug").is_dir() || root.join("release").is_dir() {
        Some(root.to_path_buf())
    } else {
        None
    }
}

fn sha256_hex(path: &Path) -> Result<String, RemoteError> {
    let mut file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| io_error(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

impl RemoteRun {
    fn probe(&self) -> Result<Probe, RemoteError> {
        let dir_script = match (&self.remote_dir, self.transport.is_android()) {
            (Some(dir), _) => {
                // A leading '-' would read as an option.
                let dir = if dir.starts_with('-') {
                    format!("./{dir}")
                } else {
                    dir.clone()
                };
                format!(
                    "d={}; {NO_LINK_CHECK}; mkdir -p -m 700 \"$d\" || exit 1",
                    shell_quote(&dir)
                )
            }
            (None, true) => format!(
                "d={}; {NO_LINK_CHECK}; mkdir -p -m 700 \"$d\" || exit 1",
                shell_quote(ANDROID_WORK_DIR)
            ),
            // Only the last folder gets mode 700 from `mkdir -p -m`; the
            // fallback in /tmp is where another user could have made it first.
            (None, false) => format!(
                "d=\"${{HOME:-/nonexistent}}/.cache/tunas\"; {NO_LINK_CHECK}; if ! mkdir -p -m 700 \"$d\" 2>/dev/null || [ ! -w \"$d\" ]; then d=\"/tmp/tunas-$(id -un)\"; {NO_LINK_CHECK}; mkdir -p -m 700 \"$d\" || exit 1; fi"
            ),
        };
        let script = format!(
            "{REFUSE_FN}; {dir_script}; {WORK_DIR_CHECK}; cd \"$d\" || exit 1; echo \"tunas-dir=$(pwd)\"; echo \"tunas-arch=$(uname -m)\"; echo \"tunas-model=$(getprop ro.product.model 2>/dev/null)\""
        );
        let out = self.transport.run(&script, "preparing the work folder")?;
        let mut probe = Probe::default();
        for line in out.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(v) = line.strip_prefix("tunas-unsafe=") {
                let (dir, reason) = v.split_once('\t').unwrap_or((v, "is not safe"));
                return Err(RemoteError::UnsafeWorkDir {
                    device: self.transport.label(),
                    dir: dir.to_string(),
                    reason: reason.to_string(),
                });
            }
            if let Some(v) = line.strip_prefix("tunas-dir=") {
                probe.dir = v.to_string();
            } else if let Some(v) = line.strip_prefix("tunas-arch=") {
                probe.arch = normalise_arch(v.trim()).to_string();
            } else if let Some(v) = line.strip_prefix("tunas-model=") {
                probe.model = v.trim().to_string();
            }
        }
        if probe.dir.is_empty() || probe.arch.is_empty() {
            return Err(RemoteError::Command {
                device: self.transport.label(),
                what: "preparing the work folder".into(),
                status: "no answer".into(),
                output: tail(&out, 10),
            });
        }
        Ok(probe)
    }

    fn device_binary(&self, arch: &str) -> Result<PathBuf, RemoteError> {
        if let Some(p) = &self.device_binary {
            return Ok(p.clone());
        }
        if arch == std::env::consts::ARCH {
            return std::env::current_exe().map_err(|e| io_error(Path::new("tunas-profiler"), e));
        }
        let triple = if self.transport.is_android() {
            format!("{arch}-linux-android")
        } else {
            format!("{arch}-unknown-linux-gnu")
        };
        if let Some(root) = target_root() {
            for profile in ["release", "debug"] {
                let p = root.join(&triple).join(profile).join("tunas-profiler");
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        Err(RemoteError::NoDeviceBinary {
            device: self.transport.label(),
            arch: arch.into(),
            advice: if self.transport.is_android() {
                "build one with `cargo xtask android` (needs ANDROID_NDK_HOME; see the README, \"Profile your phone\")".into()
            } else if arch == "aarch64" {
                "build one with `cargo xtask cross aarch64-linux-gnu`".into()
            } else {
                format!("build the profiler for {triple}")
            },
        })
    }

    fn device_ort_lib(&self, arch: &str) -> Result<PathBuf, RemoteError> {
        if let Some(p) = &self.device_ort_lib {
            return Ok(p.clone());
        }
        // This machine's architecture and this executable: an ssh host like
        // this one, an emulator or a test double; this runtime matches.
        if arch == std::env::consts::ARCH
            && (self.device_binary.is_none() || !self.transport.is_android())
            && let Ok(lib) = crate::runtime::locate_runtime(self.local_ort_lib.as_deref())
        {
            return Ok(lib.path);
        }
        let folder = if self.transport.is_android() {
            "onnxruntime-android".to_string()
        } else {
            format!("onnxruntime-{arch}")
        };
        if let Some(root) = target_root()
            && let Ok(entries) = std::fs::read_dir(root.join(&folder))
        {
            let mut libs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("libonnxruntime.so"))
                })
                .collect();
            libs.sort();
            if let Some(lib) = libs.pop() {
                return Ok(lib);
            }
        }
        Err(RemoteError::NoDeviceRuntime {
            device: self.transport.label(),
            arch: arch.into(),
            advice: if self.transport.is_android() {
                "unzip jni/arm64-v8a/libonnxruntime.so from the onnxruntime-android AAR (Maven Central, com.microsoft.onnxruntime:onnxruntime-android; see the README)".into()
            } else {
                format!(
                    "take onnxruntime/capi/libonnxruntime.so.* from the PyPI wheel (`pip download --no-deps --only-binary=:all: --platform manylinux_2_28_{arch} --python-version 3.11 onnxruntime==1.31.1`)"
                )
            },
        })
    }

    /// Pushes `local` to `remote` unless the file there has the same
    /// SHA-256, computed on the device (`sha256sum`, in toybox, busybox and
    /// coreutils): a marker file beside it could be forged, the content
    /// cannot. Without `sha256sum` the file is pushed every time.
    fn push_once(
        &self,
        local: &Path,
        remote: &str,
        log: &(dyn Fn(&str) + Sync),
    ) -> Result<(), RemoteError> {
        let hash = sha256_hex(local)?;
        let there = self
            .transport
            .run(
                &format!(
                    "if [ -f {q} ] && [ ! -L {q} ]; then sha256sum {q} 2>/dev/null; fi; true",
                    q = shell_quote(remote)
                ),
                "checking what is on the device",
            )
            .unwrap_or_default();
        let there = there.split_whitespace().next().unwrap_or_default();
        if there.eq_ignore_ascii_case(&hash) {
            return Ok(());
        }
        log(&format!("pushing {} to {remote}", local.display()));
        // A symbolic link in its place would send the push elsewhere.
        self.transport.run(
            &format!("rm -f {}", shell_quote(remote)),
            "replacing the file on the device",
        )?;
        self.transport.push(local, remote)?;
        self.transport.run(
            &format!(
                "chmod 755 {} && rm -f {}",
                shell_quote(remote),
                // The marker earlier versions trusted.
                shell_quote(&format!("{remote}.sha256"))
            ),
            "marking the pushed file executable",
        )?;
        Ok(())
    }

    /// Runs the profiler on the device and pulls the table. `log` receives
    /// progress and the device's output, one line at a time.
    pub fn execute(&self, log: &(dyn Fn(&str) + Sync)) -> Result<RemoteReport, RemoteError> {
        let probe = self.probe()?;
        let label = self.transport.label();
        let device_label = if probe.model.is_empty() {
            label.clone()
        } else {
            format!("{label} ({})", probe.model)
        };
        log(&format!(
            "{device_label}: {} device, work folder {}",
            probe.arch, probe.dir
        ));
        let binary = self.device_binary(&probe.arch)?;
        let lib = self.device_ort_lib(&probe.arch)?;
        let dir = probe.dir.trim_end_matches('/').to_string();
        let dir = if dir.is_empty() { "/".to_string() } else { dir };
        let remote = |name: &str| format!("{}/{name}", dir.trim_end_matches('/'));
        let remote_bin = remote("tunas-profiler");
        let lib_name = lib
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("libonnxruntime.so")
            .to_string();
        let remote_lib = remote(&lib_name);
        self.push_once(&binary, &remote_bin, log)?;
        self.push_once(&lib, &remote_lib, log)?;
        let space = if Path::new(&self.space).is_file() {
            let r = remote("space.toml");
            self.transport.push(Path::new(&self.space), &r)?;
            r
        } else {
            self.space.clone()
        };
        let name = self
            .out
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("table.csv")
            .to_string();
        let remote_table = remote(&name);
        let remote_journal = format!("{remote_table}.partial");
        let pidfile = format!("{remote_table}.pid");

        // A run cut off by a dropped connection may still be alive on the
        // device: stop it (only if it is a tunas-profiler), so that one
        // process at a time appends to the journal.
        let state = self.transport.run(
            &format!(
                "p={}; if [ -f \"$p\" ]; then pid=$(cat \"$p\"); if grep -q tunas-profiler \"/proc/$pid/cmdline\" 2>/dev/null; then kill \"$pid\" 2>/dev/null; sleep 1; fi; rm -f \"$p\"; fi; if [ -f {} ]; then echo tunas-journal; fi",
                shell_quote(&pidfile),
                shell_quote(&remote_journal)
            ),
            "checking for an interrupted run",
        )?;
        let resumed = state.lines().any(|l| l.trim() == "tunas-journal");

        let mut words: Vec<String> = vec![
            "env".into(),
            format!("ORT_DYLIB_PATH={remote_lib}"),
            remote_bin.clone(),
        ];
        match &self.command {
            RemoteCommand::Profile => {
                words.extend(["profile".into(), "--space".into(), space, "--out".into()]);
                words.push(remote_table.clone());
                words.push("--force".into());
                if resumed {
                    words.push("--resume".into());
                }
            }
            RemoteCommand::Refresh { table } => {
                if !resumed {
                    self.transport.push(table, &remote_table)?;
                }
                words.extend([
                    "refresh".into(),
                    "--space".into(),
                    space,
                    "--table".into(),
                    remote_table.clone(),
                ]);
            }
        }
        words.extend(["--device-label".into(), device_label.clone()]);
        words.extend(["--progress-lines".into(), "--quiet".into()]);
        words.extend(self.args.iter().cloned());
        if resumed {
            log(&format!(
                "{device_label}: resuming the interrupted run in {remote_journal}"
            ));
        }
        let script = format!(
            "cd {} || exit 97; sh -c {} sh {} {} 2>&1; echo \"tunas-remote-exit=$?\"; rm -f {}",
            shell_quote(&dir),
            shell_quote("echo $$ > \"$1\"; shift; exec \"$@\""),
            shell_quote(&pidfile),
            shell_words(&words),
            shell_quote(&pidfile)
        );
        let mut child = self
            .transport
            .shell(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| start_error(&self.transport.program(), e))?;
        let stderr = child.stderr.take().expect("piped");
        let prefix = format!("[{label}] ");
        let transport_errors = std::thread::scope(|scope| {
            let errors = scope.spawn(|| {
                let mut text = String::new();
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log(&format!("{prefix}{line}"));
                    text.push_str(&line);
                    text.push('\n');
                }
                text
            });
            let mut exit: Option<i32> = None;
            let mut recent: Vec<String> = Vec::new();
            let stdout = child.stdout.take().expect("piped");
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let line = line.trim_end_matches('\r').to_string();
                if let Some(code) = line.strip_prefix("tunas-remote-exit=") {
                    exit = code.trim().parse().ok();
                    continue;
                }
                log(&format!("{prefix}{line}"));
                recent.push(line);
                if recent.len() > 20 {
                    recent.remove(0);
                }
            }
            (exit, recent, errors.join().unwrap_or_default())
        });
        let status = child
            .wait()
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        let (exit, recent, transport_stderr) = transport_errors;
        let pull_journal = || {
            let local = journal_path(&self.out);
            match self.transport.pull(&remote_journal, &local) {
                Ok(()) => format!(" (a copy is in {})", local.display()),
                Err(_) => String::new(),
            }
        };
        match exit {
            Some(0) => {}
            Some(code) => {
                return Err(RemoteError::Failed {
                    device: device_label,
                    code,
                    tail: recent.join("\n"),
                    remote_journal: remote_journal.clone(),
                    pulled: pull_journal(),
                });
            }
            None => {
                let status = if transport_stderr.trim().is_empty() {
                    status
                } else {
                    format!("{status}: {}", tail(&transport_stderr, 3))
                };
                return Err(RemoteError::Dropped {
                    device: device_label,
                    status,
                    remote_journal: remote_journal.clone(),
                    pulled: pull_journal(),
                });
            }
        }
        let mut pulled = self.out.as_os_str().to_owned();
        pulled.push(".remote");
        let pulled = PathBuf::from(pulled);
        self.transport.pull(&remote_table, &pulled)?;
        let table = LatencyTable::read(&pulled).map_err(|source| RemoteError::BadTable {
            device: device_label.clone(),
            source,
        })?;
        std::fs::rename(&pulled, &self.out).map_err(|e| io_error(&self.out, e))?;
        // A journal copied here by an earlier, failed attempt is now stale.
        let _ = std::fs::remove_file(journal_path(&self.out));
        Ok(RemoteReport {
            device: device_label,
            out: self.out.clone(),
            rows: table.rows.len(),
            resumed,
            remote_dir: dir,
            skipped: false,
        })
    }
}

/// A file-name-safe form of a model name or serial.
pub fn slug(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_matches(['_', '.']).to_string();
    if s.is_empty() { "device".into() } else { s }
}

/// The outcome of one device of `--device all-adb`.
#[derive(Debug)]
pub struct FleetResult {
    /// `adb:SERIAL`.
    pub device: String,
    /// The table, or why there is none.
    pub result: Result<RemoteReport, RemoteError>,
}

/// Profiles every attached adb device in parallel, one table per device in
/// `out_dir`, named `MODEL_SERIAL.csv`; `make_run` fills in the rest of a
/// run. A failure on one device does not stop the others. A device whose
/// table is already there is skipped unless `force`, so re-running after a
/// partial failure finishes only what failed.
pub fn profile_all_adb(
    out_dir: &Path,
    force: bool,
    make_run: &(dyn Fn(Transport, PathBuf) -> RemoteRun + Sync),
    log: &(dyn Fn(&str) + Sync),
) -> Result<Vec<FleetResult>, RemoteError> {
    let adb = adb_program();
    let serials = adb_devices(&adb)?;
    if serials.is_empty() {
        return Err(RemoteError::NoAdbDevice {
            listing: String::new(),
        });
    }
    // The folder itself, not its parents: a mistyped parent is an error.
    if !out_dir.is_dir() {
        std::fs::create_dir(out_dir).map_err(|e| io_error(out_dir, e))?;
    }
    log(&format!(
        "profiling {} device(s) in parallel: {}",
        serials.len(),
        serials.join(", ")
    ));
    Ok(std::thread::scope(|scope| {
        let handles: Vec<_> = serials
            .iter()
            .map(|serial| {
                let adb = adb.clone();
                scope.spawn(move || {
                    let transport = Transport::Adb {
                        adb,
                        serial: serial.clone(),
                    };
                    let model = transport
                        .run(
                            "getprop ro.product.model 2>/dev/null; true",
                            "reading the model name",
                        )
                        .map(|m| m.trim().to_string())
                        .unwrap_or_default();
                    let name = if model.is_empty() {
                        format!("{}.csv", slug(serial))
                    } else {
                        format!("{}_{}.csv", slug(&model), slug(serial))
                    };
                    let table = out_dir.join(name);
                    if table.is_file() && !force {
                        let result = LatencyTable::read(&table)
                            .map(|t| RemoteReport {
                                device: format!("adb:{serial} ({model})"),
                                out: table.clone(),
                                rows: t.rows.len(),
                                resumed: false,
                                remote_dir: String::new(),
                                skipped: true,
                            })
                            .map_err(|source| RemoteError::BadTable {
                                device: format!("adb:{serial}"),
                                source,
                            });
                        return FleetResult {
                            device: format!("adb:{serial}"),
                            result,
                        };
                    }
                    let run = make_run(transport, table);
                    FleetResult {
                        device: format!("adb:{serial}"),
                        result: run.execute(log),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(&serials)
            .map(|(h, serial)| {
                h.join().unwrap_or_else(|_| FleetResult {
                    device: format!("adb:{serial}"),
                    result: Err(RemoteError::Io {
                        path: serial.clone(),
                        message: "the runner thread panicked".into(),
                    }),
                })
            })
            .collect()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_specs_parse() {
        let p = |s: &str| s.parse::<DeviceSpec>();
        assert_eq!(p("local").unwrap(), DeviceSpec::Local);
        assert_eq!(p("adb").unwrap(), DeviceSpec::Adb { serial: None });
        assert_eq!(
            p("adb:emulator-5554").unwrap(),
            DeviceSpec::Adb {
                serial: Some("emulator-5554".into())
            }
        );
        assert_eq!(p("all-adb").unwrap(), DeviceSpec::AllAdb);
        assert_eq!(
            p("ssh:pi@board.local:2222").unwrap(),
            DeviceSpec::Ssh(SshTarget {
                user: Some("pi".into()),
                host: "board.local".into(),
                port: Some(2222)
            })
        );
        assert_eq!(
            p("ssh:[::1]:22").unwrap(),
            DeviceSpec::Ssh(SshTarget {
                user: None,
                host: "::1".into(),
                port: Some(22)
            })
        );
        for bad in [
            "ssh:",
            "ssh:host:x",
            "ssh:-oProxyCommand=x",
            "adb:",
            "phone",
        ] {
            let e = p(bad).unwrap_err().to_string();
            assert!(e.contains("--device"), "{bad}: {e}");
        }
    }

    #[test]
    fn quoting_keeps_every_byte_and_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let evil = [
            "plain",
            "a b",
            "it's",
            "a b'; touch INJECTED; '",
            "$(touch INJECTED)",
            "`touch INJECTED`",
            "x\"y\\z",
            "new\nline",
            "",
        ];
        let script = format!("printf '%s\\0' {}", shell_words(&evil));
        let out = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let got: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .split('\0')
            .map(String::from)
            .collect();
        assert_eq!(&got[..evil.len()], &evil.map(String::from)[..]);
        assert!(!dir.path().join("INJECTED").exists());
    }

    /// The work-folder script on this machine's `sh`: what it prints for `d`.
    fn check_work_dir(d: &Path) -> String {
        let script = format!(
            "{REFUSE_FN}; d={}; {NO_LINK_CHECK}; mkdir -p -m 700 \"$d\" || exit 1; {WORK_DIR_CHECK}; echo ok",
            shell_quote(&d.display().to_string())
        );
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn work_folder_check_refuses_what_others_could_write() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("new folder; $(x)");
        assert_eq!(check_work_dir(&fresh), "ok\n");
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "created for the user alone");
        // An existing folder of the user's without group/other write is kept.
        let kept = dir.path().join("kept");
        std::fs::create_dir(&kept).unwrap();
        std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check_work_dir(&kept), "ok\n");
        for (mode, reason) in [(0o777, "(mode drwxrwxrwx"), (0o775, "(mode drwxrwxr-x")] {
            std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(mode)).unwrap();
            let out = check_work_dir(&kept);
            assert!(out.starts_with("tunas-unsafe="), "{out}");
            assert!(out.contains("can be written by other users"), "{out}");
            assert!(out.contains(reason), "{out}");
        }
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fresh, &link).unwrap();
        assert!(check_work_dir(&link).contains("\tis a symbolic link"));
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(check_work_dir(&file).contains("\tis not a folder"));
    }

    #[test]
    fn adb_device_listing() {
        let text = "List of devices attached\nR58M\tdevice\nemulator-5554\tdevice product:sdk model:Pixel\nXYZ\tunauthorized\n\n";
        assert_eq!(parse_adb_devices(text), vec!["R58M", "emulator-5554"]);
    }

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(slug("Pixel 7 Pro"), "Pixel_7_Pro");
        assert_eq!(slug("a/b'; rm"), "a_b___rm");
        assert_eq!(slug(""), "device");
    }
}
