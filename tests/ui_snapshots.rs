//! The screen, drawn from fixed states: every state here is built by feeding
//! the app the same messages a real run sends (key presses, worker records,
//! OS samples), with made-up but fixed timestamps. No clock is read, so a
//! snapshot only changes when the screen does.
//!
//! Review changes with `INSTA_UPDATE=always cargo test --test ui_snapshots`
//! and `git diff tests/snapshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails
#![allow(clippy::cast_possible_wrap, clippy::similar_names)] // pids for kill(2); short names side by side

use gilscope::app::{App, Effect, Mode, Msg};
use gilscope::experiment::spec::{Experiment, Model};
use gilscope::monitor::{ProcessSample, Sample};
use gilscope::protocol::{LaneSource, Record, ReleaseReason, Runtime};
use gilscope::scenario::{
    CPYTHON_ITERATION_NS, ITERATIONS, MS, S, T0, baseline_again, baseline_cpu_run, cpython_header, demo, end,
    fresh, header, hold_ns, key, model_midway, process_records, sample_mid_run, send, sim_header, starts,
    threading_records,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn draw(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
    terminal.draw(|frame| gilscope::ui::render(frame, app)).expect("drawing never fails on a TestBackend");
    terminal
}

fn snapshot(name: &str, app: &App) {
    for (w, h) in SIZES {
        let terminal = draw(app, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), terminal.backend());
    }
}

fn hello(
    app: &mut App,
    run: gilscope::experiment::supervisor::RunId,
    stream: usize,
    pid: u32,
    first: u32,
    threads: u32,
) {
    header(app, run, stream, sim_header(pid, first, threads));
}

/// The default demo, 3 s into the race after a 3.5 s baseline.
fn mid_run() -> (App, u64, u64, u64) {
    let mut app = fresh(demo());
    app.set_mode(Mode::Race); // these scenarios show both models at once
    let baseline_run = starts(&key(&mut app, ' '));
    assert_eq!(baseline_run.len(), 1, "the baseline first");
    let models = starts(&baseline_cpu_run(&mut app, baseline_run[0].0, T0, 3_500 * MS));
    let [(threads, tspec), (procs, pspec)] = [models[0].clone(), models[1].clone()];
    assert_eq!((tspec.model, pspec.model), (Model::Threads, Model::Processes));
    let t1 = T0 + 3_600 * MS;
    app.update(t1, Msg::Started { run: threads, requested_at: t1, pids: vec![2001] });
    app.update(t1, Msg::Started { run: procs, requested_at: t1, pids: vec![3001, 3002] });
    hello(&mut app, threads, 0, 2001, 0, 2);
    hello(&mut app, procs, 0, 3001, 0, 1);
    hello(&mut app, procs, 1, 3002, 1, 1);
    let now = t1 + 3 * S;
    send(&mut app, threads, 0, threading_records(t1, now, 2001));
    send(&mut app, procs, 0, process_records(t1, now, 0, 3001, 0.7));
    send(&mut app, procs, 1, process_records(t1, now, 1, 3002, 0.66));
    app.update(now, Msg::Sample(sample_mid_run(now)));
    app.update(now, Msg::Tick);
    (app, threads, procs, now)
}

/// Two threads of the real `CPython` taking turns, as the worker reports them:
/// turns inferred from gaps in each thread's stamps, and each thread's records
/// flushed in batches of about 15 ms, one thread's batch after the other's.
fn cpython_threading_records(t: u64, until: u64, pid: u32) -> Vec<Record> {
    let mut records = Vec::new();
    for w in 0..2 {
        records.push(Record::Started { t: t + MS + u64::from(w) * 100_000, worker: w, requested: t + MS });
        records.push(Record::Process { t: t + MS, worker: w, pid });
    }
    // Who ran when, as the stamps tell it.
    let mut turns = Vec::new();
    let (mut now, mut holder, mut i) = (t + 2 * MS, 0u32, 0);
    while now < until {
        let to = (now + hold_ns(i)).min(until);
        turns.push((holder, now, to));
        (now, holder, i) = (to + 50_000, 1 - holder, i + 1);
    }
    let mut done = [0u64; 2];
    let mut batch = t;
    while batch < until {
        let next = batch + 15 * MS;
        for w in 0..2u32 {
            for &(_, from, to) in turns.iter().filter(|(h, from, _)| *h == w && (batch..next).contains(from))
            {
                done[w as usize] += (to - from) / CPYTHON_ITERATION_NS;
                records.push(Record::Take { t: from, worker: w });
                records.push(Record::Progress {
                    t: to,
                    worker: w,
                    done: done[w as usize],
                    total: ITERATIONS,
                });
                if to < until {
                    records.push(Record::Release { t: to, worker: w, reason: ReleaseReason::Inferred });
                }
            }
        }
        batch = next;
    }
    records
}

