//! The work folder on the device: created for the login user alone, and
//! refused when it is a symbolic link or others could write it (the runner
//! executes the binary it finds there). The first command of a run also
//! reports the device's architecture and model.

use super::error::{RemoteError, tail};
use super::quote::shell_quote;
use super::transport::Transport;

/// The Android work folder (in /data/local/tmp, which the adb shell user
/// owns and can execute from).
pub(crate) const ANDROID_WORK_DIR: &str = "/data/local/tmp/tunas";
/// Defines `tunas_refuse REASON`, which prints `tunas-unsafe=DIR<TAB>REASON`
/// for the work folder `$d` and ends the script.
const REFUSE_FN: &str =
    "tunas_refuse() { printf 'tunas-unsafe=%s\\t%s\\n' \"$d\" \"$1\"; exit 0; }";

/// Refuses a work folder `$d` that is a symbolic link or not a folder
/// (checked before `mkdir -p`, which would follow a link).
const NO_LINK_CHECK: &str = "if [ -L \"$d\" ]; then tunas_refuse 'is a symbolic link'; fi; \
if [ -e \"$d\" ] && [ ! -d \"$d\" ]; then tunas_refuse 'is not a folder'; fi";

/// Checks the work folder `$d` before anything in it is used: the profiler
/// runs the binary it finds there, so a folder another user can write (or a
/// symbolic link to one) would run their program. `ls -ldn` is POSIX and
/// present in toybox, busybox and coreutils alike.
const WORK_DIR_CHECK: &str = "if [ -L \"$d\" ]; then tunas_refuse 'is a symbolic link'; fi; \
if [ ! -d \"$d\" ]; then tunas_refuse 'is not a folder'; fi; \
set -f; set -- $(ls -ldn \"$d\"); set +f; \
case \"$1\" in d????-??-*) ;; *) tunas_refuse \"can be written by other users (mode $1)\";; esac; \
if [ \"$3\" != \"$(id -u)\" ]; then tunas_refuse \"belongs to user id $3, not to this user ($(id -u))\"; fi";

/// Facts the first command on the device reports.
#[derive(Clone, Debug, Default)]
pub(super) struct Probe {
    pub dir: String,
    pub arch: String,
    pub model: String,
}

fn normalise_arch(arch: &str) -> &str {
    match arch {
        "arm64" | "armv8l" | "aarch64_be" => "aarch64",
        "amd64" => "x86_64",
        a => a,
    }
}

/// Creates (or checks) the work folder — `remote_dir`, else the default for
/// the device — and reports it with the device's architecture and model.
pub(super) fn prepare_work_dir(
    transport: &Transport,
    remote_dir: Option<&str>,
) -> Result<Probe, RemoteError> {
    let dir_script = match (remote_dir, transport.is_android()) {
        (Some(dir), _) => {
            // A leading '-' would read as an option.
            let dir = if dir.starts_with('-') {
                format!("./{dir}")
            } else {
                dir.to_string()
            };
            format!(
                "d={}; {NO_LINK_CHECK}; mkdir -p -m 700 \"$d\" || exit 1",
                shell_quote(&dir)
            )
        }
        (None, true) => format!(
            "d={}; {NO_LINK_CHECK}; mkdir -p -m 700 \"$d\" || exit 1",
            shell_quote(ANDROID_WORK_DIR)
        ),
        // Only the last folder gets mode 700 from `mkdir -p -m`; the
        // fallback in /tmp is where another user could have made it first.
        (None, false) => format!(
            "d=\"${{HOME:-/nonexistent}}/.cache/tunas\"; {NO_LINK_CHECK}; if ! mkdir -p -m 700 \"$d\" 2>/dev/null || [ ! -w \"$d\" ]; then d=\"/tmp/tunas-$(id -un)\"; {NO_LINK_CHECK}; mkdir -p -m 700 \"$d\" || exit 1; fi"
        ),
    };
    let script = format!(
        "{REFUSE_FN}; {dir_script}; {WORK_DIR_CHECK}; cd \"$d\" || exit 1; echo \"tunas-dir=$(pwd)\"; echo \"tunas-arch=$(uname -m)\"; echo \"tunas-model=$(getprop ro.product.model 2>/dev/null)\""
    );
    let out = transport.run(&script, "preparing the work folder")?;
    let mut probe = Probe::default();
    for line in out.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(v) = line.strip_prefix("tunas-unsafe=") {
            let (dir, reason) = v.split_once('\t').unwrap_or((v, "is not safe"));
            return Err(RemoteError::UnsafeWorkDir {
                device: transport.label(),
                dir: dir.to_string(),
                reason: reason.to_string(),
            });
        }
        if let Some(v) = line.strip_prefix("tunas-dir=") {
            probe.dir = v.to_string();
        } else if let Some(v) = line.strip_prefix("tunas-arch=") {
            probe.arch = normalise_arch(v.trim()).to_string();
        } else if let Some(v) = line.strip_prefix("tunas-model=") {
            probe.model = v.trim().to_string();
        }
    }
    if probe.dir.is_empty() || probe.arch.is_empty() {
        return Err(RemoteError::Command {
            device: transport.label(),
            what: "preparing the work folder".into(),
            status: "no answer".into(),
            output: tail(&out, 10),
        });
    }
    Ok(probe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    /// The work-folder script on this machine's `sh`: what it prints for `d`.
    fn check_work_dir(d: &Path) -> String {
        let script = format!(
            "{REFUSE_FN}; d={}; {NO_LINK_CHECK}; mkdir -p -m 700 \"$d\" || exit 1; {WORK_DIR_CHECK}; echo ok",
            shell_quote(&d.display().to_string())
        );
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn work_folder_check_refuses_what_others_could_write() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("new folder; $(x)");
        assert_eq!(check_work_dir(&fresh), "ok\n");
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "created for the user alone");
        // An existing folder of the user's without group/other write is kept.
        let kept = dir.path().join("kept");
        std::fs::create_dir(&kept).unwrap();
        std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(check_work_dir(&kept), "ok\n");
        for (mode, reason) in [(0o777, "(mode drwxrwxrwx"), (0o775, "(mode drwxrwxr-x")] {
            std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(mode)).unwrap();
            let out = check_work_dir(&kept);
            assert!(out.starts_with("tunas-unsafe="), "{out}");
            assert!(out.contains("can be written by other users"), "{out}");
            assert!(out.contains(reason), "{out}");
        }
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fresh, &link).unwrap();
        assert!(check_work_dir(&link).contains("\tis a symbolic link"));
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(check_work_dir(&file).contains("\tis not a folder"));
    }
}
