//! ONNX Runtime: finding the shared library, loading it once, sessions
//! configured for timing, and per-node profiles.
//!
//! The `ort` crate is built with `load-dynamic`: nothing is linked at build
//! time and nothing is downloaded. [`locate_runtime`] finds a
//! `libonnxruntime` on this machine and [`init_runtime`] loads it for the
//! rest of the process.
//!
//! ```no_run
//! use tunas_profiler::runtime::{ModelSession, SessionConfig, init_runtime, locate_runtime};
//! use tunas_shared::onnx::{RandomWeights, op_model};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = init_runtime(&locate_runtime(None)?)?;
//! eprintln!("ONNX Runtime {} from {}", runtime.version(), runtime.library().path.display());
//! let space = tunas_shared::builtin_space("tiny28")?;
//! let key = tunas_shared::space_op_keys(&space, 1).into_iter().next().unwrap();
//! let model = op_model(&key, &mut RandomWeights::new(0))?;
//! let mut session = ModelSession::new(runtime, &model, &SessionConfig::default())?;
//! let (shape, _values) = session.run_output()?;
//! assert_eq!(shape[0], 1);
//! # Ok(()) }
//! ```

mod discovery;
mod error;
mod load;
mod node_profile;
mod provider;
mod session;

pub use discovery::{LibrarySource, RuntimeLibrary, locate_runtime};
pub use error::RuntimeError;
pub use load::{Runtime, init_runtime, loaded_runtime};
pub use node_profile::{NodeProfile, NodeTiming, parse_profile, read_profile};
pub use provider::ExecutionProvider;
pub use session::{ModelSession, SessionConfig};

/// ONNX Runtime release that `cargo xtask setup` provisions and that the
/// `ort` crate's API level (1.31) needs at least: `onnxruntime.version` at
/// the workspace root, the one place it is written.
pub(crate) const ORT_RELEASE: &str = include_str!("../../../onnxruntime.version").trim_ascii();

/// Environment variable naming the library (also read by `ort` itself).
pub(crate) const ORT_DYLIB_ENV: &str = "ORT_DYLIB_PATH";

#[cfg(test)]
pub(crate) mod tests {
    use super::discovery::{is_runtime_library_name, version_order};
    use super::load::{version_from_build_info, version_from_file_name};
    use super::*;
    use std::cmp::Ordering;
    use std::path::Path;
    use tunas_shared::onnx::{RandomWeights, network_model, op_model};
    use tunas_shared::{Architecture, OpKind, architecture_ops, builtin_space};

