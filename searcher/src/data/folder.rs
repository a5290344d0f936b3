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

mod assemble;
mod cache;
mod decode;
mod error;
mod scan;

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::TrainTest;
use assemble::assemble;
use cache::{FileStamp, Miss};
pub use error::FolderError;
use scan::Scan;
pub use scan::looks_like_image_folder;

// The tests below reach it through `use super::*`.
#[cfg(test)]
use scan::has_image_extension;

/// The share of each class put in the test part when a folder is split
/// here.
pub(crate) const DEFAULT_TEST_FRACTION: f64 = 1.0 / 6.0;

/// File extensions (lower case, no dot) read as images.
pub(crate) const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The largest number of classes: labels are bytes.
pub(crate) const MAX_CLASSES: usize = 256;

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
    let cached = read_cache(&places, target, &stamps, options, &mut notes);
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
            let decoded = decode_all(&scan, target, options)?;
            let written = write_cache(&places, target, &stamps, &decoded, &mut notes);
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

/// The pixels of the first cache place that holds a cache, if it is up to
/// date and of use; a cache found but not used adds a note saying why.
fn read_cache(
    places: &[PathBuf],
    target: ImageShape,
    stamps: &[FileStamp],
    options: &FolderOptions,
    notes: &mut Vec<String>,
) -> Option<(PathBuf, cache::Decoded)> {
    for place in places {
        match cache::read(place, target, stamps) {
            Ok(decoded) => {
                // A cache that lists bad images is of no use when they are
                // to be errors: decoding again reports them properly.
                if options.skip_bad_images || decoded.iter().all(|d| d.is_ok()) {
                    return Some((place.clone(), decoded));
                }
                return None;
            }
            Err(Miss::Absent) => {}
            Err(Miss::Unreadable(why)) => {
                notes.push(format!(
                    "note: image cache {} is unreadable ({why}); rebuilding it",
                    place.display()
                ));
                return None;
            }
            Err(Miss::Stale(why)) => {
                notes.push(format!(
                    "note: image cache {} is out of date ({why}); rebuilding it",
                    place.display()
                ));
                return None;
            }
        }
    }
    None
}

/// Decodes every image of the scan, in parallel. A bad image is the error,
/// or under `skip_bad_images` an entry holding its message.
fn decode_all(
    scan: &Scan,
    target: ImageShape,
    options: &FolderOptions,
) -> Result<cache::Decoded, FolderError> {
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
    Ok(decoded)
}

/// Writes the cache to the first place that takes it. A cache that cannot
/// be written is a note (printed at once), not an error.
fn write_cache(
    places: &[PathBuf],
    target: ImageShape,
    stamps: &[FileStamp],
    decoded: &cache::Decoded,
    notes: &mut Vec<String>,
) -> Option<PathBuf> {
    match cache::write(places, &cache::encode(target, stamps, decoded)) {
        Ok(path) => Some(path),
        Err(why) => {
            let note = format!(
                "note: cannot write the image cache ({why}); the images will be decoded again next time"
            );
            print_notes(std::slice::from_ref(&note));
            notes.push(note);
            None
        }
    }
}

fn print_notes(notes: &[String]) {
    for n in notes {
        eprintln!("{n}");
    }
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
