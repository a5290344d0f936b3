//! `--device` values: where `profile` runs.

use std::str::FromStr;

use super::error::RemoteError;

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
    pub(crate) fn destination(&self) -> String {
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
            assert!(e.starts_with(&format!("device '{bad}': ")), "{bad}: {e}");
        }
    }
}
