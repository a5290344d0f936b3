//! Saving and loading a supernet's tensors (and optimiser state) to one file.
//!
//! # Format
//!
//! ```text
//! "TUNASWT1"                 8 bytes, magic and format version
//! header length              u64, little-endian
//! header                     JSON (see below), `header length` bytes
//! data                       little-endian f32, tensor after tensor
//! ```
//!
//! The JSON header records the space (name and [content hash]), the
//! architecture the weights were trained for (if any), free-form metadata,
//! and for every tensor its name, shape and byte offset into the data (plus
//! the offsets of its optimiser state, when saved), the data length and an
//! FNV-1a 64 checksum of the data. Files are written atomically (temporary
//! file + rename), so a crash never leaves a half-written file behind.
//!
//! Loading checks everything before it changes anything: a missing tensor,
//! a tensor of another shape, an unknown tensor, a truncated or corrupt file
//! and a file made for another space are errors that name the file (and the
//! tensor), and the store is left as it was.
//!
//! [content hash]: tunas_shared::SearchSpace::content_hash
//!
//! ```
//! use tunas_searcher::supernet::Supernet;
//! use tunas_searcher::weights::{load_supernet, save_supernet};
//! use tunas_shared::{Architecture, builtin_space};
//!
//! let space = builtin_space("tiny28").unwrap();
//! let net = Supernet::new(&space, 1);
//! let dir = std::env::temp_dir().join(format!("tunas-weights-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("weights.bin");
//! save_supernet(&path, &net, Some(&Architecture::largest(&space)), serde_json::Value::Null).unwrap();
//! let mut other = Supernet::new(&space, 2);
//! let meta = load_supernet(&path, &mut other).unwrap();
//! assert_eq!(meta.space, "tiny28");
//! assert_eq!(other.store.tensors[0].value, net.store.tensors[0].value);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::collections::HashMap;
use std::path::Path;

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tunas_shared::Architecture;

use crate::optim::ParamState;
use crate::supernet::{ParamStore, Supernet};

/// First 8 bytes of every weights file (format version 1).
pub(crate) const MAGIC: &[u8; 8] = b"TUNASWT1";

/// A weights file could not be written or used.
#[derive(Debug, Error)]
pub enum WeightsError {
    /// The file could not be read or written.
    #[error("{path}: {action}: {message}")]
    Io {
        /// File path.
        path: String,
        /// `cannot read` or `cannot write`.
        action: &'static str,
        /// The system's message.
        message: String,
    },
    /// The file does not start with the weights magic.
    #[error("{path}: not a tunas-searcher weights file (it does not start with \"TUNASWT1\")")]
    NotWeights {
        /// File path.
        path: String,
    },
    /// The file ends before its header says it should.
    #[error("{path}: truncated: {what} should end at byte {expected}, the file has {found} bytes{}",
        tensor.as_ref().map(|t| format!(" (tensor '{t}' is cut off)")).unwrap_or_default())]
    Truncated {
        /// File path.
        path: String,
        /// The part that is cut off (`header`, `data`).
        what: &'static str,
        /// First tensor whose bytes are missing, if the header was readable.
        tensor: Option<String>,
        /// File length the header (or the format) calls for.
        expected: u64,
        /// File length found.
        found: u64,
    },
    /// The JSON header is unreadable or inconsistent.
    #[error("{path}: bad header: {message}")]
    BadHeader {
        /// File path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The data does not match its checksum.
    #[error(
        "{path}: corrupt: the data checksum is {found}, the header says {expected}; the file was damaged after it was written"
    )]
    Checksum {
        /// File path.
        path: String,
        /// Checksum in the header.
        expected: String,
        /// Checksum of the data read.
        found: String,
    },
    /// The file was written for another search space.
    #[error(
        "{path}: weights are for space '{file_space}' (hash {file_hash}), not '{space}' (hash {hash}); use the space the weights were trained in"
    )]
    SpaceMismatch {
        /// File path.
        path: String,
        /// Space name in the file.
        file_space: String,
        /// Space hash in the file.
        file_hash: String,
        /// Space name expected.
        space: String,
        /// Space hash expected.
        hash: String,
    },
    /// A tensor of the network is not in the file.
    #[error("{path}: tensor '{tensor}' is missing from the file")]
    MissingTensor {
        /// File path.
        path: String,
        /// Tensor name.
        tensor: String,
    },
    /// The file holds a tensor the network does not have.
    #[error("{path}: tensor '{tensor}' in the file is not part of this network")]
    UnknownTensor {
        /// File path.
        path: String,
        /// Tensor name.
        tensor: String,
    },
    /// A tensor has another shape in the file.
    #[error(
        "{path}: tensor '{tensor}' has shape {found:?} in the file, the network expects {expected:?}"
    )]
    ShapeMismatch {
        /// File path.
        path: String,
        /// Tensor name.
        tensor: String,
        /// Shape the network expects.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A tensor's optimiser state has a length that fits neither "empty" nor
    /// the tensor (a bug in whoever filled it).
    #[error(
        "{path}: tensor '{tensor}': optimiser state holds {found} values, expected 0 or {expected}"
    )]
    StateLength {
        /// File path.
        path: String,
        /// Tensor name.
        tensor: String,
        /// Length of the tensor.
        expected: usize,
        /// Length found.
        found: usize,
    },
}

