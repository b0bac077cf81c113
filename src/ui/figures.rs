//! A model's figures: wall time, progress, CPU, memory, start cost, GIL
//! switches and waits, laid out as a grid as wide as the panel allows.

use ratatui::text::{Line, Span};

use crate::app::{App, Run, Session, Switches};
use crate::experiment::spec::Workload;
use crate::experiment::tally::{Lanes, Latency, Tally};
use crate::format::{duration_label, fit, memory_label};
use crate::sim::workload::Role;
use crate::ui::Theme;

/// Rows of figures for a panel `inner` columns wide: the grid, the GIL
/// wait, and for I/O workloads the requests' latency.
pub fn rows(inner: u16, workload: Workload) -> u16 {
    grid_columns(inner).map_or(4, |k| 6u16.div_ceil(k) + 1) + u16::from(workload != Workload::Cpu)
}

/// How many figure columns fit in `inner` columns: 6, 3 or 2 (None: 2, too tight to matter).
fn grid_columns(inner: u16) -> Option<u16> {
    [6u16, 3, 2].into_iter().find(|k| inner >= 23 * k)
}

/// The figures as (label, value, short value), short where a row is tight.
fn cells(
    app: &App,
    session: &Session,
    run: &Run,
    tally: &Tally,
) -> [(&'static str, String, Option<String>); 6] {
    let result = run.result();
    let dash = || "–".to_owned();
    let over = run.over;
    let cpu = match (&result, run.os.cpu_cores) {
        (Some(r), _) => format!("{:.2} cores", r.cores_used),
        (None, Some(c)) if !over => format!("{c:.2} cores"),
        (None, None) if !over => "…".to_owned(),
        _ => dash(),
    };
    let memory = match &result {
        Some(r) => memory_label(r.peak_rss_kb),
        None if over && run.os.seen_any() => memory_label(run.os.peak_rss_each.values().sum::<u64>() / 1024),
        None if run.os.seen_any() => memory_label(run.os.rss_bytes / 1024),
        None if over => dash(),
        None => "…".to_owned(),
    };
    let wall = match &result {
        Some(r) => r.wall_s,
        // A failed run's clock stops at its last word.
        None if over => tally.wall_ns(tally.last_event) as f64 / 1e9,
        None => tally.wall_ns(session.now(app.now)) as f64 / 1e9,
    };
    // Inferred hand-overs say so where the row has room for it.
    let (switches, short) = match run.switches() {
        Switches::NoGil => ("no GIL".to_owned(), None),
        Switches::Counted(n) => (n.to_string(), None),
        Switches::Read(n) => (format!("{n} (CPython's count)"), Some(n.to_string())),
        Switches::Inferred(None) if over => (dash(), None),
        Switches::Inferred(None) => ("…".to_owned(), None),
        Switches::Inferred(Some(n)) => (format!("~{n} (inferred)"), Some(format!("~{n}"))),
    };
    // Each worker's share of the start, and how long starting them all
    // took: the race's clock runs from the first request, so it includes it.
    let each = tally.start_cost_ns().map(|ns| duration_label(ns as f64 / 1e9));
    let (start, start_short) = match (each, tally.starting_ns()) {
        (Some(each), Some(all)) if run.spec.experiment.workers > 1 => {
            (format!("{each} each, all {}", duration_label(all as f64 / 1e9)), Some(each))
        }
        (Some(each), _) => (each, None),
        (None, _) => ("…".to_owned(), None),
    };
    // The workers' wait at the start gun while gilscope found their GILs is
    // no part of the time; said beside it where the row has room, since the
    // axis, on the session's clock, runs through it.
    let held = tally.held_for_lanes_ns();
    let (time, time_short) = if held >= 1_000_000 {
        let wall = duration_label(wall);
        (format!("{wall} (+{} finding the GILs)", duration_label(held as f64 / 1e9)), Some(wall))
    } else {
        (duration_label(wall), None)
    };
    [
        ("time", time, time_short),
        ("done", format!("{:.0}%", tally.progress() * 100.0), None),
        ("cpu", cpu, None),
        ("memory", memory, None),
        ("start", start, start_short),
        ("switches", switches, short),
    ]
}

/// The figures of a full panel: a grid, then the GIL wait line.
pub fn grid(
    app: &App,
    session: &Session,
    run: &Run,
    tally: &Tally,
    width: u16,
    theme: Theme,
) -> Vec<Line<'static>> {
    let all = cells(app, session, run, tally);
    let k = grid_columns(width).unwrap_or(2) as usize;
    let mut cells: Vec<(&str, String)> = all.iter().map(|(l, v, _)| (*l, v.clone())).collect();
    if layout(&cells, k).0 > width as usize {
        for (cell, (_, _, short)) in cells.iter_mut().zip(&all) {
            if let Some(short) = short {
                cell.1.clone_from(short);
            }
        }
    }
    let (_, label_w, value_w) = layout(&cells, k);
    let mut lines = Vec::new();
    for row in cells.chunks(k) {
        let mut spans = Vec::new();
        for (c, (label, value)) in row.iter().enumerate() {
            if c > 0 {
                spans.push(Span::raw("  "));
            }
            spans.push(Span::styled(format!("{label:<w$} ", w = label_w[c]), theme.dim()));
            spans.push(Span::raw(format!("{value:<w$}", w = value_w[c])));
        }
        lines.push(Line::from(spans));
    }
    let (label, wait) = wait(run, tally);
    lines.push(Line::from(vec![
        Span::styled(label, theme.dim()),
        Span::raw(fit(&wait, (width as usize).saturating_sub(9))),
    ]));
    if run.spec.experiment.workload != Workload::Cpu {
        lines.push(Line::from(vec![
            Span::styled("latency  ", theme.dim()),
            Span::raw(fit(&latency(app, run, tally), (width as usize).saturating_sub(9))),
        ]));
    }
    lines
}

