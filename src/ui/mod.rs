//! Drawing: `render(&mut Frame, &App)` and nothing else. One file per region
//! of the screen, each a pure function of the app's state, so every screen
//! is a snapshot test.
//!
//! ```text
//!  header    the experiment, mode, runtime, pace, zoom
//!  lesson    the lesson's question, during a lesson
//!  cores     per-core load bars, from the OS
//!  panels    one per model, placed by layout.rs: lanes, GIL, figures
//!  narration what just happened, in words, once a run began
//!  summary   what is going on, then the results
//!  legend    what the lane symbols mean
//!  keys      the keys that work now
//! ```

mod cores;
mod figures;
mod header;
mod help;
mod keys;
pub(crate) mod layout;
mod lesson;
mod narration;
mod panel;
mod scoreboard;
mod summary;
mod text;
pub(crate) mod timeline;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::App;
use crate::experiment::tally::{Lane, Lanes};

/// The smallest screen that shows everything essential.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// Colours when wanted; without them (`NO_COLOR`) every state still has a
/// shape of its own, so nothing is told by colour alone.
#[derive(Clone, Copy, Debug)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn fg(self, color: Color) -> Style {
        if self.color { Style::new().fg(color) } else { Style::new() }
    }

    pub fn dim(self) -> Style {
        if self.color { Style::new().fg(Color::DarkGray) } else { Style::new() }
    }

    pub fn key(self) -> Style {
        let bold = Style::new().add_modifier(Modifier::BOLD);
        if self.color { bold.fg(Color::Cyan) } else { bold }
    }

    pub fn title(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    /// Behind a partly-full cell, what the rest of the cell was (waiting,
    /// I/O): the block's height tells the running share without colour.
    pub fn behind(self, lane: Lane) -> Style {
        let color = match lane {
            Lane::Waiting => Color::Rgb(90, 80, 0),
            Lane::Io => Color::Rgb(0, 40, 110),
            Lane::Finished | Lane::Failed | Lane::NotStarted | Lane::Running => return Style::new(),
        };
        if self.color { Style::new().bg(color) } else { Style::new() }
    }

    /// The GIL lane's cells where the lock changed hands.
    pub fn switching(self) -> Style {
        if self.color { Style::new().fg(Color::White) } else { Style::new() }
    }

    pub fn lane(self, lane: Lane) -> Style {
        self.fg(match lane {
            Lane::Running => Color::Green,
            Lane::Waiting => Color::Yellow,
            Lane::Io => Color::Blue,
            Lane::Finished => Color::DarkGray,
            Lane::Failed => Color::Red,
            Lane::NotStarted => Color::Reset,
        })
    }

    /// A colour per worker for the GIL lane; the digit carries the meaning.
    pub fn worker(self, worker: u32) -> Style {
        const PALETTE: [Color; 6] = [
            Color::Cyan,
            Color::Magenta,
            Color::LightGreen,
            Color::LightBlue,
            Color::LightRed,
            Color::Yellow,
        ];
        self.fg(PALETTE[worker as usize % PALETTE.len()])
    }
}

/// The symbol of each state: distinct shapes, readable without colour.
pub fn glyph(lane: Lane) -> char {
    match lane {
        Lane::Running => '█',
        Lane::Waiting => '░',
        Lane::Io => '~',
        Lane::Finished => '·',
        Lane::Failed => '✗',
        Lane::NotStarted => ' ',
    }
}

/// Where everything goes on a screen of `area`.
struct Regions {
    head: Rect,
    lesson: Rect,
    cores: Rect,
    style: layout::Style,
    panels: Vec<Rect>,
    narration: Rect,
    summary: Rect,
    history: Rect,
    legend: Rect,
    keys: Rect,
}

fn regions(app: &App, area: Rect) -> Regions {
    let cores_height = cores::height(app, area);
    let lesson_height = u16::from(app.lesson.is_some());
    let narration_height = u16::from(narration::shown(app));
    let [head, lesson, cores, body, legend, keys] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(lesson_height),
        Constraint::Length(cores_height),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let room = Rect { height: body.height.saturating_sub(summary::HEIGHT + narration_height), ..body };
    let models = panel::count(app);
    let (style, panels) =
        layout::place(models, room, |width| panel::height(app, width, room.height), panel::least_height(app));
    let panels_bottom = panels.iter().map(|r| r.bottom()).max().unwrap_or(room.y);
    let narration =
        Rect { y: panels_bottom, height: narration_height.min(body.bottom() - panels_bottom), ..body };
    let summary = Rect {
        y: narration.bottom(),
        height: summary::HEIGHT.min(body.bottom() - narration.bottom()),
        ..body
    };
    let history = Rect { y: summary.bottom(), height: body.bottom() - summary.bottom(), ..body };
    Regions { head, lesson, cores, style, panels, narration, summary, history, legend, keys }
}

