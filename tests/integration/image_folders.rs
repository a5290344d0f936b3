//! Image folders as a data source: the repo's Fashion-MNIST subset written
//! out as PNG (and some JPEG) files must read back as the IDX files do; the
//! decode cache is reused and invalidated; colour images are resized; and
//! every kind of bad folder or file gets an error that names it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use image::codecs::jpeg::JpegEncoder;
use image::{GrayImage, Luma, Rgb, RgbImage};
use tunas_searcher::data::folder::{FolderLayout, FolderSummary};
use tunas_searcher::data::{
    DataFormat, Dataset, FolderData, FolderError, FolderOptions, ImageShape, load_any,
    load_idx_dir, load_image_folder, looks_like_image_folder,
};

fn subset_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../searcher/testdata/fashion-mnist-subset")
}

const GREY28: ImageShape = ImageShape {
    height: 28,
    width: 28,
    channels: 1,
};

fn class_name(label: u8) -> String {
    format!("class{label}")
}

fn image_of(d: &Dataset, i: usize) -> GrayImage {
    let n = d.height * d.width;
    GrayImage::from_raw(
        d.width as u32,
        d.height as u32,
        d.pixels[i * n..(i + 1) * n].to_vec(),
    )
    .unwrap()
}

fn save_jpeg(img: &GrayImage, path: &Path) {
    let mut out = fs::File::create(path).unwrap();
    JpegEncoder::new_with_quality(&mut out, 95)
        .encode_image(img)
        .unwrap();
}

/// Writes the first `count` images of `d` to `dir/<class>/NNNNN.png`
/// (every `jpeg_every`-th as `.jpg` instead, if set); returns the indices
/// in the order the folder loader reads them (by class, then by name).
fn write_images(d: &Dataset, count: usize, dir: &Path, jpeg_every: Option<usize>) -> Vec<usize> {
    for i in 0..count {
        let class_dir = dir.join(class_name(d.labels[i]));
        fs::create_dir_all(&class_dir).unwrap();
        let img = image_of(d, i);
        if jpeg_every.is_some_and(|k| i % k == 0) {
            save_jpeg(&img, &class_dir.join(format!("{i:05}.jpg")));
        } else {
            img.save(class_dir.join(format!("{i:05}.png"))).unwrap();
        }
    }
    let mut order: Vec<usize> = (0..count).collect();
    order.sort_by_key(|&i| d.labels[i]);
    order
}

fn load(dir: &Path, target: ImageShape) -> Result<FolderData, FolderError> {
    load_image_folder(dir, target, &FolderOptions::default())
}

fn skipping() -> FolderOptions {
    FolderOptions {
        skip_bad_images: true,
        ..FolderOptions::default()
    }
}

fn expect_err(dir: &Path, target: ImageShape) -> String {
    match load(dir, target) {
        Ok(f) => panic!("{} loaded: {:?}", dir.display(), f.summary),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "{p:?} is not in: {message}");
    }
}

/// A presplit folder of the subset: 300 train, 100 test images.
fn fashion_folder(root: &Path, jpeg_every: Option<usize>) -> (Dataset, Dataset) {
    let idx = load_idx_dir(&subset_dir()).unwrap();
    let train_order = write_images(&idx.train, 300, &root.join("train"), jpeg_every);
    let test_order = write_images(&idx.test, 100, &root.join("test"), jpeg_every);
    (idx.train.subset(&train_order), idx.test.subset(&test_order))
}

fn same_data(got: &Dataset, want: &Dataset) {
    assert_eq!(
        (got.height, got.width, got.channels, got.len()),
        (want.height, want.width, want.channels, want.len())
    );
    assert_eq!(got.labels, want.labels);
    let n = got.height * got.width * got.channels;
    for i in 0..got.len() {
        assert!(
            got.pixels[i * n..(i + 1) * n] == want.pixels[i * n..(i + 1) * n],
            "image {i} differs"
        );
    }
}

