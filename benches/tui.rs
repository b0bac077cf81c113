//! The interactive view's own cost:
//!
//! 1. render: the time to draw one 200×60 frame (`ui::render` into ratatui's
//!    `TestBackend`, diff included), mean over many frames, for the default
//!    demo mid-run and for a heavy state (16 workers, 20 s of 1 ms switches,
//!    the whole run in view);
//! 2. cpu: the TUI process's own CPU time (utime + stime of /proc/<pid>/stat,
//!    all its threads, not its workers) over one default demo run in tmux, as
//!    a share of one core, per thread, with `top -b -d 1` sampling the same
//!    process beside it for comparison.
//!
//! `cargo bench --bench tui [-- --frames N --no-cpu]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails
#![allow(clippy::cast_possible_wrap, clippy::similar_names)] // pids for kill(2); short names side by side

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gilscope::app::{App, View, Zoom};
use gilscope::scenario::{MS, S, race};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let frames = args
        .iter()
        .position(|a| a == "--frames")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    println!("render: one 200×60 frame, ui::render into TestBackend, mean of {frames} frames");
    for (name, mut app) in [
        ("default demo, mid-run", state(2, 3 * S, 5 * MS, Zoom::Level(7))),
        ("16 workers, 20 s, whole run", heavy()),
    ] {
        let (mean, max) = render_time(&mut app, frames);
        println!("  {name:<30} mean {:>7.3} ms   max {:>7.3} ms", mean * 1e3, max * 1e3);
    }
    if !args.iter().any(|a| a == "--no-cpu") {
        cpu_share();
    }
}

fn render_time(app: &mut App, frames: usize) -> (f64, f64) {
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).expect("a test terminal");
    let mut times = Vec::with_capacity(frames);
    let base = app.now;
    for i in 0..frames {
        // A frame 33 ms after the last, so the lanes scroll as in a live run
        // (within the data: past its end the lanes stay as they are).
        app.now = base + (i as u64 % 30) * 33 * MS;
        let start = Instant::now();
        terminal.draw(|frame| gilscope::ui::render(frame, app)).expect("TestBackend cannot fail");
        times.push(start.elapsed().as_secs_f64());
    }
    app.now = base;
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    (mean, times.iter().copied().fold(0.0, f64::max))
}

/// The race of `workers` workers, `elapsed` into it, the threads handing the
/// GIL over every `hold` ns, seen at `zoom`.
fn state(workers: u32, elapsed: u64, hold: u64, zoom: Zoom) -> App {
    let (mut app, _, _) = race(workers, elapsed, |_| hold);
    app.view = View { zoom, ..View::default() };
    app
}

fn heavy() -> App {
    state(16, 20 * S, MS, Zoom::WholeRun)
}

// ------------------------------------------------------------------ cpu share

fn tmux(socket: &str, args: &[&str]) -> String {
    let out = Command::new("tmux").arg("-L").arg(socket).args(args).output().expect("tmux runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (utime + stime) in clock ticks of the whole process, and of each thread by name.
fn cpu_ticks(pid: u32) -> (u64, Vec<(String, u64)>) {
    let ticks = |stat: &str| -> Option<(String, u64)> {
        let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state is field 0, utime field 11, stime field 12.
        Some((name.to_owned(), fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?))
    };
    let total =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| ticks(&s)).map_or(0, |t| t.1);
    let mut threads = Vec::new();
    if let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for entry in entries.flatten() {
            if let Some(t) = std::fs::read_to_string(entry.path().join("stat")).ok().and_then(|s| ticks(&s)) {
                threads.push(t);
            }
        }
    }
    (total, threads)
}

fn find_app(socket: &str) -> Option<u32> {
    let pane: u32 =
        tmux(socket, &["display-message", "-p", "-t", "bench", "#{pane_pid}"]).trim().parse().ok()?;
    // The pane runs gilscope itself (tmux execs a plain command through sh, which execs it).
    let cmdline = std::fs::read(format!("/proc/{pane}/cmdline")).ok()?;
    let first = cmdline.split(|b| *b == 0).next()?;
    String::from_utf8_lossy(first).ends_with("gilscope").then_some(pane)
}

