//! The decoded-image cache of one folder at one target shape.
//!
//! A cache file is `MAGIC`, a little-endian `u32` format version, a
//! little-endian `u64` header length, a JSON [`CacheHeader`] and then the
//! pixels of every image that decoded, in header order. The header is the
//! key: the target shape and every image file's relative path, size and
//! modification time; a cache is used only when the key equals the folder's
//! key now, and the pixel bytes match their length and checksum.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ImageShape;

const MAGIC: &[u8; 14] = b"TUNASIMGCACHE\n";
const VERSION: u32 = 1;

/// One image file as the key sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FileStamp {
    /// Path relative to the folder, `/`-separated.
    pub(crate) key: String,
    /// Size in bytes.
    pub(crate) size: u64,
    /// Modification time: seconds since the Unix epoch (negative before).
    pub(crate) mtime_s: i64,
    /// Nanoseconds within that second.
    pub(crate) mtime_ns: u32,
}

/// A cache's key plus what became of each file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CacheHeader {
    target: ImageShape,
    files: Vec<FileStamp>,
    /// Per file: `None` if it decoded (its pixels are in the body), else
    /// why it did not.
    failures: Vec<Option<String>>,
    pixel_bytes: u64,
    pixel_fnv1a: u64,
}

/// Per file, its pixels or why it could not be decoded.
pub(super) type Decoded = Vec<Result<Vec<u8>, String>>;

/// FNV-1a, 64-bit: a checksum that needs no dependency and is stable
/// across platforms and versions.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The two places a folder's cache may live, in the order they are tried:
/// `DIR/.tunas-cache/`, then a folder under the system temp dir named by
/// a hash of the folder's canonical path.
pub(super) fn cache_paths(dir: &Path, target: ImageShape) -> [PathBuf; 2] {
    let name = format!(
        "images-{}x{}x{}.bin",
        target.height, target.width, target.channels
    );
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let hash = fnv1a(canonical.to_string_lossy().as_bytes());
    [
        dir.join(".tunas-cache").join(&name),
        std::env::temp_dir()
            .join("tunas-image-cache")
            .join(format!("{hash:016x}-{name}")),
    ]
}

/// Why a cache file was not used.
#[derive(Debug)]
pub(super) enum Miss {
    /// No cache file.
    Absent,
    /// The file is not a readable cache.
    Unreadable(String),
    /// A readable cache, for other files or another shape.
    Stale(String),
}

/// Reads the cache at `path` if its key is `files` at `target`.
pub(super) fn read(path: &Path, target: ImageShape, files: &[FileStamp]) -> Result<Decoded, Miss> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        // `NotADirectory`: `.tunas-cache` is a file, so the cache went to
        // the temp dir.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Err(Miss::Absent);
        }
        Err(e) => return Err(Miss::Unreadable(e.to_string())),
    };
    let header_end = MAGIC.len() + 12;
    if bytes.len() < header_end || &bytes[..MAGIC.len()] != MAGIC {
        return Err(Miss::Unreadable("not an image cache".into()));
    }
    let at = MAGIC.len();
    let version = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(Miss::Stale(format!(
            "cache format {version}, this version writes {VERSION}"
        )));
    }
    let len = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().expect("8 bytes"));
    let body_start = usize::try_from(len)
        .ok()
        .and_then(|l| header_end.checked_add(l))
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| Miss::Unreadable("truncated header".into()))?;
    let header: CacheHeader = serde_json::from_slice(&bytes[header_end..body_start])
        .map_err(|e| Miss::Unreadable(format!("corrupt header: {e}")))?;
    let body = &bytes[body_start..];
    let per_image = target.height * target.width * target.channels;
    let decoded_count = header.failures.iter().filter(|f| f.is_none()).count();
    if header.files.len() != header.failures.len()
        || body.len() as u64 != header.pixel_bytes
        || header.target.height * header.target.width * header.target.channels * decoded_count
            != body.len()
    {
        return Err(Miss::Unreadable(
            "truncated or inconsistent pixel data".into(),
        ));
    }
    if fnv1a(body) != header.pixel_fnv1a {
        return Err(Miss::Unreadable("pixel checksum mismatch".into()));
    }
    if header.target != target {
        return Err(Miss::Stale("made for another image size".into()));
    }
    if header.files != files {
        return Err(Miss::Stale(describe_change(&header.files, files)));
    }
    let mut out = Vec::with_capacity(files.len());
    let mut chunks = body.chunks_exact(per_image.max(1));
    for failure in header.failures {
        out.push(match failure {
            None => Ok(chunks.next().expect("counted above").to_vec()),
            Some(reason) => Err(reason),
        });
    }
    Ok(out)
}

