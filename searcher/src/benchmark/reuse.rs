//! Trainings reused from other benchmark folders (`--trainings-from`).
//!
//! A stand-alone training depends on the space, the images, the recipe,
//! the training-image limit and its seed, and on nothing a search does. A
//! benchmark that tries other search settings on the same space, images and
//! recipe therefore need not train the same random networks again: their
//! journal entries are copied, marked with the folder they were made in,
//! and their CPU time is reported apart from this folder's own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::journal::{Entry, read_entries};
use super::{BenchmarkDir, BenchmarkError, Manifest, first_difference, read_manifest};

/// Where in a manifest the settings a training depends on sit.
const TRAINING_DEFINITION: [&str; 5] = [
    "/space",
    "/space_hash",
    "/data",
    "/settings/recipe",
    "/settings/limit_train",
];

/// Finished trainings of other folders, by journal key.
pub(crate) struct ReusableTrainings {
    by_key: HashMap<String, Entry>,
}

impl ReusableTrainings {
    /// Reads the trainings of every folder in `dirs`, each checked to have
    /// been made with the space, images and recipe of `manifest`; the
    /// first folder that holds a training wins.
    pub(crate) fn load(
        own_dir: &Path,
        dirs: &[PathBuf],
        manifest: &Manifest,
    ) -> Result<Self, BenchmarkError> {
        let ours = serde_json::to_value(manifest).expect("serialises");
        let mut by_key = HashMap::new();
        for dir in dirs {
            if same_folder(own_dir, dir) {
                return Err(BenchmarkError::BadSetting {
                    what: "trainings-from",
                    why: format!("{} is this benchmark's own folder", dir.display()),
                });
            }
            let files = BenchmarkDir { dir: dir.clone() };
            let theirs: Manifest =
                read_manifest(&files.manifest())?.ok_or_else(|| BenchmarkError::BadSetting {
                    what: "trainings-from",
                    why: format!("{} holds no benchmark.json", dir.display()),
                })?;
            // Through the typed manifest, as `keep_or_check` compares: an
            // f32 read back from JSON then prints as this run's does.
            let theirs = serde_json::to_value(&theirs).expect("serialises");
            let null = serde_json::Value::Null;
            let difference = TRAINING_DEFINITION.iter().find_map(|pointer| {
                let key = pointer.trim_start_matches('/').replace('/', ".");
                first_difference(
                    theirs.pointer(pointer).unwrap_or(&null),
                    ours.pointer(pointer).unwrap_or(&null),
                    &key,
                )
            });
            if let Some((key, stored, given)) = difference {
                return Err(BenchmarkError::ForeignTrainings {
                    dir: dir.clone(),
                    key,
                    stored,
                    given,
                });
            }
            for mut entry in read_entries(&files.journal())? {
                if let Entry::Train { reused_from, .. } = &mut entry {
                    // Where the training ran, also when that folder had it
                    // from a third one.
                    reused_from.get_or_insert_with(|| dir.display().to_string());
                    by_key.entry(entry.key()).or_insert(entry);
                }
            }
        }
        Ok(ReusableTrainings { by_key })
    }

    /// The finished training with journal key `key`, if a folder has it.
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.by_key.get(key)
    }

    /// How many trainings the folders hold.
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }
}

fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