/// A child process of the real `CPython`'s multiprocessing, reported through
/// its parent's stream: it runs freely but for a stall every 100 ms (the OS
/// ran something else), from its start to `until`.
fn cpython_child_records(t: u64, until: u64, worker: u32, pid: u32) -> Vec<Record> {
    let start = t + 20 * MS + u64::from(worker) * 3 * MS;
    let mut records = vec![
        Record::Started { t: start, worker, requested: t },
        Record::Process { t: start, worker, pid },
        Record::Take { t: start, worker },
    ];
    let mut now = start;
    while now + 100 * MS < until {
        now += 100 * MS;
        let done = (now - start) / CPYTHON_ITERATION_NS;
        records.push(Record::Progress { t: now, worker, done, total: ITERATIONS });
        records.push(Record::Release { t: now, worker, reason: ReleaseReason::Inferred });
        records.push(Record::Take { t: now + 2 * MS, worker });
    }
    records
}

/// The race under the real `CPython` (c), 300 ms in: the threading process
/// (2001) has a main thread and a stdin watcher besides its 2 workers, and the
/// multiprocessing parent (3000) runs no worker: its children 3001 and 3002 do.
fn cpython_mid_run() -> (App, u64, u64, u64) {
    let mut app = fresh(demo());
    app.set_mode(Mode::Race); // these scenarios show both models at once
    app.options.runtimes = vec![Runtime::Sim, Runtime::Cpython];
    // Unpaced (--pace 1): the real interpreter runs the seed's 4,000,000 iterations.
    app.experiment.pace = 1;
    key(&mut app, 'c');
    assert_eq!(app.experiment.runtime, Runtime::Cpython);
    let baseline_run = starts(&key(&mut app, ' '));
    let models =
        starts(&baseline_cpu_run(&mut app, baseline_run[0].0, T0, ITERATIONS * CPYTHON_ITERATION_NS));
    let [(threads, _), (procs, _)] = [models[0].clone(), models[1].clone()];
    let t1 = T0 + 400 * MS;
    app.update(t1, Msg::Started { run: threads, requested_at: t1, pids: vec![2001] });
    app.update(t1, Msg::Started { run: procs, requested_at: t1, pids: vec![3000] });
    header(&mut app, threads, 0, cpython_header(2001, 2));
    header(&mut app, procs, 0, cpython_header(3000, 2));
    let now = t1 + 300 * MS;
    send(&mut app, threads, 0, cpython_threading_records(t1, now, 2001));
    for (worker, pid) in [(0, 3001), (1, 3002)] {
        send(&mut app, procs, 0, cpython_child_records(t1, now, worker, pid));
    }
    let process = |pid, threads, workers| ProcessSample {
        pid,
        cpu_cores: Some(0.5),
        rss_bytes: 9_800_000,
        threads,
        worker_threads: workers,
        memory: None,
    };
    let os = vec![process(2001, 4, 2), process(3000, 2, 0), process(3001, 1, 1), process(3002, 1, 1)];
    app.update(
        now,
        Msg::Sample(Sample { at: now, cores: vec![99.0, 97.0], processes: os, outside_cores: Some(0.03) }),
    );
    app.update(now, Msg::Tick);
    (app, threads, procs, now)
}

#[test]
fn the_real_cpython_counts_only_worker_threads_and_says_what_is_inferred() {
    let (app, ..) = cpython_mid_run();
    snapshot("cpython_mid_run", &app);
}

