//! The classroom: from fixed message scripts, every lesson reaches its
//! result, the narration freezes with a paused run, a recorded session
//! replays to the screen it came from, and its trace holds together; with
//! the binary, `run --record` / `--trace`, `export`, and the one-line errors
//! for files that are not recordings this gilscope can read.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test stops where it fails

use std::collections::BTreeMap;
use std::process::Output;

mod common;

use gilscope::app::lesson::LESSONS;
use gilscope::app::{App, Effect, Mode, Msg, Options};
use gilscope::experiment::narration;
use gilscope::experiment::spec::RunSpec;
use gilscope::experiment::supervisor::{Report, RunId};
use gilscope::monitor::Sample;
use gilscope::protocol::{Record, ReleaseReason};
use gilscope::recording::replay::Player;
use gilscope::recording::tape::{Context, Tape};
use gilscope::recording::{Begin, Entry, Event, Machine, Recording, trace};
use gilscope::scenario::{
    ITERATIONS, MS, S, T0, demo, end, fresh, header, key, process_records, send, sim_header, starts,
    threading_records,
};
use gilscope::sim::workload::Role;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// One run of `spec` to its end: CPU workers run freely, I/O workers make
/// two requests each, each reply waiting 2 ms for the GIL.
fn play(app: &mut App, run: RunId, spec: &RunSpec, t0: u64, wall: u64) -> Vec<Effect> {
    let workers = spec.experiment.workers;
    let processes = spec.model.processes(workers).max(1);
    let per = workers / processes;
    let pids: Vec<u32> = (0..processes).map(|p| 5000 + p).collect();
    let mut effects = app.update(t0, Msg::Started { run, requested_at: t0, pids: pids.clone() });
    for (p, pid) in (0..processes).zip(pids) {
        let stream = p as usize;
        effects.extend(header(app, run, stream, sim_header(pid, p * per, per)));
        let mut records = Vec::new();
        for w in p * per..(p + 1) * per {
            records.extend([
                Record::Started { t: t0 + MS, worker: w, requested: t0 },
                Record::Process { t: t0 + MS, worker: w, pid },
                Record::Take { t: t0 + 2 * MS, worker: w },
            ]);
            if spec.experiment.workload.role(w) == Role::Io {
                for r in 0..2 {
                    let asked = t0 + 10 * MS + r * 100 * MS;
                    records.extend([
                        Record::Release { t: asked, worker: w, reason: ReleaseReason::Io },
                        Record::IoBegin { t: asked, worker: w },
                        Record::Wait { t: asked + 50 * MS, worker: w },
                        Record::Take { t: asked + 52 * MS, worker: w },
                        Record::Reply { t: asked + 52 * MS, worker: w, latency_ns: 52 * MS },
                        // Two of its requests are played; the rest are not told.
                        Record::Progress {
                            t: asked + 53 * MS,
                            worker: w,
                            done: r + 1,
                            total: u64::from(spec.experiment.requests),
                        },
                    ]);
                }
            } else {
                records.push(Record::Progress {
                    t: t0 + wall,
                    worker: w,
                    done: ITERATIONS,
                    total: ITERATIONS,
                });
            }
            records.push(Record::Finished { t: t0 + wall, worker: w });
        }
        records.push(Record::End {
            t: t0 + wall,
            pid,
            cpu_ns: wall * u64::from(per),
            max_rss_kb: 3_300,
            switches: 0,
            drop_requests: None,
        });
        // In time order, as one process's stream sends them.
        records.sort_by_key(|r| r.time().unwrap_or(0));
        effects.extend(send(app, run, stream, records));
    }
    for stream in 0..processes as usize {
        effects.extend(end(app, run, stream, Ok(())));
    }
    effects
}

fn draw(app: &App, width: u16, height: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| gilscope::ui::render(frame, app)).unwrap();
    let buffer = terminal.backend().buffer();
    (0..height).map(|y| (0..width).map(|x| buffer[(x, y)].symbol().to_owned()).collect::<String>()).collect()
}

