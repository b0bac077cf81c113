//! Two lines under the panels: what is happening now, and once a run is
//! over, its results (wall time and speedup per model, and who won).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::{App, Mode, Phase, Session};
use crate::experiment::spec::{RunSpec, Workload};
use crate::experiment::verdict::verdict;
use crate::format::{duration_label, fit};
use crate::sim::workload::Role;
use crate::ui::Theme;

pub const HEIGHT: u16 = 3;

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let width = area.width as usize;
    let mut lines = match &app.session {
        None => idle(app, theme),
        Some(session) => match session.timing_baseline() {
            Some(_) => timing_baseline(app, session, theme),
            None if session.active() => running(app, session, theme),
            None => results(app, session, theme),
        },
    };
    if let Some(notice) = &app.notice {
        lines[2] = Line::styled(format!(" {notice}"), theme.bad());
    }
    let lines: Vec<Line> = lines.into_iter().map(|l| clip(l, width)).collect();
    frame.render_widget(Paragraph::new(lines), area);
}

type Lines = [Line<'static>; 3];

/// "speedup = …", said once wherever speedups show.
fn speedup_rule(theme: Theme) -> Line<'static> {
    Line::styled(" speedup = the workers' jobs one after another, each alone ÷ wall time", theme.dim())
}

/// In a race both models share the cores, which a fair timing would not.
fn race_note(app: &App, theme: Theme) -> Line<'static> {
    let cores = app.sample.as_ref().map_or(app.options.cores as usize, |s| s.cores.len());
    let models = match crate::ui::panel_count(app) {
        2 => "both models".to_owned(),
        n => format!("the {n} models"),
    };
    Line::styled(
        format!(" race: {models} share the {cores} cores · m: one at a time, for fair timings"),
        theme.dim(),
    )
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
    let names: Vec<String> =
        crate::app::model_specs(&app.experiment, &app.models).iter().map(RunSpec::label).collect();
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
    [first, speedup_rule(theme), third]
}

fn timing_baseline(app: &App, session: &Session, theme: Theme) -> Lines {
    let run = session.timing_baseline();
    let tally = run.and_then(|r| r.tally.as_ref());
    let kind = match run.map(|r| r.spec.experiment.workload) {
        Some(Workload::Io) => "I/O",
        _ => "CPU-bound",
    };
    let progress = tally.map_or(String::new(), |t| {
        format!(" · {:.0}% · {}", t.progress() * 100.0, duration_label(t.wall_ns(app.now) as f64 / 1e9))
    });
    let state = if session.paused() { "paused: " } else { "" };
    let first = Line::from(vec![
        Span::styled(format!(" {state}timing the baseline…"), theme.title()),
        Span::raw(format!(" one {kind} worker alone in its own process{progress}")),
    ]);
    [first, speedup_rule(theme), Line::raw("")]
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
    let third = if session.mode == Mode::Race { race_note(app, theme) } else { Line::raw("") };
    [Line::from(first), baseline_line(app, session, theme), third]
}

/// "alone, one takes 3.47 s: the 2 workers one after another take 6.94 s"
fn baseline_line(app: &App, session: &Session, theme: Theme) -> Line<'static> {
    let e = &session.experiment;
    match app.baseline.total_s(e) {
        Some(serial) => {
            let alone =
                match (app.baseline.time_of_role(e, Role::Cpu), app.baseline.time_of_role(e, Role::Io)) {
                    (Some(cpu), Some(io)) if e.workload == Workload::Mixed => {
                        format!(
                            "the I/O worker takes {}, a CPU one {}",
                            duration_label(io),
                            duration_label(cpu)
                        )
                    }
                    (Some(t), _) | (None, Some(t)) => format!("one takes {}", duration_label(t)),
                    (None, None) => String::new(),
                };
            Line::styled(
                format!(
                    " alone, {alone}: the {} workers one after another, {}",
                    e.workers,
                    duration_label(serial)
                ),
                theme.dim(),
            )
        }
        None => Line::styled(" no speedup: the baseline run failed", theme.bad()),
    }
}

fn results(app: &App, session: &Session, theme: Theme) -> Lines {
    let serial = app.baseline.total_s(&session.experiment);
    let mut first = vec![Span::raw(" ")];
    let mut results = Vec::new();
    for (i, run) in session.models.iter().enumerate() {
        if i > 0 {
            first.push(Span::styled("   ", theme.dim()));
        }
        first.push(Span::styled(run.spec.label(), theme.title()));
        match run.result() {
            Some(mut r) => {
                r.speedup = serial.map(|s| s / r.wall_s);
                let speedup = r.speedup.map_or(String::new(), |s| format!(" · speedup {s:.2}×"));
                first.push(Span::raw(format!(" {}{speedup}", duration_label(r.wall_s))));
                results.push(r);
            }
            None => first.push(Span::styled(" ✗ failed", theme.bad())),
        }
    }
    let second = match verdict(&results) {
        Some(v) => Line::styled(format!(" {v}"), theme.title()),
        None => Line::raw(""),
    };
    let third = if session.mode == Mode::Race && results.len() >= 2 {
        race_note(app, theme)
    } else {
        baseline_line(app, session, theme)
    };
    [Line::from(first), second, third]
}
