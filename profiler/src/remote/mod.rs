//! Device runners: profile a phone over `adb` or a Linux board over `ssh`.
//!
//! The profiler pushes a device build of itself and `libonnxruntime.so` to
//! a work folder on the device, ships the typed request there as a JSON
//! file and runs it (`tunas-profiler run-request FILE`), streams the
//! device's progress lines to stderr, and reads back the typed result and
//! the table. The device keeps the measurement journal
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

mod artifacts;
mod error;
mod fleet;
mod protocol;
mod quote;
mod run;
mod spec;
mod transport;
mod workdir;

pub use error::RemoteError;
pub use fleet::{FleetResult, profile_all_adb, slug};
pub use protocol::{DeviceRequest, DeviceResult, ProtocolError, result_path};
pub use quote::{shell_quote, shell_words};
pub use run::{RemoteReport, RemoteRun};
pub use spec::{DeviceSpec, SshTarget};
pub use transport::{
    ADB_ENV, SSH_OPTS_ENV, Transport, adb_devices, adb_program, parse_adb_devices,
};
