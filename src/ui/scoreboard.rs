//! The scoreboard (`b`): one row per model with the article's claims as
//! this machine measured them — start cost per worker and how it starts,
//! memory (resident, and how much is the processes' own), processes,
//! threads and GILs as the OS and the interpreters report them, and the
//! speedup beside its limit. Live figures while a run goes, final ones after.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::app::{App, Run};
use crate::experiment::scoreboard::{self, starts_by};
use crate::format::{duration_label, fit, memory_label};
use crate::ui::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let title = Span::styled(
        " scoreboard · the article's claims, measured here · b: back to the lanes ",
        theme.title(),
    );
    let inner = crate::ui::text::boxed(frame.buffer_mut(), area, title, theme.dim());
    let width = inner.width as usize;
    let wide = width >= 100;
    let mut lines = vec![Line::styled(
        if wide {
            format!(
                "{:<32}{:>20}{:>10}{:>9}{:>8}{:>7}{:>9}{:>6}{:>14}",
                "model", "start / worker", "resident", "unique", "procs", "thr.", "GILs", "", "speedup (max)"
            )
        } else {
            format!("{:<20}{:>16}{:>9}{:>8}{:>6}{:>14}", "model", "start", "memory", "own", "GILs", "speedup")
        },
        theme.dim(),
    )];
    let compared = app.session.as_ref().map(|s| s.compare(&app.baseline, app.cores()));
    let runs: Vec<&Run> = app.session.iter().flat_map(|s| s.models.iter()).collect();
    if runs.is_empty() {
        lines.push(Line::raw(" space runs the models; their figures gather here"));
    }
    let (mut simulated, mut real) = (false, false);
    for (i, run) in runs.iter().enumerate() {
        let tally = run.tally.as_ref();
        let result = compared.as_ref().and_then(|c| c.results.get(i).cloned().flatten());
        simulated |= run.spec.experiment.runtime == crate::protocol::Runtime::Sim;
        real |= run.spec.experiment.runtime == crate::protocol::Runtime::Cpython;
        let start =
            tally.and_then(crate::experiment::tally::Tally::start_cost_ns).map_or("…".to_owned(), |ns| {
                format!("{} {}", duration_label(ns as f64 / 1e9), starts_by(&run.spec))
            });
        let memory = run.os.memory.total();
        let (resident, own) = memory.map_or(("…".to_owned(), "…".to_owned()), |m| {
            (memory_label(m.rss_kb), memory_label(m.uss_kb))
        });
        let processes = if run.os.seen() {
            run.os.peak_processes
        } else {
            run.spec.model.processes(run.spec.experiment.workers)
        };
        let threads = if run.os.seen() { run.os.threads_per_process().to_string() } else { "…".to_owned() };
        let gils = tally
            .and_then(crate::experiment::tally::Tally::gil_count)
            .unwrap_or(run.spec.model.gils(run.spec.experiment.workers));
        let speedup = result
            .as_ref()
            .and_then(|r| r.speedup.map(|s| format!("{s:.2}× ({:.0}×)", r.speedup_limit)))
            .unwrap_or_else(|| "–".to_owned());
        let label = fit(&run.spec.label(), if wide { 31 } else { 19 });
        let text = if wide {
            format!(
                "{label:<32}{start:>20}{resident:>10}{own:>9}{processes:>8}{threads:>7}{gils:>9}{:>6}{speedup:>14}",
                ""
            )
        } else {
            format!("{label:<20}{start:>16}{resident:>9}{own:>8}{gils:>6}{speedup:>14}")
        };
        lines.push(Line::raw(fit(&text, width)));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        fit("own: memory no other process maps (USS) · the rest of resident is shared", width),
        theme.dim(),
    ));
    if let Some(note) = scoreboard::start_cost_note(simulated, real) {
        lines.push(Line::styled(fit(note, width), theme.dim()));
    }
    crate::ui::text::render(frame.buffer_mut(), inner, &lines);
}
