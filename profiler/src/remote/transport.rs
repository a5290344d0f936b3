//! How commands and files reach one device: `adb` or `ssh`. Files travel by
//! `adb push`/`adb pull` (no shell involved), or over ssh as
//! `cat > 'PATH'` / `cat 'PATH'`, which needs nothing but `cat` on the board.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::{RemoteError, io_error, start_error, tail};
use super::quote::shell_quote;
use super::spec::{DeviceSpec, SshTarget};

/// Environment variable naming the adb executable.
pub const ADB_ENV: &str = "ADB";
/// Environment variable with extra ssh arguments (split on whitespace).
pub const SSH_OPTS_ENV: &str = "TUNAS_SSH_OPTS";

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
    pub(crate) fn label(&self) -> String {
        match self {
            Transport::Adb { serial, .. } => format!("adb:{serial}"),
            Transport::Ssh { target, .. } => match target.port {
                Some(p) => format!("ssh:{}:{p}", target.destination()),
                None => format!("ssh:{}", target.destination()),
            },
        }
    }

    pub(super) fn is_android(&self) -> bool {
        matches!(self, Transport::Adb { .. })
    }

    /// A command that runs `script` in the device's shell.
    pub(crate) fn shell(&self, script: &str) -> Command {
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

    pub(super) fn program(&self) -> String {
        match self {
            Transport::Adb { adb, .. } => adb.to_string_lossy().into_owned(),
            Transport::Ssh { .. } => "ssh".into(),
        }
    }

    /// Runs `script` on the device and returns its stdout; a non-zero exit
    /// is an error with the output.
    pub(crate) fn run(&self, script: &str, what: &str) -> Result<String, RemoteError> {
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
    pub(crate) fn push(&self, local: &Path, remote: &str) -> Result<(), RemoteError> {
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
    pub(crate) fn pull(&self, remote: &str, local: &Path) -> Result<(), RemoteError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adb_device_listing() {
        let text = "List of devices attached\nR58M\tdevice\nemulator-5554\tdevice product:sdk model:Pixel\nXYZ\tunauthorized\n\n";
        assert_eq!(parse_adb_devices(text), vec!["R58M", "emulator-5554"]);
    }
}
