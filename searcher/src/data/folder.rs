//! Image folders as a data source: the user's own PNG and JPEG images,
//! one sub-folder per class.
//!
//! # Layouts
//!
//! - `DIR/train/<class>/*` and `DIR/test/<class>/*`: the split is the
//!   user's. Both parts must hold the same class folders.
//! - `DIR/<class>/*`: split here, per class (stratified), so every class
//!   keeps its share in both parts. For each class the images are sorted
//!   by file name, shuffled by a ChaCha8 generator seeded with
//!   `split_seed` XOR a hash of the class name (so adding a class or an
//!   image elsewhere does not move the others), and the first
//!   `round(n · test_fraction)` (at least 1, at most `n − 1`) go to test;
//!   the default fraction is 1/6. A class needs two usable images.
//!
//! Class names are the folder names in sorted (byte) order; a label is the
//! class's index in that order. Within a part, images are ordered by class,
//! then by file name.
//!
//! # Which files are read
//!
//! Files ending in `.png`, `.jpg` or `.jpeg` (any case) directly inside a
//! class folder. Other files and nested folders are ignored and counted in
//! [`FolderSummary::ignored_entries`]; names starting with `.` are not
//! looked at. The format is taken from the content, so a `.png` that holds
//! a JPEG loads, but a `.png` that is neither (or is corrupt or truncated)
//! is an error naming the file, unless [`FolderOptions::skip_bad_images`]
//! is set, which turns it into an entry of [`FolderSummary::skipped`].
//!
//! # Shape
//!
//! Images are converted to the target channels first (grey replicated to
//! RGB, RGB to grey by Rec. 709 luma, alpha dropped, 16-bit scaled to
//! 8-bit), then scaled with a triangle filter so the side that is shorter
//! relative to the target fits it, then centre-cropped. Images of any,
//! and of different, sizes are fine; one already of the target size is
//! copied unchanged. EXIF orientation is not applied.
//!
//! # Cache
//!
//! Decoding is done once: the pixels go to `DIR/.tunas-cache/` (or, if
//! that cannot be written, a folder under the system temp dir), written
//! atomically and keyed by every image file's relative path, size and
//! modification time plus the target shape. A later load with the same
//! key reads the cache instead of decoding; any change, or a cache that
//! cannot be read, rebuilds it with a one-line note on stderr.

mod cache;
mod decode;

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Dataset, TrainTest};
use cache::{FileStamp, Miss};

/// The share of each class put in the test part when a folder is split
/// here.
pub const DEFAULT_TEST_FRACTION: f64 = 1.0 / 6.0;

/// File extensions (lower case, no dot) read as images.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The largest number of classes: labels are bytes.
pub const MAX_CLASSES: usize = 256;

/// The size every image is brought to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
}

/// How a folder is read.
#[derive(Clone, Debug, PartialEq)]
pub struct FolderOptions {
    /// Seeds the per-class split of a `DIR/<class>/*` folder.
    pub split_seed: u64,
    /// Share of each class that goes to test in that split, in (0, 1).
    pub test_fraction: f64,
    /// Skip (and count) images that cannot be read or decoded instead of
    /// failing on the first.
    pub skip_bad_images: bool,
}

impl Default for FolderOptions {
    fn default() -> Self {
        FolderOptions {
            split_seed: 0,
            test_fraction: DEFAULT_TEST_FRACTION,
            skip_bad_images: false,
        }
    }
}

/// Where the train/test split came from.
#[derive(Clone, Debug, PartialEq)]
pub enum FolderLayout {
    /// `DIR/train/<class>` and `DIR/test/<class>`.
    TrainTest,
    /// `DIR/<class>`, split here.
    Split {
        /// The seed used.
        seed: u64,
        /// The test share used.
        test_fraction: f64,
    },
}

/// An image left out because it could not be used.
#[derive(Clone, Debug, PartialEq)]
pub struct SkippedImage {
    /// The file.
    pub path: PathBuf,
    /// Why (the error it would have been).
    pub reason: String,
}

/// What a load did, besides the data.
#[derive(Clone, Debug, PartialEq)]
pub struct FolderSummary {
    /// How the folder was split.
    pub layout: FolderLayout,
    /// Whether the pixels came from the cache (no image was decoded).
    pub from_cache: bool,
    /// The cache file read or written; `None` if none could be written.
    pub cache_file: Option<PathBuf>,
    /// The notes printed on stderr (cache built, rebuilt, not writable).
    pub notes: Vec<String>,
    /// Images left out under [`FolderOptions::skip_bad_images`], in file order.
    pub skipped: Vec<SkippedImage>,
    /// Files without an image extension and nested folders, not read.
    pub ignored_entries: usize,
}

