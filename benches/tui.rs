//! The live view's own cost, as a user's terminal would pay it:
//!
//! 1. frames: one frame drawn and written as escape codes (ratatui's diff
//!    and crossterm's output into a sink, so the terminal's share of the work
//!    is in), for the default demo mid-run and 16 workers' whole run;
//! 2. stamina: 8 workers switching every 0.1 ms, fed ten simulated minutes
//!    of records: the frame early (30 s in) and late (10 min in), at the
//!    default zoom and at the whole run, and the app's memory;
//! 3. many workers: 64, 128 and 256 workers racing, at 80×24 and 200×60: a
//!    frame, and a key press to the next frame;
//! 4. cpu: the live view's own CPU over a default demo run in tmux, and
//!    htop's in a pane of the same size at the same moment (100 ms refresh).
//!
//! `cargo bench --bench tui [-- --frames N --minutes M --no-cpu]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails
#![allow(clippy::cast_possible_wrap, clippy::similar_names)] // pids for kill(2); short names side by side

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gilscope::app::{App, Msg, View, Zoom};
use gilscope::experiment::supervisor::Report;
use gilscope::protocol::{Record, ReleaseReason};
use gilscope::scenario::{MS, S, key, race};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let frames = arg("--frames", 500) as usize;
    println!("frames: drawn and written as escape codes (diff included), mean / p95 of {frames}");
    for (name, mut app) in [
        ("default demo, mid-run", state(2, 3 * S, 5 * MS, Zoom::Level(7))),
        ("16 workers, 20 s, whole run", state(16, 20 * S, MS, Zoom::WholeRun)),
    ] {
        let (mean, p95) = frame_time(&mut app, 200, 60, frames);
        println!("  {name:<30} 200×60 mean {:>7.3} ms   p95 {:>7.3} ms", mean * 1e3, p95 * 1e3);
    }
    stamina(arg("--minutes", 10), frames);
    many_workers(frames);
    if !std::env::args().any(|a| a == "--no-cpu") {
        cpu_share();
    }
}

/// A terminal of `width`×`height` whose output goes nowhere.
fn terminal(width: u16, height: u16) -> Terminal<CrosstermBackend<std::io::Sink>> {
    let viewport = Viewport::Fixed(Rect::new(0, 0, width, height));
    Terminal::with_options(CrosstermBackend::new(std::io::sink()), TerminalOptions { viewport })
        .expect("a terminal over a sink")
}

/// Mean and 95th percentile of a frame, the lanes scrolling as in a live run.
fn frame_time(app: &mut App, width: u16, height: u16, frames: usize) -> (f64, f64) {
    let mut terminal = terminal(width, height);
    let mut times = Vec::with_capacity(frames);
    let base = app.now;
    for i in 0..frames {
        app.now = base + (i as u64 % 30) * 33 * MS;
        let start = Instant::now();
        terminal.draw(|frame| gilscope::ui::render(frame, app)).expect("a sink cannot fail");
        times.push(start.elapsed().as_secs_f64());
    }
    app.now = base;
    summary(&mut times)
}

fn summary(times: &mut [f64]) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    (mean, times.get(times.len() * 95 / 100).copied().unwrap_or(0.0))
}

/// The race of `workers` workers, `elapsed` into it, the threads handing the
/// GIL over every `hold` ns, seen at `zoom`.
fn state(workers: u32, elapsed: u64, hold: u64, zoom: Zoom) -> App {
    let (mut app, _, _) = race(workers, elapsed, |_| hold);
    app.view = View { zoom, ..View::default() };
    app
}

/// This process's resident memory, in MB.
fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// Feeds the threading run of `app` hand-overs every `hold` ns among
/// `workers` threads from `from` to `to`; returns the records sent.
fn feed(app: &mut App, run: u64, workers: u32, from: u64, to: u64, hold: u64) -> u64 {
    let mut sent = 0;
    let mut t = from;
    let mut holder = ((from / hold) % u64::from(workers)) as u32;
    while t < to {
        let next = (holder + 1) % workers;
        t += hold;
        for record in [
            Record::DropRequest { t: t - hold / 10, worker: next },
            Record::Release { t, worker: holder, reason: ReleaseReason::DropRequest },
            Record::Wait { t, worker: holder },
            Record::Take { t: t + 1_000, worker: next },
        ] {
            app.update(t, Msg::Report(Report::Record { run, stream: 0, record }));
            sent += 1;
        }
        holder = next;
    }
    sent
}

