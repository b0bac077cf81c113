//! The app's behaviour, key by key and report by report.

use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::*;
use crate::experiment::spec::{MAX_WORKERS, RunSpec};
use crate::monitor::Sample;
use crate::protocol::{Hello, LaneSource, Record, Timeline};
use crate::scenario::{key as ch, play_run, press, sim_header, starts};

/// The app on a machine of 4 cores: room for both models' 2 workers, so
/// the default mode is a race.
fn app() -> App {
    App::new(Experiment::new(2), Options { cores: 4, ..Options::default() }, 1_000)
}

#[test]
fn space_times_the_baseline_first_then_races_both_models() {
    let mut app = app();
    let effects = ch(&mut app, ' ');
    let first = starts(&effects);
    assert_eq!(first.len(), 1, "{effects:?}");
    assert_eq!(first[0].1.experiment.workers, 1, "the baseline is one worker alone");
    let after = play_run(&mut app, first[0].0, &first[0].1, 2_000, 1_000_000);
    let models = starts(&after);
    assert_eq!(
        models.iter().map(|(_, s)| s.model).collect::<Vec<_>>(),
        [Model::Threads, Model::Processes],
        "race: both at once"
    );
    assert!(after.contains(&Effect::Kill(first[0].0)));
    assert_eq!(app.baseline.times.len(), 1);
}

#[test]
fn one_at_a_time_runs_threading_then_multiprocessing_and_times_the_baseline_at_every_press() {
    let mut app = app();
    ch(&mut app, 'm');
    assert_eq!(app.mode, Mode::OneAtATime);
    let baseline_run = starts(&ch(&mut app, ' '))[0].clone();
    let threads = starts(&play_run(&mut app, baseline_run.0, &baseline_run.1, 0, 1_000_000));
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0].1.model, Model::Threads);
    let procs = starts(&play_run(&mut app, threads[0].0, &threads[0].1, 2_000_000, 2_000_000));
    assert_eq!(procs[0].1.model, Model::Processes);
    let again = starts(&play_run(&mut app, procs[0].0, &procs[0].1, 5_000_000, 1_000_000));
    assert_eq!(again.len(), 1, "then the lone worker again");
    assert_eq!((again[0].1.experiment.workers, again[0].1.model), (1, Model::Threads));
    assert!(app.session.as_ref().is_some_and(|s| s.compare(&app.baseline, 4).verdict.is_none()));
    let done = play_run(&mut app, again[0].0, &again[0].1, 7_000_000, 3_000_000);
    assert!(starts(&done).is_empty());
    assert!(!app.busy());
    let session = app.session.as_ref().expect("a session");
    // The store keeps the time before the models; the session both.
    assert_eq!(app.baseline.total_s(&session.experiment), Some(2.0 * 0.001));
    let compared = session.compare(&app.baseline, 4);
    let procs = compared.results[1].as_ref().expect("multiprocessing's figures");
    // Baselines of 2 ms before and 6 ms after, mean 4 ms, over 1 ms of wall.
    assert!((procs.speedup.unwrap_or(0.0) - 4.0).abs() < 1e-6, "{procs:?}");
    assert_eq!((procs.speedup_min, procs.speedup_max), (Some(2.0), Some(6.0)));
    assert!(procs.doubts.iter().any(|d| d.contains("speed moved 200 %")), "{:?}", procs.doubts);
    // A second press of space times the lone worker again (the machine's
    // speed drifts), and so does another interval; the first session's
    // figures stay on screen among the earlier ones.
    let again = starts(&ch(&mut app, ' '));
    assert_eq!(again[0].1.experiment.workers, 1, "{again:?}");
    assert_eq!(app.baseline.total_s(&app.experiment), None, "the old baseline is not used");
    assert_eq!(app.history.len(), 1, "the finished session is kept among the earlier ones");
    let restarted = starts(&ch(&mut app, ']'));
    assert_eq!(restarted[0].1.experiment.workers, 1, "{restarted:?}");
    let threads = starts(&play_run(&mut app, restarted[0].0, &restarted[0].1, 9_000_000, 3_000_000));
    assert_eq!(threads[0].1.model, Model::Threads);
    assert_eq!(threads[0].1.experiment.switch_interval, Duration::from_millis(10));
    assert_eq!(app.baseline.total_s(&app.experiment), Some(2.0 * 0.003), "the new lone worker's time");
}

