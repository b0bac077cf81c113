//! The `?` overlay: every key, and what the screen's symbols and figures mean.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::app::App;
use crate::experiment::tally::Lane;
use crate::ui::{Theme, glyph};

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let runtimes: Vec<&str> = app.options.runtimes.iter().map(|r| r.as_str()).collect();
    let runtime = format!("runtime: {}", runtimes.join(" / "));
    let keys = [
        ("space", "run · pause (the workers really stop) · resume"),
        ("r", "reset: stop the run, clear the figures"),
        ("- +", "fewer / more workers per model"),
        ("[ ]", "shorter / longer GIL switch interval"),
        ("w", "workload: cpu → io → mixed"),
        ("g", "GIL on / off for threading (off: free-threaded)"),
        ("m", "race (both at once) / one at a time (fair timings)"),
        ("s S", "pace: slow each iteration down more / less"),
        ("z Z", "zoom the timeline in / out"),
        ("c", runtime.as_str()),
        ("q Esc", "quit (Ctrl-C too) · ? closes this help"),
    ];
    let mut lines: Vec<Line> = keys
        .iter()
        .map(|(k, what)| Line::from(vec![Span::styled(format!(" {k:<6}"), theme.key()), Span::raw(*what)]))
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
    let height = (lines.len() as u16 + 2).min(area.height);
    let width = 60.min(area.width);
    let [row] = Layout::vertical([Constraint::Length(height)]).flex(Flex::Center).areas(area);
    let [popup] = Layout::horizontal([Constraint::Length(width)]).flex(Flex::Center).areas(row);
    frame.render_widget(Clear, popup);
    let block = Block::bordered().title(Span::styled(" keys · what you see ", theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
