//! The lines under the panels: what is happening now, and once a run is
//! over, its results (wall time, speedup with its limit, cores used per
//! model) and what they say — or why the machine was too busy to say it.
//! Earlier sessions' speedups follow where there is room.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::app::{App, Earlier, Mode, Phase, Run, Session};
use crate::experiment::load::too_busy;
use crate::experiment::spec::{RunSpec, Workload};
use crate::experiment::tally::RunResult;
use crate::format::{duration_label, fit};
use crate::sim::workload::Role;
use crate::ui::Theme;

pub const HEIGHT: u16 = 4;

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let width = area.width as usize;
    let mut lines = match &app.session {
        None => idle(app, theme),
        Some(session) => match (session.timing_baseline(), session.timing_again()) {
            (Some(run), _) => timing_baseline(app, session, run, false, theme),
            (None, Some(run)) => timing_baseline(app, session, run, true, theme),
            (None, None) if session.active() => running(app, session, theme),
            (None, None) => results(app, session, width, theme),
        },
    };
    if let Some(notice) = &app.notice {
        lines[3] = Line::styled(format!(" {notice}"), theme.bad());
    }
    let lines: Vec<Line> = lines.into_iter().map(|l| clip(l, width)).collect();
    crate::ui::text::render(frame.buffer_mut(), area, &lines);
}

/// Earlier sessions' speedups, newest first, as many as fit in `area`.
pub fn render_history(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let lines: Vec<Line> = app
        .history
        .iter()
        .take(area.height as usize)
        .map(|e| clip(earlier(e, theme), area.width as usize))
        .collect();
    crate::ui::text::render(frame.buffer_mut(), area, &lines);
}

/// " earlier · 2 workers · switch 5 ms · one at a time: threading 0.98× · multiprocessing 1.93×"
fn earlier(e: &Earlier, theme: Theme) -> Line<'static> {
    let speedups: Vec<String> = e
        .speedups
        .iter()
        .map(|(label, s)| match s {
            Some(s) => format!("{label} {s:.2}×"),
            None => format!("{label} –"),
        })
        .collect();
    Line::styled(
        format!(" earlier · {} · {}: {}", e.experiment, e.mode.label(), speedups.join(" · ")),
        theme.dim(),
    )
}

type Lines = [Line<'static>; 4];

/// A warning when other processes keep the machine busy now, else nothing.
fn busy_now(app: &App, theme: Theme) -> Line<'static> {
    let outside = app.sample.as_ref().and_then(|s| s.outside_cores).unwrap_or(0.0);
    let cores = app.cores();
    if f64::from(outside) > too_busy(cores) {
        Line::styled(
            format!(
                " busy machine: other processes use {outside:.1} of its {cores} cores: timings will be skewed"
            ),
            theme.bad(),
        )
    } else {
        Line::raw("")
    }
}

/// "speedup = …", said once wherever speedups show.
fn speedup_rule(theme: Theme) -> Line<'static> {
    Line::styled(" speedup = the workers' jobs one after another, each alone ÷ wall time", theme.dim())
}

/// In a race the models share the cores, which a fair timing would not:
/// where their workers outnumber the cores, the figures are shared-core ones.
fn race_note(app: &App, theme: Theme) -> Line<'static> {
    let cores = app.cores();
    let models = crate::ui::panel_count(app);
    let workers = u64::from(app.experiment.workers) * models as u64;
    if workers > u64::from(cores) {
        Line::styled(
            format!(" race: {workers} workers shared {cores} cores: shared-core figures · m: one at a time"),
            theme.bad(),
        )
    } else {
        Line::styled(
            format!(" race: the models ran at once on {cores} cores, enough for all their workers"),
            theme.dim(),
        )
    }
}

