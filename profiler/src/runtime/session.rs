//! Timing sessions: one model, its input allocated and filled once.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use ort::ep::{self, ArbitrarilyConfigurableExecutionProvider};
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::value::Tensor;
use rand::{Rng, SeedableRng};

use super::error::{RuntimeError, without_recovery};
use super::load::Runtime;
use super::provider::ExecutionProvider;

/// How a timing session is set up.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionConfig {
    /// Intra-op threads (inter-op is always 1, execution sequential, graph
    /// optimisation at the highest level).
    pub intra_threads: usize,
    /// Where the graph runs. A provider that cannot be registered is an
    /// error, never a silent fallback to CPU.
    pub provider: ExecutionProvider,
    /// When set, ONNX Runtime profiles every node; the file is written as
    /// `<prefix>_<date>.json` by [`ModelSession::end_profiling`].
    pub profile_prefix: Option<PathBuf>,
    /// Seed of the session's fixed random input.
    pub input_seed: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            intra_threads: 1,
            provider: ExecutionProvider::Cpu,
            profile_prefix: None,
            input_seed: 0,
        }
    }
}

/// A session over one model with its input tensor allocated and filled once
/// (uniform random in [−1, 1), fixed by [`SessionConfig::input_seed`]).
/// A symbolic input axis, such as the dynamic batch of an exported network,
/// is given size 1 in that input (and in [`ModelSession::input_shape`]).
#[derive(Debug)]
pub struct ModelSession {
    session: Session,
    input: Tensor<f32>,
    input_shape: Vec<i64>,
}

fn session_error(
    what: &'static str,
) -> impl Fn(ort::Error<ort::session::builder::SessionBuilder>) -> RuntimeError {
    move |e| RuntimeError::Session {
        what,
        source: without_recovery(e),
    }
}

impl ModelSession {
    /// Creates a session for the serialised ONNX `model`.
    pub fn new(
        runtime: &Runtime,
        model: &[u8],
        config: &SessionConfig,
    ) -> Result<Self, RuntimeError> {
        let mut builder = timing_builder(runtime, config)?;
        let session = builder
            .commit_from_memory(model)
            .map_err(|e| RuntimeError::Session {
                what: "loading the model",
                source: without_recovery(e),
            })?;
        let input_shape = run_shape(&session)?;
        let input = random_input(&input_shape, config.input_seed)?;
        Ok(ModelSession {
            session,
            input,
            input_shape,
        })
    }

    /// Shape of the model's input.
    pub fn input_shape(&self) -> &[i64] {
        &self.input_shape
    }

    /// One inference on the fixed input; the outputs are dropped.
    pub(crate) fn run(&mut self) -> Result<(), RuntimeError> {
        self.session
            .run(ort::inputs![&self.input])
            .map(drop)
            .map_err(|e| RuntimeError::Run {
                source: without_recovery(e),
            })
    }

    /// One inference; returns the first output's shape and values.
    pub fn run_output(&mut self) -> Result<(Vec<i64>, Vec<f32>), RuntimeError> {
        let run_error = |e: ort::Error| RuntimeError::Run {
            source: without_recovery(e),
        };
        let outputs = self
            .session
            .run(ort::inputs![&self.input])
            .map_err(run_error)?;
        let (shape, values) = outputs[0].try_extract_tensor::<f32>().map_err(run_error)?;
        Ok((shape.to_vec(), values.to_vec()))
    }

    /// One inference on the given input values (the session's input shape,
    /// row-major); returns the first output's shape and values. Used to check
    /// an exported network's accuracy on real data.
    pub fn run_with(&mut self, values: &[f32]) -> Result<(Vec<i64>, Vec<f32>), RuntimeError> {
        let run_error = |e: ort::Error| RuntimeError::Run {
            source: without_recovery(e),
        };
        let shape: Vec<i64> = self.input_shape.clone();
        let expected: i64 = shape.iter().product();
        if values.len() as i64 != expected {
            return Err(RuntimeError::Run {
                source: format!(
                    "input has {} values, the model's input {:?} needs {expected}",
                    values.len(),
                    shape
                )
                .into(),
            });
        }
        let tensor = Tensor::from_array((shape, values.to_vec())).map_err(run_error)?;
        let outputs = self.session.run(ort::inputs![&tensor]).map_err(run_error)?;
        let (shape, out) = outputs[0].try_extract_tensor::<f32>().map_err(run_error)?;
        Ok((shape.to_vec(), out.to_vec()))
    }