/// Ten (simulated) minutes of 0.1 ms switching among 8 threads: is a late
/// frame as cheap as an early one, and does memory stay bounded?
fn stamina(minutes: u64, frames: usize) {
    let workers = 8;
    let hold = 100_000;
    println!(
        "\nstamina: {workers} threads switching every 0.1 ms, {minutes} simulated minutes fed record by record"
    );
    let before = rss_mb();
    let (mut app, threads, _) = race(workers, 10 * MS, |_| hold);
    let t0 = app.now;
    let early = t0 + 30 * S;
    let fed = Instant::now();
    let mut records = feed(&mut app, threads, workers, t0, early, hold);
    let measure = |app: &mut App, label: &str| {
        for (zoom_name, zoom) in [("250 ms/cell", Zoom::Level(7)), ("whole run", Zoom::WholeRun)] {
            app.view = View { zoom, ..View::default() };
            let (mean, p95) = frame_time(app, 200, 60, frames / 2);
            println!(
                "  {label:<14} {zoom_name:<12} frame mean {:>7.3} ms  p95 {:>7.3} ms",
                mean * 1e3,
                p95 * 1e3
            );
        }
    };
    measure(&mut app, "30 s in");
    let early_rss = rss_mb();
    records += feed(&mut app, threads, workers, early, t0 + minutes * 60 * S, hold);
    let per_record = fed.elapsed().as_secs_f64() / records as f64;
    measure(&mut app, &format!("{minutes} min in"));
    println!(
        "  {records} records, {:.2} µs each to take in; memory {:.1} MB before, {:.1} MB at 30 s, {:.1} MB at {minutes} min",
        per_record * 1e6,
        before,
        early_rss,
        rss_mb()
    );
}

/// Many workers: a frame, and a key to the next frame.
fn many_workers(frames: usize) {
    println!("\nmany workers: a race 2 s in, frame and key-to-frame (z, then the next frame)");
    for workers in [64, 128, 256] {
        let (mut app, _, _) = race(workers, 2 * S, |_| 5 * MS);
        for (w, h) in [(80, 24), (200, 60)] {
            let (mean, p95) = frame_time(&mut app, w, h, frames / 4);
            let mut terminal = terminal(w, h);
            let mut keyed = Vec::new();
            for i in 0..frames / 4 {
                let start = Instant::now();
                key(&mut app, if i % 2 == 0 { 'z' } else { 'Z' });
                terminal.draw(|frame| gilscope::ui::render(frame, &app)).expect("a sink cannot fail");
                keyed.push(start.elapsed().as_secs_f64());
            }
            let (k_mean, k_p95) = summary(&mut keyed);
            println!(
                "  {workers:>3} workers {w:>3}×{h:<3} frame mean {:>7.3} ms p95 {:>7.3} ms · key→frame mean {:>7.3} ms p95 {:>7.3} ms",
                mean * 1e3,
                p95 * 1e3,
                k_mean * 1e3,
                k_p95 * 1e3
            );
        }
    }
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

    // htop beside it, in a pane of the same size, refreshing every 100 ms
    // (the live view draws about 10 frames a second at the default zoom).
    let htop = Command::new("htop").arg("--version").output().is_ok();
    if htop {
        tmux(&socket, &["new-session", "-d", "-s", "htop", "-x", "80", "-y", "24", "htop -d 1"]);
        std::thread::sleep(Duration::from_millis(500));
    }
    let htop_pid = htop
        .then(|| tmux(&socket, &["display-message", "-p", "-t", "htop", "#{pane_pid}"]))
        .and_then(|p| p.trim().parse::<u32>().ok());
    let top = start_top(pid);
    let (before, threads_before) = cpu_ticks(pid);
    let htop_before = htop_pid.map_or(0, |p| cpu_ticks(p).0);
    let run_start = Instant::now();
    tmux(&socket, &["send-keys", "-t", "bench", "Space"]);
    wait_for(" → ", Duration::from_mins(2));
    let wall = run_start.elapsed().as_secs_f64();
    let (after, threads_after) = cpu_ticks(pid);
    let htop_share = htop_pid.map(|p| (cpu_ticks(p).0 - htop_before) as f64 / hz / wall);
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
    match htop_share {
        Some(h) => println!(
            "  htop -d 1 in an 80×24 pane over the same {wall:.1} s: {:.2} % of one core → the live view costs {:.2}× htop",
            h * 100.0,
            share / h.max(1e-9)
        ),
        None => println!("  htop is not installed (apt-get install htop) for the comparison"),
    }
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
    if let Some(line) = screen.lines().find(|l| l.contains("× of")) {
        println!("  the run's results line:{line}");
    }
}