#[test]
fn space_pauses_and_resumes_the_workers() {
    let mut app = app();
    let baseline_run = starts(&ch(&mut app, ' '))[0].clone();
    app.update(10, Msg::Started { run: baseline_run.0, requested_at: 10, pids: vec![7] });
    app.now = 500;
    assert_eq!(ch(&mut app, ' '), vec![Effect::Pause(baseline_run.0)]);
    assert!(app.paused() && !app.animating());
    app.now = 900;
    assert_eq!(ch(&mut app, ' '), vec![Effect::Resume(baseline_run.0)]);
    let session = app.session.as_ref().expect("a session");
    assert_eq!(session.now(1_000), 600, "the 400 ns paused are cut out of the session's clock");
}

#[test]
fn a_setting_changed_during_a_run_restarts_it_with_new_run_ids() {
    let mut app = app();
    let baseline_run = starts(&ch(&mut app, ' '))[0].clone();
    app.update(10, Msg::Started { run: baseline_run.0, requested_at: 10, pids: vec![7] });
    let effects = ch(&mut app, '+');
    assert_eq!(app.experiment.workers, 3);
    assert!(effects.contains(&Effect::Kill(baseline_run.0)), "{effects:?}");
    let restarted = starts(&effects);
    assert_eq!(restarted.len(), 1);
    assert!(restarted[0].0 > baseline_run.0, "a new run id");
    // Late reports of the killed run are dropped.
    app.update(
        20,
        Msg::Report(Report::Ended { run: baseline_run.0, stream: 0, outcome: Err("killed".into()) }),
    );
    assert!(app.busy());
}

#[test]
fn a_setting_changed_while_idle_only_changes_the_setting() {
    let mut app = app();
    assert_eq!(ch(&mut app, '-'), vec![]);
    assert_eq!(app.experiment.workers, 1);
    assert_eq!(ch(&mut app, '-'), vec![], "one worker is the least");
    assert_eq!(app.experiment.workers, 1);
    for _ in 0..30 {
        ch(&mut app, '+');
    }
    assert_eq!(app.experiment.workers, MAX_WORKERS);
}

#[test]
fn brackets_step_the_switch_interval() {
    let mut app = app();
    ch(&mut app, ']');
    assert_eq!(app.experiment.switch_interval, Duration::from_millis(10));
    ch(&mut app, '[');
    ch(&mut app, '[');
    assert_eq!(app.experiment.switch_interval, Duration::from_millis(2));
    for _ in 0..20 {
        ch(&mut app, '[');
    }
    assert_eq!(app.experiment.switch_interval, Duration::from_micros(100));
}

#[test]
fn w_cycles_the_workloads() {
    let mut app = app();
    ch(&mut app, 'w');
    assert_eq!(app.experiment.workload, Workload::Io);
    ch(&mut app, 'w');
    assert_eq!(app.experiment.workload, Workload::Mixed);
    ch(&mut app, 'w');
    assert_eq!(app.experiment.workload, Workload::Cpu);
}

#[test]
fn number_keys_take_models_in_and_out_in_their_order_and_one_always_stays() {
    let mut app = app();
    assert_eq!(app.models, [Model::Threads, Model::Processes]);
    ch(&mut app, '4');
    ch(&mut app, '3');
    assert_eq!(
        app.models,
        [Model::Threads, Model::Processes, Model::Subinterpreters { shared_gil: false }, Model::FreeThreaded]
    );
    let specs = app.specs();
    assert!(specs[3].gil_off() && !specs[0].gil_off(), "free-threading is its own model, not a toggle");
    ch(&mut app, '1');
    ch(&mut app, '2');
    ch(&mut app, '3');
    assert_eq!(app.models, [Model::FreeThreaded]);
    ch(&mut app, '4');
    assert_eq!(app.models, [Model::FreeThreaded], "the last model stays");
}

#[test]
fn g_gives_the_subinterpreters_one_shared_gil_and_back() {
    let mut app = app();
    assert!(!bindings::enabled(&app, Action::SubinterpreterGil), "no subinterpreters, nothing to switch");
    ch(&mut app, '3');
    ch(&mut app, 'g');
    assert!(app.models.contains(&Model::Subinterpreters { shared_gil: true }));
    assert!(app.specs()[2].one_shared_gil(), "the legacy control: one GIL for all");
    ch(&mut app, 'g');
    assert!(app.models.contains(&Model::Subinterpreters { shared_gil: false }));
}

#[test]
fn a_model_no_interpreter_here_can_run_is_simulated_on_the_real_runtime() {
    let mut app = App::new(
        Experiment::new(2),
        Options { runtimes: vec![Runtime::Cpython, Runtime::Sim], cores: 4, ..Options::default() },
        0,
    );
    app.experiment.runtime = Runtime::Cpython;
    ch(&mut app, '4');
    app.update(1, Msg::Interpreters { subinterpreters: true, free_threaded: false });
    let runtimes: Vec<Runtime> = app.specs().iter().map(|s| s.experiment.runtime).collect();
    assert_eq!(runtimes, [Runtime::Cpython, Runtime::Cpython, Runtime::Sim]);
}