#[test]
fn every_lesson_starts_and_reaches_its_result() {
    for (index, lesson) in LESSONS.iter().enumerate() {
        let mut app = fresh(demo());
        app.open_lesson(index, &mut Vec::new());
        if lesson.unavailable.is_some() {
            assert_eq!(app.lesson, None, "{} cannot be opened", lesson.title);
            continue;
        }
        assert_eq!(app.lesson, Some(index));
        assert!(app.lesson_as_set(), "{}: the settings are the lesson's", lesson.title);
        assert_eq!((app.experiment.workload, app.experiment.gil), (lesson.workload, lesson.gil));
        assert_eq!(app.experiment.switch_interval, lesson.switch_interval);
        assert!(
            draw(&app, 80, 24)[2].contains(lesson.question),
            "{}: the question has a line of its own under the header",
            lesson.title
        );
        // Space: the baseline, then the models, each played to its end.
        let mut pending = starts(&key(&mut app, ' '));
        let mut t = T0;
        while let Some((run, spec)) = pending.pop() {
            // CPU workers that share a GIL take turns: each takes 2 s of it.
            let e = &spec.experiment;
            let cpu = (0..e.workers).filter(|w| e.workload.role(*w) == Role::Cpu).count() as u64;
            let sharing =
                if spec.contends_for_a_gil() { cpu / u64::from(spec.model.processes(e.workers)) } else { 1 };
            let wall = 2 * S * sharing.max(1);
            pending.extend(starts(&play(&mut app, run, &spec, t, wall)));
            t += wall + S;
        }
        assert!(!app.busy(), "{}: the session finished", lesson.title);
        let session = app.session.as_ref().unwrap();
        let compared = session.compare(&app.baseline, app.cores());
        assert_eq!(compared.results.len(), app.models.len());
        for result in &compared.results {
            let failures: Vec<_> =
                session.runs().map(|r| r.tally.as_ref().and_then(|t| t.failure.clone())).collect();
            let r = result
                .as_ref()
                .unwrap_or_else(|| panic!("{}: every model has a result ({failures:?})", lesson.title));
            assert!(
                r.speedup.is_some() && r.speedup_limit >= 1.0,
                "{}: speedup against its limit",
                lesson.title
            );
        }
        let results: Vec<_> = compared.results.into_iter().flatten().collect();
        let said = narration::results(&results, &session.experiment);
        assert!(!said.is_empty(), "{}: the narration explains the result", lesson.title);
        let screen = draw(&app, 160, 48).join("\n");
        assert!(screen.contains(&format!(" » {}", said[0])), "{}: said on screen:\n{screen}", lesson.title);
    }
}

#[test]
fn the_lesson_keys_stop_at_the_last_lesson_and_hand_changes_are_marked() {
    let mut app = fresh(demo());
    let l =
        |app: &mut App, c| app.update(app.now, Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)));
    for _ in 0..LESSONS.len() + 2 {
        l(&mut app, 'l');
    }
    let last_runnable = LESSONS.iter().rposition(|l| l.unavailable.is_none());
    assert_eq!(app.lesson, last_runnable, "l stops at the last lesson that runs");
    l(&mut app, 'L');
    assert_eq!(app.lesson, last_runnable.map(|i| i - 1));
    key(&mut app, ']');
    assert!(!app.lesson_as_set());
    assert!(draw(&app, 80, 24)[2].contains("settings changed"));
}

#[test]
fn pausing_freezes_the_narration_with_the_run() {
    let mut app = fresh(demo());
    app.set_mode(Mode::Race);
    let baseline = starts(&key(&mut app, ' '));
    let models = starts(&play(&mut app, baseline[0].0, &baseline[0].1, T0, 3 * S));
    let (threads, t1) = (models[0].0, T0 + 4 * S);
    app.update(t1, Msg::Started { run: threads, requested_at: t1, pids: vec![2001] });
    header(&mut app, threads, 0, sim_header(2001, 0, 2));
    let records = threading_records(t1, t1 + 6 * S, 2001);
    let (before, after): (Vec<Record>, Vec<Record>) =
        records.into_iter().partition(|r| r.time().is_some_and(|t| t <= t1 + 3 * S));
    send(&mut app, threads, 0, before);
    let said = app.session.as_ref().and_then(|s| s.narration.said().cloned()).expect("a sentence");
    assert!(said.text().starts_with('T') && said.text().contains("dropped it when asked"), "{}", said.text());
    key(&mut app, ' ');
    assert!(app.paused());
    // Records still in the pipe arrive while paused: the sentence stays.
    send(&mut app, threads, 0, after.clone());
    let now = app.session.as_ref().and_then(|s| s.narration.said().cloned());
    assert_eq!(now.as_ref(), Some(&said), "paused, the narration stays as the teacher points at it");
    key(&mut app, ' ');
    send(&mut app, threads, 0, vec![Record::Wait { t: t1 + 9 * S, worker: 0 }]);
    let records = threading_records(t1 + 9 * S, t1 + 12 * S, 2001);
    send(
        &mut app,
        threads,
        0,
        records
            .into_iter()
            .filter(|r| matches!(r, Record::Take { .. } | Record::Release { .. } | Record::Wait { .. }))
            .collect(),
    );
    let later = app.session.as_ref().and_then(|s| s.narration.said().cloned());
    assert_ne!(later, Some(said), "resumed, it moves on");
}

