//! The `?` overlay: every key and the lane symbols on one page, what each
//! figure means and how it is measured on the next (both at once where the
//! screen is tall enough).

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::app::bindings::BINDINGS;
use crate::app::{HelpLayout, HelpPage};
use crate::experiment::tally::Lane;
use crate::ui::{Theme, glyph};

/// Every figure on screen, and how it is measured: one line each.
pub const FIGURES: [(&str, &str); 14] = [
    ("time", "first start request → last worker's end, pauses left out, and the"),
    ("", "workers' wait while their GILs are found (\"+… finding the GILs\")"),
    ("done", "share of the iterations (or requests) finished"),
    ("cpu", "the workers' CPU time ÷ wall time, in cores (the OS's reading)"),
    ("memory", "resident memory of its processes (each one's own peak at the end)"),
    ("start", "all: first start request → last worker's first instruction;"),
    ("", "each: all ÷ workers (a thread pays to win the GIL from running ones)"),
    ("switches", "how often a GIL passed from one worker to another"),
    ("GIL wait", "from asking for the GIL to holding it (mean, longest)"),
    ("latency", "I/O request → GIL held again after the reply, beside other workers"),
    ("speedup", "baseline (each worker alone, one after another, timed before and"),
    ("", "after the models, averaged) ÷ wall time; CPU ≤ min(workers, cores)"),
    ("work at", "speedup ÷ cpu: how fast CPU seconds worked, against the lone worker"),
    ("outside", "CPU other processes took meanwhile; over 0.2 cores: not clean"),
];

fn keys_page(theme: Theme) -> Vec<Line<'static>> {
    let key_width = BINDINGS.iter().map(|b| b.keys_label().chars().count()).max().unwrap_or(0) + 2;
    let mut lines: Vec<Line> = BINDINGS
        .iter()
        .map(|b| {
            Line::from(vec![
                Span::styled(format!(" {:<key_width$}", b.keys_label()), theme.key()),
                Span::raw(b.help),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    let lane = |mark: String, style, what: &'static str| {
        vec![Span::styled(mark, style), Span::raw(format!(" {what}  "))]
    };
    let mut states = vec![Span::styled(" lanes   ", theme.title())];
    states.extend(lane(glyph(Lane::Running).to_string(), theme.lane(Lane::Running), "ran all the cell"));
    states.extend(lane("▁▄▇".to_owned(), theme.lane(Lane::Running), "ran part of it"));
    states.extend(lane(glyph(Lane::Waiting).to_string(), theme.lane(Lane::Waiting), "waited for the GIL"));
    lines.push(Line::from(states));
    let mut states = vec![Span::raw("         ")];
    states.extend(lane(glyph(Lane::Io).to_string(), theme.lane(Lane::Io), "blocked in I/O"));
    states.extend(lane(glyph(Lane::Finished).to_string(), theme.lane(Lane::Finished), "finished"));
    states.extend(lane(glyph(Lane::Failed).to_string(), theme.lane(Lane::Failed), "failed"));
    lines.push(Line::from(states));
    let mut gil = vec![Span::styled(" GIL     ", theme.title())];
    gil.extend(lane("0 1".to_owned(), theme.title(), "its holder"));
    gil.extend(lane("╳".to_owned(), theme.switching(), "changed hands"));
    gil.extend(lane("2+".to_owned(), theme.dim(), "takes per cell, + is 10 or more"));
    lines.push(Line::from(gil));
    lines
}

fn figures_page(theme: Theme) -> Vec<Line<'static>> {
    let mut lines = vec![Line::styled(" every figure is measured, never assumed:", theme.title())];
    lines.extend(FIGURES.iter().map(|(name, what)| {
        Line::from(vec![Span::styled(format!(" {name:<9}"), theme.title()), Span::raw(*what)])
    }));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        " the OS: cores, cpu, memory, processes, threads · clocks: the rest",
        theme.dim(),
    ));
    lines
}

/// Whether both pages fit on a screen of `area` at once.
pub fn layout(area: Rect) -> HelpLayout {
    // Asked before every frame; the pages' lengths never change.
    static LINES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let lines = *LINES.get_or_init(|| {
        let theme = Theme { color: false };
        keys_page(theme).len() + figures_page(theme).len()
    });
    if lines + 3 <= area.height as usize { HelpLayout::Whole } else { HelpLayout::Paged }
}

pub fn render(frame: &mut Frame, area: Rect, page: HelpPage, theme: Theme) {
    let (keys, figures) = (keys_page(theme), figures_page(theme));
    let (title, lines) = if layout(area) == HelpLayout::Whole {
        let mut both = keys;
        both.push(Line::raw(""));
        both.extend(figures);
        (" keys · what you see · what the figures mean ", both)
    } else {
        match page {
            HelpPage::Keys => (" keys · what you see · ? next: the figures ", keys),
            HelpPage::Figures => (" what the figures mean · ? closes ", figures),
        }
    };
    let height = (u16::try_from(lines.len()).unwrap_or(u16::MAX).saturating_add(2)).min(area.height);
    let widest = lines.iter().map(Line::width).max().unwrap_or(0).max(title.chars().count());
    let width = u16::try_from(widest + 3).unwrap_or(u16::MAX).min(area.width);
    let [row] = Layout::vertical([Constraint::Length(height)]).flex(Flex::Center).areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width)]).flex(Flex::Center).areas(row);
    frame.render_widget(Clear, popup);
    let block = Block::bordered().title(Span::styled(title, theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_definition_fits_the_help_box_of_an_80_column_terminal() {
        // 80 columns less the box's two borders and the name's 10.
        for (name, what) in FIGURES {
            assert!(what.chars().count() <= 80 - 2 - 10, "{name}: {what:?} is cut at 80 columns");
        }
    }
}
