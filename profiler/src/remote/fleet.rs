//! Fleets: `--device all-adb` profiles every attached phone in parallel,
//! one table per device, named after its model and serial.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use tunas_shared::LatencyTable;

use super::error::{RemoteError, io_error};
use super::run::{RemoteReport, RemoteRun};
use super::transport::{Transport, adb_devices, adb_program};

/// A file-name-safe form of a model name or serial.
pub fn slug(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_matches(['_', '.']).to_string();
    if s.is_empty() { "device".into() } else { s }
}

/// The outcome of one device of `--device all-adb`.
#[derive(Debug)]
pub struct FleetResult {
    /// `adb:SERIAL`.
    pub device: String,
    /// The table, or why there is none.
    pub result: Result<RemoteReport, RemoteError>,
}

/// Profiles every attached adb device in parallel, one table per device in
/// `out_dir`, named `MODEL_SERIAL.csv`; `make_run` fills in the rest of a
/// run. A failure on one device does not stop the others. A device whose
/// table is already there is skipped unless `force`, so re-running after a
/// partial failure finishes only what failed.
pub fn profile_all_adb(
    out_dir: &Path,
    force: bool,
    make_run: &(dyn Fn(Transport, PathBuf) -> RemoteRun + Sync),
    log: &(dyn Fn(&str) + Sync),
) -> Result<Vec<FleetResult>, RemoteError> {
    let adb = adb_program();
    let serials = adb_devices(&adb)?;
    if serials.is_empty() {
        return Err(RemoteError::NoAdbDevice {
            listing: String::new(),
        });
    }
    // The folder itself, not its parents: a mistyped parent is an error.
    if !out_dir.is_dir() {
        std::fs::create_dir(out_dir).map_err(|e| io_error(out_dir, e))?;
    }
    log(&format!(
        "profiling {} device(s) in parallel: {}",
        serials.len(),
        serials.join(", ")
    ));
    Ok(std::thread::scope(|scope| {
        let handles: Vec<_> = serials
            .iter()
            .map(|serial| {
                let adb = adb.clone();
                scope.spawn(move || profile_one_adb(adb, serial, out_dir, force, make_run, log))
            })
            .collect();
        handles
            .into_iter()
            .zip(&serials)
            .map(|(h, serial)| {
                h.join().unwrap_or_else(|_| FleetResult {
                    device: format!("adb:{serial}"),
                    result: Err(RemoteError::RunnerPanicked {
                        device: format!("adb:{serial}"),
                    }),
                })
            })
            .collect()
    }))
}

/// One device of the fleet: its table in `out_dir`, measured now, or
/// already there (and not `force`d).
fn profile_one_adb(
    adb: OsString,
    serial: &str,
    out_dir: &Path,
    force: bool,
    make_run: &(dyn Fn(Transport, PathBuf) -> RemoteRun + Sync),
    log: &(dyn Fn(&str) + Sync),
) -> FleetResult {
    let transport = Transport::Adb {
        adb,
        serial: serial.to_string(),
    };
    let model = transport
        .run(
            "getprop ro.product.model 2>/dev/null; true",
            "reading the model name",
        )
        .map(|m| m.trim().to_string())
        .unwrap_or_default();
    let table = out_dir.join(table_name(&model, serial));
    if table.is_file() && !force {
        return FleetResult {
            device: format!("adb:{serial}"),
            result: already_there(&table, serial, &model),
        };
    }
    let run = make_run(transport, table);
    FleetResult {
        device: format!("adb:{serial}"),
        result: run.execute(log),
    }
}

/// `MODEL_SERIAL.csv`, or `SERIAL.csv` when the model is not known.
fn table_name(model: &str, serial: &str) -> String {
    if model.is_empty() {
        format!("{}.csv", slug(serial))
    } else {
        format!("{}_{}.csv", slug(model), slug(serial))
    }
}

/// The report of a device whose table is already in place: read back, not
/// measured.
fn already_there(table: &Path, serial: &str, model: &str) -> Result<RemoteReport, RemoteError> {
    LatencyTable::read(table)
        .map(|t| RemoteReport {
            device: format!("adb:{serial} ({model})"),
            out: table.to_path_buf(),
            rows: t.rows.len(),
            resumed: false,
            remote_dir: String::new(),
            skipped: true,
        })
        .map_err(|source| RemoteError::BadTable {
            device: format!("adb:{serial}"),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_file_name_safe() {
        assert_eq!(slug("Pixel 7 Pro"), "Pixel_7_Pro");
        assert_eq!(slug("a/b'; rm"), "a_b___rm");
        assert_eq!(slug(""), "device");
    }
}
