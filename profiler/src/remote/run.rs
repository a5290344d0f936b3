//! The run protocol: one run of the profiler on a device. The work folder
//! is prepared, the profiler and runtime pushed, a run cut off earlier is
//! stopped and resumed, the typed request shipped as a file
//! ([`DeviceRequest`]), the device's output streamed line by line, and its
//! typed result and the table pulled back.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tunas_shared::LatencyTable;

use super::error::{RemoteError, io_error, start_error, tail};
use super::protocol::{DeviceRequest, DeviceResult, result_path};
use super::quote::{shell_quote, shell_words};
use super::transport::Transport;
use super::workdir::prepare_work_dir;
use crate::partial::journal_path;

/// One run of the profiler on a remote device.
#[derive(Clone, Debug)]
pub struct RemoteRun {
    /// How to reach the device.
    pub transport: Transport,
    /// What to run, as the user asked for it here: its space (a built-in
    /// name, or a local `.toml` file, pushed to the device) and files are
    /// this machine's; [`DeviceRequest::on_device`] moves them.
    pub request: DeviceRequest,
    /// Where the table lands on this machine.
    pub out: PathBuf,
    /// The work folder on the device (default: `/data/local/tmp/tunas` on
    /// Android; `~/.cache/tunas`, else `/tmp/tunas-USER` over ssh).
    pub remote_dir: Option<String>,
    /// The profiler build for the device (default: this executable when the
    /// device has this machine's architecture).
    pub device_binary: Option<PathBuf>,
    /// `libonnxruntime.so` for the device (default: this machine's when the
    /// architecture matches).
    pub device_ort_lib: Option<PathBuf>,
    /// This machine's runtime, for a same-architecture device.
    pub local_ort_lib: Option<PathBuf>,
}

/// The outcome of a finished remote run.
#[derive(Clone, Debug)]
pub struct RemoteReport {
    /// Device label, e.g. `adb:SERIAL (Pixel 7)`.
    pub device: String,
    /// The table written here.
    pub out: PathBuf,
    /// Rows in it.
    pub rows: usize,
    /// Whether an interrupted run on the device was resumed.
    pub resumed: bool,
    /// The device's work folder.
    pub remote_dir: String,
    /// The table was already here (all-adb without --force): not measured.
    pub skipped: bool,
}

/// The files of one run in the device's work folder.
struct DeviceFiles {
    /// The work folder, without a trailing '/' (unless it is `/`).
    dir: String,
    /// The profiler build.
    bin: String,
    /// The ONNX Runtime library.
    lib: String,
    /// The table, named as the local one.
    table: String,
    /// The table's measurement journal.
    journal: String,
    /// The process id of the profiler while it runs.
    pidfile: String,
    /// The request the profiler runs.
    request: String,
    /// Its result, written by the profiler when it ends.
    result: String,
}

impl DeviceFiles {
    /// The files in the work folder `dir` for the runtime library `lib`
    /// and the local table `out`.
    fn new(dir: &str, lib: &Path, out: &Path) -> Self {
        let dir = dir.trim_end_matches('/').to_string();
        let dir = if dir.is_empty() { "/".to_string() } else { dir };
        let lib_name = lib
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("libonnxruntime.so");
        let table_name = out
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("table.csv");
        let table = in_dir(&dir, table_name);
        DeviceFiles {
            bin: in_dir(&dir, "tunas-profiler"),
            lib: in_dir(&dir, lib_name),
            journal: format!("{table}.partial"),
            pidfile: format!("{table}.pid"),
            request: format!("{table}.request.json"),
            result: result_path(Path::new(&format!("{table}.request.json")))
                .display()
                .to_string(),
            table,
            dir,
        }
    }

    /// `name` in the work folder.
    fn path(&self, name: &str) -> String {
        in_dir(&self.dir, name)
    }

    /// `path` relative to the work folder when it is in it (a built-in
    /// space name passes unchanged).
    fn relative<'a>(&self, path: &'a str) -> &'a str {
        path.strip_prefix(&self.dir)
            .and_then(|rest| rest.strip_prefix('/'))
            .unwrap_or(path)
    }
}