/// What a weights file says about its tensors.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WeightsMeta {
    /// Name of the search space.
    pub space: String,
    /// [`tunas_shared::SearchSpace::content_hash`] of the space.
    pub(crate) space_hash: String,
    /// Compact text of the architecture the weights were trained for, if
    /// one (a stand-alone training run); `None` for a whole supernet.
    pub arch: Option<String>,
    /// Anything else the writer wants back (normalisation, step counters,
    /// controller state, ...).
    #[serde(default)]
    pub extra: serde_json::Value,
}

impl WeightsMeta {
    /// Metadata for `net`'s space, with an optional architecture.
    pub(crate) fn for_supernet(
        net: &Supernet,
        arch: Option<&Architecture>,
        extra: serde_json::Value,
    ) -> Self {
        WeightsMeta {
            space: net.space.name.clone(),
            space_hash: net.space.content_hash(),
            arch: arch.map(Architecture::to_compact),
            extra,
        }
    }
}

/// One tensor in the header. Offsets are in bytes from the start of the data.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TensorEntry {
    name: String,
    shape: Vec<usize>,
    offset: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state_first: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state_second: Option<u64>,
}

impl TensorEntry {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// End of the last of its blocks, in bytes from the start of the data.
    fn end(&self) -> u64 {
        let bytes = 4 * self.len() as u64;
        [Some(self.offset), self.state_first, self.state_second]
            .into_iter()
            .flatten()
            .map(|o| o + bytes)
            .max()
            .unwrap_or(self.offset)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Header {
    #[serde(flatten)]
    meta: WeightsMeta,
    tensors: Vec<TensorEntry>,
    data_bytes: u64,
    /// FNV-1a 64 of the data bytes, 16 hex digits.
    checksum: String,
}

/// FNV-1a 64-bit hash, hex: cheap and enough to catch damaged files.
fn fnv1a64_hex(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn push_f32s<'a>(data: &mut Vec<u8>, values: impl IntoIterator<Item = &'a f32>) -> u64 {
    let offset = data.len() as u64;
    for v in values {
        data.extend_from_slice(&v.to_le_bytes());
    }
    offset
}

fn encode(
    path: &Path,
    store: &ParamStore,
    meta: &WeightsMeta,
    with_state: bool,
) -> Result<Vec<u8>, WeightsError> {
    let mut data =
        Vec::with_capacity(4 * store.tensors.iter().map(|t| t.value.len()).sum::<usize>());
    let mut tensors = Vec::with_capacity(store.tensors.len());
    for t in &store.tensors {
        let offset = push_f32s(&mut data, t.value.iter());
        let mut state = |buf: &Vec<f32>| -> Result<Option<u64>, WeightsError> {
            if !with_state || buf.is_empty() {
                return Ok(None);
            }
            if buf.len() != t.value.len() {
                return Err(WeightsError::StateLength {
                    path: path.display().to_string(),
                    tensor: t.name.clone(),
                    expected: t.value.len(),
                    found: buf.len(),
                });
            }
            Ok(Some(push_f32s(&mut data, buf.iter())))
        };
        let state_first = state(&t.state.first)?;
        let state_second = state(&t.state.second)?;
        tensors.push(TensorEntry {
            name: t.name.clone(),
            shape: t.value.shape().to_vec(),
            offset,
            state_first,
            state_second,
        });
    }
    let header = Header {
        meta: meta.clone(),
        tensors,
        data_bytes: data.len() as u64,
        checksum: fnv1a64_hex(&data),
    };
    let json = serde_json::to_vec(&header).expect("a weights header always serialises");
    let mut out = Vec::with_capacity(16 + json.len() + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&data);
    Ok(out)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), WeightsError> {
    tunas_shared::write_atomic(path, bytes).map_err(|e| WeightsError::Io {
        path: path.display().to_string(),
        action: "cannot write",
        message: e.to_string(),
    })
}

/// Writes every tensor of `store` **and its optimiser state** (where a
/// tensor has any) to `path`, atomically. Use it for search checkpoints.
pub(crate) fn save_store(
    path: &Path,
    store: &ParamStore,
    meta: &WeightsMeta,
) -> Result<(), WeightsError> {
    write(path, &encode(path, store, meta, true)?)
}

/// Writes the values of every tensor of `net` (no optimiser state) to
/// `path`, atomically, recording the space, `arch` and `extra`.
pub fn save_supernet(
    path: &Path,
    net: &Supernet,
    arch: Option<&Architecture>,
    extra: serde_json::Value,
) -> Result<(), WeightsError> {
    let meta = WeightsMeta::for_supernet(net, arch, extra);
    write(path, &encode(path, &net.store, &meta, false)?)
}

/// A parsed weights file: header and data bytes.
struct WeightsFile {
    path: String,
    header: Header,
    data: Vec<u8>,
}

fn read_file(path: &Path) -> Result<WeightsFile, WeightsError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| WeightsError::Io {
        path: name.clone(),
        action: "cannot read",
        message: e.to_string(),
    })?;
    parse(bytes, name)
}

