//! Asking an interpreter who it is, and running its loop, is safe: nothing
//! planted in the working folder or beside the worker script is imported, an
//! interpreter that never answers costs a bounded wait and a clear line, and
//! no process it started outlives gilscope.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails
#![allow(clippy::cast_possible_wrap)] // pids for kill(2)

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{alive, output_within, scratch, script, wait_until};

/// Python modules that leave a mark in `marks` if anything imports them.
fn plant(dir: &Path, marks: &Path) {
    for module in ["sysconfig", "argparse", "threading", "multiprocessing", "math"] {
        std::fs::write(
            dir.join(format!("{module}.py")),
            format!("open({:?}, 'w').write('imported')\n", marks.join(module).display().to_string()),
        )
        .unwrap();
    }
}

fn marks_left(marks: &Path) -> Vec<String> {
    std::fs::read_dir(marks)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn cpython_run(cache: &Path, cwd: &Path, model: &str) -> Output {
    common::gilscope()
        .env("XDG_CACHE_HOME", cache)
        .current_dir(cwd)
        .args(["run", "--runtime", "cpython", "--model", model, "--workers", "2", "--iterations", "1000"])
        .output()
        .unwrap()
}

#[test]
fn python_modules_planted_in_the_working_folder_are_never_imported() {
    let (cwd, marks, cache) = (scratch("cwd"), scratch("marks"), scratch("cache"));
    plant(&cwd, &marks);
    for model in ["threads", "processes"] {
        let out = cpython_run(&cache, &cwd, model);
        assert!(out.status.success(), "{model}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(marks_left(&marks), Vec::<String>::new(), "planted modules ran");
}

#[test]
fn python_modules_planted_beside_the_worker_script_never_run() {
    let (cwd, marks, cache) = (scratch("cwd"), scratch("marks"), scratch("cache"));
    // A first run deploys the worker script; then modules are planted beside it.
    let out = cpython_run(&cache, &cwd, "threads");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    plant(&cache.join("gilscope"), &marks);
    for model in ["threads", "processes"] {
        let out = cpython_run(&cache, &cwd, model);
        assert!(out.status.success(), "{model}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(marks_left(&marks), Vec::<String>::new(), "planted modules ran");
}

/// Live processes, other than gilscope itself, that carry `FAKE_PYTHON=fake`
/// in their environment: the fake interpreter and whatever it started.
fn started_by(fake: &str) -> Vec<u32> {
    let needle = format!("FAKE_PYTHON={fake}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let gilscope = String::from_utf8_lossy(&cmdline).contains("gilscope\0");
        if alive(pid) && !gilscope && environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

fn fails_within(fake: &str, args: &[&str], limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    let child = common::gilscope()
        .env("FAKE_PYTHON", fake)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out, in_time) = output_within(child, limit);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(in_time, "{args:?} still ran after {limit:?}");
    assert!(!out.status.success(), "{args:?} succeeded: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line expected:\n{err}");
    let left = started_by(fake);
    assert!(left.is_empty(), "{args:?}: the interpreter's processes {left:?} outlived gilscope");
    (err, start.elapsed())
}

#[test]
fn an_interpreter_that_never_answers_fails_run_and_calibrate_in_bounded_time() {
    // A shell waiting on a child of its own: both must go.
    let fake = script(&scratch("silent"), "python3", "sleep 1000");
    let fake = fake.to_str().unwrap();
    for args in [&["run", "--runtime", "cpython", "--python", fake][..], &["calibrate", "--python", fake]] {
        let (err, took) = fails_within(fake, args, Duration::from_secs(30));
        assert!(err.contains(fake) && err.contains("did not answer within 10 s"), "{args:?}: {err}");
        assert!(took >= Duration::from_secs(9), "gave up early: {took:?}");
    }
}

#[test]
fn a_calibration_loop_that_never_ends_fails_in_bounded_time() {
    // Answers the probe like Python 3.11, then hangs in the --bare loop.
    let dir = scratch("hanging-loop");
    let fake = script(&dir, "python3", "case \"$*\" in *--bare*) sleep 1000;; *) echo 3.11.2 1 0;; esac");
    let fake = fake.to_str().unwrap();
    let args = ["calibrate", "--python", fake, "--iterations", "10000"];
    let (err, _) = fails_within(fake, &args, Duration::from_secs(40));
    assert!(err.contains("--bare") && err.contains("did not finish within"), "{err}");
}

#[test]
fn killing_gilscope_while_it_asks_python_leaves_no_process() {
    for (signal, body) in [
        // SIGTERM and SIGINT: gilscope takes the interpreter's whole process group down.
        (libc::SIGTERM, "sleep 1000"),
        (libc::SIGINT, "sleep 1000"),
        // SIGKILL: nothing runs in gilscope any more; the interpreter itself
        // dies of PR_SET_PDEATHSIG (what it started itself is its own affair).
        (libc::SIGKILL, "exec sleep 1000"),
    ] {
        let fake = script(&scratch("killed-probe"), "python3", body);
        let fake = fake.to_str().unwrap();
        let mut app = common::gilscope()
            .env("FAKE_PYTHON", fake)
            .args(["run", "--runtime", "cpython", "--python", fake])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let sleeping = |pids: &[u32]| {
            pids.iter().any(|p| {
                std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default().starts_with(b"sleep")
            })
        };
        assert!(wait_until(Duration::from_secs(10), || sleeping(&started_by(fake))), "the fake never ran");
        // SAFETY: plain syscall on our own child.
        unsafe { libc::kill(app.id() as i32, signal) };
        let status = app.wait().unwrap();
        assert!(
            wait_until(Duration::from_secs(3), || started_by(fake).is_empty()),
            "signal {signal}: {:?} outlived gilscope ({status})",
            started_by(fake)
        );
    }
}

#[test]
fn python2_is_told_in_one_clear_line() {
    // What python2.7 does: no -I, and its version on stderr.
    let dir = scratch("python2");
    let fake = script(
        &dir,
        "python2.7",
        "case \"$1\" in -I) echo 'Unknown option: -I' >&2; echo 'usage: python2.7 [option] ...' >&2; exit 2;; \
         -V|--version) echo 'Python 2.7.18' >&2;; \
         *) echo \"('2.7.18', 1, 0)\";; esac",
    );
    let out = common::gilscope()
        .args(["run", "--runtime", "cpython", "--python", fake.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("python2.7 is Python 2.7.18; gilscope needs 3.8 or later"), "{err}");
}

#[test]
fn interpreters_that_print_nothing_or_only_to_stderr_get_one_clear_line() {
    let dir = scratch("mute");
    for (name, body, expected) in [
        ("mute", "exit 0", "printed nothing"),
        ("grumpy", "echo 'I am not Python' >&2; exit 1", "I am not Python"),
        ("chatty", "echo 'I am not Python' >&2; exit 0", "I am not Python"),
    ] {
        let fake = script(&dir, name, body);
        let out = common::gilscope()
            .args(["run", "--runtime", "cpython", "--python", fake.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        assert!(err.contains(expected) && err.contains("--python"), "{name}: {err}");
    }
}
