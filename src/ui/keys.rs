//! The bottom bar: the keys that do something right now, as many as fit.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::App;
use crate::app::bindings::{self, BarEntry};
use crate::ui::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let mut keys = bindings::bar(app);
    let width = |keys: &[BarEntry]| -> usize {
        1 + keys.iter().map(|k| k.keys.chars().count() + 1 + k.word.chars().count() + 2).sum::<usize>()
    };
    // Drop the least needed keys until the bar fits; `?` lists them all.
    while width(&keys) > area.width as usize {
        let Some(worst) = keys.iter().enumerate().max_by_key(|(i, k)| (k.priority, *i)).map(|(i, _)| i)
        else {
            break;
        };
        if keys[worst].priority == 0 {
            break;
        }
        keys.remove(worst);
    }
    let mut spans = vec![Span::raw(" ")];
    for entry in keys {
        spans.push(Span::styled(entry.keys, theme.key()));
        spans.push(Span::styled(format!(" {}  ", entry.word), theme.dim()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