/// The images of a folder with their class names.
#[derive(Clone, Debug)]
pub struct FolderData {
    /// Train and test images at the target shape.
    pub data: TrainTest,
    /// Class names, sorted; label `i` is `classes[i]`.
    pub classes: Vec<String>,
    /// What the load did.
    pub summary: FolderSummary,
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn missing(from: &[String], other: &[String]) -> Vec<String> {
    other
        .iter()
        .filter(|c| !from.contains(c))
        .cloned()
        .collect()
}

fn skipped_note(skipped: &usize) -> String {
    match skipped {
        0 => String::new(),
        n => format!(" ({n} skipped as unreadable)"),
    }
}

/// An image folder could not be used.
#[derive(Debug, Error)]
pub enum FolderError {
    /// A folder could not be listed.
    #[error("{}: cannot list the folder: {source}", dir.display())]
    ReadDir {
        /// The folder.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The folder holds no class folders.
    #[error(
        "{}: no class folders; expected DIR/<class>/*.png|jpg or DIR/train/<class>/* with DIR/test/<class>/*",
        dir.display()
    )]
    NoClasses {
        /// The folder.
        dir: PathBuf,
    },
    /// Only one of `train/` and `test/` exists.
    #[error(
        "{}: has a {present}/ folder but no {missing}/ folder; give both, or put the class folders directly in {}",
        dir.display(),
        dir.display()
    )]
    HalfSplit {
        /// The folder.
        dir: PathBuf,
        /// The part present.
        present: &'static str,
        /// The part missing.
        missing: &'static str,
    },
    /// A class folder has no usable image.
    #[error(
        "{}: no usable PNG or JPEG image in this class folder{}; add images or remove the folder",
        dir.display(),
        skipped_note(skipped)
    )]
    EmptyClass {
        /// The class folder.
        dir: PathBuf,
        /// Images in it that were skipped.
        skipped: usize,
    },
    /// A classifier needs two classes.
    #[error(
        "{}: only one class folder ({class}); a classifier needs at least two",
        dir.display()
    )]
    OneClass {
        /// The folder.
        dir: PathBuf,
        /// The class.
        class: String,
    },
    /// More classes than byte labels hold.
    #[error("{}: {count} class folders; at most {MAX_CLASSES} are supported", dir.display())]
    TooManyClasses {
        /// The folder.
        dir: PathBuf,
        /// Classes found.
        count: usize,
    },
    /// `train/` and `test/` hold different class folders.
    #[error(
        "{} and {} hold different class folders: train has [{}], test has [{}]; missing from test: [{}], missing from train: [{}]",
        train_dir.display(),
        test_dir.display(),
        list(train),
        list(test),
        list(&missing(test, train)),
        list(&missing(train, test))
    )]
    ClassMismatch {
        /// The train folder.
        train_dir: PathBuf,
        /// The test folder.
        test_dir: PathBuf,
        /// Its classes, sorted.
        train: Vec<String>,
        /// Its classes, sorted.
        test: Vec<String>,
    },
    /// A class of a folder split here has one usable image.
    #[error(
        "{}: only {usable} usable image{}; splitting into train and test needs at least 2 per class",
        dir.display(),
        skipped_note(skipped)
    )]
    TooFewToSplit {
        /// The class folder.
        dir: PathBuf,
        /// Usable images.
        usable: usize,
        /// Skipped images.
        skipped: usize,
    },
    /// The target shape cannot be produced.
    #[error(
        "image shape {}x{}x{}: needs a height and width of at least 1 and 1 (grey) or 3 (RGB) channels",
        shape.height,
        shape.width,
        shape.channels
    )]
    BadShape {
        /// The shape asked for.
        shape: ImageShape,
    },
    /// The test share is not in (0, 1).
    #[error("test fraction {value}: must be above 0 and below 1")]
    BadTestFraction {
        /// The value given.
        value: f64,
    },
    /// An image file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file with an image extension holds neither PNG nor JPEG.
    #[error(
        "{}: not a PNG or JPEG image ({bytes} bytes that start like neither); delete or replace the file, or skip bad images",
        path.display()
    )]
    NotAnImage {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// An image is corrupt or truncated.
    #[error(
        "{}: cannot decode the image ({source}); it is corrupt or truncated: delete or replace the file, or skip bad images",
        path.display()
    )]
    BadImage {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
}

