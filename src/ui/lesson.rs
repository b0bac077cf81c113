//! The lesson's question, on a line of its own under the header, so the
//! class reads what the run is about to answer.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::app::App;
use crate::app::lesson::LESSONS;
use crate::ui::Theme;
use crate::ui::summary::clip;

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let (Some(lesson), Some(index)) = (app.current_lesson(), app.lesson) else { return };
    // The teacher changed a setting: the run no longer answers the question as set.
    let changed = if app.lesson_as_set() { "" } else { ", settings changed" };
    let spans = vec![
        Span::styled(format!(" lesson {}/{}{changed} · ", index + 1, LESSONS.len()), theme.key()),
        Span::styled(lesson.question, theme.title()),
    ];
    crate::ui::text::render(frame.buffer_mut(), area, &[clip(Line::from(spans), area.width as usize)]);
}
