//! Profiling real devices, without a phone on the desk:
//!
//! - adb: the runner against `fake-adb` (`tests/bin/fake_adb.rs`), a test
//!   double of Android's adb that keeps each "phone" in a local folder and
//!   can drop the connection mid-run; a dropped run resumes with no
//!   duplicate and no re-measured row; all-adb profiles several phones and
//!   one failing does not stop the others.
//! - quoting: folder, file and serial names with spaces, quotes and `;`
//!   reach the device intact and run nothing.
//! - ssh: the runner against a real OpenSSH server started on 127.0.0.1.
//! - work folders: one another user could write (or a symbolic link) is
//!   refused, and a planted binary beside a forged hash marker is pushed
//!   over, never run (adb and ssh).
//! - cross builds: the aarch64 Linux profiler under qemu-user with the
//!   aarch64 ONNX Runtime from PyPI (timings under emulation mean nothing
//!   and are not looked at).
//! - refresh: only missing and stale rows are measured again.
//!
//! Tests that need sshd or qemu skip, saying why, when the tool is not
//! installed, unless `TUNAS_REQUIRE_DEVICE_TESTS=1` (set by `cargo xtask
//! test`, whose setup installs them): then a missing tool is a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::cli::binary;
use tunas_shared::{LatencyTable, builtin_space, space_op_keys};

/// Short timing loops: these tests check behaviour, never speed.
/// Quick timing settings: a table only has to exist and be complete.
pub(crate) const FAST: [&str; 9] = [
    "--warmup-runs=1",
    "--warmup-ms=0",
    "--runs=3",
    "--min-ms=0",
    "--network-runs=3",
    "--network-min-ms=0",
    "--calibration-networks=4",
    "--cooldown-s=0",
    "--quiet",
];

fn fake_adb() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fake-adb"))
}

fn runtime_available() -> bool {
    let ok = tunas_profiler::runtime::locate_runtime(None).is_ok();
    if !ok {
        eprintln!("skipped: no ONNX Runtime library (cargo xtask setup provisions one)");
    }
    ok
}

/// Whether a test may skip for a missing tool (not under `cargo xtask test`).
fn may_skip(reason: &str) -> bool {
    if std::env::var_os("TUNAS_REQUIRE_DEVICE_TESTS").is_some_and(|v| v == "1") {
        panic!("{reason}; `cargo xtask setup` installs it (TUNAS_REQUIRE_DEVICE_TESTS=1)");
    }
    eprintln!("skipped: {reason}");
    true
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn text(o: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The profiler with the fake adb's environment.
fn profiler_with_adb(root: &Path, devices: &str, drop: Option<String>) -> Command {
    let mut c = Command::new(binary("tunas-profiler"));
    c.env("ADB", fake_adb())
        .env("FAKE_ADB_ROOT", root)
        .env("FAKE_ADB_DEVICES", devices)
        .env_remove("FAKE_ADB_DROP")
        .stdin(Stdio::null());
    if let Some(d) = drop {
        c.env("FAKE_ADB_DROP", d);
    }
    c
}

/// Complete journal rows: key cells → measured_at.
fn journal_rows(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("op,") && !l.is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[..12].join(","), cells[18].to_string())
        })
        .collect()
}

fn first_keys(n: usize) -> Vec<String> {
    space_op_keys(&builtin_space("tiny28").unwrap(), 1)
        .iter()
        .take(n)
        .map(|k| k.cells().join(","))
        .collect()
}

fn table_keys(t: &LatencyTable) -> Vec<String> {
    t.rows.keys().map(|k| k.cells().join(",")).collect()
}

