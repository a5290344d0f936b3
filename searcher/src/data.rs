//! Image classification data: IDX (MNIST, Fashion-MNIST; gzipped or not)
//! and CIFAR-10 binary batches, a seeded train/validation split, shuffled
//! batches with normalisation and cheap augmentation (docs/design.md,
//! "Data"). Folders of the user's own PNG and JPEG images are in
//! [`folder`]; `source` picks among all three kinds.

use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::Array4;
use rand::Rng;
use rand::seq::SliceRandom;
use thiserror::Error;

pub mod folder;
pub(crate) mod source;

pub use folder::{
    FolderData, FolderError, FolderOptions, ImageShape, load_image_folder, looks_like_image_folder,
};
pub use source::{DataFormat, LoadError, LoadedData, UnknownDataFormat, load_any};

/// Where the Debian package `dataset-fashion-mnist` installs the data.
pub const DEFAULT_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// A data file could not be used.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("{path}: cannot read")]
    Io {
        /// File path.
        path: String,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with the expected magic number.
    #[error(
        "{path}: not an IDX {what} file (magic number {found:#010x}, expected {expected:#010x})"
    )]
    BadMagic {
        /// File path.
        path: String,
        /// `images` or `labels`.
        what: &'static str,
        /// Magic found.
        found: u32,
        /// Magic expected.
        expected: u32,
    },
    /// The file is shorter than its header says.
    #[error(
        "{path}: truncated: the header announces {expected} bytes of data, the file has {found}"
    )]
    Truncated {
        /// File path.
        path: String,
        /// Bytes the header announces.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// Something else is inconsistent.
    #[error("{path}: {message}")]
    Invalid {
        /// File path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// No dataset at the given folder.
    #[error(
        "{dir}: no {what} files found ({expected}); install Fashion-MNIST with `apt-get install dataset-fashion-mnist` (or `cargo xtask setup`), or give the folder of your data"
    )]
    NotFound {
        /// Folder searched.
        dir: String,
        /// Dataset kind.
        what: &'static str,
        /// File names looked for.
        expected: String,
    },
}

/// A labelled image set, kept as bytes (HWC order within an image).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Channels per pixel.
    pub channels: usize,
    /// Number of classes.
    pub classes: usize,
    /// `len · height · width · channels` bytes, image after image, HWC.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn image_bytes(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let n = self.image_bytes();
        let mut pixels = Vec::with_capacity(indices.len() * n);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            pixels.extend_from_slice(&self.pixels[i * n..(i + 1) * n]);
            labels.push(self.labels[i]);
        }
        Dataset {
            pixels,
            labels,
            ..*self
        }
    }

    /// Seeded split into (first `len − holdout` of a shuffled order,
    /// the remaining `holdout`).
    pub(crate) fn split<R: Rng + ?Sized>(&self, holdout: usize, rng: &mut R) -> (Dataset, Dataset) {
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(rng);
        let keep = self.len().saturating_sub(holdout);
        (self.subset(&order[..keep]), self.subset(&order[keep..]))
    }

    /// Per-channel mean and standard deviation of the pixels scaled to [0, 1].
    pub(crate) fn channel_stats(&self) -> (Vec<f32>, Vec<f32>) {
        let c = self.channels;
        let mut sum = vec![0f64; c];
        let mut sq = vec![0f64; c];
        for (i, &p) in self.pixels.iter().enumerate() {
            let v = p as f64 / 255.0;
            sum[i % c] += v;
            sq[i % c] += v * v;
        }
        let count = (self.pixels.len() / c.max(1)).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(s, m)| ((s / count - m * m).max(1e-12)).sqrt() as f32)
            .collect();
        (mean.into_iter().map(|m| m as f32).collect(), std)
    }
}