    /// The runtime, or `None` (after printing why the test is skipped).
    pub(crate) fn test_runtime() -> Option<&'static Runtime> {
        match locate_runtime(None) {
            Ok(lib) => Some(init_runtime(&lib).expect("the located library loads")),
            Err(e) => {
                eprintln!("skipped: no ONNX Runtime library ({e})");
                None
            }
        }
    }

    #[test]
    fn library_names_and_versions() {
        assert!(is_runtime_library_name("libonnxruntime.so.1.31.1"));
        assert!(is_runtime_library_name("libonnxruntime.so"));
        assert!(is_runtime_library_name("libonnxruntime.1.31.1.dylib"));
        assert!(!is_runtime_library_name(
            "libonnxruntime_providers_shared.so"
        ));
        assert!(!is_runtime_library_name("libonnxruntime4j_jni.so"));
        assert_eq!(
            version_order("libonnxruntime.so.1.9.0", "libonnxruntime.so.1.31.1"),
            Ordering::Less
        );
        assert_eq!(
            version_from_build_info(
                "ORT Build Info: git-branch=rel-1.31.1, git-commit-id=abc, build type=Release"
            )
            .as_deref(),
            Some("1.31.1")
        );
        assert_eq!(
            version_from_build_info("ORT Build Info: git-branch=main, x"),
            None
        );
        assert_eq!(
            version_from_file_name(Path::new("/x/libonnxruntime.so.1.31.1")).as_deref(),
            Some("1.31.1")
        );
        assert_eq!(
            version_from_file_name(Path::new("/x/libonnxruntime.so")),
            None
        );
    }

    #[test]
    fn one_op_models_of_tiny28_run_with_the_right_output_shape() {
        let Some(rt) = test_runtime() else { return };
        eprintln!(
            "ONNX Runtime {} ({})",
            rt.version(),
            rt.library().path.display()
        );
        let space = builtin_space("tiny28").unwrap();
        let arch = Architecture::largest(&space);
        for batch in [1, 2] {
            for key in architecture_ops(&space, &arch, batch) {
                if !matches!(
                    key.op,
                    OpKind::Stem | OpKind::Bottleneck | OpKind::HeadConv | OpKind::Classifier
                ) {
                    continue;
                }
                let model = op_model(&key, &mut RandomWeights::new(3)).unwrap();
                let mut session = ModelSession::new(rt, &model, &SessionConfig::default()).unwrap();
                assert_eq!(
                    session.input_shape(),
                    tunas_shared::onnx::network::input_dims(&key)
                );
                let (shape, values) = session.run_output().unwrap();
                assert_eq!(
                    shape,
                    tunas_shared::onnx::network::output_dims(&key),
                    "{key}"
                );
                assert!(values.iter().all(|v| v.is_finite()), "{key}");
            }
        }
    }

    #[test]
    fn a_network_runs_and_profiles_per_node() {
        let Some(rt) = test_runtime() else { return };
        let space = builtin_space("tiny28").unwrap();
        let arch = Architecture::largest(&space);
        let model = network_model(&space, &arch, &mut RandomWeights::new(1), 1).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = SessionConfig {
            profile_prefix: Some(dir.path().join("tiny28")),
            ..SessionConfig::default()
        };
        let mut session = ModelSession::new(rt, &model, &config).unwrap();
        let (shape, logits) = session.run_output().unwrap();
        assert_eq!(shape, [1, 10]);
        assert!(
            logits.iter().all(|v| v.is_finite() && v.abs() < 1e4),
            "{logits:?}"
        );
        for _ in 0..4 {
            session.run().unwrap();
        }
        let path = session.end_profiling().unwrap();
        let profile = read_profile(&path, 1).unwrap();
        assert_eq!(profile.runs, 4);
        assert!(profile.scope_us("stem/") > 0.0, "{profile:?}");
        assert!(profile.scope_us("stage2/layer1/") > 0.0, "{profile:?}");
        assert!(profile.scope_us("classifier/") > 0.0, "{profile:?}");
        let nodes: f64 = profile.nodes.iter().map(|n| n.mean_us).sum();
        assert!(nodes <= profile.mean_run_us * 1.01, "{profile:?}");
        let scopes: Vec<String> = tunas_shared::onnx::network_sites(&space, &arch, 1)
            .into_iter()
            .map(|s| s.scope)
            .collect();
        let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let (per_scope, unattributed) = profile.attribute(&scopes);
        assert!(per_scope.iter().all(|&t| t > 0.0), "{per_scope:?}");
        let total = per_scope.iter().sum::<f64>() + unattributed;
        assert!((total - nodes).abs() < 1e-6 * nodes.max(1.0));
    }

    #[test]
    fn a_network_with_a_symbolic_batch_runs_at_1_and_at_other_sizes() {
        let Some(rt) = test_runtime() else { return };
        let space = builtin_space("tiny28").unwrap();
        let arch = Architecture::largest(&space);
        let options = tunas_shared::onnx::NetworkOptions {
            batch: tunas_shared::onnx::BatchDim::Dynamic,
            ..tunas_shared::onnx::NetworkOptions::fixed(1)
        };
        let model = tunas_shared::onnx::network_model_with(
            &space,
            &arch,
            &mut RandomWeights::new(1),
            &options,
        )
        .unwrap();
        let mut session = ModelSession::new(rt, &model, &SessionConfig::default()).unwrap();
        assert_eq!(session.input_shape(), [1, 1, 28, 28]);
        assert_eq!(session.run_output().unwrap().0, [1, 10]);
        let (shape, _) = session
            .run_shaped(&[3, 1, 28, 28], &vec![0.5; 3 * 28 * 28])
            .unwrap();
        assert_eq!(shape, [3, 10]);
        assert!(session.run_shaped(&[3, 1, 28, 28], &[0.5; 10]).is_err());
    }

    #[test]
    fn a_provider_that_cannot_register_is_an_error() {
        let Some(rt) = test_runtime() else { return };
        let available = rt.available_providers();
        let key = architecture_ops(
            &builtin_space("tiny28").unwrap(),
            &Architecture::largest(&builtin_space("tiny28").unwrap()),
            1,
        )[0];
        let model = op_model(&key, &mut RandomWeights::new(0)).unwrap();
        eprintln!("providers in this build: {available:?}");
        for provider in [
            ExecutionProvider::Xnnpack,
            ExecutionProvider::Nnapi,
            ExecutionProvider::Qnn,
        ] {
            if available.contains(&provider) {
                continue;
            }
            let config = SessionConfig {
                provider,
                ..SessionConfig::default()
            };
            let err = ModelSession::new(rt, &model, &config).unwrap_err();
            assert!(
                matches!(err, RuntimeError::Provider { .. }),
                "{provider}: {err}"
            );
            assert!(err.to_string().contains(provider.name()), "{err}");
            eprintln!("{err}");
        }
    }
}
