//! Fixed message scripts: an app driven by the same messages a real run
//! sends (key presses, worker records, OS samples) with made-up but fixed
//! timestamps. The app's unit tests, the screen snapshots and the TUI bench
//! build their states from these, so a state is written once. No clock is
//! read: a script gives the same screen every time.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::{App, Effect, Msg, Options};
use crate::experiment::spec::{Experiment, RunSpec};
use crate::experiment::supervisor::{Report, RunId};
use crate::monitor::{ProcessSample, Sample};
use crate::protocol::{Hello, Record, ReleaseReason, Runtime, Timeline, VERSION};

pub const MS: u64 = 1_000_000;
pub const S: u64 = 1_000_000_000;
/// The made-up moment an app starts at.
pub const T0: u64 = 1_000 * S;
/// Nanoseconds one iteration takes in these scripts (70 ns at pace 15).
pub const ITERATION_NS: u64 = 1_050;
/// How long one iteration of the real `CPython` takes in these scripts.
pub const CPYTHON_ITERATION_NS: u64 = 70;
pub const ITERATIONS: u64 = 4_000_000;

/// The app as `gilscope` starts it on a 2-core machine, with one OS sample in.
pub fn fresh(experiment: Experiment) -> App {
    let mut app = App::new(
        experiment,
        Options { color: true, runtimes: vec![Runtime::Sim], cores: 2, ..Options::default() },
        T0,
    );
    app.update(T0, Msg::Sample(Sample { at: T0, cores: vec![3.0, 1.0], ..Sample::default() }));
    app
}

/// The default demo's experiment: 2 workers, 15× slower than `CPython`.
pub fn demo() -> Experiment {
    Experiment { pace: 15, ..Experiment::new(2) }
}

pub fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.update(app.now, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

pub fn key(app: &mut App, c: char) -> Vec<Effect> {
    press(app, KeyCode::Char(c))
}

/// The runs the effects start, in order.
pub fn starts(effects: &[Effect]) -> Vec<(RunId, RunSpec)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Start { run, spec } => Some((*run, spec.clone())),
            _ => None,
        })
        .collect()
}

/// Sends the records of one stream of a run, in order, each at its own time.
pub fn send(app: &mut App, run: RunId, stream: usize, records: Vec<Record>) -> Vec<Effect> {
    let mut effects = Vec::new();
    for record in records {
        let t = record.time().unwrap_or(app.now);
        effects.extend(app.update(t.max(app.now), Msg::Report(Report::Record { run, stream, record })));
    }
    effects
}

/// The header of a simulated stream: GIL on, every take the lock's own.
pub fn sim_header(pid: u32, first_worker: u32, threads: u32) -> Hello {
    Hello {
        version: VERSION,
        pid,
        runtime: Runtime::Sim,
        gil: true,
        threads,
        first_worker,
        timeline: Timeline::Exact,
        gils: None,
    }
}

/// The header the real `CPython` worker writes: its lanes are inferred.
pub fn cpython_header(pid: u32, threads: u32) -> Hello {
    Hello {
        runtime: Runtime::Cpython,
        timeline: Timeline::Inferred { resolution_ns: 50_000 },
        ..sim_header(pid, 0, threads)
    }
}

pub fn header(app: &mut App, run: RunId, stream: usize, hello: Hello) -> Vec<Effect> {
    app.update(app.now, Msg::Report(Report::Hello { run, stream, hello }))
}

pub fn end(app: &mut App, run: RunId, stream: usize, outcome: Result<(), String>) -> Vec<Effect> {
    app.update(app.now, Msg::Report(Report::Ended { run, stream, outcome }))
}

/// One whole clean run of `spec` that lasts `wall` ns from `t0`, every
/// worker running freely; returns what the app asked for meanwhile.
pub fn play_run(app: &mut App, run: RunId, spec: &RunSpec, t0: u64, wall: u64) -> Vec<Effect> {
    let first_pid = 100 + u32::try_from(run).unwrap_or(0);
    let mut effects = app.update(t0, Msg::Started { run, requested_at: t0, pids: vec![first_pid] });
    let workers = spec.experiment.workers;
    let processes = spec.model.processes(workers);
    let per = workers / processes.max(1);
    let runtime = spec.experiment.runtime;
    for p in 0..processes {
        let pid = first_pid + p;
        let stream = p as usize;
        let hello = match runtime {
            Runtime::Sim => sim_header(pid, p * per, per),
            Runtime::Cpython => Hello { first_worker: p * per, ..cpython_header(pid, per) },
        };
        effects.extend(header(app, run, stream, hello));
        let mut records = Vec::new();
        for w in p * per..(p + 1) * per {
            records.extend([
                Record::Started { t: t0 + 10, worker: w, requested: t0 },
                Record::Process { t: t0 + 10, worker: w, pid },
                Record::Take { t: t0 + 20, worker: w },
                Record::Progress { t: t0 + wall, worker: w, done: ITERATIONS, total: ITERATIONS },
                Record::Finished { t: t0 + wall, worker: w },
            ]);
        }
        records.push(Record::End {
            t: t0 + wall,
            pid,
            cpu_ns: wall,
            max_rss_kb: 3_300,
            switches: 0,
            drop_requests: Some(0),
        });
        effects.extend(send(app, run, stream, records));
    }
    for stream in 0..processes as usize {
        effects.extend(end(app, run, stream, Ok(())));
    }
    effects
}

