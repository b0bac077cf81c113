//! How busy the machine was with other things while a run was timed.
//!
//! The kernel counts every core's busy time (`/proc/stat`, steal time from
//! the hypervisor included); gilscope counts its own process tree's CPU
//! time (its own, its children's and, once reaped, their children's, from
//! `/proc/PID/stat`). The difference, over the wall time, is the cores'
//! worth of CPU that other processes took: when it is large, a speedup
//! measured meanwhile is not to be trusted.

use std::time::Instant;

/// Clock ticks per second of /proc's CPU times (`USER_HZ`).
fn ticks_per_second() -> f64 {
    crate::procfs::ticks_per_second() as f64
}

/// Busy ticks of all cores together since boot: all but idle and iowait.
pub fn busy_ticks() -> Option<u64> {
    let stat = crate::procfs::read("/proc/stat")?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let [user, nice, system, _idle, _iowait, irq, softirq, steal, ..] = fields[..] else { return None };
    Some(user + nice + system + irq + softirq + steal)
}

/// CPU ticks of process `pid` and everything it started: its own and its
/// reaped children's (fields 14–17 of /proc/PID/stat), plus its live
/// children's trees.
pub fn tree_ticks(pid: u32) -> u64 {
    let Some(stat) = crate::procfs::Stat::of(pid) else { return 0 };
    let own = stat.cpu_ticks + stat.reaped_children_ticks;
    own + children(pid).into_iter().map(tree_ticks).sum::<u64>()
}

/// The live children of `pid`, from every thread's list.
pub fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for tid in crate::procfs::task_ids(pid).unwrap_or_default() {
        if let Some(text) = crate::procfs::read(&format!("/proc/{pid}/task/{tid}/children")) {
            out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

/// Measures the outside load from a moment on.
#[derive(Clone, Copy, Debug)]
pub struct LoadMeter {
    at: Instant,
    busy: u64,
    ours: u64,
}

impl LoadMeter {
    /// None where /proc cannot be read: then nothing is claimed.
    pub fn start() -> Option<LoadMeter> {
        Some(LoadMeter { at: Instant::now(), busy: busy_ticks()?, ours: tree_ticks(std::process::id()) })
    }

    /// Cores' worth of CPU that processes outside gilscope's tree used since
    /// the start (0 when too little time passed to tell).
    pub fn outside_cores(&self) -> f64 {
        LoadMeter::start().map_or(0.0, |now| self.outside_until(&now))
    }

    /// The outside load since the start, and a meter that starts now, from
    /// one reading of /proc (a monitor that reads every half second pays
    /// for one walk of the process tree, not two).
    pub fn lap(&mut self) -> Option<f64> {
        let now = LoadMeter::start()?;
        let outside = self.outside_until(&now);
        *self = now;
        Some(outside)
    }

    fn outside_until(&self, now: &LoadMeter) -> f64 {
        let wall = now.at.duration_since(self.at).as_secs_f64();
        if wall < 0.05 {
            return 0.0;
        }
        let other = now.busy.saturating_sub(self.busy).saturating_sub(now.ours.saturating_sub(self.ours));
        other as f64 / ticks_per_second() / wall
    }
}

/// Above this many cores' worth of outside CPU, a timing is not clean: a
/// fifth of a core, or a tenth of the machine on a big one.
pub fn too_busy(cores: u32) -> f64 {
    (0.1 * f64::from(cores)).max(0.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_child_of_ours_counts_as_ours_even_once_reaped() {
        let before = tree_ticks(std::process::id());
        let child = std::process::Command::new("sh")
            .args(["-c", "timeout 0.6 sh -c 'while :; do :; done'; true"])
            .status();
        assert!(child.is_ok_and(|s| s.success()), "sh runs");
        let after = tree_ticks(std::process::id());
        // The grandchild spun for 0.6 s and was reaped: its CPU is in our tree's.
        let seconds = (after - before) as f64 / ticks_per_second();
        assert!(seconds > 0.15, "a reaped busy child counted {seconds} s of our tree's CPU");
    }

    #[test]
    fn a_busy_process_outside_our_tree_is_outside_load() {
        // A hog that is not our child (its shell exits at once) and that
        // stops by itself after a second.
        let started = std::process::Command::new("sh")
            .args(["-c", "timeout 1.2 sh -c 'while :; do :; done' >/dev/null 2>&1 &"])
            .status();
        assert!(started.is_ok_and(|s| s.success()), "sh runs");
        std::thread::sleep(std::time::Duration::from_millis(100));
        let Some(meter) = LoadMeter::start() else { panic!("/proc/stat is readable on Linux") };
        std::thread::sleep(std::time::Duration::from_millis(600));
        let outside = meter.outside_cores();
        assert!(outside > 0.6, "a spinning process outside our tree showed as {outside} cores");
    }
}