#[test]
fn the_real_cpython_finished_shows_its_own_inferred_switch_count() {
    let (mut app, threads, procs, now) = cpython_mid_run();
    let t_end = now + 300 * MS;
    let mut rest = cpython_threading_records(now - 300 * MS, t_end, 2001);
    rest.retain(|r| {
        r.time().is_some_and(|t| t > now) && !matches!(r, Record::Started { .. } | Record::Process { .. })
    });
    rest.extend([
        Record::Progress { t: t_end, worker: 0, done: ITERATIONS, total: ITERATIONS },
        Record::Progress { t: t_end, worker: 1, done: ITERATIONS, total: ITERATIONS },
        Record::Finished { t: t_end - 2 * MS, worker: 1 },
        Record::Finished { t: t_end, worker: 0 },
        Record::End {
            t: t_end,
            pid: 2001,
            cpu_ns: 580 * MS,
            max_rss_kb: 9_900,
            switches: 117,
            drop_requests: None,
        },
    ]);
    send(&mut app, threads, 0, rest);
    end(&mut app, threads, 0, Ok(()));
    let p_end = now + 40 * MS;
    let mut children = Vec::new();
    for (worker, pid) in [(0, 3001), (1, 3002)] {
        children.extend([
            Record::Progress { t: p_end, worker, done: ITERATIONS, total: ITERATIONS },
            Record::Finished { t: p_end, worker },
            Record::End {
                t: p_end,
                pid,
                cpu_ns: 300 * MS,
                max_rss_kb: 9_700,
                switches: 0,
                drop_requests: None,
            },
        ]);
    }
    children.push(Record::End {
        t: p_end,
        pid: 3000,
        cpu_ns: 40 * MS,
        max_rss_kb: 9_800,
        switches: 0,
        drop_requests: None,
    });
    send(&mut app, procs, 0, children);
    end(&mut app, procs, 0, Ok(()));
    // The lone worker again, as long as before.
    baseline_again(&mut app, t_end + MS, ITERATIONS * CPYTHON_ITERATION_NS);
    app.update(t_end + S, Msg::Tick);
    assert!(!app.busy(), "both models and the baseline after them are done");
    snapshot("cpython_finished", &app);
}

#[test]
fn idle_shows_the_experiment_and_how_to_start() {
    snapshot("idle", &fresh(demo()));
}

#[test]
fn mid_run_cpu_bound_shows_lanes_the_gil_holder_and_live_figures() {
    let (app, ..) = mid_run();
    snapshot("mid_run_cpu", &app);
}

#[test]
fn at_ten_milliseconds_a_cell_the_5_ms_switching_shows_as_a_mix_not_as_holds() {
    let (mut app, ..) = mid_run();
    for _ in 0..4 {
        key(&mut app, 'z'); // 250 → 100 → 50 → 20 → 10 ms a cell
    }
    assert_eq!(app.shown_cell(), Some(10 * MS));
    snapshot("switching_at_10ms", &app);
    let text = draw(&app, 80, 24).backend().to_string();
    let row = text.lines().find(|l| l.starts_with("\"│T0")).unwrap_or_default();
    let lane = row.split("││").next().unwrap_or_default(); // threading's panel only
    let solid_run = lane.split(|c| c != '█').map(|r| r.chars().count()).max().unwrap_or(0);
    assert!(solid_run <= 1, "holds of 3–7 ms cannot fill two 10 ms cells in a row: {lane}");
}

#[test]
fn zoomed_in_the_single_switches_show() {
    let (mut app, ..) = mid_run();
    for _ in 0..7 {
        key(&mut app, 'z');
    }
    snapshot("zoomed_in", &app);
}

#[test]
fn paused_the_screen_says_the_workers_are_stopped() {
    let (mut app, threads, procs, now) = mid_run();
    let effects = key(&mut app, ' ');
    assert_eq!(effects, vec![Effect::Pause(threads), Effect::Pause(procs)]);
    app.update(now + 5 * S, Msg::Tick);
    snapshot("paused", &app);
}

