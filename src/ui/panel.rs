//! One model's panel: a title with the counts the OS gives, the GIL lane,
//! one lane per worker with its progress, the time axis, and the figures.
//! Where the screen is short of room (three or four models at 80×24) the
//! panel is a compact block instead: one line of name, counts and figures,
//! then as many lanes as fit.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::app::{App, Mode, Phase, Run, Session};
use crate::experiment::spec::{Model, RunSpec};
use crate::experiment::tally::{Lane, Lanes, Tally};
use crate::experiment::track::Mix;
use crate::format::{fit, span_label};
use crate::ui::layout::Style;
use crate::ui::timeline::{self, Cell, Window};
use crate::ui::{Theme, figures};

/// Panels this wide hold "multiprocessing · 128 processes · 128 threads · 128 GILs" in their title.
const WIDE_TITLE: u16 = 64;

/// The tallest a lane gets: on a big screen or a projector the lanes grow
/// into the room there is, up to this.
const MAX_LANE_ROWS: u16 = 6;

/// How many models the screen shows.
pub fn count(app: &App) -> usize {
    app.session.as_ref().map_or(app.models.len(), |s| s.models.len())
}

/// The spec of the `model`th panel: its session's run, or the next one's.
fn spec(app: &App, model: usize) -> Option<RunSpec> {
    match &app.session {
        Some(s) => s.models.get(model).map(|r| r.spec.clone()),
        None => app.specs().into_iter().nth(model),
    }
}

/// Rows around the lanes of a full panel `width` wide: borders, the counts
/// line, the axis, the figures and a failure.
fn fixed_rows(app: &App, width: u16) -> u16 {
    let counts_line = u16::from(width < WIDE_TITLE);
    let failure = app
        .session
        .as_ref()
        .map_or(0, |s| if s.models.iter().any(|r| r.failure().is_some()) { 2 } else { 0 });
    2 + counts_line + 1 + figures::rows(width.saturating_sub(2), app.experiment.workload) + failure
}

/// Rows a full panel wants, at most `available`: every lane, up to
/// `MAX_LANE_ROWS` tall when that fits (easier to read from the back of a room).
pub fn height(app: &App, width: u16, available: u16) -> u16 {
    let fixed = fixed_rows(app, width);
    let workers = u16::try_from(app.experiment.workers).unwrap_or(u16::MAX);
    (1..=MAX_LANE_ROWS)
        .rev()
        .map(|rows| fixed.saturating_add(rows.saturating_mul(workers)).saturating_add(gil_rows(rows)))
        .find(|h| *h <= available)
        .unwrap_or(available)
}

/// Rows of the GIL lane beside worker lanes `rows` tall: who holds it, and
/// where there is room a second row counting the takes. More would say nothing new.
fn gil_rows(rows: u16) -> u16 {
    rows.min(2)
}

/// The least height at which a full panel still shows a lane or two.
pub fn least_height(app: &App) -> u16 {
    fixed_rows(app, crate::ui::layout::MIN_FULL_WIDTH) + 2
}

/// How many cells the lanes of a panel in `area` have.
pub fn lane_cells(app: &App, area: Rect, style: Style) -> usize {
    let inner = match style {
        Style::Full => area.width.saturating_sub(2),
        Style::Compact => area.width,
    } as usize;
    let workers = app
        .session
        .as_ref()
        .and_then(|s| s.models.first())
        .map_or(app.experiment.workers, |r| r.spec.experiment.workers);
    inner.saturating_sub(label_width(workers as usize) + 5).max(1)
}

