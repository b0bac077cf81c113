//! The classroom in a real terminal: tmux runs gilscope as a teacher would,
//! a run is saved with `R` and replayed with `gilscope replay`, and the
//! replay ends on the same results; a lesson opens with its question.
//!
//! Each test starts its own tmux server (`-L`) and runs gilscope in a
//! scratch folder with a cache of its own. tmux must be installed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod common;

const TAG_VAR: &str = "GILSCOPE_TEST_TAG";

/// A tmux server of our own; its sessions run gilscope in `dir`.
struct Tmux {
    socket: String,
    dir: PathBuf,
}

impl Tmux {
    fn new(name: &str) -> Tmux {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        Tmux {
            socket: format!("gilscope-classroom-{}-{n}-{name}", std::process::id()),
            dir: common::scratch(name),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        match Command::new("tmux").arg("-L").arg(&self.socket).args(args).output() {
            Ok(out) => out,
            Err(e) => panic!("tmux is needed for the terminal tests and could not run ({e}); install tmux"),
        }
    }

    /// Session `name` runs `gilscope <args>` in a 100×30 terminal, then
    /// says how it exited and stays open. Its processes carry the session's
    /// name in `GILSCOPE_TEST_TAG`, so they can be found.
    fn start(&self, name: &str, args: &str) {
        let bin = env!("CARGO_BIN_EXE_gilscope");
        let cache = self.dir.join("cache");
        let command = format!(
            "env {TAG_VAR}={} XDG_CACHE_HOME='{}' '{bin}' {args}; echo \"gilscope exited: $?\"; sleep 60",
            self.tag(name),
            cache.display()
        );
        let dir = self.dir.to_str().unwrap();
        let out = self.run(&["new-session", "-d", "-s", name, "-x", "100", "-y", "30", "-c", dir, &command]);
        assert!(out.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn tag(&self, session: &str) -> String {
        format!("{}-{session}", self.socket)
    }

    /// The command lines of the live processes session `name` started.
    fn processes(&self, session: &str) -> Vec<String> {
        let needle = format!("{TAG_VAR}={}", self.tag(session));
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
            if !environ.split(|b| *b == 0).any(|var| var == needle.as_bytes()) {
                continue;
            }
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            if stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')) {
                continue;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().to_owned());
        }
        found
    }

    fn keys(&self, session: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", session];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success());
    }

    fn screen(&self, session: &str) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", session]).stdout).into_owned()
    }

    fn wait_for(&self, session: &str, text: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen(session);
            if screen.contains(text) {
                return screen;
            }
            assert!(start.elapsed() < limit, "no {text:?} on screen after {limit:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output();
    }
}

/// The results line and the verdict under it, as the screen shows them.
fn results(screen: &str) -> Vec<String> {
    let lines: Vec<&str> = screen.lines().collect();
    let at =
        lines.iter().position(|l| l.contains(" of 2×")).unwrap_or_else(|| panic!("no results:\n{screen}"));
    lines[at..=at + 1].iter().map(|l| l.trim_end().to_owned()).collect()
}

fn recordings(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "gilrec"))
        .collect()
}

#[test]
fn a_run_saved_with_r_replays_to_the_same_results_without_a_worker() {
    let tmux = Tmux::new("save-replay");
    tmux.start("live", "--iterations 300000 --pace 1 --workers 2 --runtime sim");
    tmux.wait_for("live", "press space", Duration::from_secs(10));
    tmux.keys("live", &["Space"]);
    let live = tmux.wait_for("live", " → ", Duration::from_secs(30));
    let live_results = results(&live);
    tmux.keys("live", &["R"]);
    let saved = tmux.wait_for("live", "saved to ", Duration::from_secs(10));
    let files = recordings(&tmux.dir);
    assert_eq!(files.len(), 1, "one file in the current folder:\n{saved}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with("gilscope-") && saved.contains(&name), "the notice names the file:\n{saved}");
    tmux.keys("live", &["q"]);
    tmux.wait_for("live", "gilscope exited: 0", Duration::from_secs(5));

    tmux.start("replay", &format!("replay {name} --speed 2"));
    // While it plays, gilscope is alone: no worker, no python.
    let (start, mut seen) = (Instant::now(), false);
    let replay = loop {
        let processes = tmux.processes("replay");
        assert!(
            processes.iter().all(|p| p.contains("gilscope") && p.contains(" replay ")),
            "only the replay runs: {processes:?}"
        );
        seen |= processes.len() == 1;
        let screen = tmux.screen("replay");
        if screen.contains("replay ended") {
            break screen;
        }
        assert!(start.elapsed() < Duration::from_mins(1), "the replay did not end:\n{screen}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(seen, "the replay was seen running, alone");
    assert_eq!(results(&replay), live_results, "the same figures and verdict:\n{replay}");
    // The viewer cannot change the recorded run, and is told so.
    tmux.keys("replay", &["w"]);
    tmux.wait_for("replay", "a replay shows what was recorded", Duration::from_secs(5));
    tmux.keys("replay", &["q"]);
    tmux.wait_for("replay", "gilscope exited: 0", Duration::from_secs(5));
}

#[test]
fn a_lesson_opens_with_its_question_and_l_moves_to_the_next() {
    let tmux = Tmux::new("lesson");
    tmux.start("live", "lesson 2 --iterations 300000 --pace 1 --runtime sim");
    let screen = tmux.wait_for("live", "lesson 2/", Duration::from_secs(10));
    assert!(screen.contains("One worker: is there anything for processes to win?"), "{screen}");
    assert!(screen.contains("1 worker"), "the lesson's settings:\n{screen}");
    tmux.keys("live", &["l"]);
    let screen = tmux.wait_for("live", "lesson 3/", Duration::from_secs(5));
    assert!(screen.contains("2 workers"), "{screen}");
    tmux.keys("live", &["q"]);
    tmux.wait_for("live", "gilscope exited: 0", Duration::from_secs(5));
}