fn describe_change(old: &[FileStamp], new: &[FileStamp]) -> String {
    use std::collections::HashMap;
    let old_by: HashMap<&str, &FileStamp> = old.iter().map(|f| (f.key.as_str(), f)).collect();
    let new_by: HashMap<&str, &FileStamp> = new.iter().map(|f| (f.key.as_str(), f)).collect();
    let added = new
        .iter()
        .filter(|f| !old_by.contains_key(f.key.as_str()))
        .count();
    let removed = old
        .iter()
        .filter(|f| !new_by.contains_key(f.key.as_str()))
        .count();
    let changed = new
        .iter()
        .filter(|f| old_by.get(f.key.as_str()).is_some_and(|o| o != f))
        .count();
    format!(
        "images changed since it was written ({added} added, {removed} removed, {changed} modified)"
    )
}

/// The bytes of a cache of `decoded` files.
pub(super) fn encode(target: ImageShape, files: &[FileStamp], decoded: &Decoded) -> Vec<u8> {
    let mut body = Vec::new();
    let mut failures = Vec::with_capacity(decoded.len());
    for d in decoded {
        match d {
            Ok(px) => {
                body.extend_from_slice(px);
                failures.push(None);
            }
            Err(reason) => failures.push(Some(reason.clone())),
        }
    }
    let header = CacheHeader {
        target,
        files: files.to_vec(),
        failures,
        pixel_bytes: body.len() as u64,
        pixel_fnv1a: fnv1a(&body),
    };
    let json = serde_json::to_vec(&header).expect("the header serialises");
    let mut out = Vec::with_capacity(MAGIC.len() + 12 + json.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&body);
    out
}

/// Writes the cache to the first place that takes it; returns that path,
/// or every place's error.
pub(super) fn write(places: &[PathBuf], bytes: &[u8]) -> Result<PathBuf, String> {
    let mut errors = Vec::new();
    for path in places {
        let attempt = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| tunas_shared::write_atomic(path, bytes));
        match attempt {
            Ok(()) => return Ok(path.clone()),
            Err(e) => errors.push(format!("{}: {e}", path.display())),
        }
    }
    Err(errors.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(key: &str, size: u64) -> FileStamp {
        FileStamp {
            key: key.into(),
            size,
            mtime_s: 1,
            mtime_ns: 2,
        }
    }

    #[test]
    fn round_trip_and_every_kind_of_miss() {
        let dir = std::env::temp_dir().join(format!("tunas-cache-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.bin");
        let target = ImageShape {
            height: 1,
            width: 2,
            channels: 1,
        };
        let files = vec![stamp("a/1.png", 10), stamp("a/2.png", 11)];
        let decoded: Decoded = vec![Ok(vec![1, 2]), Err("bad".into())];
        assert!(matches!(read(&path, target, &files), Err(Miss::Absent)));
        let bytes = encode(target, &files, &decoded);
        assert_eq!(write(std::slice::from_ref(&path), &bytes).unwrap(), path);
        assert_eq!(read(&path, target, &files).unwrap(), decoded);

        let other = vec![stamp("a/1.png", 10), stamp("a/2.png", 12)];
        match read(&path, target, &other) {
            Err(Miss::Stale(m)) => assert!(m.contains("1 modified"), "{m}"),
            r => panic!("{r:?}"),
        }
        let grey3 = ImageShape {
            channels: 3,
            ..target
        };
        assert!(matches!(read(&path, grey3, &files), Err(Miss::Stale(_))));

        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(
            read(&path, target, &files),
            Err(Miss::Unreadable(_))
        ));
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(matches!(
            read(&path, target, &files),
            Err(Miss::Unreadable(_))
        ));
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(
            read(&path, target, &files),
            Err(Miss::Unreadable(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