#[test]
fn adb_run_survives_a_dropped_connection_and_resumes_without_duplicates() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("phones");
    let out = dir.path().join("pixel.csv");
    let flag = dir.path().join("dropped-once");
    let args = [
        "profile",
        "--device",
        "adb",
        "--space",
        "tiny28",
        "--max-keys",
        "60",
        // A line for every new row: the drop below counts lines.
        "--progress-every=0",
        // No drift watch: on a loaded machine it throws rows away, and
        // the journal could then be empty when the connection drops.
        "--sentinel-every=0",
        "--out",
        out.to_str().unwrap(),
    ];
    // The connection drops after 10 lines of device output.
    let first = profiler_with_adb(
        &root,
        "FAKE0001=Pixel 7",
        Some(format!("FAKE0001:10:{}", flag.display())),
    )
    .args(args)
    .args(FAST)
    .output()
    .unwrap();
    assert!(!first.status.success(), "{}", text(&first));
    assert!(flag.exists(), "the drop did not happen: {}", text(&first));
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(err.contains("connection dropped"), "{err}");
    assert!(err.contains("run the same command again"), "{err}");
    // The journal stays on the phone, and a copy comes back.
    let remote_journal = root.join("FAKE0001/data/local/tmp/tunas/pixel.csv.partial");
    assert!(remote_journal.exists(), "{err}");
    let local_journal = dir.path().join("pixel.csv.partial");
    assert!(local_journal.exists(), "{err}");
    let before = journal_rows(&remote_journal);
    assert!(
        !before.is_empty(),
        "no row was measured before the drop; raise the drop line count"
    );
    assert!(!out.exists());
    // Progress was streamed back, prefixed with the device.
    assert!(err.contains("[adb:FAKE0001] progress: ops"), "{err}");

    // The same command again resumes on the phone.
    let second = profiler_with_adb(&root, "FAKE0001=Pixel 7", None)
        .args(args)
        .args(FAST)
        .output()
        .unwrap();
    assert!(second.status.success(), "{}", text(&second));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("resuming"), "{err}");
    let table = LatencyTable::read(&out).unwrap();
    assert_eq!(
        table_keys(&table),
        first_keys(60),
        "exactly the keys asked for"
    );
    for (key, measured_at) in &before {
        let row = table
            .rows
            .iter()
            .find(|(k, _)| k.cells().join(",") == *key)
            .unwrap_or_else(|| panic!("{key} vanished"));
        assert_eq!(&row.1.measured_at, measured_at, "{key} was re-measured");
    }
    assert_eq!(table.provenance.device, "adb:FAKE0001 (Pixel 7)");
    for field in ["x-before-temp-c", "x-after-governor", "x-sentinel"] {
        assert!(table.provenance.extra.contains_key(field), "{field}");
    }
    assert!(
        !local_journal.exists(),
        "the stale local journal copy is removed"
    );
    // The device run was pinned to the big cores, or says why it was not.
    assert!(
        table.provenance.pinning.contains("big"),
        "{}",
        table.provenance.pinning
    );
}

#[test]
fn remote_names_with_spaces_quotes_and_semicolons_run_nothing() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("phones");
    let remote_dir = dir.path().join("a b'; touch INJECTED; '");
    let out_dir = dir.path().join("out dir; $(touch INJECTED)");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("it's a table; `touch INJECTED`.csv");
    let space = dir.path().join("my space's; file.toml");
    let toml = Command::new(binary("tunas-profiler"))
        .args(["spaces", "--show", "tiny28"])
        .output()
        .unwrap();
    std::fs::write(&space, &toml.stdout).unwrap();
    // adb serials have no blanks; ${IFS} would be one if a shell ran it.
    let serial = "odd;touch${IFS}INJECTED;'$(touch${IFS}INJECTED)";
    let o = profiler_with_adb(&root, &format!("{serial}=Odd Phone"), None)
        .current_dir(dir.path())
        .args([
            "profile",
            "--device",
            &format!("adb:{serial}"),
            "--remote-dir",
            remote_dir.to_str().unwrap(),
            "--space",
            space.to_str().unwrap(),
            "--max-keys",
            "5",
            "--out",
            out.to_str().unwrap(),
        ])
        .args(FAST)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // Everything landed in the folder of that exact name...
    assert!(remote_dir.join("tunas-profiler").is_file(), "{}", text(&o));
    assert!(remote_dir.join("space.toml").is_file());
    assert!(
        remote_dir
            .join("it's a table; `touch INJECTED`.csv")
            .is_file()
    );
    let table = LatencyTable::read(&out).unwrap();
    assert_eq!(table.rows.len(), 5);
    assert_eq!(table.provenance.device, format!("adb:{serial} (Odd Phone)"));
    // ...and nothing ran: no INJECTED file anywhere.
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            assert_ne!(
                e.file_name(),
                "INJECTED",
                "a name ran as a command in {d:?}"
            );
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
}

