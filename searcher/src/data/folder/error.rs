//! Why an image folder could not be used.

use std::path::PathBuf;

use thiserror::Error;

use super::{ImageShape, MAX_CLASSES};

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