/// `name` in the folder `dir`.
fn in_dir(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// What the device's run left: its last output lines and the transport's
/// own messages.
struct Streamed {
    recent: Vec<String>,
    transport_stderr: String,
    status: String,
}

impl RemoteRun {
    /// Runs the profiler on the device and pulls the table. `log` receives
    /// progress and the device's output, one line at a time.
    pub fn execute(&self, log: &(dyn Fn(&str) + Sync)) -> Result<RemoteReport, RemoteError> {
        let probe = prepare_work_dir(&self.transport, self.remote_dir.as_deref())?;
        let label = self.transport.label();
        let device_label = if probe.model.is_empty() {
            label.clone()
        } else {
            format!("{label} ({})", probe.model)
        };
        log(&format!(
            "{device_label}: {} device, work folder {}",
            probe.arch, probe.dir
        ));
        let binary = self.device_binary(&probe.arch)?;
        let lib = self.device_ort_lib(&probe.arch)?;
        let files = DeviceFiles::new(&probe.dir, &lib, &self.out);
        self.push_once(&binary, &files.bin, log)?;
        self.push_once(&lib, &files.lib, log)?;
        let space = self.push_space(&files)?;
        let resumed = self.stop_interrupted_run(&files)?;
        let words = self.ship_request(&files, &space, &device_label, resumed)?;
        if resumed {
            log(&format!(
                "{device_label}: resuming the interrupted run in {}",
                files.journal
            ));
        }
        let streamed = self.stream(&files, &words, &label, log)?;
        self.check_result(streamed, &files, &device_label)?;
        self.fetch_table(&files, device_label, resumed)
    }

    /// `--space` for the device: a local `.toml` file is pushed to the work
    /// folder, a built-in name passes as it is.
    fn push_space(&self, files: &DeviceFiles) -> Result<String, RemoteError> {
        let space = self.request.space().unwrap_or_default();
        if Path::new(space).is_file() {
            let r = files.path("space.toml");
            self.transport.push(Path::new(space), &r)?;
            Ok(r)
        } else {
            Ok(space.to_string())
        }
    }

    /// A run cut off by a dropped connection may still be alive on the
    /// device: stops it (only if it is a tunas-profiler), so that one
    /// process at a time appends to the journal. Returns whether a journal
    /// is there to resume.
    fn stop_interrupted_run(&self, files: &DeviceFiles) -> Result<bool, RemoteError> {
        let state = self.transport.run(
            &format!(
                "p={}; if [ -f \"$p\" ]; then pid=$(cat \"$p\"); if grep -q tunas-profiler \"/proc/$pid/cmdline\" 2>/dev/null; then kill \"$pid\" 2>/dev/null; sleep 1; fi; rm -f \"$p\"; fi; if [ -f {} ]; then echo tunas-journal; fi",
                shell_quote(&files.pidfile),
                shell_quote(&files.journal)
            ),
            "checking for an interrupted run",
        )?;
        Ok(state.lines().any(|l| l.trim() == "tunas-journal"))
    }

    /// Ships the request to the device (and, for a refresh that does not
    /// resume, the table to refresh) and returns the profiler's command
    /// line there: the program, `run-request` and the request file.
    fn ship_request(
        &self,
        files: &DeviceFiles,
        space: &str,
        device_label: &str,
        resumed: bool,
    ) -> Result<Vec<String>, RemoteError> {
        if let DeviceRequest::Refresh(r) = &self.request
            && !resumed
        {
            self.transport.push(&r.table, &files.table)?;
        }
        // Paths inside the request are relative to the work folder the
        // profiler runs in, so they hold wherever the device mounts it.
        let on_device = self.request.on_device(
            files.relative(space),
            files.relative(&files.table),
            files.relative(&files.lib),
            device_label,
            resumed,
        );
        let mut local = self.out.as_os_str().to_owned();
        local.push(".request.json");
        let local = PathBuf::from(local);
        on_device.write(&local)?;
        let pushed = self.transport.push(&local, &files.request);
        let _ = std::fs::remove_file(&local);
        pushed?;
        Ok(vec![
            files.bin.clone(),
            "run-request".into(),
            files.request.clone(),
        ])
    }

    /// Runs `words` in the work folder, passing every output line to `log`
    /// (prefixed with `[label]`) until the device's shell ends. A result
    /// left by an earlier attempt is removed first.
    fn stream(
        &self,
        files: &DeviceFiles,
        words: &[String],
        label: &str,
        log: &(dyn Fn(&str) + Sync),
    ) -> Result<Streamed, RemoteError> {
        let script = format!(
            "cd {} || exit 97; rm -f {}; sh -c {} sh {} {} 2>&1; rm -f {}",
            shell_quote(&files.dir),
            shell_quote(&files.result),
            shell_quote("echo $$ > \"$1\"; shift; exec \"$@\""),
            shell_quote(&files.pidfile),
            shell_words(words),
            shell_quote(&files.pidfile)
        );
        let mut child = self
            .transport
            .shell(&script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| start_error(&self.transport.program(), e))?;
        let stderr = child.stderr.take().expect("piped");
        let prefix = format!("[{label}] ");
        let transport_errors = std::thread::scope(|scope| {
            let errors = scope.spawn(|| {
                let mut text = String::new();
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log(&format!("{prefix}{line}"));
                    text.push_str(&line);
                    text.push('\n');
                }
                text
            });
            let mut recent: Vec<String> = Vec::new();
            let stdout = child.stdout.take().expect("piped");
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let line = line.trim_end_matches('\r').to_string();
                log(&format!("{prefix}{line}"));
                recent.push(line);
                if recent.len() > 20 {
                    recent.remove(0);
                }
            }
            (recent, errors.join().unwrap_or_default())
        });
        let status = child
            .wait()
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        let (recent, transport_stderr) = transport_errors;
        Ok(Streamed {
            recent,
            transport_stderr,
            status,
        })
    }

    /// The device's result: a run that failed, or that ended without a
    /// result (the connection dropped, or the device killed it), is an
    /// error; the journal is then copied here when it can be.
    fn check_result(
        &self,
        streamed: Streamed,
        files: &DeviceFiles,
        device_label: &str,
    ) -> Result<(), RemoteError> {
        let pull_journal = || {
            let local = journal_path(&self.out);
            match self.transport.pull(&files.journal, &local) {
                Ok(()) => format!(" (a copy is in {})", local.display()),
                Err(_) => String::new(),
            }
        };
        match self.pull_result(files)? {
            Some(DeviceResult { error: None, .. }) => Ok(()),
            Some(DeviceResult {
                error: Some(error), ..
            }) => Err(RemoteError::Failed {
                device: device_label.to_string(),
                error,
                tail: streamed.recent.join("\n"),
                remote_journal: files.journal.clone(),
                pulled: pull_journal(),
            }),
            None => {
                let status = if streamed.transport_stderr.trim().is_empty() {
                    streamed.status
                } else {
                    format!(
                        "{}: {}",
                        streamed.status,
                        tail(&streamed.transport_stderr, 3)
                    )
                };
                Err(RemoteError::Dropped {
                    device: device_label.to_string(),
                    status,
                    remote_journal: files.journal.clone(),
                    pulled: pull_journal(),
                })
            }
        }
    }

    /// The result the device's profiler wrote, if it wrote one.
    fn pull_result(&self, files: &DeviceFiles) -> Result<Option<DeviceResult>, RemoteError> {
        let mut local = self.out.as_os_str().to_owned();
        local.push(".result.json");
        let local = PathBuf::from(local);
        if self.transport.pull(&files.result, &local).is_err() {
            return Ok(None);
        }
        let result = DeviceResult::read(&local).map_err(RemoteError::from);
        let _ = std::fs::remove_file(&local);
        result.map(Some)
    }

    /// Pulls the finished table (through `OUT.remote`, checked by reading
    /// it back) to `out`.
    fn fetch_table(
        &self,
        files: &DeviceFiles,
        device_label: String,
        resumed: bool,
    ) -> Result<RemoteReport, RemoteError> {
        let mut pulled = self.out.as_os_str().to_owned();
        pulled.push(".remote");
        let pulled = PathBuf::from(pulled);
        self.transport.pull(&files.table, &pulled)?;
        let table = LatencyTable::read(&pulled).map_err(|source| RemoteError::BadTable {
            device: device_label.clone(),
            source,
        })?;
        std::fs::rename(&pulled, &self.out).map_err(|e| io_error(&self.out, e))?;
        // A journal copied here by an earlier, failed attempt is now stale.
        let _ = std::fs::remove_file(journal_path(&self.out));
        Ok(RemoteReport {
            device: device_label,
            out: self.out.clone(),
            rows: table.rows.len(),
            resumed,
            remote_dir: files.dir.clone(),
            skipped: false,
        })
    }
}
