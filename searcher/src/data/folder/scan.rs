//! Listing an image folder: its layout, class folders and image files.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::cache::FileStamp;
use super::{FolderError, IMAGE_EXTENSIONS, MAX_CLASSES};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Part {
    Train,
    Test,
    /// Split later.
    Any,
}

pub(super) struct ImageFile {
    pub(super) path: PathBuf,
    pub(super) stamp: FileStamp,
    pub(super) class: usize,
    pub(super) part: Part,
}

/// One class folder of one part.
pub(super) struct ClassDir {
    pub(super) dir: PathBuf,
    pub(super) class: usize,
    pub(super) part: Part,
}

pub(super) struct Scan {
    pub(super) layout_is_split: bool,
    pub(super) classes: Vec<String>,
    pub(super) class_dirs: Vec<ClassDir>,
    pub(super) files: Vec<ImageFile>,
    pub(super) ignored: usize,
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

pub(super) fn has_image_extension(name: &str) -> bool {
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
    pub(super) fn new(dir: &Path) -> Result<Scan, FolderError> {
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
