//! Per-core load, from the OS: a bar per core while they fit, one shaded
//! cell per core beyond (so 128 cores still fit in two rows of 80 columns).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::text::{Line, Span};

use crate::app::App;
use crate::ui::Theme;

const LABEL: &str = " cores ";

/// Rows the core bars get: two on a small screen, up to four on a tall one.
fn max_rows(area: Rect) -> usize {
    if area.height >= 40 { 4 } else { 2 }
}

pub fn height(app: &App, area: Rect) -> u16 {
    let n = core_count(app);
    let layout = Layout::choose(n, area.width as usize, max_rows(area));
    layout.rows(n) as u16
}

fn core_count(app: &App) -> usize {
    app.sample.as_ref().map_or(app.options.cores as usize, |s| s.cores.len()).max(1)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// "12 ███████░░░  64%" entries with a bar this wide, this many per row.
    Bars { bar: usize, per_row: usize },
    /// One shaded cell per core, this many per row.
    Cells { per_row: usize },
}

impl Layout {
    fn choose(n: usize, width: usize, max_rows: usize) -> Layout {
        let id_w = digits(n.saturating_sub(1));
        let room = width.saturating_sub(LABEL.len() + 1);
        for bar in (4..=20).rev() {
            let entry = id_w + 1 + bar + 5 + 2;
            let per_row = (room / entry).max(1);
            if n.div_ceil(per_row) <= max_rows {
                return Layout::Bars { bar, per_row };
            }
        }
        // Rows of a multiple of 8 cores read more easily ("64–127").
        let label_w = 2 * id_w + 2;
        Layout::Cells { per_row: (room.saturating_sub(label_w) / 8 * 8).max(8) }
    }

    fn rows(self, n: usize) -> usize {
        match self {
            Layout::Bars { per_row, .. } | Layout::Cells { per_row } => n.div_ceil(per_row),
        }
    }
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

fn load_color(pct: f32) -> Color {
    if pct >= 85.0 {
        Color::Red
    } else if pct >= 50.0 {
        Color::Yellow
    } else {
        Color::Green
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let label = Span::styled(LABEL, theme.title());
    let Some(sample) = app.sample.as_ref().filter(|s| !s.cores.is_empty()) else {
        let line = Line::from(vec![label, Span::styled("reading the OS…", theme.dim())]);
        crate::ui::text::render(frame.buffer_mut(), area, &[line]);
        return;
    };
    let n = sample.cores.len();
    let id_w = digits(n - 1);
    let mut lines = Vec::new();
    match Layout::choose(n, area.width as usize, max_rows(area)) {
        Layout::Bars { bar, per_row } => {
            for (r, row) in sample.cores.chunks(per_row).enumerate() {
                let mut spans = vec![if r == 0 { label.clone() } else { Span::raw(" ".repeat(LABEL.len())) }];
                for (i, &pct) in row.iter().enumerate() {
                    let id = r * per_row + i;
                    let full = ((pct.clamp(0.0, 100.0) / 100.0) * bar as f32).round() as usize;
                    spans.push(Span::styled(format!("{id:>id_w$} "), theme.dim()));
                    spans.push(Span::styled("█".repeat(full), theme.fg(load_color(pct))));
                    spans.push(Span::styled("░".repeat(bar - full), theme.dim()));
                    spans.push(Span::raw(format!(" {:>3.0}%  ", pct.clamp(0.0, 100.0))));
                }
                lines.push(Line::from(spans));
            }
        }
        Layout::Cells { per_row } => {
            const SHADES: [&str; 9] = [" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];
            for (r, row) in sample.cores.chunks(per_row).enumerate() {
                let first = r * per_row;
                let last = first + row.len() - 1;
                let mut spans = vec![if r == 0 { label.clone() } else { Span::raw(" ".repeat(LABEL.len())) }];
                spans.push(Span::styled(format!("{first:>id_w$}–{last:<id_w$} "), theme.dim()));
                for &pct in row {
                    let level = ((pct.clamp(0.0, 100.0) / 100.0) * 8.0).round() as usize;
                    spans.push(Span::styled(SHADES[level], theme.fg(load_color(pct))));
                }
                let used = LABEL.len() + id_w * 2 + 2 + row.len();
                if r == 0 && used + 9 <= area.width as usize {
                    let mean = sample.cores.iter().sum::<f32>() / n as f32;
                    spans.push(Span::raw(format!(" {mean:>3.0}% avg")));
                }
                lines.push(Line::from(spans));
            }
        }
    }
    crate::ui::text::render(frame.buffer_mut(), area, &lines);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_cores_get_bars_and_many_get_cells() {
        assert!(matches!(Layout::choose(2, 80, 2), Layout::Bars { bar: 20, per_row: 2 }));
        assert!(matches!(Layout::choose(8, 80, 2), Layout::Bars { .. }));
        let many = Layout::choose(128, 80, 2);
        assert!(matches!(many, Layout::Cells { .. }), "{many:?}");
        assert!(many.rows(128) <= 2, "{many:?}");
        assert!(matches!(Layout::choose(128, 200, 4), Layout::Bars { .. } | Layout::Cells { .. }));
    }
}