/// Train and test sets of one dataset.
#[derive(Clone, Debug)]
pub struct TrainTest {
    /// Training images (to be split into weights / reward halves).
    pub train: Dataset,
    /// Test images, for stand-alone evaluation only.
    pub test: Dataset,
}

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let io = |source: std::io::Error| DataError::Io {
        path: path.display().to_string(),
        source,
    };
    let raw = std::fs::read(path).map_err(io)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| DataError::Invalid {
                path: path.display().to_string(),
                message: format!("corrupt gzip data: {e}"),
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Parses IDX image bytes (`magic 0x00000803`, n, rows, cols, pixels).
pub(crate) fn parse_idx_images(
    bytes: &[u8],
    origin: &str,
) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    let header = |at| {
        be_u32(bytes, at).ok_or_else(|| DataError::Truncated {
            path: origin.into(),
            expected: 16,
            found: bytes.len() as u64,
        })
    };
    let magic = header(0)?;
    if magic != 0x0803 {
        return Err(DataError::BadMagic {
            path: origin.into(),
            what: "images",
            found: magic,
            expected: 0x0803,
        });
    }
    let (n, h, w) = (
        header(4)? as usize,
        header(8)? as usize,
        header(12)? as usize,
    );
    let expected = (n as u64) * (h as u64) * (w as u64);
    let found = bytes.len() as u64 - 16;
    if found < expected {
        return Err(DataError::Truncated {
            path: origin.into(),
            expected,
            found,
        });
    }
    if h == 0 || w == 0 {
        return Err(DataError::Invalid {
            path: origin.into(),
            message: format!("images of {h}x{w} pixels"),
        });
    }
    Ok((n, h, w, bytes[16..16 + expected as usize].to_vec()))
}

/// Parses IDX label bytes (`magic 0x00000801`, n, labels).
pub(crate) fn parse_idx_labels(bytes: &[u8], origin: &str) -> Result<Vec<u8>, DataError> {
    let header = |at| {
        be_u32(bytes, at).ok_or_else(|| DataError::Truncated {
            path: origin.into(),
            expected: 8,
            found: bytes.len() as u64,
        })
    };
    let magic = header(0)?;
    if magic != 0x0801 {
        return Err(DataError::BadMagic {
            path: origin.into(),
            what: "labels",
            found: magic,
            expected: 0x0801,
        });
    }
    let n = header(4)? as u64;
    let found = bytes.len() as u64 - 8;
    if found < n {
        return Err(DataError::Truncated {
            path: origin.into(),
            expected: n,
            found,
        });
    }
    Ok(bytes[8..8 + n as usize].to_vec())
}

fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
}

/// Reads one IDX images + labels pair.
pub(crate) fn read_idx_pair(images: &Path, labels: &Path) -> Result<Dataset, DataError> {
    let (n, h, w, pixels) =
        parse_idx_images(&read_maybe_gz(images)?, &images.display().to_string())?;
    let labels_v = parse_idx_labels(&read_maybe_gz(labels)?, &labels.display().to_string())?;
    if labels_v.len() != n {
        return Err(DataError::Invalid {
            path: labels.display().to_string(),
            message: format!(
                "{} labels for {n} images in {}",
                labels_v.len(),
                images.display()
            ),
        });
    }
    let classes = labels_v.iter().copied().max().map_or(0, |m| m as usize + 1);
    Ok(Dataset {
        height: h,
        width: w,
        channels: 1,
        classes: classes.max(10),
        pixels,
        labels: labels_v,
    })
}

/// Reads MNIST-format IDX files (`train-images-idx3-ubyte[.gz]`, ...) from
/// a folder: Fashion-MNIST, MNIST, or the repo's test subset.
pub fn load_idx_dir(dir: &Path) -> Result<TrainTest, DataError> {
    let need = |stem: &str| {
        find_file(dir, stem).ok_or_else(|| DataError::NotFound {
            dir: dir.display().to_string(),
            what: "IDX",
            expected: "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]".into(),
        })
    };
    let train = read_idx_pair(
        &need("train-images-idx3-ubyte")?,
        &need("train-labels-idx1-ubyte")?,
    )?;
    let test = read_idx_pair(
        &need("t10k-images-idx3-ubyte")?,
        &need("t10k-labels-idx1-ubyte")?,
    )?;
    Ok(TrainTest { train, test })
}

/// Parses CIFAR-10 binary records (1 label byte + 3072 CHW pixel bytes).
pub(crate) fn parse_cifar10(bytes: &[u8], origin: &str) -> Result<Dataset, DataError> {
    const RECORD: usize = 1 + 3072;
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(DataError::Invalid {
            path: origin.into(),
            message: format!(
                "{} bytes is not a whole number of 3073-byte CIFAR-10 records (truncated or not CIFAR-10 binary)",
                bytes.len()
            ),
        });
    }
    let n = bytes.len() / RECORD;
    let mut pixels = Vec::with_capacity(n * 3072);
    let mut labels = Vec::with_capacity(n);
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] > 9 {
            return Err(DataError::Invalid {
                path: origin.into(),
                message: format!("record {i} has label {}; CIFAR-10 labels are 0-9", rec[0]),
            });
        }
        labels.push(rec[0]);
        let chw = &rec[1..];
        for p in 0..1024 {
            for c in 0..3 {
                pixels.push(chw[c * 1024 + p]);
            }
        }
    }
    Ok(Dataset {
        height: 32,
        width: 32,
        channels: 3,
        classes: 10,
        pixels,
        labels,
    })
}