/// A deterministic scramble, so hold times vary like real ones without a clock.
pub fn hold_ns(i: u64) -> u64 {
    let x = i.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407) >> 33;
    3 * MS + x % (4 * MS)
}

/// Workers `first ..= first + threads - 1`, threads of one process, taking
/// turns on one GIL from `t` to `until`, each hold `hold(i)` long.
pub fn handover_records(
    first: u32,
    t: u64,
    until: u64,
    pid: u32,
    threads: u32,
    hold: impl Fn(u64) -> u64,
) -> Vec<Record> {
    let mut records = Vec::new();
    for w in first..first + threads {
        let k = u64::from(w - first);
        records.push(Record::Started { t: t + 2 * MS + k * 100_000, worker: w, requested: t + 2 * MS });
        records.push(Record::Process { t: t + 2 * MS, worker: w, pid });
    }
    records.push(Record::Take { t: t + 3 * MS, worker: first });
    for w in first + 1..first + threads {
        records.push(Record::Wait { t: t + 3 * MS, worker: w });
    }
    let mut now = t + 3 * MS;
    let mut holder = first;
    let mut done = vec![0u64; threads as usize];
    let mut i = 0;
    while now < until {
        let hold = hold(i).min(until - now);
        i += 1;
        now += hold;
        let k = (holder - first) as usize;
        done[k] += hold / ITERATION_NS;
        records.push(Record::Progress { t: now, worker: holder, done: done[k], total: ITERATIONS });
        if now >= until || threads < 2 {
            continue;
        }
        let next = first + (holder - first + 1) % threads;
        records.push(Record::Release { t: now, worker: holder, reason: ReleaseReason::DropRequest });
        records.push(Record::Wait { t: now, worker: holder });
        records.push(Record::Take { t: now + 50_000, worker: next });
        holder = next;
    }
    records
}

/// Two threads of one process taking turns on one GIL, holds of 3–7 ms.
pub fn threading_records(t: u64, until: u64, pid: u32) -> Vec<Record> {
    handover_records(0, t, until, pid, 2, hold_ns)
}

/// One process per worker, each running freely at `speed` (1.0: a core to
/// itself), from `t` to `until`.
pub fn process_records(t: u64, until: u64, worker: u32, pid: u32, speed: f64) -> Vec<Record> {
    let start = t + 4 * MS + u64::from(worker) * MS;
    let mut records = vec![
        Record::Started { t: start, worker, requested: t },
        Record::Process { t: start, worker, pid },
        Record::Take { t: start, worker },
    ];
    let mut now = start;
    while now < until {
        now = (now + 100 * MS).min(until);
        let done = (((now - start) as f64 * speed) as u64 / ITERATION_NS).min(ITERATIONS);
        records.push(Record::Progress { t: now, worker, done, total: ITERATIONS });
    }
    records
}

/// Starts `spec` as run `run` at `t` and feeds it to `until`: in a process
/// whose threads share a GIL they take turns, elsewhere each worker runs
/// freely. Process ids count up from `first_pid`.
pub fn model_midway(app: &mut App, run: RunId, spec: &RunSpec, t: u64, until: u64, first_pid: u32) {
    let workers = spec.experiment.workers;
    let processes = spec.model.processes(workers).max(1);
    let per = workers / processes;
    let pids: Vec<u32> = (0..processes).map(|p| first_pid + p).collect();
    app.update(t, Msg::Started { run, requested_at: t, pids: pids.clone() });
    for (p, pid) in (0..processes).zip(pids) {
        let stream = p as usize;
        let gils = spec.model.own_interpreters().then(|| spec.model.gils(per));
        header(app, run, stream, Hello { gil: !spec.gil_off(), gils, ..sim_header(pid, p * per, per) });
        let records = if spec.contends_for_a_gil() {
            handover_records(p * per, t, until, pid, per, hold_ns)
        } else {
            let speed = 2.0 / f64::from(workers.max(2));
            (p * per..(p + 1) * per).flat_map(|w| process_records(t, until, w, pid, speed)).collect()
        };
        send(app, run, stream, records);
    }
}

