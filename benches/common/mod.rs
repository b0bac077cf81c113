//! What the benches that compare with real `CPython` share: waiting for a
//! quiet machine before each measurement, on a machine shared with others,
//! and running one simulated interpreter to its records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gilscope::protocol::Record;
use gilscope::sim::gil::next_records;
use gilscope::sim::interpreter::{Interpreter, StartGun};

/// Runs `interpreter` with its gun already fired and returns every record
/// it wrote, collected on another thread as a worker process's writer does.
pub fn records_of(interpreter: &Interpreter) -> Vec<Record> {
    let (tx, rx) = crossbeam_channel::unbounded::<Record>();
    let collector = std::thread::spawn(move || {
        let mut all = Vec::new();
        while let Some(records) = next_records(&rx) {
            all.extend(records);
        }
        all
    });
    interpreter.run(&tx, &Arc::new(StartGun::fired())).expect("the simulated interpreter runs");
    drop(tx);
    collector.thread().unpark();
    collector.join().expect("the collector")
}

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