/// The width of a lane's label column: "T127 ".
fn label_width(workers: usize) -> usize {
    format!("T{}", workers.saturating_sub(1)).len().max(3) + 1
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, model: usize, style: Style, theme: Theme) {
    let Some(spec) = spec(app, model) else { return };
    let session = app.session.as_ref();
    let run = session.and_then(|s| s.models.get(model));
    let name = spec.label();
    let counts = run.and_then(counts);
    let (inner, mut content) = match style {
        Style::Full => {
            // Counts go in the title where any would fit, else on a line of
            // their own, so the layout does not jump as they arrive.
            let title_fits = area.width >= WIDE_TITLE;
            let title = match (&counts, title_fits) {
                (Some(c), true) => format!(" {name} · {c} "),
                _ => format!(" {name} "),
            };
            let inner = crate::ui::text::boxed(
                frame.buffer_mut(),
                area,
                Span::styled(title, theme.title()),
                theme.dim(),
            );
            let mut content = Content::default();
            if let (false, Some(c)) = (title_fits, &counts) {
                content.lines.push(Line::styled(fit(c, inner.width as usize), theme.title()));
            }
            (inner, content)
        }
        Style::Compact => {
            let mut content = Content::default();
            let mut title = vec![Span::styled(format!(" {name}"), theme.title())];
            if let Some(c) = &counts {
                title.push(Span::styled(format!(" · {c}"), theme.dim()));
            }
            if let (Some(session), Some(run)) = (session, run)
                && let Some(tally) = &run.tally
            {
                title.push(Span::raw(format!("  {}", figures::inline(app, session, run, tally))));
            }
            content.lines.push(crate::ui::summary::clip(Line::from(title), area.width as usize));
            (area, content)
        }
    };
    let width = inner.width as usize;
    match (session, run) {
        (Some(session), Some(run)) if run.tally.is_some() => {
            body(&mut content, app, session, run, model, inner, style, theme);
        }
        _ => waiting(&mut content.lines, session, run, &spec, width, style, theme),
    }
    crate::ui::text::render(frame.buffer_mut(), inner, &content.lines);
    for lane in &content.lanes {
        let (x, y) = (inner.x + lane.col, inner.y + lane.row);
        timeline::paint(frame.buffer_mut(), inner, x, y, &lane.cells);
    }
}

/// A panel's text, and the lane rows painted over the blanks it leaves.
#[derive(Default)]
struct Content {
    lines: Vec<Line<'static>>,
    lanes: Vec<LaneRow>,
}

/// The cells of one lane row, from column `col` of line `row`.
struct LaneRow {
    row: u16,
    col: u16,
    cells: Vec<Cell>,
}

impl Content {
    /// Adds a lane's line (label, blank lane, `tail`) and remembers its cells.
    fn lane(&mut self, label: Span<'static>, cells: Vec<Cell>, tail: Vec<Span<'static>>) {
        let col = u16::try_from(label.content.chars().count()).unwrap_or(u16::MAX);
        let mut spans = vec![label, Span::raw(" ".repeat(cells.len()))];
        spans.extend(tail);
        self.lanes.push(LaneRow { row: u16::try_from(self.lines.len()).unwrap_or(u16::MAX), col, cells });
        self.lines.push(Line::from(spans));
    }
}

/// "1 process · 2 threads · 1 GIL": the processes that ran workers (their
/// pids, as the OS gave them out), the threads the OS saw in each, and the
/// GILs the interpreters reported.
fn counts(run: &Run) -> Option<String> {
    let tally = run.tally.as_ref()?;
    let gils = match tally.gil_count() {
        None => None,
        Some(0) => Some("no GIL".to_owned()),
        Some(1) => Some("1 GIL".to_owned()),
        Some(n) => Some(format!("{n} GILs")),
    };
    let processes = match tally.process_count() {
        0 => run.pids.len(),
        n => n,
    };
    let os = &run.os;
    let mut parts = vec![format!("{processes} process{}", if processes == 1 { "" } else { "es" })];
    if os.seen() {
        let threads = os.threads_per_process();
        let each = if processes > 1 { " each" } else { "" };
        parts.push(format!("{threads} thread{}{each}", if threads == 1 { "" } else { "s" }));
        // Processes that start and end between two samples are never seen together.
        if (os.peak_processes as usize) < processes {
            parts.push(format!("{} seen at once", os.peak_processes));
        }
    } else if run.over {
        parts.push("too quick for the OS sampler".to_owned());
    } else {
        return Some("reading the OS…".to_owned());
    }
    parts.extend(gils);
    Some(parts.join(" · "))
}

