//! Worker processes never outlive gilscope, and a broken worker fails its
//! run with a message instead of a panic or a hang.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails
#![allow(clippy::cast_possible_wrap, clippy::similar_names)] // pids for kill(2); short names side by side

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

mod common;
use common::{alive, next_reports, wait_until};

use gilscope::experiment::load::children;
use gilscope::experiment::plan::Plan;
use gilscope::experiment::spec::{Experiment, Model, RunSpec};
use gilscope::experiment::supervisor::{self, Event, Launch, Report};
use gilscope::experiment::tally::{Lane, Tally};

fn gilscope() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gilscope"))
}

fn killing_gilscope_run_leaves_no_worker(model: &str, signal: i32) {
    let mut app = common::gilscope()
        .args(["run", "--model", model, "--workers", "2", "--iterations", "15000000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gilscope run");
    let pid = app.id();
    // The baseline (one worker alone) comes first; wait until the model's
    // own workers are up: two processes, or one process of two threads.
    let mut workers = Vec::new();
    assert!(
        wait_until(Duration::from_secs(20), || {
            workers = children(pid);
            match model {
                "processes" => workers.len() >= 2,
                _ => workers.iter().any(|&w| {
                    std::fs::read(format!("/proc/{w}/cmdline"))
                        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("--roles=cpu,cpu"))
                }),
            }
        }),
        "gilscope run never started its workers"
    );
    // SAFETY: plain syscall on our own child.
    unsafe { libc::kill(pid as i32, signal) };
    let _ = app.wait();
    assert!(
        wait_until(Duration::from_secs(3), || workers.iter().all(|&w| !alive(w))),
        "workers {workers:?} outlived gilscope (signal {signal})"
    );
}

#[test]
fn sigkill_of_gilscope_run_leaves_no_worker_behind() {
    killing_gilscope_run_leaves_no_worker("threads", libc::SIGKILL);
}

#[test]
fn sigkill_mid_multiprocessing_run_leaves_no_worker_behind() {
    killing_gilscope_run_leaves_no_worker("processes", libc::SIGKILL);
}

#[test]
fn ctrl_c_of_gilscope_run_leaves_no_worker_behind() {
    killing_gilscope_run_leaves_no_worker("processes", libc::SIGINT);
}

/// Applies the next reports of a run to its tally, waiting at most `limit`.
fn take_next(rx: &crossbeam_channel::Receiver<Event>, tally: &mut Tally, limit: Duration) {
    for report in next_reports(rx, limit) {
        tally.apply(report);
    }
}

fn collect(launches: &[Launch], workers: u32) -> Tally {
    let (tx, rx) = supervisor::channel();
    let running = supervisor::start_one(7, launches.to_vec(), Duration::from_secs(30), &tx);
    let spec = RunSpec { experiment: Experiment::new(workers), model: Model::Threads };
    let mut tally = Tally::new(spec, running.requested_at, running.streams());
    while !tally.is_over() {
        for report in next_reports(&rx, Duration::from_secs(10)) {
            assert_eq!(report.run(), 7);
            tally.apply(report);
        }
    }
    tally
}

fn shell(script: &str) -> Launch {
    Launch { program: "sh".into(), args: vec!["-c".into(), script.into()], ..Launch::default() }
}

#[test]
fn a_stream_that_is_not_the_wire_format_fails_the_run_by_name() {
    let tally = collect(&[shell("echo hello there; sleep 5")], 1);
    let why = tally.failure.expect("garbage must fail the run");
    assert!(why.contains("gilscope header"), "{why}");
}

#[test]
fn a_truncated_stream_fails_the_run() {
    let truncated = python_worker(1, "out.write(f'take {t()} 0\\nprogress {t()} 0 1\\n')");
    let why = collect(&[truncated], 1).failure.expect("a truncated record must fail the run");
    assert!(why.contains("malformed"), "{why}");
    let stopped = python_worker(1, "out.write(f'take {t()} 0\\n')");
    let why = collect(&[stopped], 1).failure.expect("a stream that stops early must fail the run");
    assert!(why.contains("truncated"), "{why}");
}

