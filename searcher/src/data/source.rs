//! One entry point for every kind of data folder: IDX, CIFAR-10 binary
//! batches, or an image folder, named or detected.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use thiserror::Error;

use super::folder::{
    FolderError, FolderOptions, FolderSummary, ImageShape, load_image_folder,
    looks_like_image_folder,
};
use super::{DataError, TrainTest, load_cifar10_dir, load_idx_dir};

/// The CIFAR-10 class names, in label order.
pub(crate) const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// What a data folder holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormat {
    /// Detect: CIFAR-10 if `data_batch_1.bin` is there, IDX if its train
    /// images file is, else an image folder if it looks like one.
    Auto,
    /// Class folders of PNG/JPEG images (see [`super::folder`]).
    Folder,
    /// MNIST-format IDX files.
    Idx,
    /// CIFAR-10 binary batches.
    Cifar10,
}

impl DataFormat {
    /// Its name, as `FromStr` reads it.
    pub fn name(self) -> &'static str {
        match self {
            DataFormat::Auto => "auto",
            DataFormat::Folder => "folder",
            DataFormat::Idx => "idx",
            DataFormat::Cifar10 => "cifar10",
        }
    }
}

/// A name that is not a [`DataFormat`].
#[derive(Debug, Error)]
#[error("unknown data format {given:?}; expected one of auto, folder, idx, cifar10")]
pub struct UnknownDataFormat {
    /// The name given.
    pub(crate) given: String,
}

impl FromStr for DataFormat {
    type Err = UnknownDataFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(DataFormat::Auto),
            "folder" | "images" => Ok(DataFormat::Folder),
            "idx" => Ok(DataFormat::Idx),
            "cifar10" | "cifar-10" => Ok(DataFormat::Cifar10),
            _ => Err(UnknownDataFormat { given: s.into() }),
        }
    }
}

/// Data from any kind of folder, with class names.
#[derive(Clone, Debug)]
pub struct LoadedData {
    /// Train and test images.
    pub data: TrainTest,
    /// Class names in label order: the folder names of an image folder,
    /// CIFAR-10's names, or the label numbers of IDX data.
    pub classes: Vec<String>,
    /// What the image-folder load did; `None` for IDX and CIFAR-10.
    pub folder: Option<FolderSummary>,
}

/// A data folder could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    /// IDX or CIFAR-10 data is bad.
    #[error(transparent)]
    Data(#[from] DataError),
    /// An image folder is bad.
    #[error(transparent)]
    Folder(#[from] FolderError),
    /// Detection found nothing it knows.
    #[error(
        "{}: holds no IDX files (train-images-idx3-ubyte[.gz] ...), no CIFAR-10 batches (data_batch_1.bin ...) and no class folders of PNG/JPEG images",
        dir.display()
    )]
    NothingFound {
        /// The folder.
        dir: PathBuf,
    },
}

fn has_idx(dir: &Path) -> bool {
    ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]
        .iter()
        .any(|n| dir.join(n).exists())
}

/// Loads `dir` as `format`. `target` and `options` apply to image
/// folders only; IDX and CIFAR-10 data keep their own size.
pub fn load_any(
    dir: &Path,
    format: DataFormat,
    target: ImageShape,
    options: &FolderOptions,
) -> Result<LoadedData, LoadError> {
    let format = match format {
        DataFormat::Auto if dir.join("data_batch_1.bin").exists() => DataFormat::Cifar10,
        DataFormat::Auto if has_idx(dir) => DataFormat::Idx,
        DataFormat::Auto if looks_like_image_folder(dir) => DataFormat::Folder,
        DataFormat::Auto => {
            return Err(LoadError::NothingFound {
                dir: dir.to_path_buf(),
            });
        }
        f => f,
    };
    Ok(match format {
        DataFormat::Folder => {
            let f = load_image_folder(dir, target, options)?;
            LoadedData {
                data: f.data,
                classes: f.classes,
                folder: Some(f.summary),
            }
        }
        DataFormat::Cifar10 => LoadedData {
            data: load_cifar10_dir(dir)?,
            classes: CIFAR10_CLASSES.iter().map(|c| c.to_string()).collect(),
            folder: None,
        },
        DataFormat::Idx | DataFormat::Auto => {
            let data = load_idx_dir(dir)?;
            LoadedData {
                classes: (0..data.train.classes).map(|c| c.to_string()).collect(),
                data,
                folder: None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name() {
        for format in [
            DataFormat::Auto,
            DataFormat::Folder,
            DataFormat::Idx,
            DataFormat::Cifar10,
        ] {
            assert_eq!(format.name().parse::<DataFormat>().unwrap(), format);
        }
        assert_eq!(
            "CIFAR-10".parse::<DataFormat>().unwrap(),
            DataFormat::Cifar10
        );
        let err = "png".parse::<DataFormat>().unwrap_err();
        assert!(err.to_string().contains("auto, folder"), "{err}");
    }
}