/// Cuts a line to the width, span by span.
pub fn clip(line: Line<'static>, width: usize) -> Line<'static> {
    let mut left = width;
    let mut spans = Vec::new();
    for span in line.spans {
        if left == 0 {
            break;
        }
        let n = span.content.chars().count();
        let text = if n > left { fit(&span.content, left) } else { span.content.to_string() };
        left = left.saturating_sub(n);
        spans.push(Span::styled(text, span.style));
    }
    Line::from(spans)
}

fn idle(app: &App, theme: Theme) -> Lines {
    let names: Vec<String> = app.specs().iter().map(RunSpec::label).collect();
    let plan = match (app.mode, names.as_slice()) {
        (Mode::Race, [a, b]) => format!("then {a} races {b}"),
        (Mode::Race, [.., last]) if names.len() > 2 => {
            format!("then {} and {last} race", names[..names.len() - 1].join(", "))
        }
        (Mode::OneAtATime, [_, _, ..]) => format!("then {}", names.join(", then ")),
        _ => format!("then {}", names.join("")),
    };
    let first = Line::from(vec![
        Span::raw(" press "),
        Span::styled("space", theme.key()),
        Span::raw(format!(": one worker is timed alone, {plan}")),
    ]);
    let e = &app.experiment;
    let third = match app.baseline.time_of_role(e, e.workload.role(0)) {
        Some(wall_s) => Line::styled(
            format!(" measured before: one worker alone takes {}", duration_label(wall_s)),
            theme.dim(),
        ),
        None => Line::raw(""),
    };
    [first, speedup_rule(theme), third, busy_now(app, theme)]
}

/// A lone worker being timed: before the models, or `again` after them.
fn timing_baseline(app: &App, session: &Session, run: &Run, again: bool, theme: Theme) -> Lines {
    let tally = run.tally.as_ref();
    let kind = match run.spec.experiment.workload {
        Workload::Io => "I/O",
        _ => "CPU-bound",
    };
    let progress = tally.map_or(String::new(), |t| {
        format!(" · {:.0}% · {}", t.progress() * 100.0, duration_label(t.wall_ns(app.now) as f64 / 1e9))
    });
    let state = if session.paused() { "paused: " } else { "" };
    let (what, third) = if again {
        (
            "timing the baseline again…",
            Line::styled(
                " after the models too: the speedup divides by both timings' mean and spans both",
                theme.dim(),
            ),
        )
    } else {
        ("timing the baseline…", Line::raw(""))
    };
    let first = Line::from(vec![
        Span::styled(format!(" {state}{what}"), theme.title()),
        Span::raw(format!(" one {kind} worker alone in its own process{progress}")),
    ]);
    [first, speedup_rule(theme), third, busy_now(app, theme)]
}

fn running(app: &App, session: &Session, theme: Theme) -> Lines {
    let mut first = vec![];
    if session.paused() {
        first.push(Span::styled(" paused", theme.title()));
        first.push(Span::raw(": the workers are stopped (SIGSTOP) · space resumes · z/Z zoom"));
    } else {
        first.push(Span::styled(" running", theme.title()));
        for run in &session.models {
            let state = match (run.phase(), &run.tally) {
                (Phase::Failed, _) => "failed".to_owned(),
                (Phase::NotStarted, _) => "next".to_owned(),
                (_, Some(t)) => format!("{:.0}%", t.progress() * 100.0),
                (_, None) => "starting".to_owned(),
            };
            first.push(Span::raw(format!(" · {} {state}", run.spec.label())));
        }
    }
    let third = if session.mode == Mode::Race { race_note(app, theme) } else { one_at_a_time_note(theme) };
    [Line::from(first), baseline_line(app, session, theme), third, busy_now(app, theme)]
}

/// One at a time: each model has the machine to itself.
fn one_at_a_time_note(theme: Theme) -> Line<'static> {
    Line::styled(" one at a time: each model has the cores to itself, so its timing is fair", theme.dim())
}

/// "alone, one takes 3.47 s: the 2 workers one after another take 6.94 s"
fn baseline_line(app: &App, session: &Session, theme: Theme) -> Line<'static> {
    let e = &session.experiment;
    let Some(total) = app.baseline.total_s(e) else {
        return Line::styled(" no speedup: the baseline run failed", theme.bad());
    };
    // Only the roles this workload has: a CPU time measured earlier is not an I/O worker's.
    let time = |role| app.baseline.time_of_role(e, role).map(duration_label);
    let alone = match e.workload {
        Workload::Cpu => format!("one takes {}", time(Role::Cpu).unwrap_or_default()),
        Workload::Io => format!("one I/O worker takes {}", time(Role::Io).unwrap_or_default()),
        Workload::Mixed => format!(
            "the I/O worker takes {}, a CPU one {}",
            time(Role::Io).unwrap_or_default(),
            time(Role::Cpu).unwrap_or_default()
        ),
    };
    Line::styled(
        format!(" alone, {alone}: the {} workers one after another, {}", e.workers, duration_label(total)),
        theme.dim(),
    )
}

