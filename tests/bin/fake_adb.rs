//! `fake-adb`: a TEST DOUBLE for Android's `adb`, used by the integration
//! tests because no phone is attached to CI. It is never used outside tests.
//!
//! It implements the subset the profiler's adb runner uses, over local
//! folders: `devices [-l]`, `-s SERIAL`, `push LOCAL REMOTE`,
//! `pull REMOTE LOCAL` and `shell SCRIPT...` (run by the local `sh`, like
//! adb joins its arguments and hands them to the device's shell). Each
//! "device" is a folder `$FAKE_ADB_ROOT/SERIAL`; device paths under
//! `/data/local/tmp` are mapped into it (other absolute paths are used as
//! they are). `getprop ro.product.model` answers the device's model.
//!
//! Environment:
//! - `FAKE_ADB_ROOT`: the folder holding one folder per device.
//! - `FAKE_ADB_DEVICES`: `SERIAL=Model name,SERIAL2=Other model`.
//! - `FAKE_ADB_DROP`: `SERIAL:LINES:FLAGFILE`: the first `shell` on SERIAL
//!   that prints more than LINES lines (while FLAGFILE does not exist)
//!   loses its connection: the device-side processes are killed, FLAGFILE
//!   is created, and fake-adb exits 255 as adb does when a cable is pulled.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const DEVICE_TMP: &str = "/data/local/tmp";

fn devices() -> Vec<(String, String)> {
    std::env::var("FAKE_ADB_DEVICES")
        .unwrap_or_default()
        .split(',')
        .filter(|d| !d.is_empty())
        .map(|d| match d.split_once('=') {
            Some((s, m)) => (s.to_string(), m.to_string()),
            None => (d.to_string(), "Fake Phone".to_string()),
        })
        .collect()
}

fn root() -> PathBuf {
    PathBuf::from(std::env::var_os("FAKE_ADB_ROOT").expect("FAKE_ADB_ROOT is set by the test"))
}

fn device_dir(serial: &str) -> PathBuf {
    root().join(serial)
}

fn map_path(serial: &str, device_path: &str) -> PathBuf {
    let mapped = device_dir(serial).join("data/local/tmp");
    match device_path.strip_prefix(DEVICE_TMP) {
        Some(rest) => PathBuf::from(format!("{}{rest}", mapped.display())),
        None => PathBuf::from(device_path),
    }
}

/// Maps device paths in a script: `/data/local/tmp` where a path starts
/// (after a quote, a space, `=` or at the start), so paths that merely
/// contain it are left alone.
fn map_script(script: &str, device_tmp: &str) -> String {
    let mut out = String::with_capacity(script.len());
    let mut rest = script;
    while let Some(i) = rest.find(DEVICE_TMP) {
        let before = rest[..i].chars().last().or(out.chars().last());
        let starts_path = matches!(before, None | Some('\'' | '"' | ' ' | '='));
        out.push_str(&rest[..i]);
        out.push_str(if starts_path { device_tmp } else { DEVICE_TMP });
        rest = &rest[i + DEVICE_TMP.len()..];
    }
    out.push_str(rest);
    out
}

fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn fail(message: &str) -> ExitCode {
    eprintln!("adb: error: {message}");
    ExitCode::from(1)
}

fn shell(serial: &str, model: &str, script: &str) -> ExitCode {
    let dir = device_dir(serial);
    let bin = dir.join(".fake-bin");
    std::fs::create_dir_all(dir.join("data/local/tmp")).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    let getprop = bin.join("getprop");
    std::fs::write(
        &getprop,
        format!(
            "#!/bin/sh\nif [ \"$1\" = ro.product.model ]; then printf '%s\\n' {}; fi\n",
            quote(model)
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&getprop)
        .status()
        .unwrap();
    let device_tmp = device_dir(serial)
        .join("data/local/tmp")
        .display()
        .to_string();
    let mapped = map_script(script, &device_tmp);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&mapped)
        .current_dir(&dir)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let drop_after = std::env::var("FAKE_ADB_DROP").ok().and_then(|spec| {
        let mut parts = spec.splitn(3, ':');
        let (s, n, flag) = (parts.next()?, parts.next()?, parts.next()?);
        (s == serial && !Path::new(flag).exists())
            .then(|| (n.parse::<usize>().ok(), PathBuf::from(flag)))
            .and_then(|(n, f)| Some((n?, f)))
    });
    let stdout = child.stdout.take().unwrap();
    let mut out = std::io::stdout();
    for (i, line) in BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .enumerate()
    {
        if let Some((n, flag)) = &drop_after
            && i >= *n
        {
            // The cable is pulled: the device side dies with its session.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            std::fs::write(flag, "dropped\n").unwrap();
            eprintln!("adb: error: device '{serial}' not found (fake-adb dropped the connection)");
            return ExitCode::from(255);
        }
        // The device's own paths, as a phone would print them.
        let _ = writeln!(out, "{}", line.replace(&device_tmp, DEVICE_TMP));
        let _ = out.flush();
    }
    let status = child.wait().unwrap();
    ExitCode::from(status.code().unwrap_or(255).clamp(0, 255) as u8)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let attached = devices();
    let mut serial: Option<String> = None;
    if args.first().map(String::as_str) == Some("-s") {
        if args.len() < 2 {
            return fail("-s needs a serial");
        }
        serial = Some(args[1].clone());
        args.drain(..2);
    }
    let Some(command) = args.first().cloned() else {
        return fail("no command (fake-adb: devices, push, pull, shell)");
    };
    if command == "devices" {
        println!("List of devices attached");
        for (s, model) in &attached {
            if args.iter().any(|a| a == "-l") {
                println!(
                    "{s}\tdevice product:fake model:{} device:fake",
                    model.replace(' ', "_")
                );
            } else {
                println!("{s}\tdevice");
            }
        }
        println!();
        return ExitCode::SUCCESS;
    }
    let (serial, model) = match serial {
        Some(s) => match attached.iter().find(|(a, _)| *a == s) {
            Some((_, m)) => (s, m.clone()),
            None => return fail(&format!("device '{s}' not found")),
        },
        None => match attached.as_slice() {
            [(s, m)] => (s.clone(), m.clone()),
            [] => return fail("no devices/emulators found"),
            _ => return fail("more than one device/emulator"),
        },
    };
    match (command.as_str(), &args[1..]) {
        ("push", [local, remote]) => {
            let target = map_path(&serial, remote);
            if let Some(parent) = target.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            match std::fs::copy(local, &target) {
                Ok(_) => {
                    println!("{local}: 1 file pushed, 0 skipped.");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("failed to copy '{local}' to '{remote}': {e}")),
            }
        }
        ("pull", [remote, local]) => match std::fs::copy(map_path(&serial, remote), local) {
            Ok(_) => {
                println!("{remote}: 1 file pulled, 0 skipped.");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("failed to stat remote object '{remote}': {e}")),
        },
        ("shell", words) if !words.is_empty() => shell(&serial, &model, &words.join(" ")),
        _ => fail(&format!("fake-adb does not implement {args:?}")),
    }
}
