//! The one-line verdict of a comparison: which model finished first, and by
//! how much.

use crate::experiment::tally::RunResult;

/// "→ multiprocessing is 1.95× faster than threading"
pub fn verdict(results: &[RunResult]) -> Option<String> {
    if results.len() < 2 {
        return None;
    }
    let fastest = results.iter().min_by(|a, b| a.wall_s.total_cmp(&b.wall_s))?;
    let slowest = results.iter().max_by(|a, b| a.wall_s.total_cmp(&b.wall_s))?;
    let ratio = slowest.wall_s / fastest.wall_s;
    Some(if ratio < 1.05 {
        format!("→ {} and {} take about as long ({ratio:.2}×)", fastest.label, slowest.label)
    } else {
        format!("→ {} is {ratio:.2}× faster than {}", fastest.label, slowest.label)
    })
}
