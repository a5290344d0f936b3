//! Execution providers: where ONNX Runtime executes the graph.

use std::fmt;
use std::str::FromStr;

use super::error::RuntimeError;

/// Where ONNX Runtime executes the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum ExecutionProvider {
    /// ONNX Runtime's own CPU kernels.
    #[default]
    Cpu,
    /// XNNPACK (ARM and x86 CPUs).
    Xnnpack,
    /// Android NNAPI.
    Nnapi,
    /// Qualcomm QNN (HTP backend).
    Qnn,
}

impl ExecutionProvider {
    /// Every provider.
    pub(crate) const ALL: [ExecutionProvider; 4] = [
        ExecutionProvider::Cpu,
        ExecutionProvider::Xnnpack,
        ExecutionProvider::Nnapi,
        ExecutionProvider::Qnn,
    ];

    /// Lower-case name as given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ExecutionProvider::Cpu => "cpu",
            ExecutionProvider::Xnnpack => "xnnpack",
            ExecutionProvider::Nnapi => "nnapi",
            ExecutionProvider::Qnn => "qnn",
        }
    }
}

impl fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ExecutionProvider {
    type Err = RuntimeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExecutionProvider::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| RuntimeError::UnknownProvider {
                name: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_parse() {
        for p in ExecutionProvider::ALL {
            assert_eq!(p.name().parse::<ExecutionProvider>().unwrap(), p);
        }
        assert_eq!(
            "XNNPACK".parse::<ExecutionProvider>().unwrap(),
            ExecutionProvider::Xnnpack
        );
        let err = "cuda".parse::<ExecutionProvider>().unwrap_err();
        assert!(err.to_string().contains("cpu, xnnpack, nnapi or qnn"));
    }
}
