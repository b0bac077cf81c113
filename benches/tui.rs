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
//! 4. cpu: the live view's own CPU (every thread, from schedstat) over two
//!    default demo runs in tmux at 80×24 and 200×60, and htop's in a pane of
//!    the same size at the same moment (100 ms refresh).
//!
//! `cargo bench --bench tui [-- --frames N --minutes M --no-cpu | --cpu-only [--real] [--bin PATH]]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails
#![allow(clippy::cast_possible_wrap, clippy::similar_names)] // pids for kill(2); short names side by side

use std::process::Command;
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
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--cpu-only") {
        cpu_share();
        return;
    }
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

/// CPU time in ns of every thread of `pid` now, by tid, with its name
/// (`/proc/PID/task/TID/schedstat`: nanoseconds, where `stat` counts ticks).
fn thread_ns(pid: u32) -> Vec<(u32, String, u64)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for entry in entries.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else { continue };
        let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default().trim().to_owned();
        let ns = std::fs::read_to_string(entry.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
        if let Some(ns) = ns {
            out.push((tid, name, ns));
        }
    }
    out
}

/// Every thread's CPU time as last seen: threads that end between two
/// looks keep their last reading (they are looked at every 50 ms).
#[derive(Default)]
struct Threads(std::collections::BTreeMap<u32, (String, u64)>);

impl Threads {
    fn look(&mut self, pid: u32) {
        for (tid, name, ns) in thread_ns(pid) {
            self.0.insert(tid, (name, ns));
        }
    }

    /// CPU seconds since `before`, in all and by thread name.
    fn since(&self, before: &Threads) -> (f64, Vec<(String, f64)>) {
        let mut by_name: Vec<(String, f64)> = Vec::new();
        for (tid, (name, ns)) in &self.0 {
            let was = before.0.get(tid).map_or(0, |(_, ns)| *ns);
            let s = ns.saturating_sub(was) as f64 / 1e9;
            match by_name.iter_mut().find(|(n, _)| n == name) {
                Some((_, v)) => *v += s,
                None => by_name.push((name.clone(), s)),
            }
        }
        by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
        (by_name.iter().map(|(_, s)| s).sum(), by_name)
    }
}

fn find_app(socket: &str) -> Option<u32> {
    let pane: u32 =
        tmux(socket, &["display-message", "-p", "-t", "bench", "#{pane_pid}"]).trim().parse().ok()?;
    // The pane runs gilscope itself (tmux execs a plain command through sh, which execs it).
    let cmdline = std::fs::read(format!("/proc/{pane}/cmdline")).ok()?;
    let first = cmdline.split(|b| *b == 0).next()?;
    String::from_utf8_lossy(first).ends_with("gilscope").then_some(pane)
}

fn cpu_share() {
    // `--bin PATH` measures another build (an A/B beside this one).
    let args: Vec<String> = std::env::args().collect();
    let other = args.iter().position(|a| a == "--bin").and_then(|i| args.get(i + 1)).cloned();
    let bin = other.as_deref().unwrap_or(env!("CARGO_BIN_EXE_gilscope"));
    // `--real`: the live view as a new user meets it, on the real CPython
    // (its GIL read from memory); else on the simulation.
    let runtime = if args.iter().any(|a| a == "--real") { "" } else { "--runtime sim" };
    println!(
        "\ncpu: the live view's process (all its threads, not its workers) over two default demo runs, space to"
    );
    println!(
        "results, beside htop -d 1 (a 100 ms refresh, as the live view's at 250 ms a cell) in a pane of the same size"
    );
    println!("at the same moment; CPU from /proc/PID/task/*/schedstat (ns), {bin}");
    if Command::new("htop").arg("--version").output().is_err() {
        println!("  htop is not installed (apt-get install htop): no comparison");
    }
    println!("runtime: {}", if runtime.is_empty() { "the real CPython (the default)" } else { "simulated" });
    for (width, height) in [(80, 24), (200, 60)] {
        cpu_share_at(bin, runtime, width, height, 2);
    }
}

