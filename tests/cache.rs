//! gilscope's cache folder is private: nobody else can plant a worker script
//! or a calibration in it, its files are written whole or not at all, and a
//! calibration is only used when it is plausible and says what it measured.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod common;
use common::{output_within, scratch};

const NOBODY: u32 = 65534;

/// gilscope with `XDG_CACHE_HOME=cache` and `HOME` in a scratch folder, so
/// that no test reads or writes the developer's own cache.
fn gilscope(cache: &Path) -> Command {
    let mut command = common::gilscope();
    command.env("XDG_CACHE_HOME", cache).env("HOME", scratch("home"));
    command
}

/// A short simulated run that reads the calibration.
fn sim_run(cache: &Path) -> Output {
    gilscope(cache)
        .args(["run", "--json", "--model", "threads", "--workers", "1", "--iterations", "1000"])
        .output()
        .expect("start gilscope")
}

fn one_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "one line expected:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Whether the run's iterations cost the built-in default: no calibration was used.
fn uses_the_default(out: &Output) -> bool {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ns = report["iteration_ns"].as_f64().expect("iteration_ns");
    (ns - gilscope::experiment::spec::DEFAULT_ITERATION_NS).abs() < 1e-9
}

#[test]
fn a_cache_folder_owned_by_someone_else_is_refused_with_the_path_and_what_to_do() {
    let cache = scratch("others");
    let folder = cache.join("gilscope");
    std::fs::create_dir(&folder).unwrap();
    std::os::unix::fs::chown(&folder, Some(NOBODY), Some(NOBODY)).unwrap();
    let out = sim_run(&cache);
    let err = one_line(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&folder.display().to_string()) && err.contains("owned by"), "{err}");
    assert!(err.contains("XDG_CACHE_HOME"), "says what to do: {err}");
}

#[test]
fn a_cache_folder_others_can_write_to_is_refused() {
    let cache = scratch("writable");
    let folder = cache.join("gilscope");
    std::fs::create_dir(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = sim_run(&cache);
    let err = one_line(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&folder.display().to_string()) && err.contains("writable by others"), "{err}");
    assert!(err.contains("chmod go-w"), "says what to do: {err}");
}

