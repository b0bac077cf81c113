//! Models compared, honestly: speedups measured against a baseline timed in
//! the same round, repeated rounds summed up as a median with its spread,
//! and every figure flagged when the machine was busy with other things or
//! the result is physically impossible. The verdict is said only of clean
//! figures; for I/O it is about latency, and names the convoy effect.
//!
//! `gilscope run` fills it with several rounds; the live view with one.

use crate::experiment::spec::{Experiment, Workload};
use crate::experiment::stats::{Spread, median};
use crate::experiment::tally::{Latency, RunResult};
use crate::format::duration_label;

/// One timed run: its figures, its request latencies and the load beside it.
#[derive(Clone, Debug)]
pub struct Timed {
    pub result: RunResult,
    /// The latencies its figures count (sorted, ns).
    pub latencies_ns: Vec<u64>,
    /// Cores' worth of CPU other processes used meanwhile.
    pub outside: f64,
}

/// The baseline of one round: the workers one after another, each alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BaselineRound {
    pub total_s: f64,
    pub outside: f64,
    /// One I/O worker alone: its requests' mean latency (ms), when it ran.
    pub io_alone_ms: Option<f64>,
    /// The same baseline timed again after the models (the live view): a
    /// speedup divides by the mean of both and its spread spans both.
    pub after_s: Option<f64>,
}

impl BaselineRound {
    /// The baseline a speedup divides by: the mean of its timings.
    pub fn mean_s(&self) -> f64 {
        self.after_s.map_or(self.total_s, |after| f64::midpoint(self.total_s, after))
    }

    /// Every timing of it: before the models, and after where it was.
    fn timings(&self) -> impl Iterator<Item = f64> {
        std::iter::once(self.total_s).chain(self.after_s)
    }
}

/// Above this change between the baseline before the models and after, the
/// machine's speed moved too much for a speedup to be trusted.
const DRIFT: f64 = 0.2;

/// Every round of one model.
#[derive(Clone, Debug, Default)]
pub struct Rounds {
    pub timed: Vec<Timed>,
    pub baselines: Vec<BaselineRound>,
}

/// The physical limit of a speedup: CPU-bound work cannot beat the cores,
/// waiting can overlap as many times as there are workers.
pub fn speedup_limit(e: &Experiment, cores: u32) -> f64 {
    let workers = f64::from(e.workers);
    match e.workload {
        Workload::Cpu => workers.min(f64::from(cores)),
        Workload::Io => workers,
        // One I/O worker waits beside CPU workers that share the cores.
        Workload::Mixed => workers.min(f64::from(cores) + 1.0),
    }
}

/// The share of the cores that sampling a GIL may take before a speedup
/// measured beside it is called untrustworthy.
const WATCHER_SHARE_OF_CORES: f64 = 0.05;