#[test]
fn all_adb_profiles_every_phone_and_one_failure_does_not_stop_the_others() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("phones");
    let out = dir.path().join("tables");
    let flag = dir.path().join("dropped-once");
    let devices = "PHONE1=Pixel 7,PHONE2=Galaxy S23";
    let args = [
        "profile",
        "--device",
        "all-adb",
        "--space",
        "tiny28",
        "--max-keys",
        "30",
        // A line for every new row: the drop below counts lines.
        "--progress-every=0",
        // No drift watch (see the single-phone test above).
        "--sentinel-every=0",
        "--out",
        out.to_str().unwrap(),
    ];
    let first = profiler_with_adb(&root, devices, Some(format!("PHONE2:6:{}", flag.display())))
        .args(args)
        .args(FAST)
        .output()
        .unwrap();
    assert!(!first.status.success(), "{}", text(&first));
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(
        err.contains("1 of 2 device(s) finished (adb:PHONE1)"),
        "{err}"
    );
    assert!(err.contains("FAILED adb:PHONE2"), "{err}");
    let pixel = out.join("Pixel_7_PHONE1.csv");
    let galaxy = out.join("Galaxy_S23_PHONE2.csv");
    assert_eq!(LatencyTable::read(&pixel).unwrap().rows.len(), 30);
    assert!(!galaxy.exists());
    let pixel_before = std::fs::read_to_string(&pixel).unwrap();

    // Again: the failed phone resumes, the finished one is kept as it is.
    let second = profiler_with_adb(&root, devices, None)
        .args(args)
        .args(FAST)
        .output()
        .unwrap();
    assert!(second.status.success(), "{}", text(&second));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("2 of 2 device(s) finished"), "{err}");
    assert_eq!(std::fs::read_to_string(&pixel).unwrap(), pixel_before);
    let g = LatencyTable::read(&galaxy).unwrap();
    assert_eq!(g.rows.len(), 30);
    assert_eq!(g.provenance.device, "adb:PHONE2 (Galaxy S23)");
}

/// An OpenSSH server on a free port of 127.0.0.1, stopped on drop.
struct Sshd {
    child: std::process::Child,
    port: u16,
    key: PathBuf,
    user: String,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sshd(dir: &Path) -> Option<Sshd> {
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.exists() {
        may_skip("no OpenSSH server (/usr/sbin/sshd; Debian package openssh-server)");
        return None;
    }
    if Command::new("ssh").arg("-V").output().is_err() {
        may_skip("no OpenSSH client (ssh; Debian package openssh-client)");
        return None;
    }
    let keygen = |name: &str| {
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.join(name))
            .status()
            .unwrap()
            .success();
        assert!(ok, "ssh-keygen failed");
    };
    keygen("host_key");
    keygen("user_key");
    std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nPubkeyAuthentication yes\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nPermitRootLogin yes\n",
            d = dir.display()
        ),
    )
    .unwrap();
    if is_root() {
        // Privilege separation needs this folder (systemd makes it at boot).
        std::fs::create_dir_all("/run/sshd").unwrap();
    }
    let child = Command::new(sshd)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .args(["-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
        .spawn()
        .unwrap();
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_string();
    let server = Sshd {
        child,
        port,
        key: dir.join("user_key"),
        user,
    };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "sshd did not listen: {}",
            std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(server)
}

#[test]
fn ssh_runner_profiles_through_a_real_openssh_server() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(sshd) = start_sshd(dir.path()) else {
        return;
    };
    let remote_dir = dir.path().join("board home/tunas work");
    let out = dir.path().join("board.csv");
    let opts = format!(
        "-i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        sshd.key.display()
    );
    let device = format!("ssh:{}@127.0.0.1:{}", sshd.user, sshd.port);
    let o = Command::new(binary("tunas-profiler"))
        .env("TUNAS_SSH_OPTS", &opts)
        .stdin(Stdio::null())
        .args([
            "profile",
            "--device",
            &device,
            "--remote-dir",
            remote_dir.to_str().unwrap(),
            "--space",
            "tiny28",
            "--max-keys",
            "8",
            "--out",
            out.to_str().unwrap(),
        ])
        .args(FAST)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n--- sshd log\n{}",
        text(&o),
        std::fs::read_to_string(dir.path().join("sshd.log")).unwrap_or_default()
    );
    let table = LatencyTable::read(&out).unwrap();
    assert_eq!(table_keys(&table), first_keys(8));
    assert_eq!(table.provenance.device, device);
    assert!(remote_dir.join("tunas-profiler").is_file());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("[{device}] progress: ops")), "{err}");

    // A second run finds the binary and the runtime already there.
    let again = Command::new(binary("tunas-profiler"))
        .env("TUNAS_SSH_OPTS", &opts)
        .stdin(Stdio::null())
        .args([
            "profile",
            "--device",
            &device,
            "--remote-dir",
            remote_dir.to_str().unwrap(),
            "--space",
            "tiny28",
            "--max-keys",
            "3",
            "--force",
            "--out",
            out.to_str().unwrap(),
        ])
        .args(FAST)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        !String::from_utf8_lossy(&again.stderr).contains("pushing"),
        "{}",
        text(&again)
    );
}