#[test]
fn a_planted_calibration_symlink_is_neither_read_nor_written_through() {
    let cache = scratch("symlink");
    let folder = cache.join("gilscope");
    std::fs::create_dir(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    let elsewhere = scratch("elsewhere").join("planted.json");
    let planted = r#"{"python":"python3","version":"3.11.2","iteration_ns":123.0,"sim_units_per_ns":0.25}"#;
    std::fs::write(&elsewhere, planted).unwrap();
    std::os::unix::fs::symlink(&elsewhere, folder.join("calibration.json")).unwrap();
    // Read: the link's target is not taken for a calibration.
    let out = sim_run(&cache);
    assert!(uses_the_default(&out), "the planted calibration was used");
    // Write: a new calibration replaces the link, not the file it points to.
    let out = gilscope(&cache).args(["calibrate", "--iterations", "10000"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), planted, "written through the link");
    let stored = std::fs::symlink_metadata(folder.join("calibration.json")).unwrap();
    assert!(stored.file_type().is_file(), "the link is replaced by a file of our own");
}

#[test]
fn a_relative_or_empty_xdg_cache_home_is_ignored_for_the_home_cache() {
    for xdg in ["", "relative/cache"] {
        let cwd = scratch("cwd");
        let home = scratch("home");
        let out = common::gilscope()
            .env("XDG_CACHE_HOME", xdg)
            .env("HOME", &home)
            .current_dir(&cwd)
            .args(["calibrate", "--iterations", "10000"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{xdg:?}: {}", String::from_utf8_lossy(&out.stderr));
        let files: Vec<PathBuf> = walk(&cwd);
        assert!(files.is_empty(), "XDG_CACHE_HOME={xdg:?} wrote into the working folder: {files:?}");
        assert!(home.join(".cache/gilscope/calibration.json").is_file(), "{xdg:?}: not in ~/.cache");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(entry.path());
        if entry.path().is_dir() {
            out.extend(walk(&entry.path()));
        }
    }
    out
}

#[test]
fn without_home_the_cache_is_a_private_folder_of_the_users_own_in_tmp() {
    let tmp = scratch("tmpdir");
    let run = || {
        common::gilscope()
            .env_remove("XDG_CACHE_HOME")
            .env_remove("HOME")
            .env("TMPDIR", &tmp)
            .args(["calibrate", "--iterations", "10000"])
            .output()
            .unwrap()
    };
    let out = run();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let folder = tmp.join(format!("gilscope-{uid}"));
    let meta = std::fs::symlink_metadata(&folder).expect("a per-user folder in TMPDIR");
    assert!(meta.is_dir() && meta.mode() & 0o777 == 0o700, "mode {:o}", meta.mode());
    assert!(folder.join("calibration.json").is_file());
    // The same folder made by someone else first is refused.
    std::fs::remove_dir_all(&folder).unwrap();
    std::fs::create_dir(&folder).unwrap();
    std::os::unix::fs::chown(&folder, Some(NOBODY), Some(NOBODY)).unwrap();
    let out = run();
    let err = one_line(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&folder.display().to_string()) && err.contains("owned by"), "{err}");
}

#[test]
fn cache_files_are_private_whatever_the_umask() {
    let cache = scratch("umask");
    let mut command = gilscope(&cache);
    command.args(["calibrate", "--iterations", "10000"]);
    // SAFETY: umask is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let folder = cache.join("gilscope");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&folder), 0o700, "the folder");
    for entry in std::fs::read_dir(&folder).unwrap().flatten() {
        assert_eq!(mode(&entry.path()), 0o600, "{}", entry.path().display());
    }
}

#[test]
fn a_failed_write_keeps_the_old_calibration_and_leaves_no_temporary_file() {
    let cache = scratch("full");
    let out = gilscope(&cache).args(["calibrate", "--iterations", "10000"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let folder = cache.join("gilscope");
    let old = std::fs::read(folder.join("calibration.json")).unwrap();
    let before: Vec<PathBuf> = walk(&folder);
    // The disk fills up: no file may grow beyond 64 bytes (the calibration
    // takes more); writing beyond fails with EFBIG instead of a signal.
    let mut command = gilscope(&cache);
    command.args(["calibrate", "--iterations", "10000"]);
    // SAFETY: setrlimit and signal are async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 64, rlim_max: 64 };
            libc::setrlimit(libc::RLIMIT_FSIZE, &raw const limit);
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let out = command.output().unwrap();
    let err = one_line(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("calibration"), "{err}");
    assert_eq!(std::fs::read(folder.join("calibration.json")).unwrap(), old, "the old calibration is kept");
    assert_eq!(walk(&folder), before, "a temporary file was left behind");
}

/// A calibration file in a fresh private cache folder.
fn cache_with_calibration(text: &str) -> PathBuf {
    let cache = scratch("calibration");
    let folder = cache.join("gilscope");
    std::fs::create_dir(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(folder.join("calibration.json"), text).unwrap();
    cache
}

#[test]
fn an_implausible_calibration_is_reported_and_the_default_used() {
    for (ns, units) in
        [("1e12", "0.25"), ("0", "0.25"), ("-70", "0.25"), ("0.001", "0.25"), ("70", "1e9"), ("70", "0")]
    {
        let text = format!(
            r#"{{"python":"python3","version":"3.11.2","iteration_ns":{ns},"sim_units_per_ns":{units}}}"#
        );
        let cache = cache_with_calibration(&text);
        let child = gilscope(&cache)
            .args(["run", "--json", "--model", "threads", "--workers", "1", "--iterations", "1000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (out, in_time) = output_within(child, Duration::from_secs(20));
        assert!(in_time, "{text}: the run hung");
        assert!(uses_the_default(&out), "{text} was used");
        let err = one_line(&out);
        assert!(err.contains("calibration.json") && err.contains("gilscope calibrate"), "{text}: {err}");
    }
}

#[test]
fn a_corrupt_calibration_is_reported_and_replaced() {
    let cache = cache_with_calibration("{\"python\": \"pyth");
    let out = gilscope(&cache)
        .args(["run", "--json", "--runtime", "cpython", "--model", "threads", "--workers", "1"])
        .args(["--iterations", "1000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("calibration.json") && err.contains("corrupt"), "not reported: {err:?}");
    let stored = std::fs::read_to_string(cache.join("gilscope/calibration.json")).unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored).expect("replaced by a sound one");
    assert!(stored["iteration_ns"].as_f64().is_some_and(|ns| ns > 5.0), "{stored}");
}

#[test]
fn a_calibration_of_another_interpreter_is_named_when_used() {
    let cache = cache_with_calibration(
        r#"{"python":"/opt/other/python3.9","version":"3.9.0","iteration_ns":80.0,"sim_units_per_ns":0.25}"#,
    );
    let out = gilscope(&cache)
        .args(["run", "--json", "--runtime", "cpython", "--model", "threads", "--workers", "1"])
        .args(["--iterations", "1000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = one_line(&out);
    assert!(err.contains("/opt/other/python3.9 3.9.0") && err.contains("python3"), "{err}");
    assert!(err.contains("gilscope calibrate"), "says what to do: {err}");
}