#[test]
fn mixed_needs_a_baseline_run_of_each_role_and_times_only_the_cpu_one_again() {
    let mut app = app();
    ch(&mut app, 'w');
    ch(&mut app, 'w');
    ch(&mut app, ' ');
    let session = app.session.as_ref().expect("a session");
    let loads: Vec<Workload> = session.baseline.iter().map(|r| r.spec.experiment.workload).collect();
    assert_eq!(loads, [Workload::Io, Workload::Cpu]);
    // An I/O worker's time is its waits: the machine's drift does not move it.
    let again: Vec<Workload> = session.after.iter().map(|r| r.spec.experiment.workload).collect();
    assert_eq!(again, [Workload::Cpu]);
}

#[test]
fn s_and_shift_s_step_the_pace_and_stop_at_the_ends() {
    let mut app = app();
    app.experiment.pace = 15;
    ch(&mut app, 's');
    assert_eq!(app.experiment.pace, 20);
    app.experiment.pace = 100;
    ch(&mut app, 's');
    assert_eq!(app.experiment.pace, 100, "the slowest pace stays the slowest: no wrap to the fastest");
    app.experiment.pace = 1;
    ch(&mut app, 'S');
    assert_eq!(app.experiment.pace, 1, "the fastest stays the fastest");
}

#[test]
fn zoom_steps_in_order_from_a_millisecond_to_the_whole_run_and_no_further() {
    // 3 s into a race, 38 cells a lane: the whole run fits at 100 ms a cell.
    let (mut app, ..) = crate::scenario::race(2, 3 * crate::scenario::S, crate::scenario::hold_ns);
    assert_eq!(app.view.zoom, DEFAULT_ZOOM);
    let mut seen = vec![app.shown_cell()];
    for _ in 0..20 {
        ch(&mut app, 'z');
        seen.push(app.shown_cell());
    }
    assert_eq!(app.shown_cell(), Some(1_000_000), "1 ms a cell at the finest");
    for _ in 0..20 {
        ch(&mut app, 'Z');
        seen.push(app.shown_cell());
    }
    assert_eq!(app.view.zoom, Zoom::WholeRun);
    // The whole run in the lanes: its cells just cover the run.
    let cell = app.shown_cell().unwrap_or(0);
    let span = app.session.as_ref().map_or(0, |s| s.longest_span(s.now(app.now)));
    assert!(
        cell * app.lane_cells as u64 >= span && cell * (app.lane_cells as u64) < span * 5 / 4,
        "{cell} × {}",
        app.lane_cells
    );
    // Never a step backwards: in, in, …, out, out, … to the whole run.
    let cells: Vec<u64> = seen.into_iter().flatten().collect();
    let turn = cells.iter().position(|&c| c == 1_000_000).unwrap_or(0);
    assert!(cells[..=turn].windows(2).all(|w| w[1] <= w[0]), "{cells:?}");
    assert!(cells[turn..].windows(2).all(|w| w[1] >= w[0]), "{cells:?}");
}

#[test]
fn arrows_pan_back_along_the_run_home_goes_to_its_start_and_end_to_the_newest() {
    let (mut app, ..) = crate::scenario::race(2, 3 * crate::scenario::S, crate::scenario::hold_ns);
    for _ in 0..4 {
        ch(&mut app, 'z'); // 20 ms a cell: 3 s do not fit 38 cells
    }
    assert_eq!(app.view.pan, None, "following the newest data");
    press(&mut app, KeyCode::Left);
    let back = app.view.pan.unwrap_or(u64::MAX);
    assert!(back < 3 * crate::scenario::S, "panned back: {back}");
    press(&mut app, KeyCode::Home);
    assert_eq!(app.view.pan, Some(0));
    assert!(!bindings::enabled(&app, Action::PanBack), "nothing before the start");
    press(&mut app, KeyCode::Right);
    assert!(app.view.pan.is_some_and(|p| p > 0));
    press(&mut app, KeyCode::End);
    assert_eq!(app.view.pan, None);
}

#[test]
fn r_resets_to_idle_and_kills_what_runs() {
    let mut app = app();
    let baseline_run = starts(&ch(&mut app, ' '))[0].clone();
    app.update(10, Msg::Started { run: baseline_run.0, requested_at: 10, pids: vec![7] });
    let effects = ch(&mut app, 'r');
    assert!(effects.contains(&Effect::Kill(baseline_run.0)));
    assert!(app.session.is_none());
}