/// One CPU worker alone in its own process, from `t` for `wall` ns.
pub fn baseline_cpu_run(app: &mut App, run: RunId, t: u64, wall: u64) -> Vec<Effect> {
    app.update(t, Msg::Started { run, requested_at: t, pids: vec![900] });
    let hello = match app.experiment.runtime {
        Runtime::Sim => sim_header(900, 0, 1),
        Runtime::Cpython => cpython_header(900, 1),
    };
    header(app, run, 0, hello);
    let done = t + wall;
    // The run is over once its work is done (its `end` record), not only
    // when its stream closes: the models may start from either.
    let mut effects = send(
        app,
        run,
        0,
        vec![
            Record::Started { t: t + MS, worker: 0, requested: t },
            Record::Process { t: t + MS, worker: 0, pid: 900 },
            Record::Take { t: t + MS, worker: 0 },
            Record::Progress { t: done, worker: 0, done: ITERATIONS, total: ITERATIONS },
            Record::Finished { t: done, worker: 0 },
            Record::End {
                t: done,
                pid: 900,
                cpu_ns: wall,
                max_rss_kb: 3_300,
                switches: 0,
                drop_requests: Some(0),
            },
        ],
    );
    effects.extend(end(app, run, 0, Ok(())));
    effects
}

/// The lone worker timed again once the models are over, from `t` for
/// `wall` ns (the baseline after the models).
pub fn baseline_again(app: &mut App, t: u64, wall: u64) -> Vec<Effect> {
    let again = app.session.as_ref().and_then(|s| s.after.iter().find(|r| r.live())).and_then(|r| r.id);
    let Some(run) = again else { return Vec::new() };
    baseline_cpu_run(app, run, t, wall)
}

/// An OS sample of the default race: both cores busy, three processes.
pub fn sample_mid_run(at: u64) -> Sample {
    let process = |pid, cpu, threads, workers| ProcessSample {
        pid,
        cpu_cores: Some(cpu),
        rss_bytes: 3_480_000,
        threads,
        worker_threads: workers,
        memory: None,
    };
    Sample {
        at,
        cores: vec![98.0, 96.5],
        processes: vec![process(2001, 0.64, 5, 2), process(3001, 0.68, 4, 1), process(3002, 0.66, 4, 1)],
        outside_cores: Some(0.02),
    }
}

/// The race of `workers` workers after a 3.5 s baseline, `elapsed` into it,
/// threads handing the GIL over every `hold(i)` ns and processes running
/// freely. Returns the app and the two runs' ids.
pub fn race(workers: u32, elapsed: u64, hold: impl Fn(u64) -> u64) -> (App, RunId, RunId) {
    let mut app = fresh(Experiment { pace: 15, ..Experiment::new(workers) });
    app.set_mode(crate::app::Mode::Race);
    let baseline_run = starts(&key(&mut app, ' '));
    let models = starts(&baseline_cpu_run(&mut app, baseline_run[0].0, T0, 3_500 * MS));
    let (threads, procs) = (models[0].0, models[1].0);
    let t1 = T0 + 3_600 * MS;
    let pids: Vec<u32> = (0..workers).map(|w| 3001 + w).collect();
    app.update(t1, Msg::Started { run: threads, requested_at: t1, pids: vec![2001] });
    app.update(t1, Msg::Started { run: procs, requested_at: t1, pids: pids.clone() });
    header(&mut app, threads, 0, sim_header(2001, 0, workers));
    for (w, pid) in pids.iter().enumerate() {
        let w32 = u32::try_from(w).unwrap_or(0);
        header(&mut app, procs, w, sim_header(*pid, w32, 1));
    }
    let now = t1 + elapsed;
    send(&mut app, threads, 0, handover_records(0, t1, now, 2001, workers, hold));
    for (w, pid) in pids.iter().enumerate() {
        let w32 = u32::try_from(w).unwrap_or(0);
        let speed = 2.0 / f64::from(workers.max(2));
        send(&mut app, procs, w, process_records(t1, now, w32, *pid, speed * 0.7));
    }
    app.update(now, Msg::Sample(sample_mid_run(now)));
    app.update(now, Msg::Tick);
    (app, threads, procs)
}