/// How many cells a lane has on a screen of `area` (the first panel's):
/// the main loop tells the app, so its zoom and pan keys know the window.
pub fn lane_cells(app: &App, area: Rect) -> usize {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return 1;
    }
    let r = regions(app, area);
    r.panels.first().map_or(1, |p| panel::lane_cells(app, *p, r.style))
}

/// What the keys must know of the screen: [`Msg::Viewport`](crate::app::Msg::Viewport).
pub fn viewport(app: &App, area: Rect) -> crate::app::Msg {
    crate::app::Msg::Viewport { lane_cells: lane_cells(app, area), help: help::layout(area) }
}

pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let theme = Theme { color: app.options.color };
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area, theme);
        return;
    }
    let Regions {
        head,
        lesson: lesson_area,
        cores: cores_area,
        style,
        panels: places,
        narration: narration_area,
        summary: summary_area,
        history: history_area,
        legend: legend_area,
        keys: keys_area,
    } = regions(app, area);

    header::render(frame, head, app, theme);
    lesson::render(frame, lesson_area, app, theme);
    cores::render(frame, cores_area, app, theme);
    if app.below == crate::app::Below::Scoreboard {
        // Where the panels were, down to the narration line.
        let top = places.first().map_or(narration_area.y, |r| r.y);
        let area = Rect { y: top, height: narration_area.y.saturating_sub(top), ..summary_area };
        scoreboard::render(frame, area, app, theme);
    } else {
        for (model, place) in places.into_iter().enumerate() {
            panel::render(frame, place, app, model, style, theme);
        }
    }
    narration::render(frame, narration_area, app, theme);
    summary::render(frame, summary_area, app, theme);
    summary::render_history(frame, history_area, app, theme);
    let gil = app
        .session
        .as_ref()
        .map_or_else(|| app.specs().iter().any(|s| !s.gil_off()), |s| s.models.iter().any(|r| !r.gil_off()));
    let legend = legend(theme, app.lanes_source().as_ref(), gil, legend_area.width as usize);
    text::render(frame.buffer_mut(), legend_area, &[legend]);
    keys::render(frame, keys_area, app, theme);
    if let Some(page) = app.help {
        help::render(frame, area, page, theme);
    }
}

/// How many model panels the screen shows.
pub fn panel_count(app: &App) -> usize {
    panel::count(app)
}

/// What the lane symbols mean, as long as the width allows: the states, a
/// part-full cell, and the GIL lane's marks. `lanes` says where the real
/// `CPython`'s lanes came from (None: the simulation's lock): read from its
/// GIL, every take and release (exact) or sampled; or inferred from its
/// progress stamps, when ░ only says the thread was not running. With the
/// GIL off nothing speaks of a GIL.
pub fn legend(theme: Theme, lanes: Option<&Lanes>, gil: bool, width: usize) -> Line<'static> {
    let waiting = match (lanes, gil) {
        (Some(Lanes::Inferred { resolution_ns: None, .. }), _) => {
            ("not running (inferred)".to_owned(), "not running".to_owned())
        }
        (Some(Lanes::Inferred { resolution_ns: Some(ns), .. }), _) => {
            (format!("not running (inferred, stamps every {} µs)", ns / 1000), "not running".to_owned())
        }
        (Some(read @ (Lanes::Measured { .. } | Lanes::Exact)), true) => {
            (format!("waits for the GIL · lanes {}", read.describe()), "waits".to_owned())
        }
        (None, true) => ("waits for the GIL".to_owned(), "waits".to_owned()),
        (_, false) => ("waits".to_owned(), "waits".to_owned()),
    };
    let inferred = matches!(lanes, Some(Lanes::Inferred { .. }));
    let running = if !inferred && gil { ("holds the GIL, runs", "holds GIL") } else { ("runs", "runs") };
    let states = [
        (
            glyph(Lane::Running).to_string(),
            theme.lane(Lane::Running),
            running.0.to_owned(),
            running.1.to_owned(),
        ),
        ("▄".to_owned(), theme.lane(Lane::Running), "ran part of the cell".to_owned(), "part".to_owned()),
        (glyph(Lane::Waiting).to_string(), theme.lane(Lane::Waiting), waiting.0, waiting.1),
        (glyph(Lane::Io).to_string(), theme.lane(Lane::Io), "in I/O".to_owned(), "I/O".to_owned()),
        (glyph(Lane::Finished).to_string(), theme.lane(Lane::Finished), "done".to_owned(), "done".to_owned()),
        (glyph(Lane::Failed).to_string(), theme.lane(Lane::Failed), "failed".to_owned(), "failed".to_owned()),
    ];
    let gil_items = if gil {
        vec![
            ("0 1".to_owned(), theme.title(), "GIL lane: who holds it".to_owned(), "holder".to_owned()),
            ("╳".to_owned(), theme.switching(), "it changed hands".to_owned(), "switching".to_owned()),
            (
                "2+".to_owned(),
                theme.dim(),
                "takes per cell (× row; + is 10 or more)".to_owned(),
                "takes".to_owned(),
            ),
        ]
    } else {
        Vec::new()
    };
    // The take counts' mark is the first to go where the line is short.
    let build = |long: bool, gap: &str, takes: bool| -> Vec<Span<'static>> {
        let mut spans = vec![Span::raw(" ")];
        let items = gil_items.len().saturating_sub(usize::from(!takes));
        for (mark, style, l, s) in states.iter().chain(&gil_items[..items]) {
            spans.push(Span::styled(mark.clone(), *style));
            spans.push(Span::styled(format!(" {}{gap}", if long { l } else { s }), theme.dim()));
        }
        spans
    };
    let fits = |spans: &[Span]| spans.iter().map(|s| s.content.chars().count()).sum::<usize>() <= width;
    [(true, "   ", true), (true, "   ", false), (false, "  ", true), (false, " ", true), (false, "  ", false)]
        .into_iter()
        .map(|(long, gap, takes)| build(long, gap, takes))
        .find(|spans| fits(spans))
        .map_or_else(|| Line::from(build(false, " ", false)), Line::from)
}