#[test]
fn finished_shows_wall_times_speedups_and_the_winner() {
    let (mut app, threads, procs, now) = mid_run();
    let p_end = now + 800 * MS;
    for (stream, (worker, pid, at)) in
        [(0u32, 3001u32, p_end), (1, 3002, p_end - 120 * MS)].into_iter().enumerate()
    {
        send(
            &mut app,
            procs,
            stream,
            vec![
                Record::Progress { t: at, worker, done: ITERATIONS, total: ITERATIONS },
                Record::Finished { t: at, worker },
                Record::End {
                    t: at,
                    pid,
                    cpu_ns: 3_700 * MS,
                    max_rss_kb: 3_400,
                    switches: 0,
                    drop_requests: None,
                },
            ],
        );
        end(&mut app, procs, stream, Ok(()));
    }
    let t_end = now + 4_300 * MS;
    let mut rest = threading_records(now - 3 * S, t_end, 2001);
    rest.retain(|r| {
        r.time().is_some_and(|t| t > now) && !matches!(r, Record::Started { .. } | Record::Process { .. })
    });
    send(&mut app, threads, 0, rest);
    send(
        &mut app,
        threads,
        0,
        vec![
            Record::Progress { t: t_end, worker: 0, done: ITERATIONS, total: ITERATIONS },
            Record::Finished { t: t_end - 4 * MS, worker: 1 },
            Record::Finished { t: t_end, worker: 0 },
            Record::End {
                t: t_end,
                pid: 2001,
                cpu_ns: 7_400 * MS,
                max_rss_kb: 3_500,
                switches: 1_390,
                drop_requests: None,
            },
        ],
    );
    end(&mut app, threads, 0, Ok(()));
    // The lone worker again: 3.6 s, 0.1 s slower than before the models,
    // so every speedup has a range, at every width.
    baseline_again(&mut app, t_end + MS, 3_600 * MS);
    app.update(t_end + 4 * S, Msg::Tick);
    assert!(!app.busy(), "both models and the baseline after them are done");
    snapshot("finished", &app);
}

#[test]
fn a_worker_killed_mid_run_fails_its_model_and_the_other_goes_on() {
    let (mut app, _, procs, now) = mid_run();
    let effects = end(&mut app, procs, 1, Err("worker process 3002 killed by signal 9 (SIGKILL)".into()));
    assert!(effects.contains(&Effect::Kill(procs)));
    app.update(now + 100 * MS, Msg::Tick);
    assert!(app.busy(), "threading still runs");
    snapshot("worker_killed", &app);
}

#[test]
fn io_bound_lanes_show_the_threads_blocked_in_io() {
    let mut app = fresh(demo());
    app.set_mode(Mode::Race); // these scenarios show both models at once
    key(&mut app, 'w');
    for _ in 0..4 {
        key(&mut app, 'z');
    }
    let baseline_run = starts(&key(&mut app, ' '));
    let run = baseline_run[0].0;
    app.update(T0, Msg::Started { run, requested_at: T0, pids: vec![900] });
    hello(&mut app, run, 0, 900, 0, 1);
    let wall = 1_300 * MS;
    // The run is over at its `end` record: the models start from there.
    let mut effects = send(
        &mut app,
        run,
        0,
        vec![
            Record::Started { t: T0 + MS, worker: 0, requested: T0 },
            Record::Progress { t: T0 + wall, worker: 0, done: 20, total: 20 },
            Record::Finished { t: T0 + wall, worker: 0 },
            Record::End {
                t: T0 + wall,
                pid: 900,
                cpu_ns: 300 * MS,
                max_rss_kb: 3_000,
                switches: 0,
                drop_requests: None,
            },
        ],
    );
    effects.extend(end(&mut app, run, 0, Ok(())));
    let models = starts(&effects);
    let t1 = T0 + 1_400 * MS;
    let (threads, procs) = (models[0].0, models[1].0);
    app.update(t1, Msg::Started { run: threads, requested_at: t1, pids: vec![2001] });
    app.update(t1, Msg::Started { run: procs, requested_at: t1, pids: vec![3001, 3002] });
    hello(&mut app, threads, 0, 2001, 0, 2);
    hello(&mut app, procs, 0, 3001, 0, 1);
    hello(&mut app, procs, 1, 3002, 1, 1);
    // Each worker: a reply handled under the GIL (16 ms), then 50 ms of I/O.
    for w in 0..2u32 {
        let mut records = vec![Record::Started { t: t1 + MS, worker: w, requested: t1 }];
        let mut t = t1 + MS + u64::from(w) * 17 * MS;
        for request in 0..6u64 {
            records.push(Record::Take { t, worker: w });
            t += 16 * MS;
            records.push(Record::Progress { t, worker: w, done: request + 1, total: 20 });
            records.push(Record::Release { t, worker: w, reason: ReleaseReason::Io });
            records.push(Record::IoBegin { t, worker: w });
            t += 50 * MS;
        }
        send(&mut app, threads, 0, records.clone());
        send(&mut app, procs, w as usize, records);
    }
    let now = t1 + 400 * MS;
    app.update(now, Msg::Tick);
    snapshot("io_bound", &app);
}