#[test]
fn png_folder_reads_exactly_what_the_idx_files_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = fashion_folder(tmp.path(), None);
    assert!(looks_like_image_folder(tmp.path()));
    assert!(!looks_like_image_folder(&subset_dir()));

    let f = load(tmp.path(), GREY28).unwrap();
    let classes: Vec<String> = (0..10).map(class_name).collect();
    assert_eq!(f.classes, classes);
    assert_eq!(f.summary.layout, FolderLayout::TrainTest);
    assert!(!f.summary.from_cache);
    assert!(f.summary.skipped.is_empty());
    assert_eq!(f.data.train.classes, 10);
    same_data(&f.data.train, &train);
    same_data(&f.data.test, &test);
    let cache = f.summary.cache_file.clone().expect("a cache was written");
    assert!(
        cache.starts_with(tmp.path().join(".tunas-cache")),
        "{}",
        cache.display()
    );

    // Detection picks the folder; the hidden cache folder is not a class.
    let any = load_any(
        tmp.path(),
        DataFormat::Auto,
        GREY28,
        &FolderOptions::default(),
    )
    .unwrap();
    assert_eq!(any.classes, classes);
    assert!(any.folder.as_ref().is_some_and(|s| s.from_cache));
    same_data(&any.data.train, &train);
}

#[test]
fn the_cache_is_reused_until_a_file_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, _) = fashion_folder(tmp.path(), None);
    let first = load(tmp.path(), GREY28).unwrap();
    assert!(!first.summary.from_cache);
    assert_mentions(&first.summary.notes.join("\n"), &["decoding 400 images"]);

    let second = load(tmp.path(), GREY28).unwrap();
    assert!(second.summary.from_cache, "{:?}", second.summary);
    assert!(
        second.summary.notes.is_empty(),
        "{:?}",
        second.summary.notes
    );
    same_data(&second.data.train, &train);
    same_data(&second.data.test, &first.data.test);

    // A file that is not an image is ignored and does not touch the key.
    fs::write(tmp.path().join("train/class0/notes.txt"), "hello").unwrap();
    let third = load(tmp.path(), GREY28).unwrap();
    assert!(third.summary.from_cache);
    assert_eq!(third.summary.ignored_entries, 1);

    // Rewrite the first train image as white: the cache is rebuilt and the
    // new pixels are read.
    let first_file = fs::read_dir(tmp.path().join("train/class0"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .min()
        .unwrap();
    GrayImage::from_pixel(28, 28, Luma([255]))
        .save(&first_file)
        .unwrap();
    let later = SystemTime::now() + Duration::from_secs(5);
    fs::File::options()
        .write(true)
        .open(&first_file)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let changed = load(tmp.path(), GREY28).unwrap();
    assert!(!changed.summary.from_cache);
    assert_mentions(
        &changed.summary.notes.join("\n"),
        &["out of date", "1 modified", "rebuilding"],
    );
    assert!(
        changed.data.train.pixels[..28 * 28]
            .iter()
            .all(|&p| p == 255)
    );
    assert_eq!(
        changed.data.train.pixels[28 * 28..],
        train.pixels[28 * 28..]
    );

    // Removing a file invalidates it too; then it is reused again.
    fs::remove_file(&first_file).unwrap();
    let removed = load(tmp.path(), GREY28).unwrap();
    assert!(!removed.summary.from_cache);
    assert_mentions(&removed.summary.notes.join("\n"), &["1 removed"]);
    assert_eq!(removed.data.train.len(), 299);
    assert!(load(tmp.path(), GREY28).unwrap().summary.from_cache);

    // Another target shape has its own cache.
    let rgb = ImageShape {
        height: 14,
        width: 14,
        channels: 3,
    };
    let small = load(tmp.path(), rgb).unwrap();
    assert!(!small.summary.from_cache);
    assert_eq!(small.data.train.pixels.len(), 299 * 14 * 14 * 3);
    assert!(load(tmp.path(), GREY28).unwrap().summary.from_cache);
}

#[test]
fn an_unreadable_cache_is_rebuilt_with_a_note() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, _) = fashion_folder(tmp.path(), None);
    let cache = load(tmp.path(), GREY28)
        .unwrap()
        .summary
        .cache_file
        .unwrap();
    for garbage in [
        b"not a cache at all".to_vec(),
        fs::read(&cache).unwrap()[..1000].to_vec(),
    ] {
        fs::write(&cache, garbage).unwrap();
        let f = load(tmp.path(), GREY28).unwrap();
        assert!(!f.summary.from_cache);
        assert_eq!(f.summary.notes.len(), 1, "{:?}", f.summary.notes);
        assert_mentions(&f.summary.notes[0], &["unreadable", "rebuilding"]);
        same_data(&f.data.train, &train);
        assert!(load(tmp.path(), GREY28).unwrap().summary.from_cache);
    }
}