fn parse(mut bytes: Vec<u8>, path: String) -> Result<WeightsFile, WeightsError> {
    let (header, data_start) = parse_header(&bytes, &path)?;
    check_extent(&header, data_start, bytes.len() as u64, &path)?;
    let data = bytes.split_off(data_start as usize);
    let sum = fnv1a64_hex(&data);
    if sum != header.checksum {
        return Err(WeightsError::Checksum {
            path,
            expected: header.checksum,
            found: sum,
        });
    }
    Ok(WeightsFile { path, header, data })
}

/// Checks the magic and reads the JSON header; returns it with the offset
/// where the data starts.
fn parse_header(bytes: &[u8], path: &str) -> Result<(Header, u64), WeightsError> {
    let found = bytes.len() as u64;
    // A file shorter than the magic but starting like it is a truncated
    // weights file, not another kind of file.
    if bytes.is_empty() || !MAGIC.starts_with(&bytes[..bytes.len().min(MAGIC.len())]) {
        return Err(WeightsError::NotWeights {
            path: path.to_string(),
        });
    }
    if bytes.len() < 16 {
        return Err(WeightsError::Truncated {
            path: path.to_string(),
            what: "the header",
            tensor: None,
            expected: 16,
            found,
        });
    }
    let header_len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let data_start = 16u64.saturating_add(header_len);
    if data_start > found {
        return Err(WeightsError::Truncated {
            path: path.to_string(),
            what: "the header",
            tensor: None,
            expected: data_start,
            found,
        });
    }
    let header: Header = serde_json::from_slice(&bytes[16..data_start as usize]).map_err(|e| {
        WeightsError::BadHeader {
            path: path.to_string(),
            message: e.to_string(),
        }
    })?;
    Ok((header, data_start))
}