impl FolderError {
    /// Whether this is about one image file (and so can be skipped).
    pub fn is_bad_image(&self) -> bool {
        matches!(
            self,
            FolderError::Unreadable { .. }
                | FolderError::NotAnImage { .. }
                | FolderError::BadImage { .. }
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Train,
    Test,
    /// Split later.
    Any,
}

struct ImageFile {
    path: PathBuf,
    stamp: FileStamp,
    class: usize,
    part: Part,
}

/// One class folder of one part.
struct ClassDir {
    dir: PathBuf,
    class: usize,
    part: Part,
}

struct Scan {
    layout_is_split: bool,
    classes: Vec<String>,
    class_dirs: Vec<ClassDir>,
    files: Vec<ImageFile>,
    ignored: usize,
}

struct Entry {
    name: String,
    path: PathBuf,
    is_dir: bool,
}

/// Non-hidden entries, sorted by name; symbolic links are followed.
fn entries(dir: &Path) -> Result<Vec<Entry>, FolderError> {
    let err = |source| FolderError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(err)? {
        let e = e.map_err(err)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = e.path();
        out.push(Entry {
            is_dir: path.is_dir(),
            name,
            path,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn has_image_extension(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| IMAGE_EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)))
}

fn class_names(dir: &Path) -> Result<Vec<(String, PathBuf)>, FolderError> {
    Ok(entries(dir)?
        .into_iter()
        .filter(|e| e.is_dir)
        .map(|e| (e.name, e.path))
        .collect())
}

fn stamp(path: &Path, key: String) -> Result<FileStamp, FolderError> {
    let meta = std::fs::metadata(path).map_err(|source| FolderError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let (mtime_s, mtime_ns) = match meta.modified().map(|t| t.duration_since(UNIX_EPOCH)) {
        Ok(Ok(d)) => (d.as_secs() as i64, d.subsec_nanos()),
        Ok(Err(before)) => (
            -(before.duration().as_secs() as i64),
            before.duration().subsec_nanos(),
        ),
        Err(_) => (0, 0),
    };
    Ok(FileStamp {
        key,
        size: meta.len(),
        mtime_s,
        mtime_ns,
    })
}

impl Scan {
    fn new(dir: &Path) -> Result<Scan, FolderError> {
        let train = dir.join("train");
        let test = dir.join("test");
        let mut scan = Scan {
            layout_is_split: false,
            classes: Vec::new(),
            class_dirs: Vec::new(),
            files: Vec::new(),
            ignored: 0,
        };
        match (train.is_dir(), test.is_dir()) {
            (true, true) => {
                let train_classes = class_names(&train)?;
                let test_classes = class_names(&test)?;
                let names = |v: &[(String, PathBuf)]| v.iter().map(|c| c.0.clone()).collect();
                let (tr, te): (Vec<String>, Vec<String>) =
                    (names(&train_classes), names(&test_classes));
                if tr.is_empty() && te.is_empty() {
                    return Err(FolderError::NoClasses { dir: train });
                }
                if tr != te {
                    return Err(FolderError::ClassMismatch {
                        train_dir: train,
                        test_dir: test,
                        train: tr,
                        test: te,
                    });
                }
                scan.check_class_count(dir, &tr)?;
                scan.classes = tr;
                for (part, prefix, list) in [
                    (Part::Train, "train", train_classes),
                    (Part::Test, "test", test_classes),
                ] {
                    for (class, (name, path)) in list.into_iter().enumerate() {
                        scan.add_class_dir(path, &format!("{prefix}/{name}"), class, part)?;
                    }
                }
            }
            (true, false) | (false, true) => {
                let (present, missing) = if train.is_dir() {
                    ("train", "test")
                } else {
                    ("test", "train")
                };
                return Err(FolderError::HalfSplit {
                    dir: dir.to_path_buf(),
                    present,
                    missing,
                });
            }
            (false, false) => {
                let classes = class_names(dir)?;
                let names: Vec<String> = classes.iter().map(|c| c.0.clone()).collect();
                scan.check_class_count(dir, &names)?;
                scan.layout_is_split = true;
                scan.classes = names;
                for (class, (name, path)) in classes.into_iter().enumerate() {
                    scan.add_class_dir(path, &name, class, Part::Any)?;
                }
            }
        }
        Ok(scan)
    }

    fn check_class_count(&self, dir: &Path, names: &[String]) -> Result<(), FolderError> {
        match names.len() {
            0 => Err(FolderError::NoClasses {
                dir: dir.to_path_buf(),
            }),
            1 => Err(FolderError::OneClass {
                dir: dir.to_path_buf(),
                class: names[0].clone(),
            }),
            n if n > MAX_CLASSES => Err(FolderError::TooManyClasses {
                dir: dir.to_path_buf(),
                count: n,
            }),
            _ => Ok(()),
        }
    }

    fn add_class_dir(
        &mut self,
        dir: PathBuf,
        key_prefix: &str,
        class: usize,
        part: Part,
    ) -> Result<(), FolderError> {
        let before = self.files.len();
        for e in entries(&dir)? {
            if e.is_dir || !has_image_extension(&e.name) {
                self.ignored += 1;
                continue;
            }
            let stamp = stamp(&e.path, format!("{key_prefix}/{}", e.name))?;
            self.files.push(ImageFile {
                path: e.path,
                stamp,
                class,
                part,
            });
        }
        if self.files.len() == before {
            return Err(FolderError::EmptyClass { dir, skipped: 0 });
        }
        self.class_dirs.push(ClassDir { dir, class, part });
        Ok(())
    }
}

/// Whether `dir` looks like an image folder: it (or its `train/`) has a
/// sub-folder directly holding a file with an image extension. Cheap: it
/// stops at the first such file. IDX and CIFAR-10 folders do not qualify.
pub fn looks_like_image_folder(dir: &Path) -> bool {
    let has_class_with_image = |d: &Path| {
        entries(d).is_ok_and(|list| {
            list.iter().filter(|e| e.is_dir).any(|class| {
                entries(&class.path).is_ok_and(|files| {
                    files
                        .iter()
                        .any(|f| !f.is_dir && has_image_extension(&f.name))
                })
            })
        })
    };
    has_class_with_image(dir) || has_class_with_image(&dir.join("train"))
}

fn check_request(target: ImageShape, options: &FolderOptions) -> Result<(), FolderError> {
    let pixels = target.height.checked_mul(target.width);
    if target.height == 0
        || target.width == 0
        || !matches!(target.channels, 1 | 3)
        || pixels.is_none_or(|p| p > 1 << 24)
    {
        return Err(FolderError::BadShape { shape: target });
    }
    let f = options.test_fraction;
    if !(f.is_finite() && f > 0.0 && f < 1.0) {
        return Err(FolderError::BadTestFraction { value: f });
    }
    Ok(())
}

/// Reads an image folder (see the module docs for layouts, conversion and
/// the cache) at `target`, from its cache when that is up to date.
///
/// # Errors
///
/// A [`FolderError`] naming the folder or file: no or one class, classes
/// that differ between `train/` and `test/`, an empty class, or (unless
/// `options.skip_bad_images`) an image that cannot be read or decoded.
pub fn load_image_folder(
    dir: &Path,
    target: ImageShape,
    options: &FolderOptions,
) -> Result<FolderData, FolderError> {
    check_request(target, options)?;
    let scan = Scan::new(dir)?;
    let stamps: Vec<FileStamp> = scan.files.iter().map(|f| f.stamp.clone()).collect();
    let places = cache::cache_paths(dir, target);
    let mut notes = Vec::new();
    let mut cached = None;
    for place in &places {
        match cache::read(place, target, &stamps) {
            Ok(decoded) => {
                // A cache that lists bad images is of no use when they are
                // to be errors: decoding again reports them properly.
                if options.skip_bad_images || decoded.iter().all(|d| d.is_ok()) {
                    cached = Some((place.clone(), decoded));
                }
                break;
            }
            Err(Miss::Absent) => {}
            Err(Miss::Unreadable(why)) => {
                notes.push(format!(
                    "note: image cache {} is unreadable ({why}); rebuilding it",
                    place.display()
                ));
                break;
            }
            Err(Miss::Stale(why)) => {
                notes.push(format!(
                    "note: image cache {} is out of date ({why}); rebuilding it",
                    place.display()
                ));
                break;
            }
        }
    }
    let from_cache = cached.is_some();
    let (cache_file, decoded) = match cached {
        Some((path, decoded)) => (Some(path), decoded),
        None => {
            if notes.is_empty() {
                notes.push(format!(
                    "note: decoding {} images in {} to {}x{}x{}, once: they are cached for later runs",
                    scan.files.len(),
                    dir.display(),
                    target.height,
                    target.width,
                    target.channels
                ));
            }
            print_notes(&notes);
            let results: Vec<Result<Vec<u8>, FolderError>> = scan
                .files
                .par_iter()
                .map(|f| decode::decode_file(&f.path, target))
                .collect();
            let mut decoded = Vec::with_capacity(results.len());
            for r in results {
                match r {
                    Ok(px) => decoded.push(Ok(px)),
                    Err(e) if options.skip_bad_images && e.is_bad_image() => {
                        decoded.push(Err(e.to_string()))
                    }
                    Err(e) => return Err(e),
                }
            }
            let written = match cache::write(&places, &cache::encode(target, &stamps, &decoded)) {
                Ok(path) => Some(path),
                Err(why) => {
                    let note = format!(
                        "note: cannot write the image cache ({why}); the images will be decoded again next time"
                    );
                    print_notes(std::slice::from_ref(&note));
                    notes.push(note);
                    None
                }
            };
            (written, decoded)
        }
    };
    let summary = FolderSummary {
        layout: if scan.layout_is_split {
            FolderLayout::Split {
                seed: options.split_seed,
                test_fraction: options.test_fraction,
            }
        } else {
            FolderLayout::TrainTest
        },
        from_cache,
        cache_file,
        notes,
        skipped: Vec::new(),
        ignored_entries: scan.ignored,
    };
    assemble(target, options, scan, &decoded, summary)
}

fn print_notes(notes: &[String]) {
    for n in notes {
        eprintln!("{n}");
    }
}

/// Splits (if the layout asks), drops skipped images (listing them in
/// `summary`) and builds the sets.
fn assemble(
    target: ImageShape,
    options: &FolderOptions,
    scan: Scan,
    decoded: &cache::Decoded,
    mut summary: FolderSummary,
) -> Result<FolderData, FolderError> {
    let skipped = &mut summary.skipped;
    let mut train_idx = Vec::new();
    let mut test_idx = Vec::new();
    for cd in &scan.class_dirs {
        let in_dir: Vec<usize> = (0..scan.files.len())
            .filter(|&i| scan.files[i].class == cd.class && scan.files[i].part == cd.part)
            .collect();
        let mut usable = Vec::with_capacity(in_dir.len());
        for &i in &in_dir {
            match &decoded[i] {
                Ok(_) => usable.push(i),
                Err(reason) => skipped.push(SkippedImage {
                    path: scan.files[i].path.clone(),
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
            Part::Train => train_idx.extend(usable),
            Part::Test => test_idx.extend(usable),
            Part::Any => {
                let n = usable.len();
                if n < 2 {
                    return Err(FolderError::TooFewToSplit {
                        dir: cd.dir.clone(),
                        usable: n,
                        skipped: skipped_here,
                    });
                }
                let n_test = ((n as f64 * options.test_fraction).round() as usize).clamp(1, n - 1);
                let seed = options.split_seed ^ cache::fnv1a(scan.classes[cd.class].as_bytes());
                let mut order = usable;
                order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
                let (test, train) = order.split_at(n_test);
                let (mut test, mut train) = (test.to_vec(), train.to_vec());
                test.sort_unstable();
                train.sort_unstable();
                train_idx.extend(train);
                test_idx.extend(test);
            }
        }
    }
    // Class folders were visited train-then-test and in class order, so
    // each part is already ordered by class, then by file name.
    let build = |indices: &[usize]| {
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
    };
    let data = TrainTest {
        train: build(&train_idx),
        test: build(&test_idx),
    };
    Ok(FolderData {
        data,
        classes: scan.classes,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_extensions_are_matched_in_any_case() {
        for name in ["a.png", "b.JPG", "c.Jpeg", "d.e.png"] {
            assert!(has_image_extension(name), "{name}");
        }
        for name in ["png", "a.gif", "a.png.txt", "README"] {
            assert!(!has_image_extension(name), "{name}");
        }
    }

    #[test]
    fn requests_are_checked() {
        let ok = ImageShape {
            height: 2,
            width: 2,
            channels: 3,
        };
        assert!(check_request(ok, &FolderOptions::default()).is_ok());
        let two = ImageShape { channels: 2, ..ok };
        assert!(matches!(
            check_request(two, &FolderOptions::default()),
            Err(FolderError::BadShape { .. })
        ));
        for f in [0.0, 1.0, f64::NAN, -0.5] {
            let o = FolderOptions {
                test_fraction: f,
                ..FolderOptions::default()
            };
            assert!(matches!(
                check_request(ok, &o),
                Err(FolderError::BadTestFraction { .. })
            ));
        }
    }
}