#[test]
fn jpeg_images_load_close_to_their_source() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = fashion_folder(tmp.path(), Some(3));
    let f = load(tmp.path(), GREY28).unwrap();
    assert_eq!(f.data.train.labels, train.labels);
    assert_eq!(f.data.test.labels, test.labels);
    let n = 28 * 28;
    let mut exact = 0;
    for i in 0..train.len() {
        let (a, b) = (
            &f.data.train.pixels[i * n..(i + 1) * n],
            &train.pixels[i * n..(i + 1) * n],
        );
        let mean_abs = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - y as f64).abs())
            .sum::<f64>()
            / n as f64;
        assert!(mean_abs < 6.0, "image {i}: mean error {mean_abs}");
        exact += usize::from(a == b);
    }
    // The PNG two thirds are exact.
    assert!(exact >= 200, "{exact} exact");
}

/// `DIR/<class>/*` with `per_class` subset images in each of 10 classes.
fn unsplit_folder(root: &Path, per_class: usize) {
    let idx = load_idx_dir(&subset_dir()).unwrap();
    let mut written = [0usize; 10];
    for i in 0..idx.train.len() {
        let label = idx.train.labels[i] as usize;
        if written[label] < per_class {
            let dir = root.join(class_name(label as u8));
            fs::create_dir_all(&dir).unwrap();
            image_of(&idx.train, i)
                .save(dir.join(format!("{i:05}.png")))
                .unwrap();
            written[label] += 1;
        }
    }
}

#[test]
fn one_folder_is_split_per_class_by_the_seed() {
    let tmp = tempfile::tempdir().unwrap();
    unsplit_folder(tmp.path(), 12);
    let options = |seed| FolderOptions {
        split_seed: seed,
        ..FolderOptions::default()
    };
    let a = load_image_folder(tmp.path(), GREY28, &options(7)).unwrap();
    assert_eq!(
        a.summary.layout,
        FolderLayout::Split {
            seed: 7,
            test_fraction: 1.0 / 6.0
        }
    );
    assert_eq!((a.data.train.len(), a.data.test.len()), (100, 20));
    for class in 0..10u8 {
        let count = |d: &Dataset| d.labels.iter().filter(|&&l| l == class).count();
        assert_eq!((count(&a.data.train), count(&a.data.test)), (10, 2));
    }
    // The split is a function of the seed, not of the cache.
    let again = load_image_folder(tmp.path(), GREY28, &options(7)).unwrap();
    assert!(again.summary.from_cache);
    assert_eq!(again.data.test.pixels, a.data.test.pixels);
    let other = load_image_folder(tmp.path(), GREY28, &options(8)).unwrap();
    assert!(other.summary.from_cache);
    assert_ne!(other.data.test.pixels, a.data.test.pixels);
    assert_eq!(other.data.test.labels, a.data.test.labels);

    let half = FolderOptions {
        test_fraction: 0.5,
        ..options(7)
    };
    let h = load_image_folder(tmp.path(), GREY28, &half).unwrap();
    assert_eq!((h.data.train.len(), h.data.test.len()), (60, 60));
}

fn colour_image(w: u32, h: u32, rgb: [u8; 3]) -> RgbImage {
    RgbImage::from_pixel(w, h, Rgb(rgb))
}