fn results(app: &App, session: &Session, width: usize, theme: Theme) -> Lines {
    let compared = session.compare(&app.baseline, app.cores());
    // As much of each model's figures as fits the line for all of them.
    let line = |detail: usize| {
        let mut spans = vec![Span::raw(" ")];
        for (i, (run, result)) in session.models.iter().zip(&compared.results).enumerate() {
            if i > 0 {
                spans.push(Span::styled("   ", theme.dim()));
            }
            spans.push(Span::styled(run.spec.label(), theme.title()));
            let Some(r) = result else {
                spans.push(Span::styled(" ✗ failed", theme.bad()));
                continue;
            };
            // Its spread, where the baseline's timings before and after differ.
            let range = match (r.speedup_min, r.speedup_max) {
                (Some(lo), Some(hi)) if hi - lo >= 0.005 && detail < 4 => format!(" ({lo:.2}–{hi:.2})"),
                _ => String::new(),
            };
            let speedup = r.speedup.map_or(String::new(), |s| match detail {
                0 => format!(" · speedup {s:.2}×{range} of at most {:.0}×", r.speedup_limit),
                _ => format!(" · {s:.2}×{range} of {:.0}×", r.speedup_limit),
            });
            let text = match detail {
                0 | 1 => format!(" {}{speedup} · {:.2} cores", duration_label(r.wall_s), r.cores_used),
                2 => format!(" {}{speedup}", duration_label(r.wall_s)),
                _ => speedup.trim_start_matches(" ·").to_owned(),
            };
            spans.push(Span::raw(text));
        }
        spans
    };
    // Where the line is short, the wall times go before the speedups'
    // ranges: the panels show the times, nothing else shows the ranges.
    let first = (0..5)
        .map(line)
        .find(|spans| spans.iter().map(|s| s.content.chars().count()).sum::<usize>() <= width)
        .unwrap_or_else(|| line(4));
    // The verdict, over two lines if it needs them.
    let (second, third) = match &compared.verdict {
        Some(v) => {
            let style = if v.starts_with("→ no verdict") { theme.bad() } else { theme.title() };
            let (a, b) = wrap_two(&format!(" {v}"), width);
            (Line::styled(a, style), Line::styled(b, style))
        }
        None => (Line::raw(""), Line::raw("")),
    };
    // A line left: why a speedup fell short of the cores it used.
    let third = if third.width() == 0 { slow_work(session, &compared.results, width, theme) } else { third };
    let fourth = match session.mode {
        Mode::Race if compared.results.iter().flatten().count() >= 2 => race_note(app, theme),
        _ => Line::styled(
            " one round only: `gilscope run` repeats rounds and gives medians with their spread",
            theme.dim(),
        ),
    };
    [Line::from(first), second, third, fourth]
}

/// Below this share of the lone worker's speed, a model's CPU seconds are
/// said to have worked slowly.
const SLOW_WORK: f64 = 0.9;

/// "multiprocessing: its CPU seconds worked at 75 % of the lone worker's
/// speed": the model whose work went slowest, when it went slow.
fn slow_work(session: &Session, results: &[Option<RunResult>], width: usize, theme: Theme) -> Line<'static> {
    let slowest = session
        .models
        .iter()
        .zip(results)
        .filter_map(|(run, r)| Some((run.spec.label(), r.as_ref()?.work_speed?)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    match slowest {
        // Judged as shown: a speed that rounds to 90 % is not said to be under it.
        Some((label, speed)) if (speed * 100.0).round() < SLOW_WORK * 100.0 => {
            let percent = speed * 100.0;
            let long = format!(
                " {label}: its CPU seconds worked at {percent:.0} % of the lone worker's speed: the cores or the machine slowed"
            );
            let short =
                format!(" {label} worked at {percent:.0} % of its lone speed: cores or machine slowed");
            Line::styled(if long.chars().count() <= width { long } else { fit(&short, width) }, theme.dim())
        }
        _ => Line::raw(""),
    }
}

/// `text` over two lines of `width`, broken at a space.
fn wrap_two(text: &str, width: usize) -> (String, String) {
    if text.chars().count() <= width {
        return (text.to_owned(), String::new());
    }
    let cut: String = text.chars().take(width).collect();
    let at = cut.rfind(' ').filter(|&i| i > width / 2).unwrap_or(cut.len());
    let (a, b) = text.split_at(at);
    (a.to_owned(), format!("  {}", b.trim_start()))
}
