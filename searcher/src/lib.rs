//! # tunas-searcher
//!
//! Trains a weight-sharing supernet jointly with a REINFORCE controller
//! (TuNAS) and picks the most likely architecture, using a latency table
//! written by tunas-profiler to estimate each sampled network's cost.
//!
//! The front door is [`search::search`] (a search run), [`train_architecture`]
//! (stand-alone training of one architecture), [`export_app_onnx`] and the
//! weight files of [`weights`]; their request, report and error types are
//! re-exported here. The supernet, its layers and the optimisers are public
//! for tests and benchmarks of their own; the rest is `pub(crate)`.
//!
//! ```
//! use tunas_shared::{Architecture, builtin_space};
//! let space = builtin_space("tiny28").unwrap();
//! let arch = Architecture::largest(&space);
//! assert!(tunas_shared::architecture_flops(&space, &arch) > 1_000_000);
//! ```

pub mod bench;
pub mod benchmark;
pub mod controller;
pub mod data;
pub mod estimate;
pub mod export;
pub mod heap;
pub mod layers;
pub mod optim;
pub mod search;
pub mod supernet;
pub mod sweep;
pub mod train;
pub mod weights;

pub use bench::{BenchConfig, BenchError, BenchResult};
pub use benchmark::{BenchmarkError, BenchmarkReport, BenchmarkSettings};
pub use data::{DataError, Dataset, LoadError, TrainTest, load_any};
pub use estimate::CostEstimate;
pub use export::{ExportError, export_app_onnx};
pub use search::{SearchConfig, SearchError, SearchResult};
pub use supernet::{BnMode, PathPlan, Supernet};
pub use sweep::{SweepReport, SweepSettings};
pub use train::{TrainConfig, TrainError, TrainReport, train_architecture};
pub use weights::{WeightsError, load_supernet, save_supernet};