/// The live view's loop in miniature: every message through the tape.
struct Live {
    app: App,
    tape: Tape,
}

impl Live {
    fn feed(&mut self, at: u64, msg: Msg) -> Vec<Effect> {
        let at = at.max(self.app.now);
        self.tape.feed(&mut self.app, at, msg)
    }

    fn key(&mut self, c: char) -> Vec<(RunId, RunSpec)> {
        let code = if c == ' ' { KeyCode::Char(' ') } else { KeyCode::Char(c) };
        starts(&self.feed(self.app.now, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))))
    }

    fn records(&mut self, run: RunId, stream: usize, records: Vec<Record>) -> Vec<(RunId, RunSpec)> {
        let mut started = Vec::new();
        for record in records {
            let at = record.time().unwrap_or(self.app.now);
            started.extend(starts(&self.feed(at, Msg::Report(Report::Record { run, stream, record }))));
        }
        started
    }

    fn start(&mut self, run: RunId, at: u64, pids: &[u32], first_workers: &[(u32, u32)]) {
        self.feed(at, Msg::Started { run, requested_at: at, pids: pids.to_vec() });
        for (stream, (&pid, &(first, threads))) in pids.iter().zip(first_workers).enumerate() {
            self.feed(at, Msg::Report(Report::Hello { run, stream, hello: sim_header(pid, first, threads) }));
        }
    }

    fn sample(&mut self, at: u64, load: f32, outside: f32) {
        let sample =
            Sample { at, cores: vec![load, load - 3.0], processes: Vec::new(), outside_cores: Some(outside) };
        self.feed(at, Msg::Sample(sample));
    }

    fn ended(&mut self, run: RunId, streams: usize) -> Vec<(RunId, RunSpec)> {
        let mut started = Vec::new();
        for stream in 0..streams {
            let at = self.app.now;
            started
                .extend(starts(&self.feed(at, Msg::Report(Report::Ended { run, stream, outcome: Ok(()) }))));
        }
        started
    }
}

/// A lone worker's baseline run `b`, asked for at `at`: its records and
/// its end. Returns the runs the app asks for next.
fn play_baseline(live: &mut Live, b: RunId, at: u64, pid: u32) -> Vec<(RunId, RunSpec)> {
    live.start(b, at + MS, &[pid], &[(0, 1)]);
    live.sample(at + S, 55.0, 0.04);
    let done = at + 3_500 * MS;
    let mut next = live.records(
        b,
        0,
        vec![
            Record::Started { t: at + 2 * MS, worker: 0, requested: at + MS },
            Record::Process { t: at + 2 * MS, worker: 0, pid },
            Record::Take { t: at + 2 * MS, worker: 0 },
            Record::Progress { t: done, worker: 0, done: ITERATIONS, total: ITERATIONS },
            Record::Finished { t: done, worker: 0 },
            Record::End {
                t: done,
                pid,
                cpu_ns: 3_500 * MS,
                max_rss_kb: 3_300,
                switches: 0,
                drop_requests: None,
            },
        ],
    );
    // The models start once the baseline's stream ended (or, with every
    // worker finished, at its end record).
    next.extend(live.ended(b, 1));
    next
}

