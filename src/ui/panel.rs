//! One model's panel: a title with the counts the OS gives, the GIL lane,
//! one lane per worker with its progress, the time axis, and the figures.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::app::{App, Mode, Phase, Run, Session, Switches};
use crate::experiment::spec::Model;
use crate::experiment::tally::{Lane, Tally};
use crate::protocol::Timeline;
use crate::run::{duration_label, memory_label};
use crate::ui::timeline::{self, Cell, Durations, Window};
use crate::ui::{Theme, fit};

/// Panels this wide hold "multiprocessing · 128 processes · 128 threads · 128 GILs" in their title.
const WIDE_TITLE: u16 = 64;

/// The tallest a lane gets: on a big screen or a projector the lanes grow
/// into the room there is, up to this.
const MAX_LANE_ROWS: u16 = 6;

/// Rows of figures below the lanes, for a panel `inner` columns wide.
fn stats_rows(inner: u16) -> u16 {
    grid_columns(inner).map_or(4, |k| 6u16.div_ceil(k) + 1)
}

/// Rows a panel wants, at most `available`: every lane, up to
/// `MAX_LANE_ROWS` tall when that fits (easier to read from the back of a room).
pub fn height(app: &App, width: u16, available: u16) -> u16 {
    let inner = width.saturating_sub(2);
    let counts_line = u16::from(width < WIDE_TITLE);
    let failure = app
        .session
        .as_ref()
        .map_or(0, |s| if s.models.iter().any(|r| r.failure().is_some()) { 2 } else { 0 });
    // Borders, the counts line, the axis and the figures.
    let fixed = 2 + counts_line + 1 + stats_rows(inner) + failure;
    let lanes = app.experiment.workers as u16 + 1;
    (1..=MAX_LANE_ROWS).rev().map(|rows| fixed + rows * lanes).find(|h| *h <= available).unwrap_or(available)
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, model: usize, theme: Theme) {
    let inner_width = area.width.saturating_sub(2) as usize;
    let session = app.session.as_ref();
    let run = session.map(|s| &s.models[model]);
    let name = match run {
        Some(r) => r.spec.label(),
        None => crate::app::model_specs(&app.experiment)[model].label(),
    };
    let free_threaded = model == 0 && !app.experiment.gil;
    let counts = run.and_then(counts);
    // Counts go in the title where any would fit, else on a line of their
    // own, so the layout does not jump as they arrive.
    let title_fits = area.width >= WIDE_TITLE;
    let title = match (&counts, title_fits) {
        (Some(c), true) => format!(" {name} · {c} "),
        _ => format!(" {name} "),
    };
    let block = Block::bordered().title(Span::styled(title, theme.title())).border_style(theme.dim());
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let mut content = Content::default();
    if let (false, Some(c)) = (title_fits, &counts) {
        content.lines.push(Line::styled(fit(c, inner_width), theme.title()));
    }
    match (session, run) {
        (Some(session), Some(run)) if run.tally.is_some() => {
            body(&mut content, app, session, run, model, inner, theme);
        }
        _ => waiting(&mut content.lines, session, run, model, free_threaded, inner_width, theme),
    }
    frame.render_widget(Paragraph::new(content.lines), inner);
    for lane in &content.lanes {
        let (x, y) = (inner.x + lane.col as u16, inner.y + lane.row as u16);
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
    row: usize,
    col: usize,
    cells: Vec<Cell>,
}

impl Content {
    /// Adds a lane's line (label, blank lane, `tail`) and remembers its cells.
    fn lane(&mut self, label: Span<'static>, cells: Vec<Cell>, tail: Vec<Span<'static>>) {
        let col = label.content.chars().count();
        let mut spans = vec![label, Span::raw(" ".repeat(cells.len()))];
        spans.extend(tail);
        self.lanes.push(LaneRow { row: self.lines.len(), col, cells });
        self.lines.push(Line::from(spans));
    }
}

/// "1 process · 2 threads · 1 GIL": the processes that ran workers (their
/// pids, as the OS gave them out), the threads the OS saw in each, and the
/// GILs the interpreters reported.
fn counts(run: &Run) -> Option<String> {
    let tally = run.tally.as_ref()?;
    // One GIL per interpreter process that ran workers: a CPython
    // multiprocessing parent speaks for children that each have their own.
    let interpreters = tally.process_count().max(tally.hellos.len());
    let gils = match interpreters {
        _ if tally.hellos.is_empty() => None,
        _ if tally.hellos.iter().any(|h| !h.gil) => Some("no GIL".to_owned()),
        1 => Some("1 GIL".to_owned()),
        n => Some(format!("{n} GILs")),
    };
    let processes = match tally.process_count() as u32 {
        0 => run.pids.len() as u32,
        n => n,
    };
    let os = &run.os;
    let mut parts = vec![format!("{processes} process{}", if processes == 1 { "" } else { "es" })];
    if os.seen() {
        let threads = os.threads_per_process();
        let each = if processes > 1 { " each" } else { "" };
        parts.push(format!("{threads} thread{}{each}", if threads == 1 { "" } else { "s" }));
        // Processes that start and end between two samples are never seen together.
        if os.peak_processes < processes {
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
    model: usize,
    free_threaded: bool,
    width: usize,
    theme: Theme,
) {
    let what = match model {
        0 if free_threaded => "threads of one process, no GIL at all",
        0 => "threads of one process share its GIL",
        _ => "one process per worker: a GIL each",
    };
    lines.push(Line::styled(fit(what, width), theme.dim()));
    lines.push(Line::raw(""));
    let why = match (session, run.map(Run::phase)) {
        (None, _) => "space starts the run".to_owned(),
        (Some(_), Some(Phase::Failed)) => String::new(),
        (Some(s), _) if s.calibrating().is_some() => "waits for the baseline to be timed".to_owned(),
        (Some(s), _) if s.mode == Mode::OneAtATime && model == 1 => {
            "waits for threading (one at a time)".to_owned()
        }
        (Some(_), Some(Phase::Starting)) => "starting…".to_owned(),
        (Some(_), _) => String::new(),
    };
    if !why.is_empty() {
        lines.push(Line::raw(fit(&why, width)));
    }
    if let Some(failure) = run.and_then(Run::failure) {
        failure_lines(lines, failure, width, theme);
    }
}

/// The failure in red, wrapped at words over at most two lines.
fn failure_lines(lines: &mut Vec<Line<'static>>, failure: &str, width: usize, theme: Theme) {
    let mut rows: Vec<String> = vec![String::new()];
    for word in format!("✗ {failure}").split(' ') {
        let row = rows.last_mut().map_or(0, |r| r.chars().count());
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

fn body(out: &mut Content, app: &App, session: &Session, run: &Run, model: usize, inner: Rect, theme: Theme) {
    let Some(tally) = run.tally.as_ref() else { return };
    let width = inner.width as usize;
    let workers = tally.workers.len();
    let prefix = if run.spec.model == Model::Threads { "T" } else { "P" };
    let label_width = format!("{prefix}{}", workers.saturating_sub(1)).len().max(3) + 1;
    let cells = width.saturating_sub(label_width + 5).max(1);
    let Some(window) = Window::of(app, session, model, cells) else { return };

    let failure_rows = if run.failure().is_some() { 2 } else { 0 };
    let fixed = out.lines.len() + 1 + stats_rows(inner.width) as usize + failure_rows;
    let room = (inner.height as usize).saturating_sub(fixed);
    let gil_lane = run.spec.model == Model::Threads && run.spec.experiment.gil;
    // Taller lanes when every lane fits so; else one row each, and "+N
    // more" for the lanes that do not fit.
    let lane_rows = (room / (workers + 1)).clamp(1, MAX_LANE_ROWS as usize);
    let gil_rows = if gil_lane { lane_rows } else { 1 };
    let shown =
        if workers * lane_rows + gil_rows <= room { workers } else { room.saturating_sub(gil_rows + 1) };

    let sampled: Vec<(u32, Vec<Durations>)> = tally
        .workers
        .iter()
        .enumerate()
        .map(|(w, track)| (w as u32, timeline::sample(&track.spans, session, &window)))
        .collect();

    gil_lanes(out, run, tally, &sampled, label_width, gil_rows, theme);
    for (w, durations) in sampled.iter().take(shown) {
        let track = &tally.workers[*w as usize];
        let lane = timeline::lane_cells(durations, theme);
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
        let more = workers - shown;
        let text = format!("{:label_width$}+{more} more worker{}", "", if more == 1 { "" } else { "s" });
        let why = " (lanes do not fit)";
        let text = if text.chars().count() + why.len() <= width { text + why } else { text };
        out.lines.push(Line::styled(text, theme.dim()));
    }
    out.lines.push(axis(&window, label_width, theme));
    stats(&mut out.lines, app, run, tally, inner.width, theme);
    if let Some(failure) = run.failure() {
        let stopped = tally.workers.iter().enumerate().any(|(w, t)| {
            !run.died.contains(&(w as u32)) && t.finished_at.is_none() && t.lane() == Lane::Failed
        });
        let text = if stopped { format!("{failure} · the rest stopped") } else { failure.to_owned() };
        failure_lines(&mut out.lines, &text, width, theme);
    }
}

/// The GIL lane of threading (who holds it, cell by cell), or a line saying
/// why there is none to draw.
fn gil_lanes(
    out: &mut Content,
    run: &Run,
    tally: &Tally,
    sampled: &[(u32, Vec<Durations>)],
    label_width: usize,
    rows: usize,
    theme: Theme,
) {
    let label = Span::styled(format!("{:<label_width$}", "GIL"), theme.title());
    let cells = sampled.first().map_or(0, |(_, d)| d.len());
    // The room of the lane and of the progress column after it.
    let note = |text: &str| Line::from(vec![label.clone(), Span::styled(fit(text, cells + 5), theme.dim())]);
    if run.spec.model != Model::Threads {
        // One thread per GIL: nobody ever waits for it. Inferred lanes still
        // show stalls, the OS running something else, which are no GIL waits.
        let text = match (tally.timeline(), tally.waits) {
            (Timeline::Exact, _) | (_, 0) => "one per process · never contended".to_owned(),
            (Timeline::Inferred { .. }, n) => {
                let stalls = format!("{n} stall{} (inferred)", if n == 1 { "" } else { "s" });
                let long = format!("one per process · {stalls}");
                if long.chars().count() <= cells + 5 { long } else { format!("one each · {stalls}") }
            }
        };
        out.lines.push(note(&text));
        return;
    }
    if !run.spec.experiment.gil {
        out.lines.push(note("none: free-threaded, the threads run at once"));
        return;
    }
    let holders = timeline::holders(sampled, cells);
    out.lane(label, timeline::gil_cells(&holders, theme), vec![]);
    for _ in 1..rows {
        out.lane(Span::raw(" ".repeat(label_width)), timeline::gil_bar_cells(&holders, theme), vec![]);
    }
}

/// "0 s ──── 1 cell = 250 ms ──── 7.2 s"
fn axis(window: &Window, label_width: usize, theme: Theme) -> Line<'static> {
    let cells = window.cells;
    let from = window.start - window.origin;
    let left = time_label(from, window.width());
    let right = time_label(from + window.width(), window.width());
    let middle = format!(" {}/cell ", crate::ui::span_label(window.cell));
    let gap = cells.saturating_sub(left.chars().count() + right.chars().count());
    let text = if gap >= middle.chars().count() + 2 {
        let before = (gap - middle.chars().count()) / 2;
        let after = gap - middle.chars().count() - before;
        format!("{left}{}{middle}{}{right}", "─".repeat(before), "─".repeat(after))
    } else {
        format!("{left}{}{right}", "─".repeat(gap))
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

/// The figures laid out `k` to a row: the width of a row, and of each
/// column's labels and values.
fn grid(cells: &[(&str, String)], k: usize) -> (usize, Vec<usize>, Vec<usize>) {
    let rows: Vec<&[(&str, String)]> = cells.chunks(k).collect();
    let label_w: Vec<usize> = (0..k)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|(l, _)| l.len()).max().unwrap_or(0))
        .collect();
    let value_w: Vec<usize> = (0..k)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|(_, v)| v.chars().count()).max().unwrap_or(0))
        .collect();
    // "label value" columns, two spaces apart.
    let width = label_w.iter().zip(&value_w).map(|(l, v)| l + 1 + v).sum::<usize>() + 2 * k.saturating_sub(1);
    (width, label_w, value_w)
}

/// How many figure columns fit in `inner` columns: 6, 3 or 2 (None: 2, too tight to matter).
fn grid_columns(inner: u16) -> Option<u16> {
    [6u16, 3, 2].into_iter().find(|k| inner >= 23 * k)
}

fn stats(lines: &mut Vec<Line<'static>>, app: &App, run: &Run, tally: &Tally, width: u16, theme: Theme) {
    let result = run.result();
    let dash = || "–".to_owned();
    let over = run.over;
    let cpu = match (&result, run.os.cpu_cores) {
        (Some(r), _) => format!("{:.2} cores", r.cores_used),
        (None, Some(c)) if !over => format!("{c:.2} cores"),
        (None, None) if !over => "…".to_owned(),
        _ => dash(),
    };
    let memory = match &result {
        Some(r) => memory_label(r.peak_rss_kb),
        None if over && run.os.seen_any() => memory_label(run.os.peak_rss_each.values().sum::<u64>() / 1024),
        None if run.os.seen_any() => memory_label(run.os.rss_bytes / 1024),
        None if over => dash(),
        None => "…".to_owned(),
    };
    let wall = match &result {
        Some(r) => r.wall_s,
        // A failed run's clock stops at its last word.
        None if over => tally.wall_ns(tally.last_event) as f64 / 1e9,
        None => tally.wall_ns(app.now) as f64 / 1e9,
    };
    // Inferred hand-overs say so where the row has room for it.
    let (switches, switches_short) = match run.switches() {
        Switches::NoGil => ("no GIL".to_owned(), None),
        Switches::Counted(n) => (n.to_string(), None),
        Switches::Inferred(None) if over => (dash(), None),
        Switches::Inferred(None) => ("…".to_owned(), None),
        Switches::Inferred(Some(n)) => (format!("~{n} (inferred)"), Some(format!("~{n}"))),
    };
    let mut cells: [(&str, String); 6] = [
        ("time", duration_label(wall)),
        ("done", format!("{:.0}%", tally.progress() * 100.0)),
        ("cpu", cpu),
        ("memory", memory),
        ("start", tally.mean_start_cost_ns().map_or("…".to_owned(), |ns| duration_label(ns as f64 / 1e9))),
        ("switches", switches),
    ];
    let k = grid_columns(width).unwrap_or(2) as usize;
    if let Some(short) = switches_short
        && grid(&cells, k).0 > width as usize
    {
        cells[5].1 = short;
    }
    let (_, label_w, value_w) = grid(&cells, k);
    for row in cells.chunks(k) {
        let mut spans = Vec::new();
        for (c, (label, value)) in row.iter().enumerate() {
            if c > 0 {
                spans.push(Span::raw("  "));
            }
            spans.push(Span::styled(format!("{label:<w$} ", w = label_w[c]), theme.dim()));
            spans.push(Span::raw(format!("{value:<w$}", w = value_w[c])));
        }
        lines.push(Line::from(spans));
    }
    let wait = if run.spec.model == Model::Threads && !run.spec.experiment.gil {
        "none: there is no GIL".to_owned()
    } else if tally.waits == 0 {
        "none".to_owned()
    } else {
        format!(
            "mean {} · max {}",
            duration_label(tally.mean_wait_ns() as f64 / 1e9),
            duration_label(tally.wait_max_ns as f64 / 1e9)
        )
    };
    // Inferred lanes cannot tell a GIL wait from the OS running something else.
    let label = match tally.timeline() {
        Timeline::Exact => "GIL wait ",
        Timeline::Inferred { .. } => "stalled  ",
    };
    lines.push(Line::from(vec![
        Span::styled(label, theme.dim()),
        Span::raw(fit(&wait, (width as usize).saturating_sub(9))),
    ]));
}
