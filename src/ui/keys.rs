//! The bottom bar: the keys that do something right now, as many as fit;
//! in a replay, first where the replay stands.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use crate::app::App;
use crate::app::bindings::{self, BarEntry};
use crate::format::duration_label;
use crate::ui::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let mut keys = bindings::bar(app);
    let status = app.playback.map(|p| {
        let at = |ns: u64| duration_label(ns as f64 / 1e9);
        let state = if p.ended() {
            "ended".to_owned()
        } else if p.paused {
            "paused".to_owned()
        } else {
            format!("{}×", p.speed)
        };
        format!(" replay {state} · {} of {} ", at(p.at_ns), at(p.length_ns))
    });
    let status_width = status.as_ref().map_or(0, |s| s.chars().count());
    let width = |keys: &[BarEntry]| -> usize {
        status_width
            + 1
            + keys.iter().map(|k| k.keys.chars().count() + 1 + k.word.chars().count() + 2).sum::<usize>()
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
    let mut spans = Vec::new();
    if let Some(status) = status {
        spans.push(Span::styled(status, theme.title().add_modifier(Modifier::REVERSED)));
    }
    spans.push(Span::raw(" "));
    for entry in keys {
        spans.push(Span::styled(entry.keys, theme.key()));
        spans.push(Span::styled(format!(" {}  ", entry.word), theme.dim()));
    }
    crate::ui::text::render(frame.buffer_mut(), area, &[Line::from(spans)]);
}
