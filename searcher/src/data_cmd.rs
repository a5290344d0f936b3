//! How every command reads `--data`: IDX, CIFAR-10 binary batches, or class
//! folders of PNG/JPEG images, sized to the space's input.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;
use tunas_searcher::data::{
    Augmentation, DataFormat, FolderOptions, ImageShape, LoadedData, load_any,
};
use tunas_shared::SearchSpace;

/// The flags that say how `--data` is read.
#[derive(Args, Debug, Clone)]
pub struct DataFlags {
    /// How to read --data: auto (detect), folder (class folders of PNG/JPEG
    /// images: DIR/train/<class>/* and DIR/test/<class>/*, or DIR/<class>/*
    /// split 5:1 per class, seeded), idx, cifar10. Images are resized to the
    /// space's input (shorter side, centre crop) and decoded once into a
    /// cache (DIR/.tunas-cache/).
    #[arg(long, value_name = "FORMAT", default_value = "auto")]
    pub data_format: String,
    /// Skip images that cannot be decoded (they are counted and listed)
    /// instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_images: bool,
}

impl DataFlags {
    /// Checks the format's name before any work.
    pub fn format(&self) -> Result<DataFormat> {
        self.data_format
            .parse::<DataFormat>()
            .context("--data-format")
    }
}

/// The flags that change the training batches' augmentation (`search` and
/// `train`; validation and test batches are never augmented).
#[derive(Args, Debug, Clone)]
pub struct AugmentFlags {
    /// Random pad-and-crop of the training images, in pixels [default: 4 on
    /// an RGB space; on a grey one 0 in a search, 2 in `train`].
    #[arg(long, value_name = "PIXELS")]
    pub pad_crop: Option<usize>,
    /// Random horizontal flips of the training images [default: on for an
    /// RGB space].
    #[arg(long, conflicts_with = "no_flip")]
    pub flip: bool,
    /// No horizontal flips.
    #[arg(long)]
    pub no_flip: bool,
}

impl AugmentFlags {
    /// The flip flag given, if any.
    pub fn flip_given(&self) -> Option<bool> {
        (self.flip || self.no_flip).then_some(self.flip)
    }

    /// `default` with what the flags set.
    pub fn over(&self, default: Augmentation) -> Augmentation {
        Augmentation {
            pad_crop: self.pad_crop.unwrap_or(default.pad_crop),
            flip: self.flip_given().unwrap_or(default.flip),
        }
    }
}

/// Reads `dir` as `flags` say, sized to `space`'s input, and says on
/// stderr what an image folder skipped or ignored.
pub fn load_images(dir: &Path, flags: &DataFlags, space: &SearchSpace) -> Result<LoadedData> {
    let target = ImageShape {
        height: space.input.height as usize,
        width: space.input.width as usize,
        channels: space.input.channels as usize,
    };
    let options = FolderOptions {
        skip_bad_images: flags.skip_bad_images,
        ..FolderOptions::default()
    };
    let loaded = load_any(dir, flags.format()?, target, &options).map_err(|e| {
        let hint = if matches!(&e, tunas_searcher::data::LoadError::Folder(f) if f.is_bad_image()) {
            " (--skip-bad-images skips such files)"
        } else {
            ""
        };
        anyhow::Error::new(e).context(format!("--data {}{hint}", dir.display()))
    })?;
    if let Some(summary) = &loaded.folder {
        if !summary.skipped.is_empty() {
            eprintln!(
                "data: skipped {} images that could not be read (first: {}: {})",
                summary.skipped.len(),
                summary.skipped[0].path.display(),
                summary.skipped[0].reason
            );
        }
        if summary.ignored_entries > 0 {
            eprintln!(
                "data: ignored {} entries that are not PNG/JPEG files in class folders",
                summary.ignored_entries
            );
        }
    }
    tunas_searcher::train::check_data(space, &loaded.data.train)?;
    Ok(loaded)
}