/// Checks that every tensor lies inside the data and that the data, from
/// `data_start`, fills the rest of the `found`-byte file exactly.
fn check_extent(
    header: &Header,
    data_start: u64,
    found: u64,
    path: &str,
) -> Result<(), WeightsError> {
    let bad = |message: String| WeightsError::BadHeader {
        path: path.to_string(),
        message,
    };
    for t in &header.tensors {
        if t.end() > header.data_bytes {
            return Err(bad(format!(
                "tensor '{}' ends at byte {} of the data, which has {}",
                t.name,
                t.end(),
                header.data_bytes
            )));
        }
    }
    let data_end = data_start.saturating_add(header.data_bytes);
    if data_end > found {
        let available = found - data_start;
        let tensor = header
            .tensors
            .iter()
            .filter(|t| t.end() > available)
            .min_by_key(|t| t.offset)
            .map(|t| t.name.clone());
        return Err(WeightsError::Truncated {
            path: path.to_string(),
            what: "the data",
            tensor,
            expected: data_end,
            found,
        });
    }
    if data_end < found {
        return Err(bad(format!(
            "{} bytes after the data; the file is not what its header describes",
            found - data_end
        )));
    }
    Ok(())
}

/// Reads only the metadata of a weights file (the whole file is checked).
pub fn read_meta(path: &Path) -> Result<WeightsMeta, WeightsError> {
    Ok(read_file(path)?.header.meta)
}

fn f32s(data: &[u8], offset: u64, len: usize) -> Vec<f32> {
    let start = offset as usize;
    data[start..start + 4 * len]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

impl WeightsFile {
    /// Copies the file's tensors into `store`, all or nothing.
    fn apply(&self, store: &mut ParamStore) -> Result<(), WeightsError> {
        let by_name: HashMap<&str, &TensorEntry> = self
            .header
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        let known: HashMap<&str, ()> = store
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), ()))
            .collect();
        if let Some(extra) = self
            .header
            .tensors
            .iter()
            .find(|t| !known.contains_key(t.name.as_str()))
        {
            return Err(WeightsError::UnknownTensor {
                path: self.path.clone(),
                tensor: extra.name.clone(),
            });
        }
        let mut loaded = Vec::with_capacity(store.tensors.len());
        for t in &store.tensors {
            let entry =
                by_name
                    .get(t.name.as_str())
                    .ok_or_else(|| WeightsError::MissingTensor {
                        path: self.path.clone(),
                        tensor: t.name.clone(),
                    })?;
            if entry.shape != t.value.shape() {
                return Err(WeightsError::ShapeMismatch {
                    path: self.path.clone(),
                    tensor: t.name.clone(),
                    expected: t.value.shape().to_vec(),
                    found: entry.shape.clone(),
                });
            }
            let len = entry.len();
            let value =
                ArrayD::from_shape_vec(entry.shape.clone(), f32s(&self.data, entry.offset, len))
                    .expect("length is the product of the shape");
            let buf = |o: Option<u64>| o.map(|o| f32s(&self.data, o, len)).unwrap_or_default();
            let state = ParamState {
                first: buf(entry.state_first),
                second: buf(entry.state_second),
            };
            loaded.push((value, state));
        }
        for (t, (value, state)) in store.tensors.iter_mut().zip(loaded) {
            t.value = value;
            t.state = state;
            t.grad = None;
        }
        Ok(())
    }
}

/// Loads every tensor of `store` (values, and optimiser state where the
/// file has it; none otherwise) from `path`. The file must hold exactly the
/// store's tensors, with the same shapes; on any error `store` is unchanged.
pub fn load_store(path: &Path, store: &mut ParamStore) -> Result<WeightsMeta, WeightsError> {
    let file = read_file(path)?;
    file.apply(store)?;
    Ok(file.header.meta)
}

