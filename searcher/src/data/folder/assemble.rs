//! Turning the decoded images of a scan into the train and test sets:
//! the per-class split of a `DIR/<class>/*` folder, skipped images left
//! out.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::cache;
use super::scan::{ClassDir, Part, Scan};
use super::{FolderData, FolderError, FolderOptions, FolderSummary, ImageShape, SkippedImage};
use crate::data::{Dataset, TrainTest};

/// Splits (if the layout asks), drops skipped images (listing them in
/// `summary`) and builds the sets.
pub(super) fn assemble(
    target: ImageShape,
    options: &FolderOptions,
    scan: Scan,
    decoded: &cache::Decoded,
    mut summary: FolderSummary,
) -> Result<FolderData, FolderError> {
    let mut parts = Parts {
        scan: &scan,
        decoded,
        options,
        train: Vec::new(),
        test: Vec::new(),
        skipped: std::mem::take(&mut summary.skipped),
    };
    for cd in &scan.class_dirs {
        parts.add_class_dir(cd)?;
    }
    // Class folders were visited train-then-test and in class order, so
    // each part is already ordered by class, then by file name.
    let data = TrainTest {
        train: build_set(target, &scan, decoded, &parts.train),
        test: build_set(target, &scan, decoded, &parts.test),
    };
    summary.skipped = parts.skipped;
    Ok(FolderData {
        data,
        classes: scan.classes,
        summary,
    })
}

/// The train and test parts as indices into the scan's files, filled one
/// class folder at a time, and the images left out so far.
struct Parts<'a> {
    scan: &'a Scan,
    decoded: &'a cache::Decoded,
    options: &'a FolderOptions,
    train: Vec<usize>,
    test: Vec<usize>,
    skipped: Vec<SkippedImage>,
}

impl Parts<'_> {
    /// Adds the usable images of one class folder to its part, split here
    /// if the layout asks; the others are listed as skipped.
    fn add_class_dir(&mut self, cd: &ClassDir) -> Result<(), FolderError> {
        let files = &self.scan.files;
        let in_dir: Vec<usize> = (0..files.len())
            .filter(|&i| files[i].class == cd.class && files[i].part == cd.part)
            .collect();
        let mut usable = Vec::with_capacity(in_dir.len());
        for &i in &in_dir {
            match &self.decoded[i] {
                Ok(_) => usable.push(i),
                Err(reason) => self.skipped.push(SkippedImage {
                    path: files[i].path.clone(),
                    reason: reason.clone(),
                }),
            }
        }
        let skipped_here = in_dir.len() - usable.len();
        if usable.is_empty() {
            return Err(FolderError::EmptyClass {
                dir: cd.dir.clone(),
                skipped: skipped_here,
            });
        }
        match cd.part {
            Part::Train => self.train.extend(usable),
            Part::Test => self.test.extend(usable),
            Part::Any => self.split(cd, usable, skipped_here)?,
        }
        Ok(())
    }

    /// Splits one class's usable images between test and train (the
    /// module docs say how), each part kept in file order.
    fn split(
        &mut self,
        cd: &ClassDir,
        usable: Vec<usize>,
        skipped_here: usize,
    ) -> Result<(), FolderError> {
        let n = usable.len();
        if n < 2 {
            return Err(FolderError::TooFewToSplit {
                dir: cd.dir.clone(),
                usable: n,
                skipped: skipped_here,
            });
        }
        let n_test = ((n as f64 * self.options.test_fraction).round() as usize).clamp(1, n - 1);
        let seed = self.options.split_seed ^ cache::fnv1a(self.scan.classes[cd.class].as_bytes());
        let mut order = usable;
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let (test, train) = order.split_at(n_test);
        let (mut test, mut train) = (test.to_vec(), train.to_vec());
        test.sort_unstable();
        train.sort_unstable();
        self.train.extend(train);
        self.test.extend(test);
        Ok(())
    }
}

/// The images and labels of one part, in the order of `indices`.
fn build_set(
    target: ImageShape,
    scan: &Scan,
    decoded: &cache::Decoded,
    indices: &[usize],
) -> Dataset {
    let per = target.height * target.width * target.channels;
    let mut pixels = Vec::with_capacity(indices.len() * per);
    let mut labels = Vec::with_capacity(indices.len());
    for &i in indices {
        pixels.extend_from_slice(decoded[i].as_ref().expect("usable"));
        labels.push(scan.files[i].class as u8);
    }
    Dataset {
        height: target.height,
        width: target.width,
        channels: target.channels,
        classes: scan.classes.len(),
        pixels,
        labels,
    }
}