/// The I/O requests' latency so far, against one I/O worker alone and the
/// switch interval: "mean 21 ms · p99 45 ms · alone 1.0 ms · switch 20 ms".
fn latency(app: &App, run: &Run, tally: &Tally) -> String {
    let e = &run.spec.experiment;
    let sorted = if tally.workers.len() > 1 { tally.contended_latencies_ns() } else { tally.latencies_ns() };
    let ms = |v: f64| duration_label(v / 1e3);
    let alone = app
        .baseline
        .times
        .iter()
        .find(|t| t.spec == crate::experiment::baseline::spec(e, Role::Io))
        .and_then(|t| t.io_latency_ms)
        .map_or(String::new(), |a| format!(" · alone {}", ms(a)));
    let switch = if run.gil_off() {
        String::new()
    } else {
        format!(" · switch {}", duration_label(e.switch_interval.as_secs_f64()))
    };
    match Latency::of(&sorted) {
        Some(l) => format!("mean {} · p99 {}{alone}{switch}", ms(l.mean), ms(l.p99)),
        None => format!("no reply yet{alone}{switch}"),
    }
}

/// The figures of a compact row, as few words as say them: "3.00 s · 36% · 0.64 cores · 599 switches".
pub fn inline(app: &App, session: &Session, run: &Run, tally: &Tally) -> String {
    let [time, done, cpu, _, _, switches] = cells(app, session, run, tally);
    let switches = switches.2.unwrap_or(switches.1);
    format!("{} · {} · {} · switches {switches}", time.1, done.1, cpu.1)
}

/// "GIL wait  mean 5.0 ms · max 7.0 ms", or for inferred lanes the stalls.
fn wait(run: &Run, tally: &Tally) -> (&'static str, String) {
    let wait = if run.gil_off() {
        "none: there is no GIL".to_owned()
    } else if tally.waits == 0 {
        "none".to_owned()
    } else {
        format!(
            "mean {} · max {}",
            duration_label(tally.mean_wait_ns() as f64 / 1e9),
            duration_label(tally.wait_max_ns as f64 / 1e9)
        )
    };
    // Inferred lanes cannot tell a GIL wait from the OS running something
    // else; lanes read from the GIL can.
    let label = match tally.lanes() {
        Some(Lanes::Inferred { .. }) => "stalled  ",
        _ => "GIL wait ",
    };
    (label, wait)
}

/// The figures laid out `k` to a row: the width of a row, and of each
/// column's labels and values.
fn layout(cells: &[(&str, String)], k: usize) -> (usize, Vec<usize>, Vec<usize>) {
    let rows: Vec<&[(&str, String)]> = cells.chunks(k).collect();
    let label_w: Vec<usize> = (0..k)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|(l, _)| l.len()).max().unwrap_or(0))
        .collect();
    let value_w: Vec<usize> = (0..k)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|(_, v)| v.chars().count()).max().unwrap_or(0))
        .collect();
    // "label value" columns, two spaces apart.
    let width = label_w.iter().zip(&value_w).map(|(l, v)| l + 1 + v).sum::<usize>() + 2 * k.saturating_sub(1);
    (width, label_w, value_w)
}