#[test]
fn unreachable_ssh_host_says_which_device() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    if Command::new("ssh").arg("-V").output().is_err() && may_skip("no ssh client") {
        return;
    }
    let o = Command::new(binary("tunas-profiler"))
        .env("TUNAS_SSH_OPTS", "-o ConnectTimeout=5")
        .args([
            "profile",
            "--device",
            &format!("ssh:127.0.0.1:{port}"),
            "--space",
            "tiny28",
            "--out",
            dir.path().join("x.csv").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("ssh:127.0.0.1:{port}")), "{err}");
    assert!(err.contains("preparing the work folder"), "{err}");
}

/// `target/` of this build (the test runs from target/debug/deps).
fn target_root() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

const ARM_CPUINFO: &str = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n";

#[test]
fn cross_built_aarch64_profiler_runs_under_qemu() {
    let qemu = ["qemu-aarch64", "unshare"];
    for tool in qemu {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            may_skip(&format!(
                "{tool} is not installed (Debian packages qemu-user, util-linux)"
            ));
            return;
        }
    }
    if !Path::new("/usr/aarch64-linux-gnu/lib").is_dir() {
        may_skip("no aarch64 sysroot (Debian packages libc6-arm64-cross, libstdc++6-arm64-cross)");
        return;
    }
    let target = target_root();
    let bin = ["debug", "release"]
        .iter()
        .map(|p| {
            target
                .join("aarch64-unknown-linux-gnu")
                .join(p)
                .join("tunas-profiler")
        })
        .find(|p| p.is_file());
    let Some(bin) = bin else {
        may_skip("no aarch64 profiler build (cargo xtask cross aarch64-linux-gnu)");
        return;
    };
    let lib = std::fs::read_dir(target.join("onnxruntime-aarch64"))
        .ok()
        .and_then(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.to_string_lossy().contains("libonnxruntime.so"))
        });
    let Some(lib) = lib else {
        may_skip("no aarch64 ONNX Runtime in target/onnxruntime-aarch64 (cargo xtask setup)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cpuinfo = dir.path().join("cpuinfo");
    let two_cores: String = (0..2)
        .map(|n| ARM_CPUINFO.replace("processor\t: 0", &format!("processor\t: {n}")))
        .collect();
    std::fs::write(&cpuinfo, two_cores).unwrap();
    let out = dir.path().join("qemu.csv");
    // ONNX Runtime's CPU detection crashes on the host's x86 /proc/cpuinfo,
    // which qemu-user shows: give it an Arm one in a private mount
    // namespace.
    let mut c = Command::new("unshare");
    if !is_root() {
        c.arg("-r");
    }
    c.args([
        "-m",
        "sh",
        "-c",
        "mount --bind \"$1\" /proc/cpuinfo && shift && exec \"$@\"",
        "sh",
    ])
    .arg(&cpuinfo)
    .args(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"])
    .arg(&bin)
    .args([
        "profile",
        "--space",
        "tiny28",
        "--max-keys",
        "6",
        "--sentinel-every",
        "0",
        "--device-label",
        "qemu-aarch64 (emulated: timings are not device figures)",
        "--out",
    ])
    .arg(&out)
    .args(FAST)
    .env("ORT_DYLIB_PATH", &lib)
    .stdin(Stdio::null());
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let table = LatencyTable::read(&out).unwrap();
    assert_eq!(table_keys(&table), first_keys(6));
    let p = &table.provenance;
    assert!(p.cpu.contains("Arm CPU part 0xd0c"), "{}", p.cpu);
    assert!(
        p.runtime_version.starts_with("1.31"),
        "{}",
        p.runtime_version
    );
    assert!(p.device.contains("emulated"), "{}", p.device);
    assert!(
        table
            .rows
            .values()
            .all(|r| r.median_us.is_finite() && r.runs > 0)
    );
}

/// A synthetic tiny28 table whose provenance says it was measured here, with
/// the runtime this machine loads (so `refresh` keeps its rows).
fn table_as_if_from_this_machine(space: &tunas_shared::space::SearchSpace) -> LatencyTable {
    let lib = tunas_profiler::runtime::locate_runtime(None).unwrap();
    let version = tunas_profiler::runtime::init_runtime(&lib)
        .unwrap()
        .version()
        .to_string();
    let mut table = crate::tables::synthetic_table(space);
    table.provenance.cpu = tunas_profiler::device::cpu_description();
    table.provenance.runtime = "onnxruntime".into();
    table.provenance.runtime_version = version;
    table
}

#[test]
fn refresh_measures_only_missing_and_old_rows() {
    if !runtime_available() {
        return;
    }
    let space = builtin_space("tiny28").unwrap();
    let mut old = table_as_if_from_this_machine(&space);
    let keys: Vec<_> = old.rows.keys().copied().collect();
    let recent = tunas_shared::time::utc_now_rfc3339();
    for k in &keys {
        old.rows.get_mut(k).unwrap().measured_at = recent.clone();
    }
    for k in &keys[10..14] {
        old.rows.get_mut(k).unwrap().measured_at = "2001-01-01T00:00:00Z".into();
    }
    for k in &keys[100..103] {
        old.rows.remove(k);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.csv");
    old.write_atomic(&path).unwrap();
    let out = dir.path().join("new.csv");
    let o = Command::new(binary("tunas-profiler"))
        .args([
            "refresh",
            "--table",
            path.to_str().unwrap(),
            "--older-than",
            "30",
            "--out",
            out.to_str().unwrap(),
        ])
        .args(FAST)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("re-measured 7 rows (3 missing from the space, 0 for a new runtime version, 4 too old), kept 565"),
        "{err}"
    );
    let new = LatencyTable::read(&out).unwrap();
    assert_eq!(new.rows.len(), keys.len());
    let remeasured: Vec<_> = new
        .rows
        .iter()
        .filter(|(k, r)| {
            old.rows
                .get(k)
                .is_none_or(|o| o.measured_at != r.measured_at)
        })
        .map(|(k, _)| *k)
        .collect();
    let mut expected: Vec<_> = keys[10..14]
        .iter()
        .chain(&keys[100..103])
        .copied()
        .collect();
    expected.sort();
    assert_eq!(remeasured, expected);
    let note = &new.provenance.extra["x-refresh-001"];
    assert!(note.contains("re-measured 7 rows"), "{note}");
    assert!(new.provenance.extra.contains_key("x-calibration-mape-pct"));
    // A different runtime version re-measures everything: planned, not run.
    let (plan, counts) =
        tunas_profiler::refresh::plan_refresh(&new, &space, "9.99.0", None).unwrap();
    assert_eq!(counts.runtime_changed, keys.len());
    assert_eq!(plan.to_measure.len(), keys.len());
    // A changed space drops what it no longer has and measures what it gained.
    let other = builtin_space("proxylessnas").unwrap();
    let (plan, counts) = tunas_profiler::refresh::plan_refresh(
        &new,
        &other,
        &new.provenance.runtime_version.clone(),
        None,
    )
    .unwrap();
    assert_eq!(counts.dropped + counts.kept, keys.len());
    assert_eq!(
        plan.to_measure.len(),
        space_op_keys(&other, 1).len() - counts.kept
    );
    assert!(plan.extra["x-refresh-002"].contains("space tiny28"));
}

#[test]
fn sentinel_drift_remeasures_and_is_recorded() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.csv");
    // A threshold no timing stays within: every check drifts.
    let o = Command::new(binary("tunas-profiler"))
        .args([
            "profile",
            "--space",
            "tiny28",
            "--max-keys",
            "40",
            "--sentinel-every",
            "2",
            "--drift-threshold",
            "0.0001",
            "--out",
            out.to_str().unwrap(),
        ])
        .args(FAST)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let t = LatencyTable::read(&out).unwrap();
    assert_eq!(table_keys(&t), first_keys(40));
    let s = &t.provenance.extra["x-sentinel"];
    assert!(s.contains("drift(s)"), "{s}");
    assert!(s.contains("rows re-measured"), "{s}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("sentinel drifted"), "{err}");
    assert!(err.contains("sentinel:"), "{err}");
}

#[test]
fn refresh_runs_on_an_adb_device_too() {
    if !runtime_available() {
        return;
    }
    let space = builtin_space("tiny28").unwrap();
    // The fake phone is this machine: same CPU, same runtime.
    let mut old = table_as_if_from_this_machine(&space);
    let keys: Vec<_> = old.rows.keys().copied().collect();
    for k in &keys[..5] {
        old.rows.remove(k);
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("phones");
    let path = dir.path().join("phone.csv");
    old.write_atomic(&path).unwrap();
    let o = profiler_with_adb(&root, "FAKE0003=Pixel 8", None)
        .args([
            "refresh",
            "--device",
            "adb",
            "--table",
            path.to_str().unwrap(),
        ])
        .args(FAST)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("[adb:FAKE0003] refresh"), "{err}");
    assert!(err.contains("re-measured 5 rows (5 missing"), "{err}");
    let new = LatencyTable::read(&path).unwrap();
    assert_eq!(new.rows.len(), keys.len());
    assert_eq!(new.provenance.device, "adb:FAKE0003 (Pixel 8)");
    assert!(new.provenance.extra["x-refresh-001"].contains("re-measured 5 rows"));
    let kept = new
        .rows
        .iter()
        .filter(|(k, r)| {
            old.rows
                .get(k)
                .is_some_and(|o| o.measured_at == r.measured_at)
        })
        .count();
    assert_eq!(kept, keys.len() - 5);
}

/// A program named like the profiler that only leaves a mark when run: a
/// stand-in for what another user could plant in a shared work folder.
fn plant_profiler(folder: &Path, mark: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(folder).unwrap();
    let bin = folder.join("tunas-profiler");
    std::fs::write(&bin, format!("#!/bin/sh\ntouch '{}'\n", mark.display())).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn sha256_of(path: &Path) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(o.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Plants a fake profiler beside the `.sha256` marker earlier versions
/// trusted, forged to claim it is this build.
fn plant_profiler_with_forged_marker(folder: &Path, mark: &Path) {
    plant_profiler(folder, mark);
    set_mode(folder, 0o700);
    let real = sha256_of(&binary("tunas-profiler"));
    std::fs::write(folder.join("tunas-profiler.sha256"), format!("{real}\n")).unwrap();
}

/// What a refused work folder must look like afterwards: an error naming
/// the folder and the reason, and the planted program never run.
fn assert_refused(o: &Output, folder: &Path, reason: &str, mark: &Path) {
    assert!(!o.status.success(), "{}", text(o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("refusing the work folder"), "{err}");
    assert!(err.contains(reason), "{err}");
    assert!(
        err.contains(folder.file_name().unwrap().to_str().unwrap()),
        "{err}"
    );
    assert!(!mark.exists(), "the planted program ran: {err}");
}

#[test]
fn adb_work_folder_others_can_write_or_a_symlink_is_refused_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("phones");
    let work = root.join("FAKE0005/data/local/tmp/tunas");
    let mark = dir.path().join("PLANTED-PROGRAM-RAN");
    let out = dir.path().join("t.csv");
    let profile = |extra: &[&str]| {
        profiler_with_adb(&root, "FAKE0005=Pixel 6", None)
            .args(["profile", "--device", "adb", "--space", "tiny28"])
            .args(["--max-keys", "3", "--out", out.to_str().unwrap()])
            .args(extra)
            .args(FAST)
            .output()
            .unwrap()
    };
    // The default folder, made by another user and left writable to all.
    plant_profiler(&work, &mark);
    set_mode(&work, 0o777);
    assert_refused(&profile(&[]), &work, "can be written by other users", &mark);
    // Group-writable is refused too.
    set_mode(&work, 0o770);
    assert_refused(&profile(&[]), &work, "(mode drwxrwx---", &mark);

    // A symbolic link to a folder with a planted program.
    std::fs::remove_dir_all(&work).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    plant_profiler(&elsewhere, &mark);
    set_mode(&elsewhere, 0o700);
    std::os::unix::fs::symlink(&elsewhere, &work).unwrap();
    assert_refused(&profile(&[]), &work, "is a symbolic link", &mark);

    // --remote-dir gets the same checks.
    let chosen = dir.path().join("chosen");
    plant_profiler(&chosen, &mark);
    set_mode(&chosen, 0o757);
    let o = profile(&["--remote-dir", chosen.to_str().unwrap()]);
    assert_refused(&o, &chosen, "can be written by other users", &mark);
    assert!(!out.exists());
}

#[test]
fn adb_push_hashes_the_file_on_the_phone_and_ignores_a_forged_marker() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("phones");
    let work = root.join("FAKE0006/data/local/tmp/tunas");
    let mark = dir.path().join("PLANTED-PROGRAM-RAN");
    let out = dir.path().join("t.csv");
    plant_profiler_with_forged_marker(&work, &mark);
    let o = profiler_with_adb(&root, "FAKE0006=Pixel 6", None)
        .args(["profile", "--device", "adb", "--space", "tiny28"])
        .args(["--max-keys", "3", "--out", out.to_str().unwrap()])
        .args(FAST)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(!mark.exists(), "the planted program ran: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("pushing"), "{err}");
    assert_eq!(
        sha256_of(&work.join("tunas-profiler")),
        sha256_of(&binary("tunas-profiler"))
    );
    assert!(!work.join("tunas-profiler.sha256").exists());
    assert_eq!(LatencyTable::read(&out).unwrap().rows.len(), 3);
}

#[test]
fn ssh_work_folder_must_be_the_users_alone_and_pushes_are_hashed_on_the_board() {
    if !runtime_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(sshd) = start_sshd(dir.path()) else {
        return;
    };
    let opts = format!(
        "-i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        sshd.key.display()
    );
    let device = format!("ssh:{}@127.0.0.1:{}", sshd.user, sshd.port);
    let mark = dir.path().join("PLANTED-PROGRAM-RAN");
    let out = dir.path().join("board.csv");
    let profile = |work: &Path| {
        Command::new(binary("tunas-profiler"))
            .env("TUNAS_SSH_OPTS", &opts)
            .stdin(Stdio::null())
            .args(["profile", "--device", &device, "--space", "tiny28"])
            .args(["--remote-dir", work.to_str().unwrap()])
            .args(["--max-keys", "3", "--force", "--out", out.to_str().unwrap()])
            .args(FAST)
            .output()
            .unwrap()
    };
    // Another user's folder, writable to all (as /tmp/tunas-USER could be).
    let shared = dir.path().join("tunas-shared");
    plant_profiler(&shared, &mark);
    set_mode(&shared, 0o777);
    assert_refused(
        &profile(&shared),
        &shared,
        "can be written by other users",
        &mark,
    );

    // A symbolic link in its place.
    let link = dir.path().join("tunas-link");
    std::os::unix::fs::symlink(&shared, &link).unwrap();
    assert_refused(&profile(&link), &link, "is a symbolic link", &mark);

    // The user's own folder with a planted program and a forged marker:
    // pushed again, never run.
    let own = dir.path().join("tunas-own");
    plant_profiler_with_forged_marker(&own, &mark);
    let o = profile(&own);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!mark.exists(), "the planted program ran: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("pushing"));
    assert_eq!(
        sha256_of(&own.join("tunas-profiler")),
        sha256_of(&binary("tunas-profiler"))
    );
    assert_eq!(LatencyTable::read(&out).unwrap().rows.len(), 3);
}