#[test]
fn colour_images_of_any_size_are_resized_and_cropped() {
    let tmp = tempfile::tempdir().unwrap();
    let colours = [[200, 30, 10], [10, 180, 60]];
    for (c, rgb) in colours.iter().enumerate() {
        for part in ["train", "test"] {
            let dir = tmp.path().join(part).join(format!("colour{c}"));
            fs::create_dir_all(&dir).unwrap();
            // 40x30 as asked, and sizes that need up- and down-scaling.
            colour_image(40, 30, *rgb).save(dir.join("a.png")).unwrap();
            colour_image(30, 40, *rgb).save(dir.join("b.png")).unwrap();
            colour_image(9, 7, *rgb).save(dir.join("c.png")).unwrap();
            colour_image(300, 200, *rgb)
                .save(dir.join("d.jpg"))
                .unwrap();
        }
    }
    // A grey image in a colour set is replicated into three channels.
    GrayImage::from_pixel(20, 20, Luma([90]))
        .save(tmp.path().join("train/colour0/e.png"))
        .unwrap();
    let rgb32 = ImageShape {
        height: 32,
        width: 32,
        channels: 3,
    };
    let f = load(tmp.path(), rgb32).unwrap();
    let per = 32 * 32 * 3;
    assert_eq!((f.data.train.len(), f.data.test.len()), (9, 8));
    assert_eq!(f.data.train.pixels.len(), 9 * per);
    assert_eq!(f.data.train.labels, vec![0, 0, 0, 0, 0, 1, 1, 1, 1]);
    for (i, px) in f.data.train.pixels.chunks(per).enumerate() {
        let want = match i {
            0..4 => colours[0],
            4 => [90, 90, 90],
            _ => colours[1],
        };
        for p in px.chunks(3) {
            for ch in 0..3 {
                // JPEG may shift a flat colour by a few levels.
                assert!(
                    (p[ch] as i32 - want[ch] as i32).abs() <= 3,
                    "image {i}: {p:?} vs {want:?}"
                );
            }
        }
    }

    // The same folder as grey: Rec. 709 luma of the colour.
    let grey = load(
        tmp.path(),
        ImageShape {
            height: 16,
            width: 24,
            channels: 1,
        },
    )
    .unwrap();
    let luma = |c: [u8; 3]| 0.2126 * c[0] as f64 + 0.7152 * c[1] as f64 + 0.0722 * c[2] as f64;
    let first = grey.data.train.pixels[0] as f64;
    assert!((first - luma(colours[0])).abs() <= 1.0, "{first}");
    assert_eq!(grey.data.train.pixels.len(), 9 * 16 * 24);
}

#[test]
fn a_wide_image_keeps_its_centre() {
    // Left and right thirds black, centre white: cropped to a square, the
    // centre is what is left.
    let tmp = tempfile::tempdir().unwrap();
    for c in ["a", "b"] {
        for part in ["train", "test"] {
            let dir = tmp.path().join(part).join(c);
            fs::create_dir_all(&dir).unwrap();
            RgbImage::from_fn(90, 30, |x, _| {
                Rgb(if (30..60).contains(&x) {
                    [255; 3]
                } else {
                    [0; 3]
                })
            })
            .save(dir.join("wide.png"))
            .unwrap();
        }
    }
    let f = load(
        tmp.path(),
        ImageShape {
            height: 10,
            width: 10,
            channels: 3,
        },
    )
    .unwrap();
    let img = &f.data.train.pixels[..300];
    // The middle columns are white; the border columns are blurred by the
    // filter at most.
    for y in 0..10 {
        for x in 2..8 {
            assert_eq!(img[(y * 10 + x) * 3], 255, "({y}, {x})");
        }
    }
}

/// A small presplit folder: classes `a`, `b`, two PNGs each per part.
fn small_folder(root: &Path) {
    for part in ["train", "test"] {
        for class in ["a", "b"] {
            let dir = root.join(part).join(class);
            fs::create_dir_all(&dir).unwrap();
            for i in 0..2u8 {
                GrayImage::from_pixel(8, 8, Luma([i * 100]))
                    .save(dir.join(format!("{i}.png")))
                    .unwrap();
            }
        }
    }
}

const GREY8: ImageShape = ImageShape {
    height: 8,
    width: 8,
    channels: 1,
};

