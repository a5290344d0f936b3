//! What travels between the host and the profiler on a device: the typed
//! request, shipped as a JSON file and run there with `tunas-profiler
//! run-request FILE`, and the typed result the device writes beside it.
//! No flag is turned back into text on the way.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::request::{Pin, ProfileRequest, RefreshRequest};

/// A command for the device's profiler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum DeviceRequest {
    /// Profile a space.
    Profile(ProfileRequest),
    /// Refresh a table (pushed to the device first).
    Refresh(RefreshRequest),
}

/// How a request ended on the device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceResult {
    /// Rows in the table written (0 on failure).
    pub rows: usize,
    /// The error, with its causes, when the run failed.
    pub error: Option<String>,
}

/// The device's request or result file cannot be used.
#[derive(Debug, Error)]
pub enum ProtocolError {
    /// It cannot be read or written.
    #[error("{}: cannot read or write it", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// It does not hold what this profiler version writes.
    #[error(
        "{}: not a request or result of this profiler version (host and device must run the same build)",
        path.display()
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// What does not parse.
        #[source]
        source: serde_json::Error,
    },
}

/// The file beside `request` the device writes its result to.
pub fn result_path(request: &Path) -> PathBuf {
    let mut name = request.as_os_str().to_owned();
    name.push(".result");
    PathBuf::from(name)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ProtocolError> {
    let text = serde_json::to_string_pretty(value).expect("requests serialize");
    tunas_shared::write_atomic(path, text.as_bytes()).map_err(|source| ProtocolError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ProtocolError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProtocolError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ProtocolError::Format {
        path: path.to_path_buf(),
        source,
    })
}

impl DeviceRequest {
    /// Writes the request to `path` (atomically).
    pub(crate) fn write(&self, path: &Path) -> Result<(), ProtocolError> {
        write_json(path, self)
    }

    /// Reads a request written by [`DeviceRequest::write`].
    pub fn read(path: &Path) -> Result<Self, ProtocolError> {
        read_json(path)
    }

    /// The request as the device runs it: its files in the device's work
    /// folder (`space`, the `table` to write or refresh, the runtime `lib`),
    /// labelled `device_label`, with plain progress lines, no bar, and
    /// pinned to the big cores unless the user chose a pinning. A profile
    /// overwrites the device's copy of the table (this machine's `--out`
    /// was checked before) and resumes the journal when `resume` is set.
    pub(crate) fn on_device(
        &self,
        space: &str,
        table: &str,
        lib: &str,
        device_label: &str,
        resume: bool,
    ) -> DeviceRequest {
        let mut request = self.clone();
        let (run, timing) = match &mut request {
            DeviceRequest::Profile(p) => {
                p.space = space.to_string();
                p.out = PathBuf::from(table);
                p.force = true;
                p.resume = resume;
                (&mut p.run, &mut p.timing)
            }
            DeviceRequest::Refresh(r) => {
                r.space = Some(space.to_string());
                r.table = PathBuf::from(table);
                r.out = PathBuf::from(table);
                (&mut r.run, &mut r.timing)
            }
        };
        run.device_label = Some(device_label.to_string());
        run.progress_lines = true;
        timing.quiet = true;
        timing.ort_lib = Some(PathBuf::from(lib));
        timing.pin.get_or_insert(Pin::Big);
        request
    }

    /// The space as the user gave it: a built-in name or a local file.
    pub(crate) fn space(&self) -> Option<&str> {
        match self {
            DeviceRequest::Profile(p) => Some(&p.space),
            DeviceRequest::Refresh(r) => r.space.as_deref(),
        }
    }
}

impl DeviceResult {
    /// Writes the result beside `request` (atomically).
    pub fn write_beside(&self, request: &Path) -> Result<(), ProtocolError> {
        write_json(&result_path(request), self)
    }

    /// Reads a result written by [`DeviceResult::write_beside`].
    pub fn read(path: &Path) -> Result<Self, ProtocolError> {
        read_json(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{RunRequest, TimingRequest};

    fn profile_request() -> DeviceRequest {
        DeviceRequest::Profile(ProfileRequest {
            space: "/home/me/my space.toml".into(),
            out: "/home/me/pixel.csv".into(),
            resume: false,
            force: false,
            max_keys: Some(60),
            run: RunRequest {
                seed: 5,
                ..RunRequest::default()
            },
            timing: TimingRequest {
                threads: Some(2),
                ..TimingRequest::default()
            },
        })
    }

    #[test]
    fn a_request_travels_as_a_file_and_moves_to_the_device() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.csv.request.json");
        let on_device = profile_request().on_device(
            "space.toml",
            "pixel.csv",
            "libonnxruntime.so",
            "adb:X",
            true,
        );
        on_device.write(&file).unwrap();
        let back = DeviceRequest::read(&file).unwrap();
        assert_eq!(back, on_device);
        let DeviceRequest::Profile(p) = back else {
            panic!("not a profile request: {back:?}")
        };
        assert_eq!(
            (p.space.as_str(), p.out.to_str(), p.force, p.resume),
            ("space.toml", Some("pixel.csv"), true, true)
        );
        assert_eq!(
            p.timing.pin,
            Some(Pin::Big),
            "devices pin to big by default"
        );
        assert_eq!(p.timing.threads, Some(2), "the user's settings are kept");
        assert_eq!(p.max_keys, Some(60));
        assert_eq!(p.run.device_label.as_deref(), Some("adb:X"));
        assert!(p.run.progress_lines && p.timing.quiet);
        let result = DeviceResult {
            rows: 0,
            error: Some("boom: because".into()),
        };
        result.write_beside(&file).unwrap();
        assert_eq!(DeviceResult::read(&result_path(&file)).unwrap(), result);
    }

    #[test]
    fn a_file_of_another_version_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.json");
        std::fs::write(&file, r#"{"command":"profile","space":"tiny28"}"#).unwrap();
        let e = DeviceRequest::read(&file).unwrap_err();
        assert!(matches!(e, ProtocolError::Format { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with(&file.display().to_string()),
            "{e}"
        );
    }
}