/// A session as a teacher would have it: a session abandoned halfway, a
/// longer switch interval, then a session that times its own baseline and
/// races with a pause in the middle, OS samples and ticks throughout, and a
/// zoom at the end.
fn recorded_session() -> Live {
    let app = App::new(demo(), Options { cores: 2, ..Options::default() }, T0);
    let mut live = Live { app, tape: Tape::default() };
    live.app.set_mode(Mode::Race);
    live.sample(T0, 12.0, 0.01);
    let baseline = live.key(' ');
    assert_eq!(baseline.len(), 1);
    let models = play_baseline(&mut live, baseline[0].0, T0, 900);
    assert_eq!(models.len(), 2, "the race starts");
    // Abandoned before the models finish: nothing goes to the history.
    live.start(models[0].0, T0 + 3_501 * MS, &[2001], &[(0, 2)]);
    live.key('r');
    live.key(']');
    // The second session times its own baseline: the machine's speed drifts.
    let t0 = T0 + 10 * S;
    live.feed(t0, Msg::Tick);
    let baseline = live.key(' ');
    assert_eq!(baseline.len(), 1, "the lone worker is timed again");
    let models = play_baseline(&mut live, baseline[0].0, t0, 901);
    assert_eq!(models.len(), 2, "then the models race");
    let t1 = t0 + 4 * S;
    let (threads, procs) = (models[0].0, models[1].0);
    live.start(threads, t1, &[2001], &[(0, 2)]);
    live.start(procs, t1, &[3001, 3002], &[(0, 1), (1, 1)]);
    let t_end = race_with_a_pause(&mut live, t1, threads, procs);
    // Then the lone worker once more, after the models.
    let again = live.app.session.as_ref().and_then(|s| s.after.first()).and_then(|r| r.id);
    let again = again.expect("the lone worker is timed again after the race");
    let t2 = t_end + 100 * MS;
    assert!(play_baseline(&mut live, again, t2, 902).is_empty(), "nothing after it");
    assert!(!live.app.busy(), "the race and the baseline after it finished");
    let t_end = t2 + 4 * S;
    live.sample(t_end + S, 8.0, 0.02);
    live.key('z');
    live
}

/// The race of the second session, paused 2 s in for 3 s, with ticks and
/// OS samples; returns when the threads finished.
fn race_with_a_pause(live: &mut Live, t1: u64, threads: RunId, procs: RunId) -> u64 {
    // Threads under one GIL take twice as long as processes, as they would.
    let (threads_for, procs_for) = (7 * S, 3_600 * MS);
    let pause_at = t1 + 2 * S;
    let gap = 3 * S;
    // Each stream's records, its end, then None: the stream closes.
    let finish = |t: u64, worker: u32, pid: u32, end: bool| {
        let mut records = vec![
            Record::Progress { t, worker, done: ITERATIONS, total: ITERATIONS },
            Record::Finished { t: t + u64::from(worker) * MS, worker },
        ];
        if end {
            // The threads' process used one core; each worker process one.
            let (cpu_ns, switches) = if pid == 2001 { (threads_for, 1_250) } else { (procs_for, 0) };
            records.push(Record::End {
                t: t + MS,
                pid,
                cpu_ns,
                max_rss_kb: 3_400,
                switches,
                drop_requests: None,
            });
        }
        records
    };
    let mut all: Vec<(RunId, usize, Option<Record>)> = Vec::new();
    let mut threading = threading_records(t1, t1 + threads_for, 2001);
    threading.extend(finish(t1 + threads_for, 0, 2001, false));
    threading.extend(finish(t1 + threads_for, 1, 2001, true));
    all.extend(threading.into_iter().map(|r| (threads, 0, Some(r))));
    all.push((threads, 0, None));
    for (w, pid) in [(0, 3001), (1, 3002)] {
        let mut records = process_records(t1, t1 + procs_for, w, pid, 0.7);
        records.extend(finish(t1 + procs_for, w, pid, true));
        all.extend(records.into_iter().map(|r| (procs, w as usize, Some(r))));
        all.push((procs, w as usize, None));
    }
    // In time order; a stream closes after its last record.
    let last = |stream: &[(RunId, usize, Option<Record>)], run, s| {
        stream
            .iter()
            .filter(|(r, st, _)| *r == run && *st == s)
            .filter_map(|(_, _, rec)| rec.as_ref()?.time())
            .max()
    };
    let ends: Vec<u64> = all
        .iter()
        .map(|(run, s, rec)| {
            rec.as_ref().and_then(Record::time).or_else(|| last(&all, *run, *s)).unwrap_or(0)
        })
        .collect();
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by_key(|&i| (ends[i], all[i].2.is_none()));
    let mut paused = false;
    let mut next_tick = t1;
    for i in order {
        let (run, stream, record) = all[i].clone();
        let t = ends[i];
        if t > pause_at && !paused {
            live.key(' ');
            // Reports still in the pipe come in while paused.
            live.feed(pause_at + S, Msg::Tick);
            live.app.now = pause_at + gap;
            live.key(' ');
            paused = true;
        }
        // Records after the pause carry times after it: the workers were stopped.
        let shifted = if t > pause_at { t + gap } else { t };
        while next_tick < shifted {
            live.feed(next_tick, Msg::Tick);
            if (next_tick - t1).is_multiple_of(500 * MS) {
                live.sample(next_tick, 97.0, 0.03);
            }
            next_tick += 100 * MS;
        }
        match record {
            Some(record) => {
                let record = if t > pause_at { record.map_times(|t| t + gap) } else { record };
                live.records(run, stream, vec![record]);
            }
            None => {
                live.feed(shifted, Msg::Report(Report::Ended { run, stream, outcome: Ok(()) }));
            }
        }
    }
    t1 + threads_for + gap
}