#[test]
fn the_help_overlay_lists_every_key_then_every_figure() {
    let mut app = fresh(demo());
    key(&mut app, '?');
    snapshot("help", &app);
    key(&mut app, '?');
    snapshot("help_figures", &app);
}

#[test]
fn a_terminal_too_small_says_what_it_needs() {
    let app = fresh(demo());
    for (w, h) in [(79, 24), (60, 20)] {
        let terminal = draw(&app, w, h);
        insta::assert_snapshot!(format!("too_small_{w}x{h}"), terminal.backend());
    }
}

#[test]
fn many_workers_fit_with_a_count_of_the_lanes_left_out() {
    let mut app = fresh(Experiment { pace: 15, ..Experiment::new(128) });
    app.set_mode(Mode::Race); // these scenarios show both models at once
    let cores: Vec<f32> = (0..128).map(|c| (c * 37 % 101) as f32).collect();
    app.update(T0, Msg::Sample(Sample { at: T0, cores, ..Sample::default() }));
    let baseline_run = starts(&key(&mut app, ' '));
    let models = starts(&baseline_cpu_run(&mut app, baseline_run[0].0, T0, 3_500 * MS));
    let t1 = T0 + 3_600 * MS;
    let (threads, procs) = (models[0].0, models[1].0);
    app.update(t1, Msg::Started { run: threads, requested_at: t1, pids: vec![2001] });
    let pids: Vec<u32> = (0..128).map(|p| 3001 + p).collect();
    app.update(t1, Msg::Started { run: procs, requested_at: t1, pids: pids.clone() });
    hello(&mut app, threads, 0, 2001, 0, 128);
    for (w, pid) in pids.iter().enumerate() {
        hello(&mut app, procs, w, *pid, w as u32, 1);
        send(&mut app, procs, w, process_records(t1, t1 + S, w as u32, *pid, 0.01));
    }
    send(&mut app, threads, 0, threading_records(t1, t1 + S, 2001));
    app.update(t1 + S, Msg::Tick);
    snapshot("many_workers", &app);
}

#[test]
fn the_timeline_keeps_still_while_paused() {
    let (mut app, ..) = mid_run();
    key(&mut app, ' ');
    let before = draw(&app, 80, 24).backend().to_string();
    app.update(app.now + 30 * S, Msg::Tick);
    let after = draw(&app, 80, 24).backend().to_string();
    assert_eq!(before, after);
}

#[test]
fn no_color_leaves_every_cell_uncoloured_and_every_state_its_own_symbol() {
    let (mut app, ..) = mid_run();
    app.options.color = false;
    let terminal = draw(&app, 160, 48);
    let buffer = terminal.backend().buffer();
    let coloured: Vec<_> = buffer
        .content()
        .iter()
        .filter(|c| c.fg != ratatui::style::Color::Reset || c.bg != ratatui::style::Color::Reset)
        .map(|c| c.symbol().to_owned())
        .collect();
    assert!(coloured.is_empty(), "coloured cells under NO_COLOR: {coloured:?}");
    let screen = terminal.backend().to_string();
    for symbol in ["█", "░", "~", "·", "✗"] {
        assert!(screen.contains(symbol), "the legend shows {symbol}");
    }
}

/// Three or four models at once, mid-race.
fn many_models(models: Vec<Model>) -> App {
    let mut app = fresh(Experiment { pace: 15, ..Experiment::new(4) });
    app.set_mode(Mode::Race); // these scenarios show both models at once
    app.models = models;
    let baseline_run = starts(&key(&mut app, ' '));
    let runs = starts(&baseline_cpu_run(&mut app, baseline_run[0].0, T0, 3_500 * MS));
    assert_eq!(runs.len(), app.models.len(), "every model starts at once in a race");
    let t1 = T0 + 3_600 * MS;
    let now = t1 + 2 * S;
    for (i, (run, spec)) in runs.iter().enumerate() {
        model_midway(&mut app, *run, spec, t1, now, 2000 + 100 * u32::try_from(i).unwrap_or(0));
    }
    app.update(now, Msg::Tick);
    app
}