fn concat(parts: Vec<Dataset>) -> Dataset {
    let mut all = parts[0].clone();
    for p in &parts[1..] {
        all.pixels.extend_from_slice(&p.pixels);
        all.labels.extend_from_slice(&p.labels);
    }
    all
}

/// Reads CIFAR-10 binary batches (`data_batch_1..5.bin`, `test_batch.bin`).
pub(crate) fn load_cifar10_dir(dir: &Path) -> Result<TrainTest, DataError> {
    let read = |name: String| -> Result<Dataset, DataError> {
        let path = dir.join(&name);
        if !path.exists() {
            return Err(DataError::NotFound {
                dir: dir.display().to_string(),
                what: "CIFAR-10",
                expected: "data_batch_1.bin .. data_batch_5.bin, test_batch.bin".into(),
            });
        }
        parse_cifar10(&read_maybe_gz(&path)?, &path.display().to_string())
    };
    let train = (1..=5)
        .map(|i| read(format!("data_batch_{i}.bin")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TrainTest {
        train: concat(train),
        test: read("test_batch.bin".into())?,
    })
}

/// Augmentation of training batches: random pad-and-crop and horizontal
/// flips. Validation and test batches are never augmented.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Augmentation {
    /// Pad by this many pixels, crop back at a random offset (0: off).
    pub pad_crop: usize,
    /// Flip half the images left to right.
    pub flip: bool,
}

impl Augmentation {
    /// No augmentation.
    pub(crate) const NONE: Augmentation = Augmentation {
        pad_crop: 0,
        flip: false,
    };

    /// The search's default for an input of `channels` channels: colour
    /// photos get the CIFAR recipe (pad 4 and crop, flips); grey inputs
    /// none, as tiny28's searches were measured (docs/design.md, "Data").
    pub fn search_default(channels: u32) -> Self {
        if channels == 3 {
            Augmentation {
                pad_crop: 4,
                flip: true,
            }
        } else {
            Augmentation::NONE
        }
    }

    /// Stand-alone training's default: pad 2 and crop on grey inputs (the
    /// recipe tiny28's figures were measured with), the CIFAR recipe on RGB.
    pub fn train_default(channels: u32) -> Self {
        if channels == 3 {
            Augmentation::search_default(channels)
        } else {
            Augmentation {
                pad_crop: 2,
                flip: false,
            }
        }
    }

    /// `maker` with this augmentation.
    pub(crate) fn on(self, maker: &BatchMaker) -> BatchMaker {
        BatchMaker {
            pad_crop: self.pad_crop,
            flip: self.flip,
            ..maker.clone()
        }
    }
}

/// How batches are made from bytes.
#[derive(Clone, Debug)]
pub struct BatchMaker {
    /// Per-channel mean subtracted after scaling to [0, 1].
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by.
    pub std: Vec<f32>,
    /// Random pad-and-crop: pad by this many pixels, crop back at a random offset.
    pub pad_crop: usize,
    /// Random horizontal flips.
    pub flip: bool,
}

impl BatchMaker {
    /// Normalisation from the data, with no augmentation.
    pub fn plain(data: &Dataset) -> Self {
        let (mean, std) = data.channel_stats();
        BatchMaker {
            mean,
            std,
            pad_crop: 0,
            flip: false,
        }
    }

    /// Builds the NCHW batch of `indices` with labels; augmentation (if any)
    /// draws from `rng`.
    pub fn batch<R: Rng + ?Sized>(
        &self,
        data: &Dataset,
        indices: &[usize],
        rng: &mut R,
    ) -> (Array4<f32>, Vec<usize>) {
        let (h, w, c) = (data.height, data.width, data.channels);
        let mut x = Array4::<f32>::zeros((indices.len(), c, h, w));
        let mut labels = Vec::with_capacity(indices.len());
        let pad = self.pad_crop as i64;
        for (b, &i) in indices.iter().enumerate() {
            let img = &data.pixels[i * h * w * c..(i + 1) * h * w * c];
            let (dy, dx) = if pad > 0 {
                (
                    rng.random_range(-pad..=pad) as isize,
                    rng.random_range(-pad..=pad) as isize,
                )
            } else {
                (0, 0)
            };
            let flip = self.flip && rng.random_bool(0.5);
            for ch in 0..c {
                let (m, s) = (self.mean[ch], self.std[ch]);
                // Padding is the normalised value of a black pixel.
                let fill = (0.0 - m) / s;
                for y in 0..h {
                    for xx in 0..w {
                        let sy = y as isize + dy;
                        let sx0 = if flip { w - 1 - xx } else { xx };
                        let sx = sx0 as isize + dx;
                        let v = if sy >= 0 && sy < h as isize && sx >= 0 && sx < w as isize {
                            let p = img[(sy as usize * w + sx as usize) * c + ch];
                            (p as f32 / 255.0 - m) / s
                        } else {
                            fill
                        };
                        x[[b, ch, y, xx]] = v;
                    }
                }
            }
            labels.push(data.labels[i] as usize);
        }
        (x, labels)
    }
}

