//! The start gun of runs that race: it fires (`go` on every worker's stdin)
//! once every worker of every run has recorded its first instruction, or at
//! once when one of them can no longer start, so no run waits forever.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::experiment::supervisor::Shared;

#[derive(Debug)]
pub(super) struct Gun {
    /// Workers that must start first.
    expected: usize,
    started: AtomicUsize,
    fired: AtomicBool,
    runs: Vec<Arc<Shared>>,
}

impl Gun {
    pub(super) fn new(expected: usize, runs: Vec<Arc<Shared>>) -> Self {
        let gun = Gun { expected, started: AtomicUsize::new(0), fired: AtomicBool::new(false), runs };
        if expected == 0 {
            gun.fire();
        }
        gun
    }

    /// One more worker started.
    pub(super) fn started_one(&self) {
        if self.started.fetch_add(1, Ordering::SeqCst) + 1 >= self.expected {
            self.fire();
        }
    }

    /// Whether it has fired: the race is on.
    pub(super) fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// Fires, once: every worker of every run starts its work.
    pub(super) fn fire(&self) {
        if !self.fired.swap(true, Ordering::SeqCst) {
            for run in &self.runs {
                run.fire();
            }
        }
    }
}
