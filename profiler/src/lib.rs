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

pub mod agreement;
pub mod catalog;
pub mod device;
pub mod export;
pub mod interleave;
pub mod kindfit;
pub use tunas_shared::output;
pub mod partial;
pub mod profile;
pub mod refresh;
pub mod remote;
pub mod report;
pub mod request;
pub mod runtime;
pub mod sentinel;
pub mod timing;