#[test]
fn q_esc_and_ctrl_c_quit_and_kill_the_workers() {
    for key in [
        KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE),
        KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE),
        KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
    ] {
        let mut app = app();
        let baseline_run = starts(&ch(&mut app, ' '))[0].clone();
        app.update(10, Msg::Started { run: baseline_run.0, requested_at: 10, pids: vec![7] });
        let effects = app.update(20, Msg::Key(key));
        assert!(effects.contains(&Effect::Kill(baseline_run.0)), "{key:?}: {effects:?}");
        assert_eq!(effects.last(), Some(&Effect::Quit), "{key:?}");
    }
    let mut app = app();
    assert_eq!(app.update(5, Msg::Terminate), vec![Effect::Quit]);
}

#[test]
fn question_mark_pages_through_the_help_and_esc_closes_it_without_quitting() {
    let mut app = app();
    ch(&mut app, '?');
    assert_eq!(app.help, Some(HelpPage::Keys));
    ch(&mut app, '?');
    assert_eq!(app.help, Some(HelpPage::Figures));
    assert_eq!(press(&mut app, KeyCode::Esc), vec![]);
    assert!(app.help.is_none() && !app.quitting);
    ch(&mut app, '?');
    ch(&mut app, '?');
    ch(&mut app, '?');
    assert!(app.help.is_none(), "a third ? closes it");
}

#[test]
fn on_a_screen_tall_enough_for_the_whole_help_the_second_question_mark_closes_it() {
    let mut app = app();
    app.update(1, Msg::Viewport { lane_cells: 80, help: HelpLayout::Whole });
    ch(&mut app, '?');
    assert_eq!(app.help, Some(HelpPage::Keys));
    ch(&mut app, '?');
    assert!(app.help.is_none(), "both pages were on screen: the next ? closes them");
}

#[test]
fn c_asks_python_once_and_switches_when_it_answers() {
    let mut app = app();
    assert_eq!(ch(&mut app, 'c'), vec![Effect::AskPython]);
    assert_eq!(ch(&mut app, 'c'), vec![], "asked once, while no answer came");
    assert_eq!(app.experiment.runtime, Runtime::Sim);
    app.update(1, Msg::PythonAnswered(Ok(())));
    assert_eq!(app.experiment.runtime, Runtime::Cpython);
    ch(&mut app, 'c');
    assert_eq!(app.experiment.runtime, Runtime::Sim, "both runtimes are offered from now on");
    let mut app = self::app();
    ch(&mut app, 'c');
    app.update(1, Msg::PythonAnswered(Err("python3 is Python 3.6.15".into())));
    assert_eq!(app.experiment.runtime, Runtime::Sim);
    assert_eq!(ch(&mut app, 'c'), vec![], "not asked again");
    assert_eq!(app.notice.as_deref(), Some("no real CPython: python3 is Python 3.6.15"));
}

#[test]
fn opening_on_the_real_interpreter_waits_for_its_answer_and_space_waits_with_it() {
    let demo = || {
        let e = Experiment { pace: DEFAULT_PACE, ..Experiment::new(2) };
        let mut app = App::new(e, Options { cores: 4, ..Options::default() }, 1_000);
        app.open_on_real();
        app
    };
    // It answers before space: the view switches to it, paced with more work.
    let mut app = demo();
    assert_eq!(app.experiment.runtime, Runtime::Sim, "the simulation shows meanwhile");
    assert_eq!(ch(&mut app, 'c'), vec![], "c does not ask a second time");
    app.update(1, Msg::PythonAnswered(Ok(())));
    assert_eq!(app.experiment.runtime, Runtime::Cpython);
    assert_eq!(app.view.zoom, DEFAULT_ZOOM, "a paced real run lasts as long as a paced simulated one");
    assert_eq!(app.experiment.work_iterations(), 60_000_000);
    let started = starts(&ch(&mut app, ' '));
    assert_eq!(started[0].1.experiment.runtime, Runtime::Cpython, "{started:?}");
    ch(&mut app, 'c');
    assert_eq!(app.experiment.runtime, Runtime::Sim, "c still switches");

    // Space before the answer: nothing starts until it comes, then the run does.
    let mut app = demo();
    assert_eq!(ch(&mut app, ' '), vec![]);
    assert!(app.notice.as_deref().is_some_and(|n| n.starts_with("starting once")), "{:?}", app.notice);
    let effects = app.update(2, Msg::PythonAnswered(Ok(())));
    let started = starts(&effects);
    assert_eq!(started.len(), 1, "{effects:?}");
    assert_eq!(started[0].1.experiment.runtime, Runtime::Cpython);

    // It cannot run: the simulation stays, the reason is on screen, space waited and runs it.
    let mut app = demo();
    ch(&mut app, ' ');
    let effects = app.update(2, Msg::PythonAnswered(Err("python3 is Python 2.7.18".into())));
    assert_eq!(starts(&effects)[0].1.experiment.runtime, Runtime::Sim, "{effects:?}");
    assert_eq!(
        app.notice.as_deref(),
        Some("simulated CPython: the real one cannot run here (python3 is Python 2.7.18)")
    );
    assert_eq!(ch(&mut app, 'c'), vec![], "c says why instead of asking again");
}