#[test]
fn a_worker_that_dies_mid_run_fails_the_run_and_shows_as_failed() {
    let plan = Plan::with_program(gilscope());
    let spec = RunSpec {
        experiment: Experiment { iterations: 500_000_000, ..Experiment::new(2) },
        model: Model::Processes,
    };
    let launches = plan.launches(&spec).expect("launches");
    let (tx, rx) = supervisor::channel();
    let running = supervisor::start_one(1, launches, Duration::from_secs(30), &tx);
    let mut tally = Tally::new(spec, running.requested_at, running.streams());
    // Wait for progress, then kill one of the two processes as a crash would.
    while tally.workers.iter().all(|w| w.done == 0) {
        take_next(&rx, &mut tally, Duration::from_secs(10));
    }
    let victim = running.pids()[1];
    running.kill_one(victim);
    while !tally.is_over() {
        take_next(&rx, &mut tally, Duration::from_secs(10));
    }
    let why = tally.failure.clone().expect("a killed worker must fail the run");
    assert!(why.contains(&victim.to_string()) && why.contains("SIGKILL"), "{why}");
    assert!(tally.workers.iter().any(|w| w.lane() == Lane::Failed));
    drop(running);
    assert!(wait_until(Duration::from_secs(3), || !alive(victim)));
}

#[test]
fn dropping_a_run_kills_its_whole_process_group() {
    let plan = Plan::with_program(gilscope());
    let spec = RunSpec {
        experiment: Experiment { iterations: 500_000_000, ..Experiment::new(3) },
        model: Model::Processes,
    };
    let (tx, rx) = supervisor::channel();
    let running =
        supervisor::start_one(2, plan.launches(&spec).expect("launches"), Duration::from_secs(30), &tx);
    while !matches!(rx.recv_timeout(Duration::from_secs(10)), Ok(Event::Started { .. })) {}
    let pids = running.pids();
    assert_eq!(pids.len(), 3);
    assert!(pids.iter().all(|&p| alive(p)));
    drop(running);
    assert!(wait_until(Duration::from_secs(3), || pids.iter().all(|&p| !alive(p))), "{pids:?} survived");
}

#[test]
fn a_missing_program_is_an_error_not_a_panic() {
    let launch = Launch { program: "/nonexistent/gilscope".into(), ..Launch::default() };
    let (tx, rx) = supervisor::channel();
    let _running = supervisor::start_one(3, vec![launch], Duration::from_secs(30), &tx);
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Event::StartFailed { run: 3, why }) => assert!(why.contains("/nonexistent/gilscope"), "{why}"),
        other => panic!("a missing program must fail the start: {other:?}"),
    }
}

/// A worker process written in Python: a header for `workers` workers of
/// one process, then `body`, where `t()` is the clock records are stamped with.
fn python_worker(workers: u32, body: &str) -> Launch {
    let code = format!(
        "import os, sys, time\nt = time.monotonic_ns\nout = sys.stdout\n\
         out.write('gilscope {} pid=%d runtime=sim gil=on threads={workers} first=0 timeline=exact\\n' % os.getpid())\n\
         out.flush()\n{body}\n",
        gilscope::protocol::VERSION
    );
    Launch { program: "python3".into(), args: vec!["-c".into(), code], ..Launch::default() }
}

/// What a clean worker 0 of `iterations` says, up to and including `finished`.
const CLEAN_START: &str =
    "p, r = os.getpid(), t()\nout.write(f'start {t()} 0 {r}\\nprocess {t()} 0 {p}\\ntake {t()} 0\\n')\n";

/// Runs `launch` as a run of `workers` workers of `iterations` each; the
/// tally once the run is over, or a panic if it is not over within `limit`.
fn collect_within(launch: Launch, workers: u32, iterations: u64, limit: Duration) -> Tally {
    let (tx, rx) = supervisor::channel();
    let running = supervisor::start_one(9, vec![launch], Duration::from_secs(30), &tx);
    let spec =
        RunSpec { experiment: Experiment { iterations, ..Experiment::new(workers) }, model: Model::Threads };
    let mut tally = Tally::new(spec, running.requested_at, running.streams());
    let deadline = std::time::Instant::now() + limit;
    while !tally.is_over() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        take_next(&rx, &mut tally, left);
    }
    tally
}

/// Held by the tests that measure this process's memory and by those that
/// flood it, so that one does not count the other's.
static MEMORY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn memory_to_myself() -> std::sync::MutexGuard<'static, ()> {
    MEMORY.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Resident memory of this test process, in MiB.
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024
}

