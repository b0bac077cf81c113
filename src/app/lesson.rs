//! Lessons: a path through the ideas for a class. Each is one entry of
//! [`LESSONS`]: a question for the screen and the settings that answer it.
//! Choosing one sets the settings (as the keys would) and shows the
//! question; the teacher may still change anything by hand.
//!
//! A lesson that cannot run in this gilscope (its model missing) stays in
//! the list with `unavailable` saying why; the keys step over it.

use std::time::Duration;

use crate::app::{App, Effect, fair_mode};
use crate::experiment::spec::{DEFAULT_IO_WAIT, DEFAULT_REQUESTS, Experiment, Model, Workload};

/// How many workers a lesson runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workers {
    Fixed(u32),
    /// One per core of the machine at hand, and at least this many.
    Cores {
        at_least: u32,
    },
}

/// One step of the path.
#[derive(Clone, Copy, Debug)]
pub struct Lesson {
    /// A few words for lists.
    pub title: &'static str,
    /// The question the run answers, one line on screen.
    pub question: &'static str,
    pub workload: Workload,
    pub workers: Workers,
    pub switch_interval: Duration,
    pub gil: bool,
    /// The pace, where the lesson needs its own (I/O waits are paced too,
    /// and twenty requests at the demo's pace take too long for a class).
    pub pace: Option<u32>,
    pub models: &'static [Model],
    /// Why the lesson cannot run in this gilscope, while it cannot.
    pub unavailable: Option<&'static str>,
}

const THREADS_AND_PROCESSES: &[Model] = &[Model::Threads, Model::Processes];
const FIVE_MS: Duration = Duration::from_millis(5);

const fn cpu(title: &'static str, question: &'static str, workers: Workers) -> Lesson {
    Lesson {
        title,
        question,
        workload: Workload::Cpu,
        workers,
        switch_interval: FIVE_MS,
        gil: true,
        pace: None,
        models: THREADS_AND_PROCESSES,
        unavailable: None,
    }
}

const fn convoy(title: &'static str, question: &'static str, switch_interval: Duration) -> Lesson {
    Lesson {
        title,
        question,
        workload: Workload::Mixed,
        workers: Workers::Cores { at_least: 2 },
        switch_interval,
        gil: true,
        pace: None,
        models: THREADS_AND_PROCESSES,
        unavailable: None,
    }
}

/// The path, in order. `gilscope lesson N` starts at entry N (from 1).
pub const LESSONS: &[Lesson] = &[
    cpu(
        "threads or processes",
        "The same CPU-bound loop on every core: threads or processes first?",
        Workers::Cores { at_least: 1 },
    ),
    cpu("one core", "One worker: is there anything for processes to win?", Workers::Fixed(1)),
    cpu("two cores", "Two workers: how close to 2× does each model get?", Workers::Fixed(2)),
    Lesson {
        title: "I/O-bound",
        question: "20 requests per worker that mostly wait: are threads enough?",
        workload: Workload::Io,
        workers: Workers::Fixed(4),
        switch_interval: FIVE_MS,
        gil: true,
        pace: Some(5),
        models: THREADS_AND_PROCESSES,
        unavailable: None,
    },
    convoy("the convoy effect", "An I/O thread beside CPU threads: how long does a reply wait?", FIVE_MS),
    convoy(
        "switch interval 0.1 ms",
        "Switch interval 0.1 ms: shorter waits for I/O, at what cost?",
        Duration::from_micros(100),
    ),
    convoy(
        "switch interval 100 ms",
        "Switch interval 100 ms: how long does each reply wait now?",
        Duration::from_millis(100),
    ),
    Lesson {
        models: &[Model::Threads, Model::FreeThreaded, Model::Processes],
        ..cpu(
            "GIL off",
            "GIL off (free-threaded): do threads keep up with processes now?",
            Workers::Cores { at_least: 1 },
        )
    },
    Lesson {
        models: &[Model::Threads, Model::Subinterpreters { shared_gil: false }],
        ..cpu(
            "subinterpreters",
            "Subinterpreters, a GIL each (PEP 684): threads in parallel?",
            Workers::Cores { at_least: 1 },
        )
    },
];

impl Lesson {
    fn workers(&self, cores: u32) -> u32 {
        match self.workers {
            Workers::Fixed(n) => n,
            Workers::Cores { at_least } => cores.max(at_least),
        }
    }