fn too_small(frame: &mut Frame, area: Rect, theme: Theme) {
    let lines = vec![
        Line::styled("terminal too small", theme.bad()),
        Line::raw(format!("it is {}×{}", area.width, area.height)),
        Line::raw(format!("gilscope needs {MIN_WIDTH}×{MIN_HEIGHT}")),
        Line::styled("enlarge the window, or press q", theme.dim()),
    ];
    let top = area.height.saturating_sub(lines.len() as u16) / 2;
    let [_, middle] = Layout::vertical([Constraint::Length(top), Constraint::Fill(1)]).areas(area);
    frame.render_widget(Paragraph::new(lines).centered(), middle);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(line: &Line<'_>) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn the_legend_says_when_lanes_are_inferred_and_at_what_resolution() {
        let theme = Theme { color: false };
        assert!(text(&legend(theme, None, true, 200)).contains("░ waits for the GIL"));
        let inferred = Lanes::Inferred { resolution_ns: Some(48_000), why: None };
        let real = text(&legend(theme, Some(&inferred), true, 200));
        assert!(real.contains("░ not running (inferred, stamps every 48 µs)"), "{real}");
        assert!(!real.contains("holds the GIL"), "{real}");
    }

    #[test]
    fn the_legend_says_how_the_real_gil_was_read() {
        let theme = Theme { color: false };
        let measured = text(&legend(theme, Some(&Lanes::Measured { period_ns: 100_000 }), true, 200));
        assert!(
            measured.contains("░ waits for the GIL · lanes measured (sampled every 100 µs)"),
            "{measured}"
        );
        assert!(measured.contains("holds the GIL, runs"), "{measured}");
        let exact = text(&legend(theme, Some(&Lanes::Exact), true, 200));
        assert!(exact.contains("░ waits for the GIL · lanes exact"), "{exact}");
    }

    #[test]
    fn the_legend_explains_the_gil_lane_and_says_nothing_of_a_gil_when_it_is_off() {
        let theme = Theme { color: false };
        let on = text(&legend(theme, None, true, 200));
        assert!(on.contains("0 1 GIL lane: who holds it") && on.contains("╳ it changed hands"), "{on}");
        let off = text(&legend(theme, None, false, 200));
        assert!(!off.contains("GIL"), "{off}");
        let narrow = text(&legend(theme, None, true, 80));
        assert!(narrow.chars().count() <= 80 && narrow.contains("╳"), "{narrow}");
        // The GIL lane's take counts, where there is room for them.
        assert!(on.contains("2+ takes per cell (× row; + is 10 or more)"), "{on}");
        let mid = text(&legend(theme, None, true, 100));
        assert!(mid.chars().count() <= 100 && mid.contains("2+ takes"), "{mid}");
        assert!(!off.contains("takes"), "{off}");
    }
}