#[test]
fn corrupt_truncated_and_fake_images_are_named_or_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    small_folder(tmp.path());
    let good = fs::read(tmp.path().join("train/a/0.png")).unwrap();
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "truncated.png",
            good[..good.len() / 2].to_vec(),
            &["cannot decode", "corrupt or truncated"],
        ),
        (
            "corrupt.png",
            {
                let mut b = good.clone();
                let mid = b.len() / 2;
                for x in &mut b[mid - 4..mid + 4] {
                    *x ^= 0x5a;
                }
                b
            },
            &["cannot decode"],
        ),
        (
            "text.png",
            b"this is not a picture".to_vec(),
            &["not a PNG or JPEG image", "21 bytes"],
        ),
        ("empty.jpg", Vec::new(), &["not a PNG or JPEG image"]),
    ];
    for (name, bytes, wanted) in &cases {
        let path = tmp.path().join("train/b").join(name);
        fs::write(&path, bytes).unwrap();
        let msg = expect_err(tmp.path(), GREY8);
        assert_mentions(&msg, wanted);
        assert_mentions(
            &msg,
            &[
                &path.display().to_string(),
                "delete or replace the file",
                "skip bad images",
            ],
        );
        fs::remove_file(&path).unwrap();
    }

    // All at once, skipped: counted and listed, the rest loads.
    for (name, bytes, _) in &cases {
        fs::write(tmp.path().join("train/b").join(name), bytes).unwrap();
    }
    let f = load_image_folder(tmp.path(), GREY8, &skipping()).unwrap();
    assert_eq!(f.summary.skipped.len(), cases.len());
    let mut names: Vec<String> = f
        .summary
        .skipped
        .iter()
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["corrupt.png", "empty.jpg", "text.png", "truncated.png"]
    );
    assert!(f.summary.skipped.iter().all(|s| !s.reason.is_empty()));
    assert_eq!((f.data.train.len(), f.data.test.len()), (4, 4));

    // The cache remembers them: skipping again is a cache hit with the same
    // list, and not skipping reports the first bad file again.
    let again = load_image_folder(tmp.path(), GREY8, &skipping()).unwrap();
    assert!(again.summary.from_cache);
    assert_eq!(again.summary.skipped, f.summary.skipped);
    assert_mentions(&expect_err(tmp.path(), GREY8), &["corrupt.png"]);
}

#[test]
fn a_truncated_jpeg_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    small_folder(tmp.path());
    let path = tmp.path().join("test/a/cut.jpg");
    let img = GrayImage::from_fn(64, 64, |x, y| Luma([(x * 3 + y * 5) as u8]));
    save_jpeg(&img, &path);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let msg = expect_err(tmp.path(), GREY8);
    assert_mentions(&msg, &["cut.jpg", "cannot decode"]);
}

#[test]
fn a_class_with_only_bad_images_is_empty_even_when_skipping() {
    let tmp = tempfile::tempdir().unwrap();
    small_folder(tmp.path());
    for i in 0..2 {
        fs::write(tmp.path().join(format!("test/b/{i}.png")), "junk").unwrap();
    }
    let err = load_image_folder(tmp.path(), GREY8, &skipping()).unwrap_err();
    assert!(
        matches!(err, FolderError::EmptyClass { skipped: 2, .. }),
        "{err}"
    );
    assert_mentions(
        &err.to_string(),
        &[
            &tmp.path().join("test/b").display().to_string(),
            "2 skipped",
        ],
    );
}

#[test]
fn empty_and_missing_class_folders_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    small_folder(tmp.path());
    let empty = tmp.path().join("train/c");
    fs::create_dir_all(&empty).unwrap();
    fs::create_dir_all(tmp.path().join("test/c")).unwrap();
    fs::write(empty.join("readme.txt"), "no images here").unwrap();
    let msg = expect_err(tmp.path(), GREY8);
    assert_mentions(
        &msg,
        &[&empty.display().to_string(), "no usable PNG or JPEG image"],
    );

    // Remove it from test only: the classes differ, and both lists are named.
    fs::remove_dir_all(tmp.path().join("test/c")).unwrap();
    fs::create_dir_all(tmp.path().join("test/d")).unwrap();
    let err = load(tmp.path(), GREY8).unwrap_err();
    assert!(matches!(err, FolderError::ClassMismatch { .. }), "{err}");
    assert_mentions(
        &err.to_string(),
        &[
            "train has [a, b, c]",
            "test has [a, b, d]",
            "missing from test: [c]",
            "missing from train: [d]",
        ],
    );
}

