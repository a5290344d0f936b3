//! The run folder: its files, what a run was started with, and the
//! result it ends with.

use super::*;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What a run was started with besides its config: what `--resume DIR`
/// needs to continue it from the folder alone (`inputs.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInputs {
    /// The latency table's path, if any.
    pub table: Option<String>,
    /// Content digest of the table file ([`tunas_shared::content_digest`]).
    pub table_digest: Option<String>,
    /// Further devices' tables: (path, content digest), in order.
    #[serde(default)]
    pub more_tables: Vec<(String, String)>,
    /// The image folder.
    pub data: String,
    /// How it is read (`auto`, `folder`, `idx`, `cifar10`).
    #[serde(default = "auto_format")]
    pub data_format: String,
    /// Whether undecodable images were skipped.
    #[serde(default)]
    pub skip_bad_images: bool,
    /// Class names in label order.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Training images used (the first N).
    pub limit_train: Option<usize>,
    /// Held-out images asked for.
    pub holdout: Option<usize>,
    /// Serial reductions (bit-identical resumes).
    pub deterministic: bool,
}

fn auto_format() -> String {
    "auto".into()
}

impl RunInputs {
    /// Every table of the run, (path, digest), first device first.
    pub fn tables(&self) -> Vec<(String, String)> {
        let first = self
            .table
            .clone()
            .zip(self.table_digest.clone())
            .into_iter();
        first.chain(self.more_tables.iter().cloned()).collect()
    }

    /// Reads `inputs.json` of a run folder.
    pub fn read(files: &RunFiles) -> Result<Self, SearchError> {
        let path = files.inputs();
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        serde_json::from_str(&text).map_err(|source| SearchError::BadJson {
            path: path.clone(),
            what: "a run's inputs",
            source,
        })
    }

    /// Writes `inputs.json` atomically.
    pub fn write(&self, files: &RunFiles) -> Result<(), SearchError> {
        let path = files.inputs();
        let json = serde_json::to_string_pretty(self).expect("serialises") + "\n";
        tunas_shared::write_atomic(&path, json.as_bytes()).map_err(io_err(&path))
    }
}

/// Files of a run folder.
pub struct RunFiles {
    /// The folder.
    pub dir: PathBuf,
}

impl RunFiles {
    /// The space, as TOML.
    pub fn space(&self) -> PathBuf {
        self.dir.join("space.toml")
    }
    /// What the run was started with besides its config.
    pub(crate) fn inputs(&self) -> PathBuf {
        self.dir.join("inputs.json")
    }
    /// Per-step CSV log.
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("steps.csv")
    }
    /// Checkpoint state (JSON).
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint.json")
    }
    /// Checkpoint weights.
    pub(crate) fn checkpoint_weights(&self) -> PathBuf {
        self.dir.join("checkpoint.weights")
    }
    /// The shared weights as they were at the end of the warm-up.
    pub(crate) fn warmup_weights(&self) -> PathBuf {
        self.dir.join("warmup.weights")
    }
    /// Final weights.
    pub fn weights(&self) -> PathBuf {
        self.dir.join("supernet.weights")
    }
    /// Final result.
    pub fn result(&self) -> PathBuf {
        self.dir.join("result.json")
    }
}

/// The outcome of a search.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchResult {
    /// Space name.
    pub(crate) space: String,
    /// Space hash.
    pub(crate) space_hash: String,
    /// Final architecture (argmax of every decision).
    pub arch: String,
    /// Its readable form.
    pub readable: String,
    /// Estimated latency from the table (ms), if a table was given.
    pub est_latency_ms: Option<f64>,
    /// Target in the resource's unit.
    pub(crate) target: f64,
    /// Target latency (ms), when the resource is latency.
    pub target_ms: Option<f64>,
    /// The resource.
    pub(crate) resource: Resource,
    /// Multiply-adds.
    pub flops: u64,
    /// Parameters.
    pub params: u64,
    /// Validation accuracy of the final architecture (over the held-out
    /// images, shared weights, batch statistics).
    pub validation_accuracy: f64,
    /// Its reward.
    pub(crate) final_reward: f64,
    /// Seed.
    pub(crate) seed: u64,
    /// Steps run.
    pub(crate) steps: usize,
    /// Wall time of the search (this process), s.
    pub seconds: f64,
    /// The table's provenance, one `field = value` per entry.
    pub(crate) table_provenance: Vec<String>,
    /// Every device's estimate, target and miss, in table order (one entry
    /// per table; empty without a table).
    #[serde(default)]
    pub devices: Vec<DeviceEstimate>,
    /// Per-channel mean and standard deviation of the training split (the
    /// exported model applies them inside; absent in older results).
    #[serde(default)]
    pub(crate) normalization: Option<Normalization>,
    /// Class names in label order, from the data (empty: not known).
    #[serde(default)]
    pub(crate) classes: Vec<String>,
    /// Wall and CPU time per phase of the step, over every process that
    /// ran the search (absent in older results).
    #[serde(default)]
    pub phase_times: super::PhaseTimes,
    /// The config.
    pub(crate) config: SearchConfig,
}

/// One device's estimate of the searched architecture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceEstimate {
    /// The table's device (from its provenance).
    pub device: String,
    /// The table's CPU or SoC.
    pub cpu: String,
    /// Estimated latency, ms.
    pub est_latency_ms: f64,
    /// Target, ms.
    pub target_ms: f64,
    /// Miss, percent (positive: slower than the target).
    pub miss_pct: f64,
}