/// One model's rounds summed up: medians, the speedup's spread, the outside
/// load, and whether the figures can be trusted.
pub fn summarize(rounds: &Rounds, e: &Experiment, cores: u32, gil_bound: bool) -> Option<RunResult> {
    // The round of the median wall time gives the figures that are not
    // summed up over rounds (switches, waits, memory).
    let typical = {
        let mut by_wall: Vec<&Timed> = rounds.timed.iter().collect();
        by_wall.sort_by(|a, b| a.result.wall_s.total_cmp(&b.result.wall_s));
        *by_wall.get(by_wall.len() / 2)?
    };
    let mut result = typical.result.clone();
    let pairs = || rounds.timed.iter().zip(&rounds.baselines);
    let speedups: Vec<f64> =
        pairs().map(|(t, b)| b.mean_s() / t.result.wall_s).filter(|s| s.is_finite()).collect();
    // The spread spans every timing of the baseline, before and after.
    let ends: Vec<f64> = pairs()
        .flat_map(|(t, b)| b.timings().map(move |s| s / t.result.wall_s))
        .filter(|s| s.is_finite())
        .collect();
    let spread = Spread::of(&speedups);
    let ends = Spread::of(&ends);
    result.rounds = u32::try_from(rounds.timed.len()).unwrap_or(u32::MAX);
    result.baseline_s = median(&rounds.baselines.iter().map(BaselineRound::mean_s).collect::<Vec<_>>());
    result.speedup = spread.map(|s| s.median);
    result.speedup_min = ends.map(|s| s.min);
    result.speedup_max = ends.map(|s| s.max);
    result.speedup_limit = speedup_limit(e, cores);
    result.cores_used = median(&rounds.timed.iter().map(|t| t.result.cores_used).collect::<Vec<_>>())
        .unwrap_or(result.cores_used);
    // Waiting workers use no CPU, so only CPU-bound work says how fast its
    // CPU seconds went.
    result.work_speed = match (e.workload, result.speedup) {
        (Workload::Cpu, Some(s)) if result.cores_used > 0.0 => Some(s / result.cores_used),
        _ => None,
    };
    let mut pooled: Vec<u64> = rounds.timed.iter().flat_map(|t| t.latencies_ns.iter().copied()).collect();
    pooled.sort_unstable();
    result.io_latency_ms = Latency::of(&pooled);
    let outside = rounds
        .timed
        .iter()
        .map(|t| t.outside)
        .chain(rounds.baselines.iter().map(|b| b.outside))
        .fold(0.0, f64::max);
    result.outside_load = outside;
    let mut doubts = Vec::new();
    for b in &rounds.baselines {
        let Some(after) = b.after_s else { continue };
        let change = (after - b.total_s).abs() / after.min(b.total_s);
        if change > DRIFT {
            doubts.push(format!(
                "the lone workers took {} before the models and {} after: the machine's speed moved {:.0} % meanwhile",
                duration_label(b.total_s),
                duration_label(after),
                change * 100.0
            ));
        }
    }
    if outside > crate::experiment::load::too_busy(cores) {
        doubts.push(format!(
            "the machine was busy: other processes used {outside:.1} of its {cores} cores while this was timed"
        ));
    }
    // Reading a GIL thousands of times a second takes CPU; where the workers
    // wanted every core, it was taken from them: said when it was a twentieth
    // of the cores or more (0.1 of 2 cores moves a speedup by 5 %; 0.12 of 16
    // by under 1 %, well inside the rounds' spread).
    if let Some(watcher) = result.watcher_cores
        && watcher >= WATCHER_SHARE_OF_CORES * f64::from(cores)
        && !gil_bound
        && e.workers >= cores
    {
        doubts.push(format!(
            "sampling the GIL took {watcher:.2} of the {cores} cores the workers needed, so the speedup is lower than without it"
        ));
    }
    if let Some(s) = result.speedup {
        if gil_bound && e.workload == Workload::Cpu && s > 1.1 {
            doubts.push(format!(
                "{s:.2}× is impossible for CPU-bound threads under one GIL (at most about 1×): the baseline was slowed by something else"
            ));
        } else if s > result.speedup_limit * 1.05 {
            doubts.push(format!(
                "{s:.2}× is more than {:.0} workers on {cores} cores allow: the baseline was slowed by something else",
                e.workers
            ));
        }
    }
    result.clean = doubts.is_empty();
    result.doubts = doubts;
    Some(result)
}

/// What the comparison says, in one line: who was faster and by how much
/// (CPU), or what the I/O requests waited (I/O and mixed). None when there
/// is nothing to compare; a line saying why when the figures are not clean.
pub fn verdict(results: &[RunResult], rounds: &[Rounds], e: &Experiment) -> Option<String> {
    if let Some(doubt) = results.iter().find_map(|r| r.doubts.first()) {
        let hint = if doubt.starts_with("sampling the GIL") {
            // SAFETY: geteuid cannot fail.
            if unsafe { libc::geteuid() } == 0 {
                "uprobes, which read the GIL for far less, could not be used on this machine"
            } else {
                "run as root, where uprobes read the GIL for far less"
            }
        } else {
            "run again on an idle machine"
        };
        return Some(format!("→ no verdict: {doubt}; {hint}"));
    }
    match e.workload {
        Workload::Cpu => cpu_verdict(results, rounds),
        Workload::Io | Workload::Mixed => latency_verdict(results, rounds, e),
    }
}

/// "→ multiprocessing is 1.95× faster than threading (1.88–2.02× over 5 rounds)"
fn cpu_verdict(results: &[RunResult], rounds: &[Rounds]) -> Option<String> {
    if results.len() < 2 {
        return None;
    }
    let (fast, slow) = extremes(results)?;
    // The ratio round by round: both models timed under the same conditions.
    let ratios: Vec<f64> = rounds[slow]
        .timed
        .iter()
        .zip(&rounds[fast].timed)
        .map(|(s, f)| s.result.wall_s / f.result.wall_s)
        .collect();
    let spread = Spread::of(&ratios)?;
    let over = if ratios.len() > 1 {
        format!(" ({:.2}–{:.2}× over {} rounds)", spread.min, spread.max, ratios.len())
    } else {
        " (one round)".to_owned()
    };
    let (f, s) = (&results[fast].label, &results[slow].label);
    Some(if spread.median < 1.05 {
        format!("→ {f} and {s} take about as long ({:.2}×){over}", spread.median)
    } else {
        format!("→ {f} is {:.2}× faster than {s}{over}", spread.median)
    })
}

