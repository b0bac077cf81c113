//! What the benches that compare with real `CPython` share: waiting for a
//! quiet machine before each measurement, on a machine shared with others.

use std::time::{Duration, Instant};

/// Runnable tasks on the whole machine now (`/proc/loadavg`'s 4th field,
/// this process's own running thread included); None where unreadable.
fn running_now() -> Option<u32> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().nth(3)?.split('/').next()?.parse().ok()
}

/// Waits until, over one second of samples, no more than `max_running` tasks
/// were runnable at once, or `patience` has passed. Returns the busiest
/// sample of the last second: what the measurement that follows shared the
/// cores with.
pub fn wait_for_quiet(max_running: u32, patience: Duration) -> u32 {
    let start = Instant::now();
    loop {
        let mut busiest = 0;
        for _ in 0..10 {
            busiest = busiest.max(running_now().unwrap_or(0));
            std::thread::sleep(Duration::from_millis(100));
        }
        if busiest <= max_running || start.elapsed() > patience {
            return busiest;
        }
    }
}