#[test]
fn one_class_half_a_split_and_no_classes_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    small_folder(tmp.path());
    fs::remove_dir_all(tmp.path().join("train/b")).unwrap();
    fs::remove_dir_all(tmp.path().join("test/b")).unwrap();
    let msg = expect_err(tmp.path(), GREY8);
    assert_mentions(&msg, &["only one class folder (a)", "at least two"]);

    fs::remove_dir_all(tmp.path().join("test")).unwrap();
    let msg = expect_err(tmp.path(), GREY8);
    assert_mentions(&msg, &["has a train/ folder but no test/ folder"]);

    let bare = tempfile::tempdir().unwrap();
    fs::write(bare.path().join("x.png"), "loose file").unwrap();
    assert!(!looks_like_image_folder(bare.path()));
    assert_mentions(&expect_err(bare.path(), GREY8), &["no class folders"]);
    let err = load_any(
        bare.path(),
        DataFormat::Auto,
        GREY8,
        &FolderOptions::default(),
    )
    .unwrap_err();
    assert_mentions(&err.to_string(), &["no IDX files", "no class folders"]);
}

#[test]
fn a_class_of_one_image_cannot_be_split() {
    let tmp = tempfile::tempdir().unwrap();
    for (class, n) in [("a", 3u8), ("b", 1)] {
        let dir = tmp.path().join(class);
        fs::create_dir_all(&dir).unwrap();
        for i in 0..n {
            GrayImage::from_pixel(8, 8, Luma([i]))
                .save(dir.join(format!("{i}.png")))
                .unwrap();
        }
    }
    let msg = expect_err(tmp.path(), GREY8);
    assert_mentions(
        &msg,
        &[
            &tmp.path().join("b").display().to_string(),
            "only 1 usable image",
            "at least 2 per class",
        ],
    );
}

#[test]
fn bad_requests_are_refused_before_reading() {
    let tmp = tempfile::tempdir().unwrap();
    small_folder(tmp.path());
    let two = ImageShape {
        channels: 2,
        ..GREY8
    };
    assert_mentions(
        &expect_err(tmp.path(), two),
        &["8x8x2", "1 (grey) or 3 (RGB)"],
    );
    let bad = FolderOptions {
        test_fraction: 1.5,
        ..FolderOptions::default()
    };
    let err = load_image_folder(tmp.path(), GREY8, &bad).unwrap_err();
    assert_mentions(&err.to_string(), &["test fraction 1.5"]);
    // Nothing was decoded, so no cache exists yet.
    assert!(!tmp.path().join(".tunas-cache").exists());
}

#[test]
fn an_unwritable_cache_folder_falls_back_to_the_temp_dir() {
    // Root may write anywhere, so make `.tunas-cache` a file instead of a
    // read-only folder.
    let tmp = tempfile::tempdir().unwrap();
    small_folder(tmp.path());
    fs::write(tmp.path().join(".tunas-cache"), "in the way").unwrap();
    let first = load(tmp.path(), GREY8).unwrap();
    let cache = first.summary.cache_file.clone().unwrap();
    assert!(
        cache.starts_with(std::env::temp_dir()),
        "{}",
        cache.display()
    );
    assert!(!cache.starts_with(tmp.path()));
    let second = load(tmp.path(), GREY8).unwrap();
    assert!(second.summary.from_cache, "{:?}", second.summary);
    assert_eq!(second.summary.cache_file.as_ref(), Some(&cache));
    assert_eq!(second.data.train.pixels, first.data.train.pixels);
    fs::remove_file(&cache).unwrap();
}