/// Endless shuffled batches over a dataset: reshuffles at each epoch.
#[derive(Clone, Debug)]
pub(crate) struct BatchStream {
    order: Vec<usize>,
    position: usize,
    batch: usize,
    /// Completed passes over the data.
    pub(crate) epoch: usize,
}

impl BatchStream {
    /// A stream of `batch`-sized index lists over `len` items.
    pub(crate) fn new<R: Rng + ?Sized>(len: usize, batch: usize, rng: &mut R) -> Self {
        assert!(
            len >= batch && batch > 0,
            "batch {batch} larger than the data ({len})"
        );
        let mut order: Vec<usize> = (0..len).collect();
        order.shuffle(rng);
        BatchStream {
            order,
            position: 0,
            batch,
            epoch: 0,
        }
    }

    /// The next batch of indices (drops the ragged end of each epoch).
    pub(crate) fn next_indices<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Vec<usize> {
        if self.position + self.batch > self.order.len() {
            self.order.shuffle(rng);
            self.position = 0;
            self.epoch += 1;
        }
        let out = self.order[self.position..self.position + self.batch].to_vec();
        self.position += self.batch;
        out
    }

    /// Batches per epoch.
    pub(crate) fn batches_per_epoch(&self) -> usize {
        self.order.len() / self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx_images(n: u32, h: u32, w: u32) -> Vec<u8> {
        let mut b = vec![0, 0, 8, 3];
        for v in [n, h, w] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend((0..n * h * w).map(|i| (i % 251) as u8));
        b
    }

    #[test]
    fn idx_images_parse_and_truncation_is_reported() {
        let bytes = idx_images(3, 2, 2);
        let (n, h, w, px) = parse_idx_images(&bytes, "a").unwrap();
        assert_eq!((n, h, w), (3, 2, 2));
        assert_eq!(px, (0..12).collect::<Vec<u8>>());
        let err = parse_idx_images(&bytes[..bytes.len() - 1], "a").unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    expected: 12,
                    found: 11,
                    ..
                }
            ),
            "{err}"
        );
        let err = parse_idx_labels(&bytes, "a").unwrap_err();
        assert!(matches!(err, DataError::BadMagic { .. }), "{err}");
    }

    #[test]
    fn cifar_records_are_converted_to_hwc() {
        let mut rec = vec![7u8];
        rec.extend((0..3072).map(|i| (i / 1024) as u8 * 100));
        let d = parse_cifar10(&rec, "c").unwrap();
        assert_eq!(d.labels, vec![7]);
        assert_eq!(&d.pixels[..6], &[0, 100, 200, 0, 100, 200]);
        assert!(parse_cifar10(&rec[..100], "c").is_err());
    }

    #[test]
    fn batches_are_normalised_and_flip_mirrors() {
        let d = Dataset {
            height: 1,
            width: 2,
            channels: 1,
            classes: 10,
            pixels: vec![0, 255],
            labels: vec![3],
        };
        let mut maker = BatchMaker {
            mean: vec![0.5],
            std: vec![0.5],
            pad_crop: 0,
            flip: false,
        };
        let mut rng = rand::rng();
        let (x, y) = maker.batch(&d, &[0], &mut rng);
        assert_eq!(x.as_slice().unwrap(), &[-1.0, 1.0]);
        assert_eq!(y, vec![3]);
        maker.flip = true;
        let mut seen_flip = false;
        for _ in 0..64 {
            let (x, _) = maker.batch(&d, &[0], &mut rng);
            seen_flip |= x.as_slice().unwrap() == [1.0, -1.0];
        }
        assert!(seen_flip);
    }
}