#[test]
fn three_models_fit_on_the_smallest_screen_and_use_a_big_one() {
    let app =
        many_models(vec![Model::Threads, Model::Processes, Model::Subinterpreters { shared_gil: false }]);
    snapshot("three_models", &app);
}

#[test]
fn four_models_fit_on_the_smallest_screen_and_use_a_big_one() {
    let app = many_models(gilscope::experiment::model::NAMED.to_vec());
    snapshot("four_models", &app);
    let terminal = draw(&app, 200, 60);
    insta::assert_snapshot!("four_models_200x60", terminal.backend());
}

#[test]
fn the_scoreboard_lists_every_model_with_its_start_cost_memory_and_gils() {
    let mut app = many_models(gilscope::experiment::model::NAMED.to_vec());
    key(&mut app, 'b');
    snapshot("scoreboard", &app);
    let terminal = draw(&app, 200, 60);
    insta::assert_snapshot!("scoreboard_200x60", terminal.backend());
}

fn screen(app: &App, width: u16, height: u16) -> String {
    draw(app, width, height).backend().to_string()
}

#[test]
fn the_io_workload_shows_the_io_workers_baseline_not_a_cpu_ones() {
    // A CPU session first: its lone worker's 3.50 s stay known.
    let mut app = fresh(demo());
    let first = starts(&key(&mut app, ' '));
    baseline_cpu_run(&mut app, first[0].0, T0, 3_500 * MS);
    key(&mut app, 'r');
    key(&mut app, 'w');
    let io = starts(&key(&mut app, ' '));
    assert_eq!(io.len(), 1, "an I/O baseline run");
    let t = T0 + 10 * S;
    app.update(t, Msg::Started { run: io[0].0, requested_at: t, pids: vec![901] });
    header(&mut app, io[0].0, 0, sim_header(901, 0, 1));
    send(
        &mut app,
        io[0].0,
        0,
        vec![
            Record::Started { t: t + MS, worker: 0, requested: t },
            Record::Progress { t: t + 1_300 * MS, worker: 0, done: 20, total: 20 },
            Record::Finished { t: t + 1_300 * MS, worker: 0 },
            Record::End {
                t: t + 1_300 * MS,
                pid: 901,
                cpu_ns: 300 * MS,
                max_rss_kb: 3_000,
                switches: 0,
                drop_requests: None,
            },
        ],
    );
    end(&mut app, io[0].0, 0, Ok(()));
    let text = screen(&app, 80, 24);
    assert!(text.contains("one I/O worker takes 1.30 s"), "{text}");
    assert!(!text.contains("3.50 s"), "the CPU worker's time is not the I/O baseline:\n{text}");
}

#[test]
fn the_bottom_bar_of_the_smallest_screen_offers_the_runtime_key() {
    let text = screen(&fresh(demo()), 80, 24);
    let bar = text.lines().nth(23).unwrap_or("");
    assert!(bar.contains("c runtime"), "{bar}");
}

#[test]
fn the_gil_lane_takes_two_rows_at_most_however_tall_the_lanes() {
    let (app, ..) = mid_run();
    let text = screen(&app, 160, 48);
    let gil_lane =
        |l: &&str| (l.starts_with("\"│GIL ") && !l.starts_with("\"│GIL wait")) || l.starts_with("\"│  ×");
    let rows = text.lines().filter(gil_lane).count();
    assert_eq!(rows, 2, "{text}");
    assert!(text.contains("│T0  ▄▄▄"), "the workers' lanes grew instead:\n{text}");
}

#[test]
fn the_time_says_how_long_the_workers_waited_while_their_gils_were_found() {
    let (mut app, threads, _, _) = cpython_mid_run();
    // The workers started at 1.0 and 1.1 ms into the run (see
    // cpython_threading_records); their lanes were ready 170 ms later.
    let t1 = T0 + 400 * MS;
    let lanes = Record::Lanes { t: t1 + MS + 100_000 + 170 * MS, pid: 2001, source: LaneSource::Exact };
    send(&mut app, threads, 0, vec![lanes]);
    app.update(t1 + 400 * MS, Msg::Tick);
    let big = screen(&app, 200, 60);
    assert!(big.contains("(+170 ms finding the GILs)"), "{big}");
    // Where the row has no room, the time alone.
    let small = screen(&app, 80, 24);
    assert!(!small.contains("finding"), "{small}");
    assert!(small.contains("time "), "{small}");
}
