//! Drawing: `render(&mut Frame, &App)` and nothing else. One file per region
//! of the screen, each a pure function of the app's state, so every screen
//! is a snapshot test.
//!
//! ```text
//!  header    the experiment, mode, runtime, pace, zoom
//!  cores     per-core load bars, from the OS
//!  panels    one per model, placed by layout.rs: lanes, GIL, figures
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
mod panel;
mod summary;
pub(crate) mod timeline;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::App;
use crate::experiment::tally::Lane;

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

pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let theme = Theme { color: app.options.color };
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area, theme);
        return;
    }
    let cores_height = cores::height(app, area);
    let [head, cores_area, body, legend_area, keys_area] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(cores_height),
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let room = Rect { height: body.height.saturating_sub(summary::HEIGHT), ..body };
    let models = panel::count(app);
    let (style, places) =
        layout::place(models, room, |width| panel::height(app, width, room.height), panel::least_height(app));
    let panels_bottom = places.iter().map(|r| r.bottom()).max().unwrap_or(room.y);
    let summary_area =
        Rect { y: panels_bottom, height: summary::HEIGHT.min(body.bottom() - panels_bottom), ..body };

    header::render(frame, head, app, theme);
    cores::render(frame, cores_area, app, theme);
    for (model, place) in places.into_iter().enumerate() {
        panel::render(frame, place, app, model, style, theme);
    }
    summary::render(frame, summary_area, app, theme);
    frame.render_widget(Paragraph::new(legend(theme, app.inferred_resolution())), legend_area);
    keys::render(frame, keys_area, app, theme);
    if app.help {
        help::render(frame, area, theme);
    }
}

/// How many model panels the screen shows.
pub fn panel_count(app: &App) -> usize {
    panel::count(app)
}

/// "█ running (holds the GIL)  ░ waiting for the GIL  ~ I/O  · done  ✗ failed".
/// With lanes inferred from the real `CPython`'s progress stamps (every
/// `inferred` ns), ░ only says the thread was not running.
pub fn legend(theme: Theme, inferred: Option<Option<u64>>) -> Line<'static> {
    let waiting = match inferred {
        None => "waits for the GIL".to_owned(),
        Some(None) => "not running (inferred)".to_owned(),
        Some(Some(ns)) => format!("not running (inferred, stamps every {} µs)", ns / 1000),
    };
    let items = [
        (
            Lane::Running,
            if inferred.is_some() { "running".to_owned() } else { "running, holds the GIL".to_owned() },
        ),
        (Lane::Waiting, waiting),
        (Lane::Io, "in I/O".to_owned()),
        (Lane::Finished, "done".to_owned()),
        (Lane::Failed, "failed".to_owned()),
    ];
    let mut spans = vec![Span::raw(" ")];
    for (lane, what) in items {
        spans.push(Span::styled(glyph(lane).to_string(), theme.lane(lane)));
        spans.push(Span::styled(format!(" {what}   "), theme.dim()));
    }
    Line::from(spans)
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
        assert!(text(&legend(theme, None)).contains("░ waits for the GIL"));
        let real = text(&legend(theme, Some(Some(48_000))));
        assert!(real.contains("░ not running (inferred, stamps every 48 µs)"), "{real}");
        assert!(!real.contains("holds the GIL"), "{real}");
    }
}