/// A panel whose run has not started: what it will show, and why it waits.
fn waiting(
    lines: &mut Vec<Line<'static>>,
    session: Option<&Session>,
    run: Option<&Run>,
    spec: &RunSpec,
    width: usize,
    style: Style,
    theme: Theme,
) {
    let what = spec.model.idea(spec.gil_off());
    let why = match (session, run.map(Run::phase)) {
        (None, _) => "space starts the run".to_owned(),
        (Some(_), Some(Phase::Failed)) => String::new(),
        (Some(s), _) if s.timing_baseline().is_some() => "waits for the baseline to be timed".to_owned(),
        (Some(s), Some(Phase::NotStarted)) if s.mode == Mode::OneAtATime => {
            "waits for its turn (one at a time)".to_owned()
        }
        (Some(_), Some(Phase::Starting)) => "starting…".to_owned(),
        (Some(_), _) => String::new(),
    };
    match style {
        Style::Full => {
            lines.push(Line::styled(fit(what, width), theme.dim()));
            lines.push(Line::raw(""));
            if !why.is_empty() {
                lines.push(Line::raw(fit(&why, width)));
            }
        }
        Style::Compact => {
            let text = if why.is_empty() { format!("   {what}") } else { format!("   {what} · {why}") };
            lines.push(Line::styled(fit(&text, width), theme.dim()));
        }
    }
    if let Some(failure) = run.and_then(Run::failure) {
        failure_lines(lines, failure, width, theme);
    }
}

/// The failure in red, wrapped at words over at most two lines.
fn failure_lines(lines: &mut Vec<Line<'static>>, failure: &str, width: usize, theme: Theme) {
    let mut rows: Vec<String> = vec![String::new()];
    for word in format!("✗ {failure}").split(' ') {
        let row = rows.last().map_or(0, |r| r.chars().count());
        if row > 0 && row + 1 + word.chars().count() > width {
            rows.push(String::new());
        }
        if let Some(row) = rows.last_mut() {
            if !row.is_empty() {
                row.push(' ');
            }
            row.push_str(word);
        }
    }
    let overflow = rows.len() > 2;
    rows.truncate(2);
    for (i, row) in rows.iter().enumerate() {
        let text = if overflow && i == 1 { format!("{row}…") } else { row.clone() };
        lines.push(Line::styled(fit(&text, width), theme.bad()));
    }
}