fn cpu_share_at(bin: &str, runtime: &str, width: u16, height: u16, runs: usize) {
    let socket = format!("gilscope-bench-{}-{width}", std::process::id());
    let (w, h) = (width.to_string(), height.to_string());
    // A cache of its own, so the bench never reads a developer's calibration.
    let cache = std::env::temp_dir().join(format!("gilscope-bench-cache-{}", std::process::id()));
    let command = format!("env XDG_CACHE_HOME='{}' '{bin}' {runtime}", cache.display());
    tmux(&socket, &["new-session", "-d", "-s", "bench", "-x", &w, "-y", &h, &command]);
    let start = Instant::now();
    let pid = loop {
        if let Some(pid) = find_app(&socket) {
            break pid;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "gilscope did not start in tmux");
        std::thread::sleep(Duration::from_millis(50));
    };
    let screen = || tmux(&socket, &["capture-pane", "-p", "-t", "bench"]);
    let wait_for = |text: &str, limit: Duration| {
        let start = Instant::now();
        while !screen().contains(text) {
            assert!(start.elapsed() < limit, "no {text:?} on screen");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("press space", Duration::from_secs(10));

    // Idle: nothing runs, the app should sleep but for the core bars.
    let mut idle_before = Threads::default();
    idle_before.look(pid);
    let idle_start = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let mut idle_after = Threads::default();
    idle_after.look(pid);
    let idle = idle_after.since(&idle_before).0 / idle_start.elapsed().as_secs_f64();

    let htop = Command::new("htop").arg("--version").output().is_ok();
    if htop {
        tmux(&socket, &["new-session", "-d", "-s", "htop", "-x", &w, "-y", &h, "htop -d 1"]);
        std::thread::sleep(Duration::from_millis(500));
    }
    let htop_pid = htop
        .then(|| tmux(&socket, &["display-message", "-p", "-t", "htop", "#{pane_pid}"]))
        .and_then(|p| p.trim().parse::<u32>().ok());
    let htop_ns = |p: u32| thread_ns(p).iter().map(|(_, _, ns)| ns).sum::<u64>();
    let (mut before, mut seen) = (Threads::default(), Threads::default());
    before.look(pid);
    seen.look(pid);
    let htop_before = htop_pid.map_or(0, htop_ns);
    let run_start = Instant::now();
    for _ in 0..runs {
        tmux(&socket, &["send-keys", "-t", "bench", "Space"]);
        // Running (the status line says so), then its results ("→ …").
        let since = Instant::now();
        let mut started = false;
        loop {
            seen.look(pid);
            let now = screen();
            started |= now.contains(" running · ");
            if started && !now.contains(" running · ") && now.contains(" → ") {
                break;
            }
            assert!(since.elapsed() < Duration::from_mins(2), "no results on screen:\n{now}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let wall = run_start.elapsed().as_secs_f64();
    seen.look(pid);
    let htop_share = htop_pid.map(|p| htop_ns(p).saturating_sub(htop_before) as f64 / 1e9 / wall);
    tmux(&socket, &["send-keys", "-t", "bench", "q"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux(&socket, &["kill-server"]);

    let (cpu, by_name) = seen.since(&before);
    let share = cpu / wall;
    println!(
        "  {width}×{height}: idle {:.2} % of one core; {runs} runs, {wall:.1} s: {:.3} s CPU → {:.2} % of one core",
        idle * 100.0,
        cpu,
        share * 100.0
    );
    let parts: Vec<String> = by_name
        .iter()
        .filter(|(_, s)| *s > 0.0)
        .map(|(n, s)| format!("{n} {:.3} %", s / wall * 100.0))
        .collect();
    println!("    by thread: {}", parts.join(" · "));
    if let Some(h) = htop_share {
        println!(
            "    htop -d 1, {width}×{height}, same {wall:.1} s: {:.2} % of one core → the live view costs {:.2}× htop",
            h * 100.0,
            share / h.max(1e-9)
        );
    }
}