/// Loads `net`'s tensors from `path`, after checking that the file was
/// written for the same space (by content hash).
pub fn load_supernet(path: &Path, net: &mut Supernet) -> Result<WeightsMeta, WeightsError> {
    let file = read_file(path)?;
    let hash = net.space.content_hash();
    if file.header.meta.space_hash != hash {
        return Err(WeightsError::SpaceMismatch {
            path: file.path,
            file_space: file.header.meta.space.clone(),
            file_hash: file.header.meta.space_hash.clone(),
            space: net.space.name.clone(),
            hash,
        });
    }
    file.apply(&mut net.store)?;
    Ok(file.header.meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Optimizer, Sgd};
    use tunas_shared::builtin_space;

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tunas-weights-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("w.bin")
    }

    fn net_with_state() -> Supernet {
        let space = builtin_space("tiny28").unwrap();
        let mut net = Supernet::new(&space, 4);
        let opt = Optimizer::Sgd(Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
            nesterov: true,
        });
        for t in net.store.tensors.iter_mut().take(5) {
            let g = t.value.mapv(|v| v * 0.5 + 0.25);
            opt.step(0.1, t.value.view_mut(), g.view(), &mut t.state);
        }
        net
    }

    #[test]
    fn store_with_state_round_trips_exactly() {
        let net = net_with_state();
        let path = tmp("state");
        let meta = WeightsMeta::for_supernet(&net, None, serde_json::json!({"step": 7}));
        save_store(&path, &net.store, &meta).unwrap();
        let mut other = Supernet::new(&net.space, 99);
        let back = load_store(&path, &mut other.store).unwrap();
        assert_eq!(back, meta);
        for (a, b) in net.store.tensors.iter().zip(&other.store.tensors) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.value, b.value, "{}", a.name);
            assert_eq!(a.state, b.state, "{}", a.name);
        }
        assert!(!other.store.tensors[0].state.first.is_empty());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn every_damage_is_reported_with_the_file_name() {
        let net = net_with_state();
        let path = tmp("damage");
        save_supernet(&path, &net, None, serde_json::Value::Null).unwrap();
        let good = std::fs::read(&path).unwrap();
        let name = path.display().to_string();
        let try_bytes = |bytes: &[u8]| {
            let mut other = Supernet::new(&net.space, 3);
            let before = other.store.tensors[0].value.clone();
            let err = parse(bytes.to_vec(), name.clone())
                .and_then(|f| f.apply(&mut other.store))
                .unwrap_err();
            assert_eq!(
                other.store.tensors[0].value, before,
                "store changed on error"
            );
            let text = err.to_string();
            assert!(text.contains(&name), "{text}");
            (err, text)
        };
        // Truncated data names the tensor that is cut off.
        let (err, text) = try_bytes(&good[..good.len() - 10]);
        assert!(
            matches!(
                err,
                WeightsError::Truncated {
                    tensor: Some(_),
                    ..
                }
            ),
            "{text}"
        );
        assert!(text.contains("classifier/bias"), "{text}");
        // Truncated header.
        let (err, _) = try_bytes(&good[..20]);
        assert!(matches!(err, WeightsError::Truncated { tensor: None, .. }));
        // A flipped data byte.
        let mut flipped = good.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 0x40;
        let (err, _) = try_bytes(&flipped);
        assert!(matches!(err, WeightsError::Checksum { .. }));
        // Not a weights file at all.
        let (err, _) = try_bytes(b"P\x03\x04 not weights");
        assert!(matches!(err, WeightsError::NotWeights { .. }));
        // A network without one of the file's tensors, and vice versa.
        let mut fewer = Supernet::new(&net.space, 3);
        let dropped = fewer.store.tensors.pop().unwrap().name;
        let err = load_store(&path, &mut fewer.store).unwrap_err();
        assert!(
            matches!(&err, WeightsError::UnknownTensor { tensor, .. } if *tensor == dropped),
            "{err}"
        );
        let mut more = Supernet::new(&net.space, 3);
        let mut extra = more.store.tensors[0].clone();
        extra.name = "extra/weight".into();
        more.store.tensors.push(extra);
        let err = load_store(&path, &mut more.store).unwrap_err();
        assert!(
            err.to_string().contains("'extra/weight' is missing"),
            "{err}"
        );
        // A tensor with another shape.
        let mut reshaped = Supernet::new(&net.space, 3);
        let t = &mut reshaped.store.tensors[1];
        t.value = ArrayD::zeros(vec![t.value.len() + 1]);
        let err = load_store(&path, &mut reshaped.store).unwrap_err();
        assert!(matches!(err, WeightsError::ShapeMismatch { .. }), "{err}");
        assert!(err.to_string().contains(&reshaped.store.tensors[1].name));
        // Another space (same tensors, other content hash).
        let mut changed = Supernet::new(&net.space, 3);
        changed.space.input.classes += 1;
        let err = load_supernet(&path, &mut changed).unwrap_err();
        assert!(matches!(err, WeightsError::SpaceMismatch { .. }), "{err}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
