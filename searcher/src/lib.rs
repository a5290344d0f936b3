//! # tunas-searcher
//!
//! Trains a weight-sharing supernet jointly with a REINFORCE controller
//! (TuNAS) and picks the most likely architecture, using a latency table
//! written by tunas-profiler to estimate each sampled network's cost.
//!
//! The front door is [`search::search`] (a search run), [`train_architecture`]
//! (stand-alone training of one architecture), [`export_app_onnx`] and the
//! weight files of [`weights`]; the supernet, its layers and the optimisers
//! are public for tests and benchmarks of their own.
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

pub use data::{Dataset, TrainTest, load_any};
pub use export::export_app_onnx;
pub use search::{SearchConfig, SearchResult};
pub use supernet::{BnMode, PathPlan, Supernet};
pub use train::{TrainConfig, train_architecture};
pub use weights::{load_supernet, save_supernet};
