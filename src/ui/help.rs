//! The `?` overlay: every key, and what the screen's symbols and figures mean.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::app::bindings::BINDINGS;
use crate::experiment::tally::Lane;
use crate::ui::{Theme, glyph};

pub fn render(frame: &mut Frame, area: Rect, theme: Theme) {
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
    let lane = |l: Lane, what: &'static str| {
        vec![Span::styled(glyph(l).to_string(), theme.lane(l)), Span::raw(format!(" {what}  "))]
    };
    let mut states = vec![Span::styled(" lanes   ", theme.title())];
    states.extend(lane(Lane::Running, "holds the GIL, runs"));
    states.extend(lane(Lane::Waiting, "waits for it"));
    lines.push(Line::from(states));
    let mut states = vec![Span::raw("         ")];
    states.extend(lane(Lane::Io, "blocked in I/O"));
    states.extend(lane(Lane::Finished, "finished"));
    states.extend(lane(Lane::Failed, "failed"));
    lines.push(Line::from(states));
    let notes = [
        (" GIL     ", "digit: which thread holds the one lock"),
        (" the OS  ", "cores, cpu, memory, process and thread counts"),
        (" clocks  ", "time, start cost, GIL waits, switches"),
        (" speedup ", "the jobs one after another, each alone ÷ wall"),
    ];
    for (label, what) in notes {
        lines.push(Line::from(vec![Span::styled(label, theme.title()), Span::raw(what)]));
    }
    let height = (u16::try_from(lines.len()).unwrap_or(u16::MAX).saturating_add(2)).min(area.height);
    let widest = lines.iter().map(Line::width).max().unwrap_or(0);
    let width = u16::try_from(widest + 3).unwrap_or(u16::MAX).min(area.width);
    let [row] = Layout::vertical([Constraint::Length(height)]).flex(Flex::Center).areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width)]).flex(Flex::Center).areas(row);
    frame.render_widget(Clear, popup);
    let block = Block::bordered().title(Span::styled(" keys · what you see ", theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
