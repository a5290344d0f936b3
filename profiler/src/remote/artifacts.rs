//! What a run puts on the device: the profiler build and the ONNX Runtime
//! library for its architecture (found beside this executable's target
//! folder unless given), pushed only when the device lacks the same bytes.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::{RemoteError, io_error};
use super::quote::shell_quote;
use super::run::RemoteRun;

/// The target folder this executable was built into (`target/`), if it
/// looks like one.
fn target_root() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?;
    let root = profile_dir.parent()?;
    // target/debug/x or target/<triple>/debug/x
    if root.join("debug").is_dir() || root.join("release").is_dir() {
        Some(root.to_path_buf())
    } else {
        None
    }
}

fn sha256_hex(path: &Path) -> Result<String, RemoteError> {
    let mut file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| io_error(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

impl RemoteRun {
    /// The profiler build for a device of `arch`: the one given, this
    /// executable on a device like this machine, else a cross build in
    /// this target folder.
    pub(super) fn device_binary(&self, arch: &str) -> Result<PathBuf, RemoteError> {
        if let Some(p) = &self.device_binary {
            return Ok(p.clone());
        }
        if arch == std::env::consts::ARCH {
            return std::env::current_exe().map_err(|e| io_error(Path::new("tunas-profiler"), e));
        }
        let triple = if self.transport.is_android() {
            format!("{arch}-linux-android")
        } else {
            format!("{arch}-unknown-linux-gnu")
        };
        if let Some(root) = target_root() {
            for profile in ["release", "debug"] {
                let p = root.join(&triple).join(profile).join("tunas-profiler");
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        Err(RemoteError::NoDeviceBinary {
            device: self.transport.label(),
            arch: arch.into(),
            advice: if self.transport.is_android() {
                "build one with `cargo xtask android` (needs ANDROID_NDK_HOME; see the README, \"Profile your phone\")".into()
            } else if arch == "aarch64" {
                "build one with `cargo xtask cross aarch64-linux-gnu`".into()
            } else {
                format!("build the profiler for {triple}")
            },
        })
    }

    /// `libonnxruntime.so` for a device of `arch`: the one given, this
    /// machine's for a device like it, else one unpacked in this target
    /// folder.
    pub(super) fn device_ort_lib(&self, arch: &str) -> Result<PathBuf, RemoteError> {
        if let Some(p) = &self.device_ort_lib {
            return Ok(p.clone());
        }
        // This machine's architecture and this executable: an ssh host like
        // this one, an emulator or a test double; this runtime matches.
        if arch == std::env::consts::ARCH
            && (self.device_binary.is_none() || !self.transport.is_android())
            && let Ok(lib) = crate::runtime::locate_runtime(self.local_ort_lib.as_deref())
        {
            return Ok(lib.path);
        }
        let folder = if self.transport.is_android() {
            "onnxruntime-android".to_string()
        } else {
            format!("onnxruntime-{arch}")
        };
        if let Some(root) = target_root()
            && let Ok(entries) = std::fs::read_dir(root.join(&folder))
        {
            let mut libs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("libonnxruntime.so"))
                })
                .collect();
            libs.sort();
            if let Some(lib) = libs.pop() {
                return Ok(lib);
            }
        }
        Err(RemoteError::NoDeviceRuntime {
            device: self.transport.label(),
            arch: arch.into(),
            advice: if self.transport.is_android() {
                "unzip jni/arm64-v8a/libonnxruntime.so from the onnxruntime-android AAR (Maven Central, com.microsoft.onnxruntime:onnxruntime-android; see the README)".into()
            } else {
                format!(
                    "take onnxruntime/capi/libonnxruntime.so.* from the PyPI wheel (`pip download --no-deps --only-binary=:all: --platform manylinux_2_28_{} --python-version 3.11 onnxruntime=={}`)",
                    arch,
                    crate::runtime::ORT_RELEASE
                )
            },
        })
    }

    /// Pushes `local` to `remote` unless the file there has the same
    /// SHA-256, computed on the device (`sha256sum`, in toybox, busybox and
    /// coreutils): a marker file beside it could be forged, the content
    /// cannot. Without `sha256sum` the file is pushed every time.
    pub(super) fn push_once(
        &self,
        local: &Path,
        remote: &str,
        log: &(dyn Fn(&str) + Sync),
    ) -> Result<(), RemoteError> {
        let hash = sha256_hex(local)?;
        let there = self
            .transport
            .run(
                &format!(
                    "if [ -f {q} ] && [ ! -L {q} ]; then sha256sum {q} 2>/dev/null; fi; true",
                    q = shell_quote(remote)
                ),
                "checking what is on the device",
            )
            .unwrap_or_default();
        let there = there.split_whitespace().next().unwrap_or_default();
        if there.eq_ignore_ascii_case(&hash) {
            return Ok(());
        }
        log(&format!("pushing {} to {remote}", local.display()));
        // A symbolic link in its place would send the push elsewhere.
        self.transport.run(
            &format!("rm -f {}", shell_quote(remote)),
            "replacing the file on the device",
        )?;
        self.transport.push(local, remote)?;
        self.transport.run(
            &format!(
                "chmod 755 {} && rm -f {}",
                shell_quote(remote),
                // The marker earlier versions trusted.
                shell_quote(&format!("{remote}.sha256"))
            ),
            "marking the pushed file executable",
        )?;
        Ok(())
    }
}