fn context() -> Context {
    Context {
        machine: Machine { cores: 2, cpu: Some("test CPU".into()), os: None, kernel: None },
        python: None,
    }
}

fn saved(live: &Live) -> Recording {
    let recording = live.tape.recording(&live.app, &context()).expect("a finished session saves");
    let mut bytes = Vec::new();
    recording.write(&mut bytes).unwrap();
    Recording::read(bytes.as_slice(), "test").expect("it reads back")
}

/// The run `of` an entry: what it starts or reports on.
fn run_of_entry(entry: &Entry) -> Option<RunId> {
    match &entry.event {
        Event::Start { run, .. } | Event::Msg(Msg::Started { run, .. } | Msg::StartFailed { run, .. }) => {
            Some(*run)
        }
        Event::Msg(Msg::Report(report)) => Some(report.run()),
        _ => None,
    }
}

/// `recording` as an older gilscope saved it: it reused a baseline timed
/// earlier (the session's baseline run, its start and every message of it,
/// moved out in front as an earlier one) and did not time it again after
/// the models (that run's entries left out).
fn as_an_older_gilscope_saved_it(mut recording: Recording) -> Recording {
    let entries = std::mem::take(&mut recording.entries);
    let session = entries.iter().position(|e| matches!(e.event, Event::Begin(Begin::Session { .. })));
    let session = session.expect("a session");
    let lone: Vec<RunId> = entries
        .iter()
        .filter_map(|e| match e.event {
            Event::Start { run, baseline: true, .. } => Some(run),
            _ => None,
        })
        .collect();
    let [before, after] = lone[..] else {
        panic!("a baseline run before the models and one after: {lone:?}")
    };
    // The OS samples taken while it ran go with it, as a live app sent them.
    let models = entries.iter().position(|e| matches!(e.event, Event::Start { baseline: false, .. }));
    let while_timed = session..models.expect("models");
    let (mut earlier, mut rest): (Vec<Entry>, Vec<Entry>) = (Vec::new(), Vec::new());
    for (i, entry) in entries.into_iter().enumerate() {
        let run = run_of_entry(&entry);
        let sample = matches!(entry.event, Event::Msg(Msg::Sample(_)));
        if run == Some(after) {
            continue;
        }
        if i > session && (run == Some(before) || (sample && while_timed.contains(&i))) {
            earlier.push(entry);
        } else {
            rest.push(entry);
        }
    }
    let at = earlier.first().map_or(0, |e| e.at);
    earlier.insert(0, Entry { at, event: Event::Begin(Begin::Earlier) });
    rest.splice(session..session, earlier);
    recording.entries = rest;
    recording
}

#[test]
fn a_recording_replays_to_the_same_screen_as_the_live_run_it_came_from() {
    let live = recorded_session();
    let recording = saved(&live);
    let lone = recording.entries.iter().filter(|e| matches!(e.event, Event::Start { baseline: true, .. }));
    assert_eq!(lone.count(), 2, "the session's own baseline runs, before and after the models, come with it");
    let mut player = Player::new(recording.clone(), &Options::default()).expect("it replays");
    player.play_all().expect("to its end");
    let replayed = player.app();
    assert_eq!(replayed.baseline, live.app.baseline, "the same baseline, timed from the same reports");
    for (w, h) in [(80, 24), (160, 48)] {
        let (a, b) = (draw(&live.app, w, h), draw(replayed, w, h));
        let last = a.len() - 1;
        assert_eq!(a[..last], b[..last], "{w}×{h}: the same screen but the bottom bar");
        assert!(b[last].contains("replay"), "the bar says it is a replay: {}", b[last]);
        assert!(
            a.iter().any(|l| l.contains("speedup") || l.contains(" of 2×")),
            "a finished screen:\n{}",
            a.join("\n")
        );
    }
    // As an older gilscope saved it: it replays to its end, to the figures
    // of the one baseline it had.
    let mut player =
        Player::new(as_an_older_gilscope_saved_it(recording), &Options::default()).expect("it replays");
    player.play_all().expect("to its end");
    let replayed = player.app();
    assert!(!replayed.busy(), "nothing left waiting for a run the recording lacks");
    assert_eq!(replayed.baseline, live.app.baseline);
    let screen = draw(replayed, 80, 24).join("\n");
    assert!(screen.contains(" of 2×"), "{screen}");
}