fn start_top(pid: u32) -> Option<Child> {
    Command::new("top")
        .args(["-b", "-d", "1", "-p", &pid.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// %CPU of `pid` in each of top's samples but the first (which covers the
/// time before top started).
fn top_samples(output: &str, pid: u32) -> Vec<f64> {
    let mut samples: Vec<f64> = output
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.first() == Some(&pid.to_string().as_str()))
                .then(|| fields.get(8)?.replace(',', ".").parse().ok())?
        })
        .collect();
    if !samples.is_empty() {
        samples.remove(0);
    }
    samples
}

fn cpu_share() {
    let socket = format!("gilscope-bench-{}", std::process::id());
    let bin = env!("CARGO_BIN_EXE_gilscope");
    println!("\ncpu: the TUI process alone (not its workers), default settings, 80×24 tmux, {bin}");
    // A cache of its own, so the bench never reads a developer's calibration.
    let cache = std::env::temp_dir().join(format!("gilscope-bench-cache-{}", std::process::id()));
    let command = format!("env XDG_CACHE_HOME='{}' '{bin}'", cache.display());
    tmux(&socket, &["new-session", "-d", "-s", "bench", "-x", "80", "-y", "24", &command]);
    let start = Instant::now();
    let pid = loop {
        if let Some(pid) = find_app(&socket) {
            break pid;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "gilscope did not start in tmux");
        std::thread::sleep(Duration::from_millis(50));
    };
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let wait_for = |text: &str, limit: Duration| {
        let start = Instant::now();
        while !tmux(&socket, &["capture-pane", "-p", "-t", "bench"]).contains(text) {
            assert!(start.elapsed() < limit, "no {text:?} on screen");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("press space", Duration::from_secs(10));

    // Idle: nothing runs, the app should sleep but for the core bars.
    let (idle_before, _) = cpu_ticks(pid);
    let idle_start = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let idle = (cpu_ticks(pid).0 - idle_before) as f64 / hz / idle_start.elapsed().as_secs_f64();

    let top = start_top(pid);
    let (before, threads_before) = cpu_ticks(pid);
    let run_start = Instant::now();
    tmux(&socket, &["send-keys", "-t", "bench", "Space"]);
    wait_for("· speedup", Duration::from_mins(2));
    let wall = run_start.elapsed().as_secs_f64();
    let (after, threads_after) = cpu_ticks(pid);
    let top_out = top.and_then(|mut t| {
        let _ = t.kill();
        t.wait_with_output().ok()
    });
    let screen = tmux(&socket, &["capture-pane", "-p", "-t", "bench"]);
    tmux(&socket, &["send-keys", "-t", "bench", "q"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux(&socket, &["kill-server"]);

    let share = (after - before) as f64 / hz / wall;
    println!("  idle 5 s before the run: {:.2} % of one core", idle * 100.0);
    println!(
        "  one run, space to results: {:.1} s wall, {:.2} s CPU → {:.2} % of one core (/proc/{pid}/stat utime+stime)",
        wall,
        (after - before) as f64 / hz,
        share * 100.0
    );
    let mut by_name: Vec<(String, f64)> = Vec::new();
    for (name, t) in &threads_after {
        let was = threads_before.iter().find(|(n, _)| n == name).map_or(0, |(_, t)| *t);
        let s = t.saturating_sub(was) as f64 / hz;
        match by_name.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v += s,
            None => by_name.push((name.clone(), s)),
        }
    }
    by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
    let parts: Vec<String> = by_name
        .iter()
        .filter(|(_, s)| *s > 0.0)
        .map(|(n, s)| format!("{n} {:.2} %", s / wall * 100.0))
        .collect();
    println!("  by thread (threads still alive at the end): {}", parts.join(" · "));
    match top_out {
        Some(out) => {
            let samples = top_samples(&String::from_utf8_lossy(&out.stdout), pid);
            let mean = samples.iter().sum::<f64>() / samples.len().max(1) as f64;
            println!(
                "  top -b -d 1 -p {pid}, beside it: mean {mean:.2} % over {} one-second samples {samples:?}",
                samples.len()
            );
        }
        None => println!("  top could not run"),
    }
    if let Some(line) = screen.lines().find(|l| l.contains("· speedup")) {
        println!("  the run's results line:{line}");
    }
}
