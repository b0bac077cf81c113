//! The real binary in a real terminal: tmux runs gilscope, the test types
//! keys and reads the screen, and checks that no worker process outlives it.
//!
//! Every test gets its own tmux server (`-L`), and tags its gilscope with an
//! environment variable its workers inherit, so tests running side by side
//! (and `gilscope run` in other tests) never see each other's processes.
//! tmux must be installed: without it these tests fail, they do not skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails
#![allow(clippy::cast_possible_wrap, clippy::similar_names)] // pids for kill(2); short names side by side

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod common;

const TAG_VAR: &str = "GILSCOPE_TEST_TAG";

/// A tmux server of our own, with one session running `command`.
struct Tmux {
    socket: String,
    tag: String,
}

impl Tmux {
    /// Starts `gilscope <args>` in a 100×30 terminal. `after`, if any, runs
    /// in the same shell once gilscope exits (to look at the terminal then).
    fn start(name: &str, args: &str, after: Option<&str>) -> Tmux {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = format!("{}-{}-{name}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let tmux = Tmux { socket: format!("gilscope-test-{unique}"), tag: unique };
        let bin = env!("CARGO_BIN_EXE_gilscope");
        // A cache of its own: no developer's calibration, no other test's.
        let cache = common::scratch("cache");
        let mut command =
            format!("env {TAG_VAR}={} XDG_CACHE_HOME='{}' '{bin}' {args}", tmux.tag, cache.display());
        if let Some(after) = after {
            command = format!("{command}; {after}");
        }
        let out = tmux.run(&["new-session", "-d", "-s", "main", "-x", "100", "-y", "30", &command]);
        assert!(out.status.success(), "tmux new-session failed: {}", String::from_utf8_lossy(&out.stderr));
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        match Command::new("tmux").arg("-L").arg(&self.socket).args(args).output() {
            Ok(out) => out,
            Err(e) => panic!("tmux is needed for the terminal tests and could not run ({e}); install tmux"),
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        let out = self.run(&args);
        assert!(out.status.success(), "send-keys {keys:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "main"]).stdout).into_owned()
    }

    /// Waits until the screen shows `text`; panics with the screen if it does not in time.
    fn wait_for(&self, text: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(start.elapsed() < limit, "no {text:?} on screen after {limit:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn alive(&self) -> bool {
        self.run(&["has-session", "-t", "main"]).status.success()
    }

    fn wait_gone(&self, limit: Duration) {
        let start = Instant::now();
        while self.alive() {
            assert!(
                start.elapsed() < limit,
                "gilscope still runs {limit:?} after quitting:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Live processes started by this test's gilscope: the app and its workers.
    fn processes(&self) -> Vec<Proc> {
        tagged(&self.tag)
    }

    fn workers(&self) -> Vec<Proc> {
        self.processes().into_iter().filter(Proc::is_worker).collect()
    }

    /// Presses space on the first screen and waits until a worker runs.
    fn start_run(&self) {
        self.wait_for("press space", Duration::from_secs(10));
        self.keys(&["Space"]);
        let start = Instant::now();
        while self.workers().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(10), "no worker started:\n{}", self.screen());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn app(&self) -> Option<Proc> {
        self.processes().into_iter().find(|p| !p.is_worker())
    }

    /// Waits until no worker of this test is left, or panics naming them.
    fn assert_no_worker_left(&self, limit: Duration) {
        let start = Instant::now();
        loop {
            let left = self.workers();
            if left.is_empty() {
                return;
            }
            assert!(start.elapsed() < limit, "workers outlived gilscope by {limit:?}: {left:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output();
        // Whatever a failed test left behind.
        for p in tagged(&self.tag) {
            signal(p.pid, libc::SIGKILL);
        }
    }
}

#[derive(Debug)]
struct Proc {
    pid: i32,
    cmdline: Vec<String>,
}

impl Proc {
    fn is_worker(&self) -> bool {
        self.cmdline.get(1).is_some_and(|a| a == "worker")
    }
}

/// Running (not zombie) processes whose environment carries `tag`.
fn tagged(tag: &str) -> Vec<Proc> {
    let needle = format!("{TAG_VAR}={tag}");
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return found };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let dir = entry.path();
        let Ok(environ) = std::fs::read(dir.join("environ")) else { continue };
        if !environ.split(|b| *b == 0).any(|var| var == needle.as_bytes()) {
            continue;
        }
        if state(&dir) == Some('Z') {
            continue;
        }
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let cmdline: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into())
            .collect();
        if cmdline.first().is_some_and(|c| c.ends_with("gilscope")) {
            found.push(Proc { pid, cmdline });
        }
    }
    found
}

fn state(proc_dir: &Path) -> Option<char> {
    let stat = std::fs::read_to_string(proc_dir.join("stat")).ok()?;
    // The state follows the command name, which is in parentheses.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn signal(pid: i32, signal: libc::c_int) {
    // SAFETY: a plain syscall on a pid this test found tagged as its own.
    unsafe { libc::kill(pid, signal) };
}

/// Small runs: the baseline run and both models take well under a second.
const QUICK: &str = "--iterations 300000 --pace 1 --workers 2 --runtime sim";
/// Runs long enough to act on mid-run (several seconds).
const SLOW: &str = "--iterations 4000000 --pace 4 --workers 2 --runtime sim";

#[test]
fn a_run_from_space_to_results_then_q_leaves_nothing_behind() {
    let tmux = Tmux::start("results", QUICK, None);
    tmux.wait_for("press space", Duration::from_secs(10));
    tmux.keys(&["Space"]);
    // The results line: a wall time and a speedup per model against its
    // limit, then who won (or, on a machine busy with the other tests or
    // whose speed moved between the lone worker's two timings, why no
    // verdict can be given).
    let screen = tmux.wait_for(" → ", Duration::from_secs(20));
    let results = screen.lines().find(|l| l.contains(" of 2×")).unwrap_or_default();
    assert!(results.contains("threading") && results.contains("multiprocessing"), "{screen}");
    let verdict = [
        "faster than",
        "about as long",
        "no verdict: the machine was busy",
        "no verdict: the lone workers took",
    ];
    assert!(verdict.iter().any(|v| screen.contains(v)), "a verdict:\n{screen}");
    tmux.keys(&["q"]);
    tmux.wait_gone(Duration::from_secs(5));
    tmux.assert_no_worker_left(Duration::from_secs(3));
}

#[test]
fn killing_the_tui_leaves_no_worker_behind() {
    let tmux = Tmux::start("sigkill", SLOW, None);
    tmux.start_run();
    let app = tmux.app().expect("the app runs");
    signal(app.pid, libc::SIGKILL);
    tmux.assert_no_worker_left(Duration::from_secs(3));
}

#[test]
fn a_worker_killed_mid_run_shows_as_failed_and_the_app_goes_on() {
    let tmux = Tmux::start("worker-dies", SLOW, None);
    let screen = tmux.wait_for("press space", Duration::from_secs(10));
    // Both models at once, so one can fail while the other goes on.
    if !screen.contains("mode race") {
        tmux.keys(&["m"]);
        tmux.wait_for("mode race", Duration::from_secs(5));
    }
    tmux.keys(&["Space"]);
    // The race has begun once the summary says so (the baseline ran before).
    tmux.wait_for(" running ·", Duration::from_secs(20));
    let start = Instant::now();
    let victim = loop {
        // A multiprocessing worker: one process per worker, started with its request time.
        let race = tmux
            .workers()
            .into_iter()
            .find(|p| p.cmdline.iter().any(|a| a.starts_with("--process-requested-at")));
        if let Some(p) = race {
            break p;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no multiprocessing worker:\n{}", tmux.screen());
        std::thread::sleep(Duration::from_millis(20));
    };
    signal(victim.pid, libc::SIGKILL);
    let screen = tmux.wait_for("killed by signal 9", Duration::from_secs(10));
    assert!(screen.contains(&format!("{}", victim.pid)), "the message names the process:\n{screen}");
    assert!(screen.contains('✗'), "the lane shows the failure:\n{screen}");
    // Threading goes on to its result; multiprocessing is reported failed.
    let screen = tmux.wait_for(" → ", Duration::from_secs(30));
    let results = screen.lines().find(|l| l.contains(" of 2×") || l.contains("✗ failed")).unwrap_or_default();
    assert!(
        results.contains("threading") && results.contains("multiprocessing ✗ failed"),
        "threading finished, multiprocessing failed:\n{screen}"
    );
    assert!(tmux.alive(), "the app is still there");
    tmux.keys(&["q"]);
    tmux.wait_gone(Duration::from_secs(5));
    tmux.assert_no_worker_left(Duration::from_secs(3));
}

#[test]
fn sigterm_restores_the_terminal_and_leaves_no_worker() {
    // After gilscope exits, the same shell reports its exit and the terminal modes.
    let after = "echo \"gilscope exited: $?\"; stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon -e echo -e -echo; sleep 60";
    let tmux = Tmux::start("sigterm", SLOW, Some(after));
    tmux.start_run();
    let app = tmux.app().expect("the app runs");
    signal(app.pid, libc::SIGTERM);
    let screen = tmux.wait_for("gilscope exited", Duration::from_secs(5));
    tmux.assert_no_worker_left(Duration::from_secs(3));
    let screen = if screen.contains("echo") { screen } else { tmux.wait_for("echo", Duration::from_secs(5)) };
    let modes: Vec<&str> =
        screen.lines().map(str::trim).filter(|l| l.ends_with("icanon") || l.ends_with("echo")).collect();
    assert_eq!(modes, ["icanon", "echo"], "the terminal is back in cooked mode:\n{screen}");
    let alternate = tmux.run(&["display-message", "-p", "-t", "main", "#{alternate_on}"]);
    assert_eq!(String::from_utf8_lossy(&alternate.stdout).trim(), "0", "the alternate screen was left");
    assert!(!screen.contains("threading"), "the TUI is gone from the screen:\n{screen}");
}

#[test]
fn a_small_terminal_is_told_the_size_it_needs_and_a_resize_brings_the_screen_back() {
    let tmux = Tmux::start("resize", QUICK, None);
    tmux.wait_for("press space", Duration::from_secs(10));
    tmux.run(&["resize-window", "-t", "main", "-x", "60", "-y", "20"]);
    tmux.wait_for("terminal too small", Duration::from_secs(5));
    tmux.wait_for("needs 80×24", Duration::from_secs(1));
    tmux.run(&["resize-window", "-t", "main", "-x", "100", "-y", "30"]);
    tmux.wait_for("press space", Duration::from_secs(5));
    tmux.keys(&["q"]);
    tmux.wait_gone(Duration::from_secs(5));
}

#[test]
fn the_real_cpython_shows_as_many_threads_and_processes_as_it_has_workers() {
    // About a second per worker alone: the OS sampler sees every process.
    let tmux = Tmux::start("cpython-counts", "--iterations 10000000 --workers 2 --runtime sim", None);
    tmux.wait_for("press space", Duration::from_secs(10));
    tmux.keys(&["c"]);
    let screen = tmux.wait_for("runtime cpython", Duration::from_secs(5));
    if !screen.contains("mode one at a time") {
        tmux.keys(&["m"]);
        tmux.wait_for("mode one at a time", Duration::from_secs(5));
    }
    tmux.keys(&["Space"]);
    let screen = tmux.wait_for(" → ", Duration::from_mins(1));
    // Threading: the 2 worker threads, not the main thread and the stdin
    // watcher beside them. Multiprocessing: the 2 children that ran the
    // workers, not the parent that started them.
    // At 100 columns the counts have a line of their own, threading's left.
    let counts = screen.lines().nth(4).unwrap_or_default();
    assert!(counts.starts_with("│1 process · 2 threads · 1 GIL "), "{screen}");
    assert!(counts.contains("││2 processes · 1 thread each · 2 GILs "), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_gone(Duration::from_secs(5));
}

/// Starts 256 workers per model and, once the race's first worker process
/// is up (the others still starting), does `stop` to gilscope; checks that it
/// is gone at once and leaves no worker.
fn stopping_a_256_worker_start(name: &str, stop: impl FnOnce(&Tmux)) {
    let tmux = Tmux::start(name, "--workers 256 --pace 4 --iterations 4000000 --runtime sim", None);
    let screen = tmux.wait_for("press space", Duration::from_secs(10));
    // More workers than cores: the models take turns unless told to race.
    if screen.contains("mode one at a time") {
        tmux.keys(&["m"]);
        tmux.wait_for("mode race", Duration::from_secs(5));
    }
    tmux.keys(&["Space"]);
    // The lone worker of the baseline comes first; then the race starts.
    let start = Instant::now();
    while !tmux.workers().iter().any(|p| p.cmdline.iter().any(|a| a.starts_with("--process-requested-at"))) {
        assert!(start.elapsed() < Duration::from_secs(30), "the race never started:\n{}", tmux.screen());
        std::thread::sleep(Duration::from_millis(10));
    }
    let app = tmux.app().expect("the app runs");
    let asked = Instant::now();
    stop(&tmux);
    while std::path::Path::new(&format!("/proc/{}", app.pid)).exists()
        && state(Path::new(&format!("/proc/{}", app.pid))) != Some('Z')
    {
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "gilscope still runs {:?} after being told to stop",
            asked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    tmux.assert_no_worker_left(Duration::from_secs(3));
}

#[test]
fn q_during_a_256_worker_start_quits_at_once_and_leaves_no_worker() {
    stopping_a_256_worker_start("q-256", |tmux| tmux.keys(&["q"]));
}

#[test]
fn sigterm_and_sighup_during_a_256_worker_start_end_gilscope_at_once_and_leave_no_worker() {
    for (name, sig) in [("term-256", libc::SIGTERM), ("hup-256", libc::SIGHUP)] {
        stopping_a_256_worker_start(name, |tmux| signal(tmux.app().expect("the app runs").pid, sig));
    }
}

#[test]
fn termination_signals_exit_with_128_plus_their_number_and_restore_the_terminal() {
    for (sig, code) in [(libc::SIGTERM, 143), (libc::SIGHUP, 129), (libc::SIGINT, 130)] {
        let after = "echo \"gilscope exited: $?\"; sleep 60";
        let tmux = Tmux::start("exit-code", SLOW, Some(after));
        tmux.start_run();
        signal(tmux.app().expect("the app runs").pid, sig);
        let screen = tmux.wait_for("gilscope exited", Duration::from_secs(5));
        assert!(screen.contains(&format!("gilscope exited: {code}")), "signal {sig}:\n{screen}");
        let alternate = tmux.run(&["display-message", "-p", "-t", "main", "#{alternate_on}"]);
        assert_eq!(String::from_utf8_lossy(&alternate.stdout).trim(), "0", "the alternate screen was left");
        tmux.assert_no_worker_left(Duration::from_secs(3));
    }
}

#[test]
fn the_live_view_refuses_to_run_blind_when_stdout_is_not_a_terminal() {
    let tmux = Tmux::start("blind", "> /dev/null", Some("echo \"gilscope exited: $?\"; sleep 60"));
    let screen = tmux.wait_for("gilscope exited", Duration::from_secs(5));
    assert!(screen.contains("gilscope exited: 2"), "{screen}");
    let said: Vec<&str> = screen.lines().filter(|l| l.starts_with("gilscope:")).collect();
    assert_eq!(said.len(), 1, "one line:\n{screen}");
    assert!(said[0].contains("terminal") && said[0].contains("gilscope run"), "{screen}");
}

#[test]
fn with_runtime_sim_python_is_not_asked_until_c_is_pressed() {
    let dir = common::scratch("lazy-probe");
    let mark = dir.join("asked");
    let fake = common::script(&dir, "python3", &format!("touch '{}'; exec python3 \"$@\"", mark.display()));
    let tmux = Tmux::start("lazy-probe", &format!("--runtime sim --python '{}'", fake.display()), None);
    tmux.wait_for("press space", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(1));
    assert!(!mark.exists(), "the simulated runtime asked python at start");
    tmux.keys(&["c"]);
    tmux.wait_for("runtime cpython", Duration::from_secs(15));
    assert!(mark.exists(), "c switched to CPython without asking python");
    tmux.keys(&["q"]);
    tmux.wait_gone(Duration::from_secs(5));
}

/// An interpreter that never answers, through a shell that does not `exec`
/// it (killing the shell alone would leave its child), and how to find what
/// is left of it: gilscope gives interpreters an environment of their own,
/// so they are found by the script's path and the sleep's unique length.
fn hanging_python(name: &str, seconds: &str) -> (std::path::PathBuf, impl Fn() -> Vec<String>) {
    let dir = common::scratch(name);
    let fake = common::script(&dir, "python3", &format!("sleep {seconds}; true"));
    let (path, seconds) = (fake.display().to_string(), seconds.to_owned());
    let left = move || {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
            let args: Vec<String> =
                cmdline.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            let ours = args.first().is_some_and(|a| a.ends_with("/sh") || a == "sleep")
                && args.iter().any(|a| *a == path || *a == seconds);
            if ours && state(&entry.path()).is_some_and(|s| s != 'Z') {
                found.push(args.join(" "));
            }
        }
        found
    };
    (fake, left)
}

#[test]
fn a_signal_while_python_is_asked_ends_gilscope_at_once_with_the_interpreter() {
    let (fake, left) = hanging_python("probe-signal", "1000.25");
    let after = "echo \"gilscope exited: $?\"; sleep 60";
    let tmux =
        Tmux::start("probe-signal", &format!("--runtime cpython --python '{}'", fake.display()), Some(after));
    assert!(common::wait_until(Duration::from_secs(10), || left().len() == 2), "never asked: {:?}", left());
    signal(tmux.app().expect("the app runs").pid, libc::SIGTERM);
    let screen = tmux.wait_for("gilscope exited", Duration::from_secs(3));
    assert!(screen.contains("gilscope exited: 143"), "{screen}");
    assert!(common::wait_until(Duration::from_secs(3), || left().is_empty()), "left behind: {:?}", left());
}

#[test]
fn quitting_while_python_is_asked_leaves_nothing_of_it() {
    let (fake, left) = hanging_python("probe-quit", "1000.5");
    let tmux = Tmux::start("probe-quit", &format!("--runtime sim --python '{}'", fake.display()), None);
    tmux.wait_for("press space", Duration::from_secs(10));
    tmux.keys(&["c"]);
    assert!(common::wait_until(Duration::from_secs(10), || left().len() == 2), "c did not ask: {:?}", left());
    tmux.keys(&["q"]);
    tmux.wait_gone(Duration::from_secs(5));
    assert!(common::wait_until(Duration::from_secs(3), || left().is_empty()), "left behind: {:?}", left());
}

#[test]
fn the_live_view_opens_on_the_real_interpreter_paced_with_more_iterations() {
    // No --runtime: the interpreter is asked once the screen is up. The
    // script answers a second late, so space is pressed before it does:
    // the run waits for the answer and starts on the real interpreter.
    let dir = common::scratch("real-default");
    let fake = common::script(&dir, "python3", "sleep 1; exec python3 \"$@\"");
    let args = format!("--python '{}' --iterations 1000000 --pace 3 --workers 2", fake.display());
    let tmux = Tmux::start("real-default", &args, None);
    let screen = tmux.wait_for("press space", Duration::from_secs(10));
    assert!(screen.contains("asking the Python interpreter"), "{screen}");
    tmux.keys(&["Space"]);
    let screen = tmux.wait_for("starting once the Python interpreter", Duration::from_secs(5));
    assert!(screen.contains("runtime sim"), "nothing runs on the simulation meanwhile:\n{screen}");
    let screen = tmux.wait_for("runtime cpython", Duration::from_secs(15));
    // Slowed for watching with more work, and the header says how much.
    assert!(screen.contains("sqrt × 3,000,000 (3× 1,000,000) per worker"), "{screen}");
    assert!(screen.contains("pace 3× the work"), "{screen}");
    let screen = tmux.wait_for(" → ", Duration::from_mins(1));
    assert!(screen.contains("runtime cpython"), "{screen}");
    assert!(screen.contains("threading") && screen.contains("multiprocessing"), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_gone(Duration::from_secs(5));
    assert!(tmux.processes().is_empty(), "left behind: {:?}", tmux.processes());
}

#[test]
fn without_a_working_interpreter_the_live_view_says_why_and_simulates() {
    let dir = common::scratch("no-python");
    let missing = dir.join("no-such-python");
    let tmux = Tmux::start("no-python", &format!("--python '{}' {QUICK_ANY}", missing.display()), None);
    let screen = tmux.wait_for("simulated CPython: the real one cannot run here (", Duration::from_secs(10));
    assert!(screen.contains("runtime sim"), "{screen}");
    tmux.keys(&["Space"]);
    let screen = tmux.wait_for(" → ", Duration::from_secs(30));
    assert!(screen.contains("runtime sim"), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_gone(Duration::from_secs(5));
}

/// QUICK without a runtime: whichever the live view opens on.
const QUICK_ANY: &str = "--iterations 300000 --pace 1 --workers 2";