    /// One inference on `values` of shape `shape` (row-major), for a model
    /// with a symbolic axis (e.g. its batch) run at another size than the
    /// session's [`input_shape`](Self::input_shape); returns the first
    /// output's shape and values.
    pub fn run_shaped(
        &mut self,
        shape: &[i64],
        values: &[f32],
    ) -> Result<(Vec<i64>, Vec<f32>), RuntimeError> {
        let run_error = |e: ort::Error| RuntimeError::Run {
            source: without_recovery(e),
        };
        let expected: i64 = shape.iter().product();
        if values.len() as i64 != expected {
            return Err(RuntimeError::Run {
                source: format!(
                    "input has {} values, the shape {shape:?} needs {expected}",
                    values.len()
                )
                .into(),
            });
        }
        let tensor = Tensor::from_array((shape.to_vec(), values.to_vec())).map_err(run_error)?;
        let outputs = self.session.run(ort::inputs![&tensor]).map_err(run_error)?;
        let (shape, out) = outputs[0].try_extract_tensor::<f32>().map_err(run_error)?;
        Ok((shape.to_vec(), out.to_vec()))
    }

    /// Ends profiling and returns the path of the JSON profile ONNX Runtime
    /// wrote. Only meaningful with [`SessionConfig::profile_prefix`] set.
    pub(crate) fn end_profiling(&mut self) -> Result<PathBuf, RuntimeError> {
        self.session
            .end_profiling()
            .map(PathBuf::from)
            .map_err(|e| RuntimeError::Session {
                what: "ending profiling",
                source: without_recovery(e),
            })
    }
}

/// A session builder set up for timing: `config`'s intra-op threads,
/// one inter-op thread and sequential execution, the highest graph
/// optimisation, its provider (registered or an error) and profiling.
fn timing_builder(
    runtime: &Runtime,
    config: &SessionConfig,
) -> Result<SessionBuilder, RuntimeError> {
    let threads = config.intra_threads.max(1);
    let mut builder = Session::builder(&runtime.environment)
        .map_err(|e| RuntimeError::Session {
            what: "session options",
            source: without_recovery(e),
        })?
        .with_intra_threads(threads)
        .map_err(session_error("intra-op threads"))?
        .with_inter_threads(1)
        .map_err(session_error("inter-op threads"))?
        .with_parallel_execution(false)
        .map_err(session_error("sequential execution"))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(session_error("graph optimisation level"))?;
    if let Some(dispatch) = provider_dispatch(config.provider, threads) {
        builder = builder
            .with_execution_providers([dispatch.error_on_failure()])
            .map_err(|e| RuntimeError::Provider {
                provider: config.provider,
                source: without_recovery(e),
                available: runtime
                    .available_providers()
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
    }
    if let Some(prefix) = &config.profile_prefix {
        builder = builder
            .with_profiling(prefix)
            .map_err(session_error("profiling"))?;
    }
    Ok(builder)
}

/// How `provider` is registered; `None` for ONNX Runtime's own CPU kernels.
fn provider_dispatch(
    provider: ExecutionProvider,
    threads: usize,
) -> Option<ep::ExecutionProviderDispatch> {
    match provider {
        ExecutionProvider::Cpu => None,
        ExecutionProvider::Xnnpack => Some(
            ep::XNNPACK::default()
                .with_intra_op_num_threads(NonZeroUsize::new(threads).expect("threads ≥ 1"))
                .build(),
        ),
        ExecutionProvider::Nnapi => Some(ep::NNAPI::default().build()),
        ExecutionProvider::Qnn => Some(
            ep::QNN::default()
                .with_arbitrary_config("backend_path", "libQnnHtp.so")
                .build(),
        ),
    }
}

/// The shape the session's one input is run at: as declared, with a
/// symbolic axis (reported as -1), such as the batch of an exported
/// network, at 1.
fn run_shape(session: &Session) -> Result<Vec<i64>, RuntimeError> {
    let declared: Vec<i64> = session
        .inputs()
        .first()
        .and_then(|i| i.dtype().tensor_shape())
        .map(|s| s.to_vec())
        .ok_or_else(|| RuntimeError::Session {
            what: "reading the input shape",
            source: "the model has no tensor input".into(),
        })?;
    if session.inputs().len() != 1 || declared.contains(&0) {
        return Err(RuntimeError::Session {
            what: "reading the input shape",
            source: format!(
                "expected one input without empty axes, found {} inputs, the first of shape {declared:?}",
                session.inputs().len()
            ).into(),
        });
    }
    Ok(declared.iter().map(|&d| d.max(1)).collect())
}

/// An input of `shape`, uniform random in [−1, 1) from `seed`.
fn random_input(shape: &[i64], seed: u64) -> Result<Tensor<f32>, RuntimeError> {
    let len = shape.iter().product::<i64>() as usize;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let values: Vec<f32> = (0..len).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_array((shape.to_vec(), values)).map_err(|e| RuntimeError::Session {
        what: "allocating the input",
        source: without_recovery(e),
    })
}