#[test]
fn a_recording_played_halfway_shows_the_run_halfway() {
    let live = recorded_session();
    let mut player = Player::new(saved(&live), &Options::default()).unwrap();
    player.play_until(player.start_at + 5 * S).unwrap();
    let app = player.app();
    assert!(app.busy(), "mid-run, as it was");
    assert!(draw(app, 80, 24).iter().any(|l| l.contains("running") || l.contains("paused")));
}

#[test]
fn the_trace_of_a_recording_has_slices_that_tile_each_workers_measured_time() {
    let recording = saved(&recorded_session());
    let trace = trace::trace(&recording);
    let text = serde_json::to_string(&trace).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&text).expect("the trace parses as JSON");
    check_trace(&recording, &parsed);
}

/// Every slice begins before it ends, the slices of a track never overlap,
/// and a worker's slices add up to its `finished − started` within 1 %.
fn check_trace(recording: &Recording, trace: &serde_json::Value) {
    let events = trace["traceEvents"].as_array().expect("traceEvents");
    let mut tracks: BTreeMap<(u64, u64), Vec<(u64, u64)>> = BTreeMap::new();
    let mut names: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for e in events {
        match e["ph"].as_str() {
            Some("X") => {
                let (ts, dur) = (e["ts"].as_u64().expect("ts"), e["dur"].as_u64().expect("dur"));
                tracks
                    .entry((e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()))
                    .or_default()
                    .push((ts, ts + dur));
            }
            Some("M") if e["name"] == "thread_name" => {
                names.insert(
                    (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap()),
                    e["args"]["name"].as_str().unwrap().to_owned(),
                );
            }
            _ => {}
        }
    }
    assert!(!tracks.is_empty(), "slices");
    for (track, slices) in &mut tracks {
        slices.sort_unstable();
        for (from, to) in slices.iter() {
            assert!(from <= to, "{track:?}: a slice ends before it begins");
        }
        for pair in slices.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "{track:?} ({:?}): {:?} overlaps {:?}",
                names.get(track),
                pair[0],
                pair[1]
            );
        }
    }
    // Each worker's measured time, from the records: pid k is the k-th run started.
    let mut runs: Vec<RunId> = Vec::new();
    let mut life: BTreeMap<(u64, u32), (Option<u64>, Option<u64>)> = BTreeMap::new();
    for entry in &recording.entries {
        match &entry.event {
            Event::Start { run, .. } => runs.push(*run),
            Event::Msg(Msg::Report(Report::Record { run, record, .. })) => {
                let Some(pid) = runs.iter().rposition(|r| r == run).map(|i| i as u64 + 1) else { continue };
                match *record {
                    Record::Started { t, worker, .. } => life.entry((pid, worker)).or_default().0 = Some(t),
                    Record::Finished { t, worker } => life.entry((pid, worker)).or_default().1 = Some(t),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let mut checked = 0;
    for ((pid, worker), (started, finished)) in life {
        let (Some(started), Some(finished)) = (started, finished) else { continue };
        let measured = (finished - started) as f64 / 1e3;
        let sliced: u64 =
            tracks.get(&(pid, u64::from(worker) + 1)).map_or(0, |s| s.iter().map(|(a, b)| b - a).sum());
        assert!(
            (sliced as f64 - measured).abs() <= measured * 0.01 + 1.0,
            "process {pid} worker {worker}: slices {sliced} µs against {measured} µs measured"
        );
        checked += 1;
    }
    assert!(checked > 0, "some worker finished");
}

fn gilscope(args: &[&str]) -> Output {
    common::gilscope().args(args).output().expect("start gilscope")
}

fn one_line_error(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("gilscope: ") && !err.contains("panicked"), "{err}");
    err
}

#[test]
fn run_records_every_round_which_replays_and_exports_to_the_trace_run_wrote() {
    let dir = common::scratch("record");
    let (file, traced, exported) = (dir.join("quick.gilrec"), dir.join("run.json"), dir.join("export.json"));
    let (file_s, traced_s, exported_s) =
        (file.to_str().unwrap(), traced.to_str().unwrap(), exported.to_str().unwrap());
    let out = gilscope(&[
        "run",
        "--workers",
        "2",
        "--iterations",
        "300000",
        "--rounds",
        "2",
        "--record",
        file_s,
        "--trace",
        traced_s,
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let recording = Recording::load(&file).expect("the recording reads back");
    assert_eq!(recording.header.source, "run");
    assert!(recording.header.machine.cores >= 1);
    let starts = recording.entries.iter().filter(|e| matches!(e.event, Event::Start { .. })).count();
    assert_eq!(starts, 2 * 3, "two rounds of a baseline run and two models");
    // Replayed, the rounds are two sessions: the first in the history.
    let mut player = Player::new(recording.clone(), &Options::default()).expect("it replays");
    player.play_all().expect("to its end");
    let app = player.app();
    assert_eq!(app.history.len(), 1, "round 1 went to the history");
    let session = app.session.as_ref().expect("round 2");
    let compared = session.compare(&app.baseline, app.cores());
    assert!(compared.results.iter().all(Option::is_some), "both models finished in the replay");
    // The trace `run` wrote, and the one `export` writes from the file, are the same.
    let out = gilscope(&["export", file_s, "--trace", exported_s]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).expect("a trace parses as JSON")
    };
    let (a, b) = (read(&traced), read(&exported));
    assert_eq!(a["traceEvents"], b["traceEvents"]);
    check_trace(&recording, &a);
}

#[test]
fn a_file_that_is_not_a_whole_recording_gets_a_one_line_error_and_no_panic() {
    let dir = common::scratch("bad");
    let live = recorded_session();
    let mut whole = Vec::new();
    saved(&live).write(&mut whole).unwrap();
    let text = String::from_utf8(whole).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let newer = lines[0].replace("\"version\":1", "\"version\":7");
    let cases = [
        ("foreign.txt", "just some notes\n".to_owned(), 2, "not a gilscope recording"),
        ("cut.gilrec", lines[..lines.len() / 2].join("\n"), 1, "cut short"),
        ("mid-line.gilrec", text[..text.len() - 20].to_owned(), 1, "cut short"),
        ("newer.gilrec", format!("{newer}\n{}", lines[1..].join("\n")), 2, "newer gilscope"),
        ("empty.gilrec", String::new(), 2, "empty"),
    ];
    for (name, content, code, says) in cases {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let path = path.to_str().unwrap();
        for command in [vec!["replay", path], vec!["export", path, "--trace", "/dev/null"]] {
            let out = gilscope(&command);
            assert_eq!(out.status.code(), Some(code), "{command:?}");
            let err = one_line_error(&out);
            assert!(err.contains(says), "{command:?}: {err}");
        }
    }
    let out = gilscope(&["replay", dir.join("missing.gilrec").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    one_line_error(&out);
}

#[test]
fn record_refuses_runs_the_live_view_cannot_replay_and_lesson_refuses_a_number_it_lacks() {
    let out = gilscope(&["run", "--model", "all", "--record", "/dev/null"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(one_line_error(&out).contains("--record"));
    let out = gilscope(&["lesson", "99"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(one_line_error(&out).contains("no lesson 99"));
    let out = gilscope(&["lesson", "--list"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), LESSONS.len());
}

#[test]
fn r_saves_only_a_finished_run_and_the_notice_says_where() {
    let app = App::new(demo(), Options { cores: 2, ..Options::default() }, T0);
    let mut live = Live { app, tape: Tape::default() };
    live.key(' ');
    let press_r = |live: &mut Live| {
        let at = live.app.now;
        live.feed(at, Msg::Key(KeyEvent::new(KeyCode::Char('R'), KeyModifiers::NONE)))
    };
    assert!(!press_r(&mut live).contains(&Effect::Save), "a run going on is not saved");
    let err = live.tape.recording(&live.app, &context()).unwrap_err();
    assert!(err.contains("still going"), "{err}");
    let mut live = recorded_session();
    assert!(press_r(&mut live).contains(&Effect::Save));
    let at = live.app.now;
    live.app.update(at, Msg::Saved(Ok("./gilscope-2025-01-01-000000.gilrec".into())));
    let bottom = draw(&live.app, 100, 30).join("\n");
    assert!(bottom.contains("saved to ./gilscope-2025-01-01-000000.gilrec"), "{bottom}");
}

/// The screens a class sees, as snapshots: review them with
/// `INSTA_UPDATE=always cargo test --test classroom` and `git diff tests/snapshots/`.
#[test]
fn a_lesson_and_a_finished_replay_look_like_this() {
    let snapshot = |name: &str, app: &App| {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|frame| gilscope::ui::render(frame, app)).unwrap();
        insta::assert_snapshot!(name, terminal.backend());
    };
    let mut app = fresh(demo());
    let convoy = LESSONS.iter().position(|l| l.title == "the convoy effect").unwrap();
    app.open_lesson(convoy, &mut Vec::new());
    snapshot("lesson_convoy_80x24", &app);
    let mut player = Player::new(saved(&recorded_session()), &Options::default()).unwrap();
    player.play_all().unwrap();
    if let Some(p) = &mut player.app_mut().playback {
        p.at_ns = p.length_ns;
    }
    snapshot("replay_ended_80x24", player.app());
}

/// `command` with its stdout on `/dev/full` (every write: no space left).
fn onto_a_full_disk(args: &[&str]) -> Output {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    common::gilscope().args(args).stdout(full).output().expect("start gilscope")
}

#[test]
fn lesson_list_and_export_say_why_when_stdout_cannot_be_written_and_never_panic() {
    let dir = common::scratch("full-stdout");
    let file = dir.join("saved.gilrec");
    saved(&recorded_session()).save(&file).unwrap();
    let trace = dir.join("t.json");
    for args in
        [vec!["lesson", "--list"], vec!["export", file.to_str().unwrap(), "--trace", trace.to_str().unwrap()]]
    {
        let out = onto_a_full_disk(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = one_line_error(&out);
        assert!(err.contains("cannot write to stdout"), "{args:?}: {err}");
        // A reader that stops reading: the exit a shell expects, nothing said.
        let mut child = common::gilscope()
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(matches!(out.status.code(), Some(0 | 141)), "{args:?}: {out:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{args:?}: {out:?}");
    }
}

#[test]
fn pipes_devices_and_endless_lines_are_refused_as_recordings_at_once() {
    let dir = common::scratch("not-files");
    let fifo = dir.join("pipe.gilrec");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let zero = dir.join("zero.gilrec");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    // 17 MiB and not one newline: refused at the line limit, not read whole.
    let endless = dir.join("endless.gilrec");
    std::fs::write(&endless, vec![b'x'; 17 << 20]).unwrap();
    for (path, says) in
        [(&fifo, "not a regular file"), (&zero, "not a regular file"), (&endless, "longer than 16 MiB")]
    {
        let path = path.to_str().unwrap();
        for command in [vec!["replay", path], vec!["export", path, "--trace", "/dev/null"]] {
            let started = std::time::Instant::now();
            let child = common::gilscope()
                .args(&command)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let (out, in_time) = common::output_within(child, std::time::Duration::from_secs(20));
            assert!(in_time, "{command:?} still ran after {:?}", started.elapsed());
            assert_eq!(out.status.code(), Some(2), "{command:?}");
            let err = one_line_error(&out);
            assert!(err.contains(says), "{command:?}: {err}");
        }
    }
}

#[test]
fn a_trace_that_cannot_be_written_whole_leaves_the_old_one_as_it_was() {
    use std::os::unix::process::CommandExt;
    let dir = common::scratch("trace-full");
    let file = dir.join("saved.gilrec");
    saved(&recorded_session()).save(&file).unwrap();
    let trace = dir.join("kept.json");
    std::fs::write(&trace, "{\"traceEvents\":[]}").unwrap();
    let mut command = common::gilscope();
    command.args(["export", file.to_str().unwrap(), "--trace", trace.to_str().unwrap()]);
    // A file size limit of 4 KiB: the trace does not fit, as on a full disk.
    // SAFETY: setrlimit and signal are async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 4096, rlim_max: 4096 };
            libc::setrlimit(libc::RLIMIT_FSIZE, &raw const limit);
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = one_line_error(&out);
    assert!(err.contains("cannot write"), "{err}");
    assert_eq!(std::fs::read_to_string(&trace).unwrap(), "{\"traceEvents\":[]}", "the old trace is kept");
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "nothing left behind: {names:?}");
}

#[test]
fn a_replay_without_a_terminal_refuses_in_one_line() {
    let dir = common::scratch("replay-blind");
    let file = dir.join("saved.gilrec");
    saved(&recorded_session()).save(&file).unwrap();
    let out = gilscope(&["replay", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no escape codes written blind");
    let err = one_line_error(&out);
    assert!(err.contains("needs a terminal"), "{err}");
}