#[test]
fn a_run_waits_while_gilscope_starts_the_other_interpreters_it_looks_for() {
    let mut app = app();
    app.open_on_real();
    ch(&mut app, ' ');
    // The answer came; the look for other interpreters began with it.
    app.looking_for_interpreters();
    let effects = app.update(2, Msg::PythonAnswered(Ok(())));
    assert!(starts(&effects).is_empty(), "nothing is timed while interpreters start: {effects:?}");
    assert!(
        app.notice.as_deref().is_some_and(|n| n.contains("looked for other Pythons")),
        "{:?}",
        app.notice
    );
    let effects = app.update(3, Msg::Interpreters { subinterpreters: true, free_threaded: false });
    let started = starts(&effects);
    assert_eq!(started.len(), 1, "{effects:?}");
    assert_eq!(started[0].1.experiment.runtime, Runtime::Cpython);
    assert_eq!(app.notice, None, "the wait is over");
    // Space while looking, with the real runtime already on: the same wait.
    let mut app = self::app();
    app.looking_for_interpreters();
    assert_eq!(ch(&mut app, ' '), vec![]);
    assert!(
        !starts(&app.update(3, Msg::Interpreters { subinterpreters: false, free_threaded: false }))
            .is_empty()
    );
    // Nobody looking: space starts at once.
    assert!(!starts(&ch(&mut self::app(), ' ')).is_empty());
}

#[test]
fn c_says_why_the_real_cpython_is_not_there() {
    let mut app = App::new(
        Experiment::new(2),
        Options { cpython_unavailable: Some("no python3 on PATH".into()), ..Options::default() },
        0,
    );
    assert_eq!(ch(&mut app, 'c'), vec![]);
    assert_eq!(app.notice.as_deref(), Some("no real CPython: no python3 on PATH"));
    let mut app = App::new(
        Experiment::new(2),
        Options { runtimes: vec![Runtime::Sim, Runtime::Cpython], ..Options::default() },
        0,
    );
    ch(&mut app, 'c');
    assert_eq!(app.experiment.runtime, Runtime::Cpython);
    assert_eq!(app.view.zoom, CPYTHON_ZOOM);
    ch(&mut app, 'c');
    assert_eq!(app.experiment.runtime, Runtime::Sim);
    assert_eq!(app.view.zoom, DEFAULT_ZOOM);
}

#[test]
fn key_releases_are_ignored() {
    let mut app = app();
    let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    assert_eq!(app.update(0, Msg::Key(release)), vec![]);
    assert!(!app.quitting);
}

/// Space, and the baseline run played to its end (1 µs): the models the
/// app asks for next.
fn models_after_the_baseline(app: &mut App) -> Vec<(RunId, RunSpec)> {
    let baseline_run = starts(&ch(app, ' '))[0].clone();
    starts(&play_run(app, baseline_run.0, &baseline_run.1, 0, 1_000))
}

#[test]
fn a_failed_model_is_stopped_and_the_other_goes_on() {
    let mut app = app();
    let models = models_after_the_baseline(&mut app);
    let (threads, processes) = (models[0].0, models[1].0);
    app.update(10, Msg::Started { run: threads, requested_at: 10, pids: vec![50] });
    app.update(10, Msg::Started { run: processes, requested_at: 10, pids: vec![60, 61] });
    let effects = app.update(
        20,
        Msg::Report(Report::Ended {
            run: processes,
            stream: 1,
            outcome: Err("worker process 61 killed by signal 9 (SIGKILL)".into()),
        }),
    );
    assert!(effects.contains(&Effect::Kill(processes)), "{effects:?}");
    assert!(!effects.contains(&Effect::Kill(threads)));
    let session = app.session.as_ref().expect("a session");
    assert_eq!(session.models[1].phase(), Phase::Failed);
    assert_eq!(session.models[1].died, [0, 1], "without a header, every worker of the run");
    assert!(session.models[1].failure().unwrap_or("").contains("SIGKILL"));
    assert_eq!(session.models[0].phase(), Phase::Running);
    assert!(app.busy());
}