#[test]
fn a_worker_flooding_its_stderr_fails_the_run_with_a_short_message_and_no_memory() {
    let _alone = memory_to_myself();
    let before = rss_mib();
    let flood = python_worker(1, "sys.stderr.write('x' * (300 << 20))\nsys.stderr.flush()\nsys.exit(1)");
    let tally = collect_within(flood, 1, 1000, Duration::from_secs(30));
    let grew = rss_mib().saturating_sub(before);
    let why = tally.failure.expect("a flood must fail the run");
    assert!(why.len() < 300, "a {} byte message", why.len());
    assert!(why.contains("stderr"), "{why}");
    assert!(grew < 64, "gilscope grew by {grew} MiB reading a flood");
}

#[test]
fn a_worker_writing_an_endless_line_fails_the_run_without_buffering_it() {
    let _alone = memory_to_myself();
    let before = rss_mib();
    let flood = python_worker(1, "out.write('x' * (200 << 20))\nout.flush()\ntime.sleep(30)");
    let tally = collect_within(flood, 1, 1000, Duration::from_secs(20));
    let grew = rss_mib().saturating_sub(before);
    let why = tally.failure.expect("an endless line must fail the run");
    assert!(why.contains("line") && why.len() < 300, "{why}");
    assert!(grew < 64, "gilscope grew by {grew} MiB reading one line");
}

#[test]
fn a_worker_that_keeps_sending_valid_records_fails_the_run() {
    let _alone = memory_to_myself();
    let endless = python_worker(
        1,
        &format!("{CLEAN_START}while True:\n    out.write(f'progress {{t()}} 0 5 1000\\n')"),
    );
    let tally = collect_within(endless, 1, 1000, Duration::from_secs(20));
    let why = tally.failure.expect("an endless stream must fail the run");
    assert!(why.contains("worker 0"), "{why}");
}

#[test]
fn records_after_a_worker_finished_fail_the_run() {
    let late = python_worker(
        1,
        &format!(
            "{CLEAN_START}out.write(f'progress {{t()}} 0 1000 1000\\nrelease {{t()}} 0 finished\\n\
             cpu {{t()}} 0 5\\nfinished {{t()}} 0\\ntake {{t()}} 0\\nend {{t()}} {{p}} 5 100 0\\n')\nout.flush()\ntime.sleep(30)"
        ),
    );
    let tally = collect_within(late, 1, 1000, Duration::from_secs(20));
    let why = tally.failure.expect("a record after `finished` must fail the run");
    assert!(why.contains("worker 0") && why.contains("after it finished"), "{why}");
}

/// A clean worker 0 that claims `done` of `total` iterations.
fn claims(done: u64, total: u64) -> Launch {
    python_worker(
        1,
        &format!(
            "{CLEAN_START}out.write(f'progress {{t()}} 0 {done} {total}\\nrelease {{t()}} 0 finished\\n\
             cpu {{t()}} 0 5\\nfinished {{t()}} 0\\nend {{t()}} {{p}} 5 100 0\\n')"
        ),
    )
}

#[test]
fn a_worker_claiming_more_iterations_than_it_was_asked_fails_the_run_by_name() {
    let tally = collect_within(claims(5000, 5000), 1, 1000, Duration::from_secs(20));
    let why = tally.failure.expect("5,000 iterations of 1,000 asked must fail the run");
    assert!(why.contains("worker 0") && why.contains("1,000"), "{why}");
    // The honest claim passes: the check is not a blanket refusal.
    let tally = collect_within(claims(1000, 1000), 1, 1000, Duration::from_secs(20));
    assert_eq!(tally.failure, None);
}

#[test]
fn a_worker_reporting_times_from_the_future_or_before_the_request_fails_the_run_by_name() {
    for (take, what) in [("t() + 3600 * 10**9", "future"), ("5", "before")] {
        let odd = python_worker(
            1,
            &format!(
                "p, r = os.getpid(), t()\nout.write(f'start {{t()}} 0 {{r}}\\nprocess {{t()}} 0 {{p}}\\ntake {{{take}}} 0\\n')\n\
                 out.flush()\ntime.sleep(30)"
            ),
        );
        let tally = collect_within(odd, 1, 1000, Duration::from_secs(20));
        let why = tally.failure.expect("an impossible time must fail the run");
        assert!(why.contains("worker process") && why.contains(what), "{why}");
    }
}

