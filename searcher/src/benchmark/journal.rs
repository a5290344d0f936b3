//! The benchmark's journal: one JSON line per finished piece of work,
//! appended and flushed as soon as it finishes, so a killed benchmark
//! resumes without redoing anything that finished.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::BenchmarkError;

/// Which weights a shared-weight accuracy was measured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SharedPhase {
    /// The supernet at the end of the warm-up (uniformly sampled paths).
    Warmup,
    /// The supernet at the end of the search.
    Final,
}

/// One finished piece of work.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum Entry {
    /// A search finished.
    Search {
        /// Index of the target.
        target: usize,
        /// Search seed.
        seed: u64,
        /// The searched (argmax) architecture.
        arch: String,
        /// Its estimated latency, ms.
        est_latency_ms: f64,
        /// Its validation accuracy with shared weights (the search's own Q).
        validation_accuracy: f64,
        /// Wall seconds of the search (one thread).
        seconds: f64,
        /// CPU seconds of its thread.
        #[serde(default)]
        cpu_seconds: f64,
    },
    /// A stand-alone training finished.
    Train {
        /// Architecture.
        arch: String,
        /// Training seed.
        seed: u64,
        /// Test accuracy after the recipe's epochs.
        test_accuracy: f64,
        /// Wall seconds (one thread).
        seconds: f64,
        /// CPU seconds of its thread.
        #[serde(default)]
        cpu_seconds: f64,
        /// The benchmark folder this training was done in, when it was
        /// reused from there (`--trainings-from`) rather than run here.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reused_from: Option<String>,
    },
    /// An architecture evaluated with a search's shared weights.
    Shared {
        /// Target index of the search.
        target: usize,
        /// Search seed.
        seed: u64,
        /// Which weights.
        phase: SharedPhase,
        /// Architecture.
        arch: String,
        /// Accuracy on held-out training images, BN recalibrated.
        accuracy: f64,
        /// Wall seconds.
        seconds: f64,
        /// CPU seconds of its thread.
        #[serde(default)]
        cpu_seconds: f64,
    },
}

impl Entry {
    /// The key that makes an entry unique: finished work is never redone.
    pub(crate) fn key(&self) -> String {
        match self {
            Entry::Search { target, seed, .. } => search_key(*target, *seed),
            Entry::Train { arch, seed, .. } => train_key(arch, *seed),
            Entry::Shared {
                target,
                seed,
                phase,
                arch,
                ..
            } => shared_key(*target, *seed, *phase, arch),
        }
    }

    /// Wall seconds the work took (on one thread).
    pub(crate) fn seconds(&self) -> f64 {
        match self {
            Entry::Search { seconds, .. }
            | Entry::Train { seconds, .. }
            | Entry::Shared { seconds, .. } => *seconds,
        }
    }

    /// Records the CPU seconds the work took.
    pub(crate) fn set_cpu_seconds(&mut self, value: f64) {
        match self {
            Entry::Search { cpu_seconds, .. }
            | Entry::Train { cpu_seconds, .. }
            | Entry::Shared { cpu_seconds, .. } => *cpu_seconds = value,
        }
    }

    /// Whether the work was reused from another benchmark folder.
    pub(crate) fn is_reused(&self) -> bool {
        matches!(
            self,
            Entry::Train {
                reused_from: Some(_),
                ..
            }
        )
    }

    /// CPU seconds the work took.
    pub(crate) fn cpu_seconds(&self) -> f64 {
        match self {
            Entry::Search { cpu_seconds, .. }
            | Entry::Train { cpu_seconds, .. }
            | Entry::Shared { cpu_seconds, .. } => *cpu_seconds,
        }
    }
}

/// Key of a search.
pub(crate) fn search_key(target: usize, seed: u64) -> String {
    format!("search:{target}:{seed}")
}

/// Key of a training.
pub(crate) fn train_key(arch: &str, seed: u64) -> String {
    format!("train:{arch}:{seed}")
}

/// Key of a shared-weight evaluation.
pub(crate) fn shared_key(target: usize, seed: u64, phase: SharedPhase, arch: &str) -> String {
    format!("shared:{target}:{seed}:{phase:?}:{arch}")
}

/// The entries of the journal at `path` as it stands (a missing journal has
/// none), for a report while the benchmark runs: a torn last line is
/// skipped, and the file is left as it is.
pub(crate) fn read_entries(path: &Path) -> Result<Vec<Entry>, BenchmarkError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(BenchmarkError::Io {
                path: path.to_path_buf(),
                source: e,
            });
        }
    };
    let mut entries: HashMap<String, Entry> = HashMap::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if !line.ends_with('\n') {
            break;
        }
        let entry: Entry =
            serde_json::from_str(line.trim_end()).map_err(|e| BenchmarkError::Journal {
                path: path.to_path_buf(),
                line: i + 1,
                message: e.to_string(),
            })?;
        entries.insert(entry.key(), entry);
    }
    Ok(entries.into_values().collect())
}

/// The journal file and the entries read from it.
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    entries: HashMap<String, Entry>,
}

impl Journal {
    /// Opens (or creates) the journal at `path`. A last line cut by a kill
    /// is dropped (and the file truncated to the last whole line); any other
    /// unreadable line is an error naming the line.
    pub(crate) fn open(path: &Path) -> Result<Self, BenchmarkError> {
        let io = |e: std::io::Error| BenchmarkError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        let mut entries = HashMap::new();
        let mut whole_len = 0;
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let complete = line.ends_with('\n');
            match serde_json::from_str::<Entry>(line.trim_end()) {
                Ok(entry) if complete => {
                    entries.insert(entry.key(), entry);
                    whole_len += line.len();
                }
                // A torn last line: the work it records is simply redone.
                _ if i + 1 == lines.len() && !complete => {}
                Ok(_) => unreachable!("only the last line can lack a newline"),
                Err(e) => {
                    return Err(BenchmarkError::Journal {
                        path: path.to_path_buf(),
                        line: i + 1,
                        message: e.to_string(),
                    });
                }
            }
        }
        if whole_len < text.len() {
            let f = OpenOptions::new().write(true).open(path).map_err(io)?;
            f.set_len(whole_len as u64).map_err(io)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
            entries,
        })
    }

    /// The entry with `key`, if that work finished.
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Every finished entry.
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Appends `entry` and flushes it to the file.
    pub(crate) fn append(&mut self, entry: Entry) -> Result<(), BenchmarkError> {
        let mut line = serde_json::to_string(&entry).expect("an entry serialises");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(|e| BenchmarkError::Io {
                path: self.path.clone(),
                source: e,
            })?;
        self.entries.insert(entry.key(), entry);
        Ok(())
    }
}
