//! The bottom bar: the keys that do something right now, as many as fit.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::{App, WORKER_STEPS, ZOOMS};
use crate::ui::Theme;

/// (keys, what, priority: lower stays longer when space runs out)
fn keys(app: &App) -> Vec<(&'static str, &'static str, u8)> {
    let space = if app.paused() {
        "resume"
    } else if app.busy() {
        "pause"
    } else {
        "run"
    };
    let e = &app.experiment;
    let mut keys = vec![("space", space, 0)];
    if app.session.is_some() {
        keys.push(("r", "reset", 5));
    }
    let fewer = WORKER_STEPS.iter().any(|&n| n < e.workers);
    let more = WORKER_STEPS.iter().any(|&n| n > e.workers && n <= crate::experiment::spec::MAX_WORKERS);
    keys.push(match (fewer, more) {
        (true, true) => ("-+", "workers", 2),
        (true, false) => ("-", "workers", 2),
        _ => ("+", "workers", 2),
    });
    if e.gil {
        keys.push(("[]", "switch", 4));
    }
    keys.push(("w", "workload", 1));
    keys.push(("g", "GIL", 3));
    keys.push(("m", "mode", 3));
    keys.push(("s", "speed", 4));
    if app.session.as_ref().is_some_and(|s| s.models.iter().any(|r| r.tally.is_some())) {
        let zoom = match (app.zoom > 0, app.zoom + 1 < ZOOMS.len()) {
            (true, true) => "zZ",
            (true, false) => "z",
            _ => "Z",
        };
        keys.push((zoom, "zoom", 2));
    }
    keys.push(("?", if app.help { "close help" } else { "help" }, 0));
    keys.push(("q", "quit", 0));
    keys
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let mut keys = keys(app);
    let width = |keys: &[(&str, &str, u8)]| -> usize {
        1 + keys.iter().map(|(k, w, _)| k.chars().count() + 1 + w.chars().count() + 2).sum::<usize>()
    };
    // Drop the least needed keys until the bar fits; `?` lists them all.
    while width(&keys) > area.width as usize {
        let Some(worst) = keys.iter().enumerate().max_by_key(|(i, k)| (k.2, *i)).map(|(i, _)| i) else {
            break;
        };
        if keys[worst].2 == 0 {
            break;
        }
        keys.remove(worst);
    }
    let mut spans = vec![Span::raw(" ")];
    for (key, what, _) in keys {
        spans.push(Span::styled(key, theme.key()));
        spans.push(Span::styled(format!(" {what}  "), theme.dim()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
