//! `profile`, `measure` and `validate`: the latency table and the proof that
//! it predicts whole networks.
//!
//! # Method
//!
//! Ops are timed *in context*: random networks of the space are built as
//! ONNX models and run with ONNX Runtime's per-node profiling on, and each
//! op's time is the summed time of its own nodes (attributed by node-name
//! scope: the runtime keeps the op's scope in the names of fused nodes),
//! each op in two different networks with their runs pooled.
//! So an op is timed with its input coming from the op before it, in the
//! layout the runtime keeps between ops, without the fixed cost of a
//! `run()` call or the layout reorders at a model's edges, which a network
//! pays once. Networks are chosen greedily (the best of several random
//! candidates) to cover the keys not yet measured; a key no network reached
//! within the budget is timed as a one-op model.
//!
//! Then other random networks (calibration networks, their own seed) are
//! timed end to end without profiling, and
//! `measured ≈ c0 + α·Σ ops + c1·Σ nodes` is fitted by least squares (the
//! executor's per-node cost and the profiler's own per-node cost scale with
//! the number of graph nodes an op has): `c0` becomes the table's
//! per-inference constant (`overhead_us`), and each row's statistics are
//! `α·t + c1·nodes(op)`, so the table's plain sum predicts a whole network.
//! `validate` then checks that on yet other networks.

mod calibration;
mod compare;
mod error;
mod measure;
mod resume;
mod run;
mod settings;
mod validate;
mod watch;

pub use calibration::fit_calibration;
pub use compare::{EstimateAgreement, NetworkEstimates, TableComparison, compare_tables};
pub use error::ProfileError;
pub use measure::{measure_architecture, op_node_count, time_model};
pub use run::{Plan, profile, run_plan};
pub use settings::{ProfileSettings, TimingSettings, new_provenance};
pub use validate::{ValidatedNetwork, ValidationPlan, ValidationReport, validate, validation_text};