#[test]
fn a_gil_wait_paused_through_is_counted_without_the_pause() {
    let mut app = app();
    let models = models_after_the_baseline(&mut app);
    let threads = models[0].0;
    app.update(10, Msg::Started { run: threads, requested_at: 10, pids: vec![50] });
    let record = |app: &mut App, record| {
        app.update(app.now, Msg::Report(Report::Record { run: threads, stream: 0, record }));
    };
    record(&mut app, Record::Take { t: 100, worker: 0 });
    record(&mut app, Record::Wait { t: 100, worker: 1 });
    app.now = 1_000;
    ch(&mut app, ' ');
    app.now = 1_000_000;
    ch(&mut app, ' ');
    // 5,000 ns of waiting, 999,000 of them paused.
    record(&mut app, Record::Take { t: 1_004_100, worker: 1 });
    let tally = app.session.as_ref().and_then(|s| s.models[0].tally.as_ref()).expect("a tally");
    assert_eq!(tally.wait_max_ns, 5_000);
}

#[test]
fn a_panels_time_starts_at_its_programs_first_worker_request_not_at_its_interpreters_boot() {
    let mut app = app();
    let models = models_after_the_baseline(&mut app);
    let (threads, procs) = (models[0].0, models[1].0);
    // Both interpreters boot for 120 ms before their programs ask for workers.
    let boot = 120_000_000;
    for run in [threads, procs] {
        app.update(10, Msg::Started { run, requested_at: 10, pids: vec![50] });
        let started = Record::Started { t: 10 + boot + 1_000, worker: 0, requested: 10 + boot };
        app.update(app.now, Msg::Report(Report::Record { run, stream: 0, record: started }));
    }
    let session = app.session.as_ref().expect("a session");
    let (origin, _) = session.extent(0, 10 + boot + 5_000).expect("started");
    assert_eq!(origin, 10 + boot, "0 s on the axis is where the time figure starts counting");
}

fn started_run(spec: RunSpec, streams: usize, pids: Vec<u32>) -> Run {
    let mut run = Run::new(spec.clone());
    run.id = Some(1);
    run.tally = Some(Tally::new(spec, 0, streams));
    run.pids = pids;
    run
}

fn header(stream_pid: u32, gil: bool, threads: u32, first_worker: u32, timeline: Timeline) -> Hello {
    Hello { gil, timeline, ..sim_header(stream_pid, first_worker, threads) }
}

fn os_process(pid: u32, threads: u32, worker_threads: u32) -> crate::monitor::ProcessSample {
    crate::monitor::ProcessSample {
        pid,
        cpu_cores: None,
        rss_bytes: 1 << 20,
        threads,
        worker_threads,
        memory: None,
    }
}

fn os_sample(processes: Vec<crate::monitor::ProcessSample>) -> Sample {
    Sample { at: 0, cores: vec![], processes, ..Sample::default() }
}

fn models(e: &Experiment) -> Vec<RunSpec> {
    model_specs(e, &DEFAULT_MODELS)
}

#[test]
fn threads_are_counted_as_the_os_names_them_even_as_workers_end() {
    let mut run = started_run(models(&Experiment::new(2))[1].clone(), 2, vec![7, 8]);
    for (worker, pid) in [(0, 7), (1, 8)] {
        run.apply(Report::Record {
            run: 1,
            stream: worker as usize,
            record: Record::Process { t: 0, worker, pid },
        });
    }
    run.observe(&os_sample(vec![os_process(7, 4, 1), os_process(8, 4, 1)]));
    // Process 8's worker ended: 3 helper threads left, none named worker-N.
    run.observe(&os_sample(vec![os_process(8, 3, 0)]));
    assert_eq!((run.os.peak_processes, run.os.threads_per_process()), (2, 1));
    assert_eq!(run.os.processes, 1, "the newest reading");
}

#[test]
fn a_multiprocessing_parent_that_runs_no_worker_is_no_worker_process() {
    // CPython: gilscope starts one parent (7); its children 8 and 9 run the workers.
    let mut run = started_run(models(&Experiment::new(2))[1].clone(), 1, vec![7]);
    let inferred = Timeline::Inferred { resolution_ns: 50_000 };
    run.apply(Report::Hello { run: 1, stream: 0, hello: header(7, true, 2, 0, inferred) });
    run.observe(&os_sample(vec![os_process(7, 2, 0)]));
    assert!(!run.os.seen(), "no worker process yet: {:?}", run.os);
    for (worker, pid) in [(0, 8), (1, 9)] {
        let new_pid =
            run.apply(Report::Record { run: 1, stream: 0, record: Record::Process { t: 0, worker, pid } });
        assert!(new_pid, "a new pid to watch");
    }
    run.observe(&os_sample(vec![os_process(7, 2, 0), os_process(8, 1, 1), os_process(9, 1, 1)]));
    assert_eq!((run.os.processes, run.os.peak_processes, run.os.threads_per_process()), (2, 2, 1));
    assert_eq!(run.os.peak_rss_each.len(), 3, "the parent's memory is still the model's cost");
}

