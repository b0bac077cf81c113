//! The top two lines: what experiment runs, and how.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use crate::app::{App, Zoom};
use crate::experiment::track::LEVELS_NS;
use crate::format::{fit, span_label};
use crate::protocol::Runtime;
use crate::ui::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let e = &app.experiment;
    let width = area.width as usize;
    let name = " gilscope ";
    let first = Line::from(vec![
        Span::styled(name, Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
        Span::raw(" "),
        Span::styled(fit(&e.describe(), width.saturating_sub(name.len() + 1)), theme.title()),
    ]);
    let zoom = match (app.view.zoom, app.shown_cell()) {
        (Zoom::WholeRun, Some(cell)) => format!("{}/cell, all", span_label(cell)),
        (Zoom::WholeRun, None) => "whole run".to_owned(),
        (Zoom::Level(_), Some(cell)) => format!("{}/cell", span_label(cell)),
        (Zoom::Level(level), None) => {
            format!("{}/cell", span_label(LEVELS_NS[level.min(LEVELS_NS.len() - 1)]))
        }
    };
    // The pace slows each simulated iteration; real CPython's iterations run
    // at their own speed, and there are more of them (the first line says how many).
    let pace = match e.runtime {
        Runtime::Cpython if e.pace == 1 => "CPython's own".to_owned(),
        Runtime::Cpython => format!("{}× the work", e.pace),
        Runtime::Sim if e.pace == 1 => "CPython's".to_owned(),
        Runtime::Sim => format!("{}× slower", e.pace),
    };
    let items = [
        ("mode", app.mode.label().to_owned()),
        ("GIL", if e.gil { "on" } else { "off" }.to_owned()),
        ("runtime", e.runtime.as_str().to_owned()),
        ("pace", pace),
        ("zoom", zoom),
    ];
    // With their labels where the line has room, else the values alone.
    let line = |labels: bool| {
        let mut spans = vec![Span::raw(" ")];
        for (i, (label, value)) in items.iter().enumerate() {
            if i > 0 {
                spans.push(Span::styled(" · ", theme.dim()));
            }
            if labels || *label == "GIL" || *label == "zoom" {
                spans.push(Span::styled(format!("{label} "), theme.dim()));
            }
            spans.push(Span::raw(value.clone()));
        }
        spans
    };
    let long = line(true);
    let spans = if long.iter().map(|s| s.content.chars().count()).sum::<usize>() <= width {
        long
    } else {
        line(false)
    };
    let second = crate::ui::summary::clip(Line::from(spans), width);
    crate::ui::text::render(frame.buffer_mut(), area, &[first, second]);
}
