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

/// CPU time of process `pid` and everything it started, in ns: its own
/// threads' (the dead ones too), its reaped children's, and its live
/// children's trees.
///
/// Read from each process's CPU clock and gilscope's own `getrusage`, not
/// from `/proc/PID/stat`: that file rounds every process's time down to a
/// clock tick (10 ms) field by field, so a run of fifty processes carried up
/// to two seconds of error, enough to call an idle machine busy.
pub fn tree_cpu_ns(pid: u32) -> u64 {
    // Live children first, reaped ones after: a child reaped in between is
    // counted twice rather than lost, so the error errs toward "not busy".
    let live: u64 = children(pid).into_iter().map(tree_cpu_ns).sum();
    live + crate::clock::process_cpu_ns(pid).unwrap_or(0) + reaped_children_ns(pid)
}

/// CPU time of the children `pid` reaped: to the microsecond for gilscope
/// itself, to the tick for the processes it started.
fn reaped_children_ns(pid: u32) -> u64 {
    if pid == std::process::id() {
        return crate::clock::reaped_children_cpu_ns();
    }
    let tick_ns = 1_000_000_000 / crate::procfs::ticks_per_second();
    crate::procfs::Stat::of(pid).map_or(0, |s| s.reaped_children_ticks * tick_ns)
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
    /// Busy ticks of all cores.
    busy: u64,
    /// CPU time of gilscope's tree, ns.
    ours_ns: u64,
}

impl LoadMeter {
    /// None where /proc cannot be read: then nothing is claimed.
    pub fn start() -> Option<LoadMeter> {
        Some(LoadMeter { at: Instant::now(), busy: busy_ticks()?, ours_ns: tree_cpu_ns(std::process::id()) })
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
        let busy_s = now.busy.saturating_sub(self.busy) as f64 / ticks_per_second();
        let ours_s = now.ours_ns.saturating_sub(self.ours_ns) as f64 / 1e9;
        // The kernel counts the cores' busy time by the tick, and rounds the
        // sum down: less than two ticks is below what it can tell.
        let resolution = 2.0 / ticks_per_second();
        (busy_s - ours_s - resolution).max(0.0) / wall
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
        let before = tree_cpu_ns(std::process::id());
        let child = std::process::Command::new("sh")
            .args(["-c", "timeout 0.6 sh -c 'while :; do :; done'; true"])
            .status();
        assert!(child.is_ok_and(|s| s.success()), "sh runs");
        let after = tree_cpu_ns(std::process::id());
        // The grandchild spun for 0.6 s and was reaped: its CPU is in our tree's.
        let seconds = (after - before) as f64 / 1e9;
        assert!(seconds > 0.15, "a reaped busy child counted {seconds} s of our tree's CPU");
    }

    #[test]
    fn live_children_are_counted_to_the_microsecond_not_rounded_to_the_tick() {
        use std::io::BufRead;
        let _cores = crate::sim::one_at_a_time();
        // Twenty children each spin a little, say how much CPU they used by
        // their own clock, and sleep, alive, while we count them.
        let script = "import time\nwhile time.process_time() < 0.013: pass\n\
                      print(time.process_time(), flush=True)\ntime.sleep(5)";
        // The interpreter itself, not pyenv's shim (a shell that uses CPU
        // of its own before it starts Python).
        let asked = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs (pyenv's, as everywhere in these tests)");
        let python = String::from_utf8_lossy(&asked.stdout).trim().to_owned();
        let mut kids: Vec<std::process::Child> = (0..20)
            .map(|_| {
                std::process::Command::new(&python)
                    .args(["-c", script])
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("the interpreter python3 named runs")
            })
            .collect();
        let mut own_s = 0.0;
        for kid in &mut kids {
            let mut line = String::new();
            let out = kid.stdout.take().expect("piped");
            std::io::BufReader::new(out).read_line(&mut line).expect("the child reports");
            own_s += line.trim().parse::<f64>().expect("a number of seconds");
        }
        let counted_s: f64 = kids.iter().map(|k| tree_cpu_ns(k.id()) as f64 / 1e9).sum();
        for kid in &mut kids {
            let _ = kid.kill();
            let _ = kid.wait();
        }
        // /proc/PID/stat's ticks lost 0.5–1 tick (5–10 ms) a child here.
        assert!(
            (counted_s - own_s).abs() < 0.02,
            "the children said they used {own_s:.3} s of CPU; the tree counted {counted_s:.3} s"
        );
    }

    #[test]
    fn a_busy_process_outside_our_tree_is_outside_load() {
        // Its hog would slow the tests that time the cores.
        let _cores = crate::sim::one_at_a_time();
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
