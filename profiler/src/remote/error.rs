//! What can stop a remote run, and the helpers that build those errors.

use std::path::Path;

use thiserror::Error;

/// Anything that can stop a remote run.
#[derive(Debug, Error)]
pub enum RemoteError {
    /// `--device` could not be parsed.
    #[error(
        "device '{spec}': {message} (expected local, adb, adb:SERIAL, all-adb or ssh:[USER@]HOST[:PORT])"
    )]
    BadDevice {
        /// What was given.
        spec: String,
        /// What is wrong.
        message: String,
    },
    /// adb or ssh could not be started.
    #[error("cannot run {tool} ({reason}); {advice}")]
    ToolMissing {
        /// The program.
        tool: String,
        /// What the system said (shown inline: the advice follows it).
        reason: std::io::Error,
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
        "adb lists {} devices ({}); name one as adb:SERIAL, or take them all with all-adb",
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
        "{device} is {arch} and no profiler build for it was given; {advice}, and give that build as the device binary"
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
        "{device} is {arch} and no libonnxruntime.so for it was given; {advice}, and give that library as the device's runtime"
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
    /// The profiler on the device ended with an error.
    #[error(
        "{device}: the profiler on the device failed: {error}\n{tail}\nthe rows measured so far are kept on the device in {remote_journal}{pulled}"
    )]
    Failed {
        /// Device label.
        device: String,
        /// The device's error, with its causes.
        error: String,
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
    /// The request or result file of a run cannot be used.
    #[error(transparent)]
    Protocol(#[from] super::protocol::ProtocolError),
    /// A local file could not be read or written.
    #[error("{path}: cannot read or write it")]
    Io {
        /// The path.
        path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The thread running one device of a fleet panicked (a bug).
    #[error("{device}: the runner thread panicked (a bug: please report it)")]
    RunnerPanicked {
        /// Device label.
        device: String,
    },
    /// The pulled table does not read back.
    #[error("{device}: the table pulled from the device does not read back")]
    BadTable {
        /// Device label.
        device: String,
        /// The reader's error.
        source: tunas_shared::TableError,
    },
}

pub(super) fn io_error(path: &Path, source: std::io::Error) -> RemoteError {
    RemoteError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(super) fn start_error(tool: &str, e: std::io::Error) -> RemoteError {
    let advice = if tool.contains("adb") {
        "install Debian's `adb` package (apt-get install adb) or point $ADB at the Android SDK's platform-tools/adb"
    } else {
        "install the OpenSSH client (apt-get install openssh-client)"
    };
    RemoteError::ToolMissing {
        tool: tool.to_string(),
        reason: e,
        advice: advice.into(),
    }
}

/// The last `lines` lines of `text`.
pub(super) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