    /// `e` with the lesson's settings; what the lesson leaves alone stays.
    pub fn settings(&self, e: &Experiment, cores: u32) -> Experiment {
        Experiment {
            workers: self.workers(cores),
            workload: self.workload,
            switch_interval: self.switch_interval,
            gil: self.gil,
            requests: DEFAULT_REQUESTS,
            io_wait: DEFAULT_IO_WAIT,
            pace: self.pace.unwrap_or(e.pace),
            ..e.clone()
        }
    }
}

/// Lesson `n` as a person counts (from 1), if it can run here.
pub fn numbered(n: usize) -> Result<usize, String> {
    numbered_in(LESSONS, n)
}

fn numbered_in(lessons: &[Lesson], n: usize) -> Result<usize, String> {
    let index = n.checked_sub(1).filter(|&i| i < lessons.len()).ok_or_else(|| {
        format!("there is no lesson {n}: they go from 1 to {} (gilscope lesson --list)", lessons.len())
    })?;
    match lessons[index].unavailable {
        Some(why) => Err(format!("lesson {n} ({}) cannot run: {why}", lessons[index].title)),
        None => Ok(index),
    }
}

/// The next (or previous) lesson of `lessons` that can run, from `at`.
fn step_in(lessons: &[Lesson], at: Option<usize>, forth: bool) -> Option<usize> {
    let runnable = |i: &usize| lessons[*i].unavailable.is_none();
    match (at, forth) {
        (None, true) => (0..lessons.len()).find(runnable),
        (None, false) => None,
        (Some(at), true) => (at + 1..lessons.len()).find(runnable),
        (Some(at), false) => (0..at.min(lessons.len())).rev().find(runnable),
    }
}

/// The lessons as `gilscope lesson --list` prints them.
pub fn list() -> String {
    LESSONS
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mark = l.unavailable.map_or(String::new(), |why| format!("  [unavailable: {why}]"));
            format!("{:>2}. {:<24}{}{mark}", i + 1, l.title, l.question)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl App {
    /// The lesson on screen, if any.
    pub fn current_lesson(&self) -> Option<&'static Lesson> {
        LESSONS.get(self.lesson?)
    }

    /// Whether the settings are still the lesson's (the teacher may have
    /// changed some by hand).
    pub fn lesson_as_set(&self) -> bool {
        self.current_lesson().is_some_and(|l| {
            self.models == l.models && self.experiment == l.settings(&self.experiment, self.cores())
        })
    }

    /// The next (or previous) lesson that can run, from the current one.
    pub fn lesson_step(&self, forth: bool) -> Option<usize> {
        step_in(LESSONS, self.lesson, forth)
    }

    /// Opens lesson `index`: its settings as the keys would set them (a run
    /// going on restarts with them, a finished one goes to the history).
    pub fn open_lesson(&mut self, index: usize, effects: &mut Vec<Effect>) {
        let Some(lesson) = LESSONS.get(index).filter(|l| l.unavailable.is_none()) else { return };
        self.lesson = Some(index);
        let experiment = lesson.settings(&self.experiment, self.cores());
        if self.models == lesson.models && self.experiment == experiment {
            return;
        }
        let restart = self.busy() && !self.paused();
        self.reset(effects);
        self.experiment = experiment;
        self.models = lesson.models.to_vec();
        // The fair mode for the lesson's workers, until the teacher picks one.
        self.mode_chosen = false;
        self.mode = fair_mode(self.experiment.workers, self.models.len(), self.cores());
        if restart {
            self.start(effects);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lesson_asks_one_short_question() {
        for l in LESSONS {
            assert!(l.question.ends_with('?'), "{}", l.question);
            // " lesson 1/9 · " and the question fit 80 columns.
            assert!(l.question.chars().count() <= 66, "{} is too long for one line", l.question);
        }
    }

    #[test]
    fn a_lesson_that_cannot_run_says_why_the_keys_step_over_it_and_others_count_from_one() {
        assert_eq!(numbered(1), Ok(0));
        assert!(numbered(0).is_err());
        assert!(numbered(LESSONS.len() + 1).is_err_and(|e| e.contains("from 1 to")));
        let missing = Lesson { unavailable: Some("its model is not in this gilscope"), ..LESSONS[0] };
        let path = [LESSONS[0], missing, LESSONS[1]];
        let err = numbered_in(&path, 2).unwrap_err();
        assert_eq!(err, "lesson 2 (threads or processes) cannot run: its model is not in this gilscope");
        assert_eq!(step_in(&path, Some(0), true), Some(2), "l steps over it");
        assert_eq!(step_in(&path, Some(2), false), Some(0), "and so does L");
        assert_eq!(step_in(&path, Some(2), true), None, "l stops at the last");
    }
}