/// The fastest and slowest result by median wall time.
fn extremes(results: &[RunResult]) -> Option<(usize, usize)> {
    let by_wall = |a: &(usize, &RunResult), b: &(usize, &RunResult)| a.1.wall_s.total_cmp(&b.1.wall_s);
    let fast = results.iter().enumerate().min_by(by_wall)?.0;
    let slow = results.iter().enumerate().max_by(by_wall)?.0;
    Some((fast, slow))
}

/// For I/O: threads overlap their waits. For mixed: the convoy effect.
fn latency_verdict(results: &[RunResult], rounds: &[Rounds], e: &Experiment) -> Option<String> {
    let alone = median(
        &rounds.iter().flat_map(|r| r.baselines.iter().filter_map(|b| b.io_alone_ms)).collect::<Vec<_>>(),
    );
    let switch = duration_label(e.switch_interval.as_secs_f64());
    let worst = results
        .iter()
        .filter_map(|r| Some((r, r.io_latency_ms?)))
        .max_by(|a, b| a.1.mean.total_cmp(&b.1.mean))?;
    let best = results
        .iter()
        .filter_map(|r| Some((r, r.io_latency_ms?)))
        .min_by(|a, b| a.1.mean.total_cmp(&b.1.mean))?;
    let ms = |v: f64| duration_label(v / 1e3);
    let alone_text = alone.map_or(String::new(), |a| format!(" against {} alone", ms(a)));
    Some(match e.workload {
        Workload::Mixed if worst.1.mean > 1.5 * alone.unwrap_or(worst.1.mean) => format!(
            "→ the convoy effect: beside CPU threads under one GIL, each I/O request took {} (p99 {}){alone_text} — after every reply the I/O thread waits for the GIL, up to a switch interval ({switch}) at a time; {} keeps it at {}",
            ms(worst.1.mean),
            ms(worst.1.p99),
            best.0.label,
            ms(best.1.mean),
        ),
        Workload::Mixed => format!(
            "→ the I/O requests took {} (p99 {}) with {}{alone_text}: little convoy at a {switch} switch interval",
            ms(worst.1.mean),
            ms(worst.1.p99),
            worst.0.label
        ),
        _ => {
            let threads = results.iter().find(|r| r.model == "threads")?;
            format!(
                "→ threads are enough for I/O: {} overlapped their waits, {:.1}× faster than one request after another (limit {:.0}×); requests took {} each",
                threads.label,
                threads.speedup?,
                threads.speedup_limit,
                ms(threads.io_latency_ms?.mean)
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One round of a processes run of `workers` against a baseline of
    /// `workers` × 0.19 s, its GIL sampled at a cost of `watcher` cores.
    fn sampled_processes(workers: u32, wall_s: f64, watcher: f64) -> Rounds {
        let mut result =
            RunResult::example("processes", "multiprocessing", workers, wall_s, f64::from(workers));
        result.watcher_cores = Some(watcher);
        let baseline = BaselineRound {
            total_s: f64::from(workers) * 0.19,
            outside: 0.0,
            io_alone_ms: None,
            after_s: None,
        };
        Rounds {
            timed: vec![Timed { result, latencies_ns: Vec::new(), outside: 0.0 }],
            baselines: vec![baseline],
        }
    }

    #[test]
    fn sampling_a_gil_spoils_a_speedup_only_when_it_took_a_real_share_of_the_cores() {
        // On 2 cores, 0.12 cores of sampling is 6 % of the machine.
        let two =
            summarize(&sampled_processes(2, 0.2, 0.12), &Experiment::new(2), 2, false).expect("figures");
        assert!(!two.clean && two.doubts[0].starts_with("sampling the GIL took 0.12"), "{:?}", two.doubts);
        // On 16 cores (seen on a 16-core machine: 9.4×, 0.12 cores sampling) it is under 1 %.
        let sixteen =
            summarize(&sampled_processes(16, 0.32, 0.12), &Experiment::new(16), 16, false).expect("figures");
        assert!(sixteen.clean, "{:?}", sixteen.doubts);
        let costly =
            summarize(&sampled_processes(16, 0.32, 0.9), &Experiment::new(16), 16, false).expect("figures");
        assert!(!costly.clean, "0.9 of 16 cores spent sampling must be said");
    }
}