#[allow(clippy::too_many_arguments)] // one panel's whole context, passed down once
fn body(
    out: &mut Content,
    app: &App,
    session: &Session,
    run: &Run,
    model: usize,
    inner: Rect,
    style: Style,
    theme: Theme,
) {
    let Some(tally) = run.tally.as_ref() else { return };
    let width = inner.width as usize;
    let workers = tally.workers.len();
    let prefix = run.spec.model.lane_prefix();
    let label_width = label_width(workers);
    let cells = width.saturating_sub(label_width + 5).max(1);
    let Some(window) = Window::of(app, session, model, cells) else { return };

    let failure_rows = if run.failure().is_some() { 2 } else { 0 };
    let below = match style {
        Style::Full => 1 + figures::rows(inner.width, run.spec.experiment.workload) as usize + failure_rows,
        Style::Compact => 0,
    };
    let room = (inner.height as usize).saturating_sub(out.lines.len() + below);
    let gil_lane = run.spec.one_shared_gil();
    // Taller lanes when every lane fits so; else one row each, and "+N
    // more" for the lanes that do not fit.
    let lane_rows = match style {
        Style::Full => (1..=MAX_LANE_ROWS as usize)
            .rev()
            .find(|&r| workers * r + gil_rows(r as u16) as usize <= room)
            .unwrap_or(1),
        Style::Compact => 1,
    };
    // A compact block spends no row on a GIL lane that has nothing to draw.
    let gil_rows = match (gil_lane, style) {
        (true, _) => gil_rows(lane_rows as u16) as usize,
        (false, Style::Full) => 1,
        (false, Style::Compact) => 0,
    };
    let shown = if workers * lane_rows + gil_rows <= room {
        workers
    } else {
        room.saturating_sub(gil_rows + 1) / lane_rows
    };

    // Every worker of the one GIL for its lane, or of the row that stands
    // for those left out; else only those shown.
    let needed = if gil_lane || shown < workers { workers } else { shown };
    let mixes: Vec<(u32, Vec<Mix>)> = (0..needed)
        .map(|w| (u32::try_from(w).unwrap_or(u32::MAX), timeline::mixes(tally, w, &window)))
        .collect();

    if gil_rows > 0 {
        gil_lanes(out, run, tally, &mixes, label_width, gil_lane, gil_rows, theme);
    }
    for (w, cells) in mixes.iter().take(shown) {
        let track = &tally.workers[*w as usize];
        let lane = timeline::lane_cells(cells, theme);
        // ✗ for a worker whose process died; its siblings, stopped after
        // it, keep the progress they had.
        let progress = match track.lane() {
            Lane::Failed if run.died.contains(w) => Span::styled("   ✗".to_owned(), theme.lane(Lane::Failed)),
            _ if track.total == 0 => Span::styled("   …".to_owned(), theme.dim()),
            _ => {
                Span::raw(format!("{:>4}", format!("{:.0}%", 100.0 * track.done as f64 / track.total as f64)))
            }
        };
        let label = Span::raw(format!("{:<label_width$}", format!("{prefix}{w}")));
        out.lane(label, lane.clone(), vec![Span::raw(" "), progress]);
        for _ in 1..lane_rows {
            out.lane(Span::raw(" ".repeat(label_width)), lane.clone(), vec![]);
        }
    }
    if shown < workers {
        // The workers left out, together: their mean running share per cell.
        let more = workers - shown;
        let rest: Vec<Mix> = (0..window.cells)
            .map(|c| {
                let mut mean = Mix::default();
                for (_, m) in &mixes[shown..] {
                    mean.run += m[c].run / more as f64;
                    mean.wait += m[c].wait / more as f64;
                    mean.io += m[c].io / more as f64;
                    mean.done += m[c].done / more as f64;
                    mean.failed += m[c].failed / more as f64;
                    mean.entries += m[c].entries;
                }
                mean
            })
            .collect();
        let label = Span::styled(format!("{:<label_width$}", format!("+{more}")), theme.dim());
        let tail = Span::styled(format!(" mean of {more} more"), theme.dim());
        out.lane(label, timeline::lane_cells(&rest, theme), vec![tail]);
    }
    if style == Style::Compact {
        return;
    }
    let switch_ns = run
        .spec
        .contends_for_a_gil()
        .then(|| u64::try_from(run.spec.experiment.switch_interval.as_nanos()).unwrap_or(u64::MAX));
    out.lines.push(axis(&window, switch_ns, label_width, theme));
    out.lines.extend(figures::grid(app, session, run, tally, inner.width, theme));
    if let Some(failure) = run.failure() {
        let stopped = tally.workers.iter().enumerate().any(|(w, t)| {
            !run.died.contains(&u32::try_from(w).unwrap_or(u32::MAX))
                && t.finished_at.is_none()
                && t.lane() == Lane::Failed
        });
        let text = if stopped { format!("{failure} · the rest stopped") } else { failure.to_owned() };
        failure_lines(&mut out.lines, &text, width, theme);
    }
}

