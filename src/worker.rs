//! The worker process: `gilscope worker …`, started by the supervisor.
//!
//! It runs one simulated interpreter and streams its records on stdout in the
//! wire format. Its workers start their work when `go` arrives on stdin (the
//! start gun: every worker of the race has started by then). It exits when
//! its stdin reaches end of file: the parent holds the other end, so a
//! parent that dies takes its workers with it.

use std::io::{BufWriter, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::clock::{now_ns, process_usage};
use crate::protocol::{Hello, Record, Runtime, Timeline, VERSION};
use crate::sim::gil::{POLL_RECORDS_EVERY, next_records};
use crate::sim::interpreter::{Interpreter, StartGun};
use crate::sim::workload::{Role, WorkParams};

/// The worker's command line. Built by [`WorkerArgs::to_args`], read by clap:
/// one definition for both ends.
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct WorkerArgs {
    #[arg(long)]
    pub first_worker: u32,
    /// One role per thread, comma separated: cpu or io.
    #[arg(long, value_delimiter = ',', value_parser = parse_role, required = true)]
    pub roles: Vec<Role>,
    #[arg(long)]
    pub gil: bool,
    /// Every worker in an interpreter of its own, with its own GIL.
    #[arg(long)]
    pub own_gils: bool,
    #[arg(long)]
    pub switch_interval_ns: u64,
    #[arg(long)]
    pub iterations: u64,
    #[arg(long)]
    pub units: u32,
    #[arg(long)]
    pub requests: u32,
    #[arg(long)]
    pub io_wait_ns: u64,
    #[arg(long)]
    pub reply_iterations: u64,
    #[arg(long)]
    pub progress_every: u64,
    /// The parent's clock when it asked for this process, when the process
    /// is what starts its first worker.
    #[arg(long)]
    pub process_requested_at: Option<u64>,
    /// CPU time each worker spends starting its interpreter before its
    /// work, one interpreter at a time (the subinterpreter models; 0: none).
    #[arg(long, default_value_t = 0)]
    pub interpreter_start_ns: u64,
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "cpu" => Ok(Role::Cpu),
        "io" => Ok(Role::Io),
        _ => Err(format!("unknown role {s:?}")),
    }
}

impl WorkerArgs {
    pub fn to_args(&self) -> Vec<String> {
        let roles: Vec<&str> = self
            .roles
            .iter()
            .map(|r| match r {
                Role::Cpu => "cpu",
                Role::Io => "io",
            })
            .collect();
        let mut args = vec![
            "worker".to_owned(),
            format!("--first-worker={}", self.first_worker),
            format!("--roles={}", roles.join(",")),
            format!("--switch-interval-ns={}", self.switch_interval_ns),
            format!("--iterations={}", self.iterations),
            format!("--units={}", self.units),
            format!("--requests={}", self.requests),
            format!("--io-wait-ns={}", self.io_wait_ns),
            format!("--reply-iterations={}", self.reply_iterations),
            format!("--progress-every={}", self.progress_every),
        ];
        if self.gil {
            args.push("--gil".to_owned());
        }
        if self.own_gils {
            args.push("--own-gils".to_owned());
        }
        if let Some(t) = self.process_requested_at {
            args.push(format!("--process-requested-at={t}"));
        }
        if self.interpreter_start_ns > 0 {
            args.push(format!("--interpreter-start-ns={}", self.interpreter_start_ns));
        }
        args
    }

    fn interpreter(&self) -> Interpreter {
        Interpreter {
            first_worker: self.first_worker,
            roles: self.roles.clone(),
            gil: self.gil,
            own_gils: self.own_gils,
            switch_interval: Duration::from_nanos(self.switch_interval_ns),
            params: WorkParams {
                iterations: self.iterations,
                units: self.units,
                requests: self.requests,
                io_wait: Duration::from_nanos(self.io_wait_ns),
                reply_iterations: self.reply_iterations,
                progress_every: self.progress_every,
            },
            process_requested_at: self.process_requested_at,
            interpreter_start: Duration::from_nanos(self.interpreter_start_ns),
        }
    }
}

/// Records a worker may queue before its interpreter waits for the writer:
/// a flood slows the worker down instead of growing its memory.
const QUEUE: usize = 64 * 1024;

/// Runs the worker process to its end. Never returns.
pub fn main(args: &WorkerArgs) -> ! {
    let gun = Arc::new(StartGun::default());
    // `go` on stdin fires the start gun; end of file means the parent let go
    // of our stdin (or died): exit at once.
    let stdin_gun = Arc::clone(&gun);
    std::thread::spawn(move || {
        let (mut line, mut chunk) = (Vec::new(), [0u8; 64]);
        let mut stdin = std::io::stdin();
        while let Ok(n @ 1..) = stdin.read(&mut chunk) {
            for &byte in &chunk[..n] {
                if byte != b'\n' {
                    line.push(byte);
                } else if std::mem::take(&mut line) == b"go" {
                    stdin_gun.fire();
                }
            }
            line.truncate(16);
        }
        std::process::exit(3);
    });

    let interpreter = args.interpreter();
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let hello = Hello {
        version: VERSION,
        pid: std::process::id(),
        runtime: Runtime::Sim,
        gil: interpreter.gil,
        threads: interpreter.roles.len() as u32,
        first_worker: interpreter.first_worker,
        timeline: Timeline::Exact,
        gils: interpreter.own_gils.then_some(interpreter.roles.len() as u32),
    };
    let writer = std::thread::spawn(move || write_stream(std::io::stdout().lock(), &hello, &rx));
    gun.heralded_by(writer.thread().clone());
    let counts = match interpreter.run(&tx, &gun) {
        Ok(counts) => counts,
        Err(message) => {
            // Say why before going: woken, the writer drains the queue and
            // flushes within microseconds (other workers may still be
            // running, so it is not joined).
            let _ = tx.send(Record::Error { message });
            writer.thread().unpark();
            let deadline = std::time::Instant::now() + Duration::from_secs(1);
            while !tx.is_empty() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(POLL_RECORDS_EVERY * 2);
            std::process::exit(1);
        }
    };
    let (cpu_ns, max_rss_kb) = process_usage();
    let _ = tx.send(Record::End {
        t: now_ns(),
        pid: std::process::id(),
        cpu_ns,
        max_rss_kb,
        switches: counts.switches,
        drop_requests: Some(counts.drop_requests),
    });
    drop(tx);
    // The writer polls; nothing is left to wait for.
    writer.thread().unpark();
    let written = writer.join().unwrap_or(false);
    std::process::exit(i32::from(!written));
}

/// Writes the header and then every record. Records are queued by the GIL
/// under its own mutex and picked up by polling ([`next_records`]), never by
/// a wake-up from the sender; each batch goes out in one write, so the parent
/// sees events within [`POLL_RECORDS_EVERY`], not at exit. Unpark the
/// writer's thread to have it look at once. Returns false when `out`
/// (stdout) is gone.
pub fn write_stream(out: impl Write, hello: &Hello, rx: &Receiver<Record>) -> bool {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    if writeln!(out, "{hello}").and_then(|()| out.flush()).is_err() {
        return false;
    }
    while let Some(records) = next_records(rx) {
        for record in records {
            if writeln!(out, "{record}").is_err() {
                return false;
            }
        }
        if out.flush().is_err() {
            return false;
        }
    }
    true
}