#[test]
fn handovers_are_counted_per_process_from_the_takes() {
    let mut run = started_run(models(&Experiment::new(2))[0].clone(), 2, vec![7, 8]);
    run.apply(Report::Hello { run: 1, stream: 0, hello: header(7, true, 2, 0, Timeline::Exact) });
    run.apply(Report::Hello { run: 1, stream: 1, hello: header(8, true, 1, 5, Timeline::Exact) });
    for (stream, worker) in [(0, 0), (0, 1), (0, 1), (0, 0), (1, 5)] {
        run.apply(Report::Record { run: 1, stream, record: Record::Take { t: 0, worker } });
    }
    assert_eq!(run.switches(), Switches::Counted(2));
}

#[test]
fn without_a_gil_nothing_is_handed_over() {
    let e = Experiment { gil: false, ..Experiment::new(2) };
    let mut run = started_run(models(&e)[0].clone(), 1, vec![7]);
    run.apply(Report::Hello { run: 1, stream: 0, hello: header(7, false, 2, 0, Timeline::Exact) });
    for worker in [0, 1, 0, 1] {
        run.apply(Report::Record { run: 1, stream: 0, record: Record::Take { t: 0, worker } });
    }
    let counted = run.tally.as_ref().map(Tally::lane_handovers);
    assert_eq!((counted, run.switches()), (Some(0), Switches::NoGil));
}

#[test]
fn the_interpreters_own_count_is_shown_once_its_gil_is_read() {
    let mut run = started_run(models(&Experiment::new(2))[0].clone(), 1, vec![7]);
    let inferred = Timeline::Inferred { resolution_ns: 50_000 };
    run.apply(Report::Hello { run: 1, stream: 0, hello: header(7, true, 2, 0, inferred) });
    let record = |run: &mut Run, record| run.apply(Report::Record { run: 1, stream: 0, record });
    for worker in 0..2 {
        record(&mut run, Record::Process { t: 0, worker, pid: 7 });
    }
    assert_eq!(run.switches(), Switches::Inferred(None), "not read yet");
    record(&mut run, Record::Lanes { t: 0, pid: 7, source: LaneSource::Measured { period_ns: 100_000 } });
    let gil =
        Record::Gil { t: 0, pid: 7, interp: 0, switches: 40, seen: 39, samples: 900, span_ns: 1, cpu_ns: 0 };
    record(&mut run, gil);
    assert_eq!(run.switches(), Switches::Read(40));
}

#[test]
fn inferred_hand_overs_wait_for_the_processes_own_count() {
    let spec = models(&Experiment::new(2))[0].clone();
    let mut run = started_run(spec, 1, vec![7]);
    let inferred = Timeline::Inferred { resolution_ns: 50_000 };
    run.apply(Report::Hello { run: 1, stream: 0, hello: header(7, true, 2, 0, inferred) });
    let record = |run: &mut Run, record| run.apply(Report::Record { run: 1, stream: 0, record });
    // Batches of takes, one worker's after the other's: no hand-over order.
    for worker in [0, 0, 1, 1, 0, 0, 1, 1] {
        record(&mut run, Record::Take { t: 0, worker });
    }
    for worker in 0..2 {
        record(&mut run, Record::Process { t: 0, worker, pid: 7 });
        record(&mut run, Record::Finished { t: 0, worker });
    }
    assert_eq!(run.switches(), Switches::Inferred(None));
    record(
        &mut run,
        Record::End { t: 0, pid: 7, cpu_ns: 1, max_rss_kb: 1, switches: 42, drop_requests: None },
    );
    run.apply(Report::Ended { run: 1, stream: 0, outcome: Ok(()) });
    assert_eq!(run.switches(), Switches::Inferred(Some(42)));
}

/// Plays the whole default session: the baseline, then every model, each
/// taking `wall` ns; returns the app with its results.
fn finished_session(mut app: App) -> App {
    let mut t = 2_000;
    let mut pending = starts(&ch(&mut app, ' '));
    while let Some((run, spec)) = pending.pop() {
        pending.extend(starts(&play_run(&mut app, run, &spec, t, 1_000_000)));
        t += 2_000_000;
    }
    assert!(!app.busy(), "every run played");
    app
}

#[test]
fn a_key_that_changes_nothing_keeps_the_results() {
    let mut app = finished_session(app());
    app.experiment.pace = 1;
    ch(&mut app, 'S');
    assert!(app.session.is_some(), "pace was already the fastest: nothing changed, the results stay");
    ch(&mut app, 'm');
    ch(&mut app, 'm');
    assert!(app.history.len() <= 1);
}

