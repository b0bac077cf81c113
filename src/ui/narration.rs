//! The line under the panels that says, in plain words, the latest notable
//! thing the run did (from its records: `experiment::narration`), and once
//! the models finished, what their figures say. The longest version of the
//! sentence that fits is shown; paused, it stays as it was.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::app::App;
use crate::experiment::narration;
use crate::experiment::tally::RunResult;
use crate::format::fit;
use crate::ui::Theme;

const MARK: &str = " » ";

/// Whether the screen has a narration line: from the first press of space on.
pub fn shown(app: &App) -> bool {
    app.session.is_some()
}

/// What to say now, versions longest first.
fn versions(app: &App) -> Vec<String> {
    let Some(session) = &app.session else { return Vec::new() };
    if !session.active() {
        let compared = session.compare(&app.baseline, app.cores());
        let results: Option<Vec<RunResult>> = compared.results.into_iter().collect();
        if let Some(results) = results {
            let said = narration::results(&results, &session.experiment);
            if !said.is_empty() {
                return said;
            }
        }
    }
    session.narration.said().map(|s| s.versions.clone()).unwrap_or_default()
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let width = (area.width as usize).saturating_sub(MARK.chars().count());
    let versions = versions(app);
    let Some(text) = versions.iter().find(|v| v.chars().count() <= width).or(versions.last()) else { return };
    let line = Line::from(vec![Span::styled(MARK, theme.dim()), Span::raw(fit(text, width))]);
    crate::ui::text::render(frame.buffer_mut(), area, &[line]);
}