#[test]
fn idx_data_comes_through_load_any_with_label_names() {
    let any = load_any(
        &subset_dir(),
        DataFormat::Auto,
        GREY28,
        &FolderOptions::default(),
    )
    .unwrap();
    assert!(any.folder.is_none());
    assert_eq!(
        any.classes,
        (0..10).map(|c| c.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(any.data.train.len(), 3000);
    // Asking for a folder where there is none names what was expected.
    let err = load_any(
        &subset_dir(),
        DataFormat::Folder,
        GREY28,
        &FolderOptions::default(),
    )
    .unwrap_err();
    assert_mentions(&err.to_string(), &["no class folders"]);
}

/// A summary is a plain value the caller can print.
#[test]
fn the_summary_says_where_the_cache_is() {
    let tmp = tempfile::tempdir().unwrap();
    small_folder(tmp.path());
    let s: FolderSummary = load(tmp.path(), GREY8).unwrap().summary;
    let cache = s.cache_file.unwrap();
    assert_eq!(cache.file_name().unwrap(), "images-8x8x1.bin");
    assert!(cache.exists());
}

/// The whole flow on a folder of colour photos: search and export through
/// the command line, with the class names in the exported file.
#[test]
fn search_and_export_run_on_a_colour_image_folder() {
    use std::process::Command;
    let root = tempfile::tempdir().unwrap();
    let photos = root.path().join("photos");
    // Three classes of 36x30 colour images: a tinted copy of the subset's
    // images (so there is something to learn), resized to tiny28's 28x28
    // grey input by the loader.
    let idx = load_idx_dir(&subset_dir()).unwrap();
    let names = ["boots", "coats", "shirts"];
    let labels = [9u8, 4, 6];
    for (name, label) in names.iter().zip(labels) {
        let dir = photos.join(name);
        fs::create_dir_all(&dir).unwrap();
        let mut n = 0;
        for i in 0..idx.train.len() {
            if idx.train.labels[i] != label || n == 60 {
                continue;
            }
            let grey = image_of(&idx.train, i);
            let img = RgbImage::from_fn(36, 30, |x, y| {
                let v = grey.get_pixel(x.min(27), y.min(27))[0];
                Rgb([v, v / 2, 255 - v])
            });
            img.save(dir.join(format!("{i:05}.png"))).unwrap();
            n += 1;
        }
    }
    let exe = crate::cli::binary("tunas-searcher");
    let run = root.path().join("run");
    let table =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tables/x86_64-amd-epyc-1t/tiny28.csv");
    let out = Command::new(&exe)
        .args(["search", "--table"])
        .arg(&table)
        .args([
            "--target-ms",
            "0.09",
            "--steps",
            "6",
            "--batch",
            "16",
            "--validation-batch",
            "16",
            "--quiet",
        ])
        .args(["--data-format", "folder", "--data"])
        .arg(&photos)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inputs: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run.join("inputs.json")).unwrap()).unwrap();
    assert_eq!(inputs["data_format"], "folder");
    let onnx = root.path().join("photos.onnx");
    let out = Command::new(&exe)
        .args(["export", "--quiet", "--calibration-batches", "2", "--run"])
        .arg(&run)
        .arg("--onnx")
        .arg(&onnx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = fs::read(&onnx).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    // tiny28 has 10 logits and the folder 3 classes: the names are written
    // only when they cover every logit, so here the metadata keeps its
    // numbered default; the architecture and space are always there.
    assert!(text.contains("tiny28"), "space name in the metadata");
    assert!(text.contains("input_range"), "input range in the metadata");

    // measure --table gives the estimate of the architecture the file records.
    if tunas_profiler::runtime::locate_runtime(None).is_err() {
        eprintln!("skipped measure: no ONNX Runtime library (cargo xtask setup provisions one)");
        return;
    }
    let result: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run.join("result.json")).unwrap()).unwrap();
    let out = Command::new(crate::cli::binary("tunas-profiler"))
        .args(["measure", "--json", "--quiet", "--model"])
        .arg(&onnx)
        .arg("--table")
        .arg(&table)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let est = m["estimate_ms"]
        .as_f64()
        .expect("an estimate beside the measurement");
    assert!((est - result["est_latency_ms"].as_f64().unwrap()).abs() < 1e-9);
    assert!(m["median_ms"].as_f64().unwrap() > 0.0);
}