#[test]
fn a_change_moves_the_finished_results_into_the_history() {
    let mut app = finished_session(app());
    ch(&mut app, '+');
    assert!(app.session.is_none(), "the figures no longer match the header");
    assert_eq!(app.history.len(), 1);
    let earlier = &app.history[0];
    assert!(earlier.experiment.contains("2 workers"), "{earlier:?}");
    assert_eq!(earlier.speedups.len(), 2);
    assert!(earlier.speedups.iter().all(|(_, s)| s.is_some()), "{earlier:?}");
    for _ in 0..5 {
        let mut again = finished_session(std::mem::replace(&mut app, self::app()));
        ch(&mut again, '+');
        app = again;
    }
    assert!(app.history.len() <= HISTORY);
}

#[test]
fn a_change_while_paused_stops_the_run_and_starts_nothing() {
    let mut app = app();
    let first = starts(&ch(&mut app, ' '))[0].clone();
    app.update(10, Msg::Started { run: first.0, requested_at: 10, pids: vec![7] });
    ch(&mut app, ' ');
    assert!(app.paused());
    let effects = ch(&mut app, '+');
    assert!(effects.contains(&Effect::Kill(first.0)), "{effects:?}");
    assert!(starts(&effects).is_empty(), "nothing starts while the user has paused: {effects:?}");
    assert!(!app.busy());
}

#[test]
fn keys_behind_the_help_change_nothing() {
    let mut app = app();
    ch(&mut app, '?');
    let effects = ch(&mut app, '+');
    assert_eq!(effects, vec![]);
    assert_eq!(app.experiment.workers, 2);
    assert!(app.notice.as_deref().unwrap_or("").contains("help"), "{:?}", app.notice);
    ch(&mut app, '?');
    ch(&mut app, '?');
    ch(&mut app, '+');
    assert_eq!(app.experiment.workers, 3, "closed, the keys act again");
}

#[test]
fn the_default_mode_is_fair_when_the_workers_outnumber_the_cores() {
    let two = App::new(Experiment::new(2), Options { cores: 2, ..Options::default() }, 0);
    assert_eq!(two.mode, Mode::OneAtATime, "2 + 2 workers on 2 cores would share them");
    let mut many = App::new(Experiment::new(2), Options { cores: 16, ..Options::default() }, 0);
    assert_eq!(many.mode, Mode::Race, "16 cores hold both models' workers");
    for _ in 0..7 {
        ch(&mut many, '+'); // 2 → 12 workers a model
    }
    assert_eq!(many.mode, Mode::OneAtATime, "{} workers a model no longer fit", many.experiment.workers);
    ch(&mut many, 'm');
    ch(&mut many, '-');
    assert_eq!(many.mode, Mode::Race, "once chosen with m, the mode stays");
}

#[test]
fn paused_the_figures_stay_as_they_were_when_the_workers_stopped() {
    let (mut app, threads, ..) = crate::scenario::race(2, 3 * crate::scenario::S, crate::scenario::hold_ns);
    let cpu = |app: &App| {
        app.session
            .as_ref()
            .and_then(|s| s.models.iter().find(|r| r.id == Some(threads)))
            .and_then(|r| r.os.cpu_cores)
    };
    let before = cpu(&app);
    ch(&mut app, ' ');
    let mut stopped = crate::scenario::sample_mid_run(app.now);
    for p in &mut stopped.processes {
        p.cpu_cores = Some(0.0);
    }
    app.update(app.now + 1_000_000_000, Msg::Sample(stopped));
    assert_eq!(cpu(&app), before, "a stopped worker's 0 % is not the figure of the run");
}

#[test]
fn a_reply_beside_working_siblings_is_contended_and_one_after_them_is_not() {
    let spec = models(&Experiment { workload: Workload::Mixed, ..Experiment::new(2) })[0].clone();
    let mut tally = Tally::new(spec, 0, 1);
    let rec = |tally: &mut Tally, record| tally.apply(Report::Record { run: 1, stream: 0, record });
    rec(&mut tally, Record::Started { t: 10, worker: 0, requested: 0 });
    rec(&mut tally, Record::Started { t: 10, worker: 1, requested: 0 });
    rec(&mut tally, Record::Reply { t: 500, worker: 0, latency_ns: 300 });
    rec(&mut tally, Record::Finished { t: 600, worker: 1 });
    rec(&mut tally, Record::Reply { t: 900, worker: 0, latency_ns: 100 });
    assert_eq!(tally.contended_latencies_ns(), [300], "the second reply met nobody at work");
    assert_eq!(tally.latencies_ns(), [100, 300]);
}