#[test]
fn a_run_started_from_a_thread_that_ends_keeps_its_workers() {
    // PR_SET_PDEATHSIG fires when the thread that forked a child ends, not
    // the process: a run must not die with the thread that asked for it.
    let plan = Plan::with_program(gilscope());
    let spec = RunSpec {
        experiment: Experiment { iterations: 500_000_000, ..Experiment::new(2) },
        model: Model::Processes,
    };
    let launches = plan.launches(&spec).expect("launches");
    let (tx, rx) = supervisor::channel();
    let running =
        std::thread::spawn(move || supervisor::start_one(4, launches, Duration::from_secs(30), &tx))
            .join()
            .expect("the starting thread");
    let mut tally = Tally::new(spec, running.requested_at, running.streams());
    // Both workers make progress after the thread that asked for them ended.
    while tally.workers.iter().any(|w| w.done == 0) && !tally.is_over() {
        take_next(&rx, &mut tally, Duration::from_secs(10));
    }
    assert_eq!(tally.failure, None, "the workers died with the thread that started them");
    let pids = running.pids();
    drop(running);
    assert!(wait_until(Duration::from_secs(3), || pids.iter().all(|&p| !alive(p))));
}

#[test]
fn a_run_that_goes_silent_fails_after_its_silence_limit_unless_paused() {
    // The same watchdog serves `gilscope run` and the live view: the
    // supervisor applies each run's silence limit.
    let silent = python_worker(1, &format!("{CLEAN_START}out.flush()\ntime.sleep(60)"));
    let (tx, rx) = supervisor::channel();
    let running = supervisor::start_one(5, vec![silent.clone()], Duration::from_secs(1), &tx);
    let spec = RunSpec { experiment: Experiment::new(1), model: Model::Threads };
    let mut tally = Tally::new(spec.clone(), running.requested_at, running.streams());
    let started = std::time::Instant::now();
    while !tally.is_over() {
        take_next(&rx, &mut tally, Duration::from_secs(10));
    }
    let why = tally.failure.expect("a silent run must fail");
    assert!(why.contains("no word from the workers in 1 s"), "{why}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    // Paused, the same silence is no failure: the workers are stopped on purpose.
    let running = supervisor::start_one(6, vec![silent], Duration::from_secs(1), &tx);
    let mut tally = Tally::new(spec, running.requested_at, running.streams());
    while tally.workers[0].started_at.is_none() {
        take_next(&rx, &mut tally, Duration::from_secs(10));
    }
    running.pause();
    std::thread::sleep(Duration::from_secs(3));
    running.resume();
    assert!(
        rx.try_iter()
            .all(|e| !matches!(e, Event::Reports(r) if r.iter().any(|r| matches!(r, Report::Ended { .. }))))
    );
    drop(running);
}

#[test]
fn a_worker_that_keeps_talking_without_progress_fails_the_run() {
    // A valid progress record every half second that never moves on: the
    // silence watchdog is fed, but the work goes nowhere.
    let drip = python_worker(
        1,
        &format!(
            "{CLEAN_START}while True:\n    out.write(f'progress {{t()}} 0 5 1000\\n')\n    out.flush()\n    time.sleep(0.5)"
        ),
    );
    let started = std::time::Instant::now();
    let tally = collect_within(drip, 1, 1000, Duration::from_mins(1));
    let why = tally.failure.expect("a run that goes nowhere must fail");
    assert!(why.contains("no progress in 30 s"), "{why}");
    assert!(started.elapsed() < Duration::from_secs(40), "it took {:?}", started.elapsed());
}

#[test]
fn a_simulated_worker_waits_at_the_start_gun_only_as_long_as_gilscope_takes_to_fire_it() {
    // A lone worker's time is its work, its start and the wait at the start
    // gun. The gun fires once gilscope has read the worker's start; a worker
    // whose start sat in its process's queue until the writer's next poll
    // (every 15 ms) waited for nothing, and that wait was in its wall time.
    let plan = Plan::with_program(gilscope());
    let spec = RunSpec {
        experiment: Experiment { iterations: 20_000, ..Experiment::new(1) },
        model: Model::Threads,
    };
    let idle_ms: Vec<f64> = (0..8)
        .map(|_| {
            let result = gilscope::experiment::run_tally(&spec, &plan).expect("a lone worker runs").result();
            let result = result.expect("a finished run has figures");
            // cores_used is the worker thread's CPU time ÷ wall time.
            result.wall_s * (1.0 - result.cores_used) * 1e3
        })
        .collect();
    // Waiting for the poll took 0–15 ms, in about half the runs over 10 ms;
    // a busy machine may still hold a worker back now and then.
    let long = idle_ms.iter().filter(|&&ms| ms > 10.0).count();
    assert!(long <= 1, "a lone worker's wall time exceeded its thread's CPU time by {idle_ms:.1?} ms");
}