/// The GIL lane of a process whose threads share one GIL (who holds it,
/// cell by cell), or a line saying why there is none to draw.
#[allow(clippy::too_many_arguments)] // the lane's whole context, passed down once
fn gil_lanes(
    out: &mut Content,
    run: &Run,
    tally: &Tally,
    mixes: &[(u32, Vec<Mix>)],
    label_width: usize,
    gil_lane: bool,
    rows: usize,
    theme: Theme,
) {
    let label = Span::styled(format!("{:<label_width$}", "GIL"), theme.title());
    let cells = mixes.first().map_or(0, |(_, d)| d.len());
    // The room of the lane and of the progress column after it.
    let note = |text: &str| Line::from(vec![label.clone(), Span::styled(fit(text, cells + 5), theme.dim())]);
    if run.gil_off() {
        out.lines.push(note("none: free-threaded, the threads run at once"));
        return;
    }
    if !gil_lane {
        let each = match run.spec.model {
            Model::Subinterpreters { .. } => "one per interpreter",
            _ => "one per process",
        };
        let text = match run.spec.model {
            // One worker per GIL: nobody ever waits for it. Inferred lanes still
            // show stalls, the OS running something else, which are no GIL waits.
            Model::Processes | Model::Subinterpreters { .. } => match (tally.lanes(), tally.waits) {
                (Some(Lanes::Inferred { .. }), n) if n > 0 => {
                    let stalls = format!("{n} stall{} (inferred)", if n == 1 { "" } else { "s" });
                    let long = format!("{each} · {stalls}");
                    if long.chars().count() <= cells + 5 { long } else { format!("one each · {stalls}") }
                }
                _ => format!("{each} · never contended"),
            },
            _ => "one per process, shared by its threads".to_owned(),
        };
        out.lines.push(note(&text));
        return;
    }
    let holdings = timeline::holdings(mixes, cells);
    out.lane(label, timeline::gil_cells(&holdings, theme), vec![]);
    if rows > 1 {
        let counts = Span::styled(format!("{:>w$} ", "×", w = label_width - 1), theme.dim());
        out.lane(counts, timeline::take_counts(&holdings, theme), vec![]);
    }
}

/// "0 s ──── 250 ms/cell ──── 7.2 s", saying when a cell is coarser than
/// the switch interval (its lanes then show a mix) and when the window is
/// panned away from the newest data.
fn axis(window: &Window, switch_ns: Option<u64>, label_width: usize, theme: Theme) -> Line<'static> {
    let cells = window.cells;
    let from = window.start.saturating_sub(window.origin);
    let left = time_label(from, window.width());
    let right = time_label(from + window.width(), window.width());
    let cell = span_label(window.cell);
    let coarse = switch_ns.filter(|&s| window.cell > s).map(|s| (window.cell / s.max(1), span_label(s)));
    let gap = cells.saturating_sub(left.chars().count() + right.chars().count());
    let pan = if window.panned { " · End: newest" } else { "" };
    let options = [
        coarse.as_ref().map(|(k, s)| format!(" {cell}/cell = {k}× the {s} switch: cells mix{pan} ")),
        coarse.as_ref().map(|(k, _)| format!(" {cell}/cell = {k} switches{pan} ")),
        coarse.as_ref().map(|(k, _)| format!(" {cell}/cell = {k} switches ")),
        Some(format!(" {cell}/cell{pan} ")),
        Some(format!(" {cell}/cell ")),
    ];
    let middle = options.into_iter().flatten().find(|m| m.chars().count() + 2 <= gap).unwrap_or_default();
    let text = if middle.is_empty() {
        format!("{left}{}{right}", "─".repeat(gap))
    } else {
        let before = (gap - middle.chars().count()) / 2;
        let after = gap - middle.chars().count() - before;
        format!("{left}{}{middle}{}{right}", "─".repeat(before), "─".repeat(after))
    };
    Line::from(vec![Span::raw(" ".repeat(label_width)), Span::styled(text, theme.dim())])
}

/// A point on the axis, as precise as the window needs.
fn time_label(ns: u64, window: u64) -> String {
    let s = ns as f64 / 1e9;
    if window >= 10_000_000_000 {
        format!("{s:.0} s")
    } else if window >= 1_000_000_000 {
        format!("{s:.1} s")
    } else if window >= 100_000_000 {
        format!("{s:.2} s")
    } else {
        format!("{s:.3} s")
    }
}
