//! # tunas-profiler
//!
//! Runs on the target device. For every op a search space can contain it
//! builds a one-op ONNX model, times it through ONNX Runtime, and writes a
//! latency table; it also times whole networks to check that the table's
//! sums predict them.
//!
//! ```
//! let listing = tunas_profiler::catalog::builtin_summaries();
//! assert_eq!(listing[0].name, "tiny28");
//! assert_eq!(listing[0].decisions, 30);
//! ```

// The public surface: what the binary, the integration tests and other
// tools use. Everything else in these modules is `pub(crate)`.
pub mod agreement;
pub mod catalog;
pub mod device;
pub mod export;
pub use tunas_shared::output;
pub mod profile;
pub mod refresh;
pub mod remote;
pub mod report;
pub mod request;
pub mod runtime;
pub mod sentinel;
pub mod timing;

// Internal: the order of a run's measurements, the per-kind fit, the
// measurement journal.
mod interleave;
mod kindfit;
mod partial;

pub use profile::{ProfileError, ProfileSettings, TimingSettings};
pub use refresh::RefreshError;
pub use remote::{DeviceRequest, DeviceResult, DeviceSpec, RemoteError, RemoteRun};
pub use request::{
    MeasureRequest, Pin, ProfileRequest, RefreshRequest, RunRequest, TimingRequest, ValidateRequest,
};
pub use runtime::{ModelSession, Runtime, RuntimeError};
