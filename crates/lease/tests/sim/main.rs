//! Deterministic simulation of the elector: many candidates running the real `Elector` code against the
//! in-process stand-in API server, with no sockets, on tokio's paused clock, in one thread per run. Every
//! random choice (the plan of faults, each request's fate, every jitter) comes from one seed, so a seed names
//! exactly one run and replays it.
//!
//! - `cargo test -p leasehold-lease --test sim` runs `SIM_SEEDS` seeds (default 2,000) from `SIM_FIRST_SEED`
//!   (default 0) on every core and fails with the first failing seed's trace.
//! - `SIM_KEEP_GOING=1` runs every seed even after a failure, and prints one line per failing seed.
//! - `SIM_SEED=<seed> make sim-replay` replays one seed and prints its whole trace; with
//!   `SIM_LOG=leasehold_lease=debug` also the electors' own logs, on stderr.
//!
//! Exact replay needs tokio's own generator seeded, which only a build with `--cfg tokio_unstable` allows; the
//! Makefile builds the simulation so, in its own target directory (`target/sim`), and leaves the product's builds
//! alone.
//!
//! The invariants are listed in `check.rs`; the faults in `plan.rs`.

mod check;
mod plan;
mod regressions;
mod trace;
mod transport;
mod world;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Instant,
};

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => match v.trim().parse() {
            Ok(n) => n,
            Err(_) => panic!("{name}={v:?} is not a whole number"),
        },
        Err(_) => default,
    }
}

/// The report of a failing run: the seed, how to replay it, what broke, and the trace.
fn report(o: &world::Outcome, tail: usize) -> String {
    let mut s = if o.plan.scripted {
        format!("the scripted run with seed {} failed\n", o.plan.seed)
    } else {
        format!(
            "seed {} failed; replay with: SIM_SEED={} make sim-replay\n",
            o.plan.seed, o.plan.seed
        )
    };
    for v in &o.violations {
        s.push_str(&format!("  {v}\n"));
    }
    let skip = o.trace.len().saturating_sub(tail);
    if skip > 0 {
        s.push_str(&format!(
            "  ... {skip} earlier trace lines (the plan first):\n"
        ));
        for l in o
            .trace
            .iter()
            .take_while(|l| l.contains("plan:") || l.contains("seed "))
        {
            s.push_str(&format!("{l}\n"));
        }
    }
    for l in &o.trace[skip..] {
        s.push_str(&format!("{l}\n"));
    }
    s
}

/// Prints the elector's own logs (`SIM_LOG=leasehold_lease=debug`) while one seed replays, stamped with the virtual
/// time since the run's start, as the trace is, so the two interleave by their times.
fn log_to_stderr(filter: &str) {
    struct Virtual;
    impl tracing_subscriber::fmt::time::FormatTime for Virtual {
        fn format_time(
            &self,
            w: &mut tracing_subscriber::fmt::format::Writer<'_>,
        ) -> std::fmt::Result {
            let since = trace::latest_start().map_or(0.0, |s| s.elapsed().as_secs_f64());
            write!(w, "[{since:>9.3}]")
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(Virtual)
        .with_writer(std::io::stderr)
        .try_init();
}

#[test]
fn seeds_keep_every_invariant() {
    if let Ok(seed) = std::env::var("SIM_SEED") {
        let seed: u64 = seed
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("SIM_SEED={seed:?} is not a whole number"));
        if let Ok(filter) = std::env::var("SIM_LOG") {
            log_to_stderr(&filter);
        }
        let o = world::run(seed);
        for l in &o.trace {
            println!("{l}");
        }
        assert!(o.violations.is_empty(), "{}", report(&o, 400));
        return;
    }
    let first = env_u64("SIM_FIRST_SEED", 0);
    let count = env_u64("SIM_SEEDS", 2_000);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(count.max(1) as usize);
    let next = Arc::new(AtomicU64::new(first));
    let failed = Arc::new(parking_lot::Mutex::new(None::<String>));
    let requests = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let late = Arc::new(AtomicUsize::new(0));
    let keep_going = std::env::var_os("SIM_KEEP_GOING").is_some();
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (next, failed, requests, done, late) = (
                Arc::clone(&next),
                Arc::clone(&failed),
                Arc::clone(&requests),
                Arc::clone(&done),
                Arc::clone(&late),
            );
            std::thread::spawn(move || {
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    let stop = !keep_going && failed.lock().is_some();
                    if seed >= first + count || stop {
                        return;
                    }
                    let t0 = Instant::now();
                    let o = world::run(seed);
                    if t0.elapsed().as_millis() >= 300 {
                        println!(
                            "seed {seed} took {:.1}s of real time",
                            t0.elapsed().as_secs_f64()
                        );
                    }
                    requests.fetch_add(o.requests, Ordering::Relaxed);
                    done.fetch_add(1, Ordering::Relaxed);
                    if let Some(by) = o.past_fault_end_bound {
                        late.fetch_add(1, Ordering::Relaxed);
                        println!(
                            "seed {seed} elected {:.3}s past the bound counted from the last fault's end (within \
                             the bound counted from when every candidate was back in touch)",
                            by.as_secs_f64()
                        );
                    }
                    if !o.violations.is_empty() {
                        let faults: Vec<String> =
                            o.plan.faults.iter().map(|f| f.fault.to_string()).collect();
                        println!(
                            "seed {seed} fails: {} (faults: {})",
                            o.violations[0],
                            faults.join("; ")
                        );
                        let mut f = failed.lock();
                        if f.is_none() {
                            *f = Some(report(&o, 150));
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        if w.join().is_err() {
            panic!("a simulation thread panicked");
        }
    }
    let elapsed = started.elapsed();
    let n = done.load(Ordering::Relaxed);
    println!(
        "simulated {n} seeds from {first} in {:.1}s ({:.1} seeds/s, {} requests) on {threads} threads",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        requests.load(Ordering::Relaxed)
    );
    println!(
        "{} seeds elected past LD + RD + J + 1 s from the last fault's end, all within it from when every \
         candidate was back in touch",
        late.load(Ordering::Relaxed)
    );
    if let Some(r) = failed.lock().take() {
        panic!("{r}");
    }
}

#[test]
#[cfg_attr(
    not(tokio_unstable),
    ignore = "exact replay needs tokio's generator seeded: build with --cfg tokio_unstable, as `make test` does"
)]
fn one_seed_replays_to_the_same_trace() {
    let seed = env_u64("SIM_REPLAY_SEED", 42);
    let a = world::run(seed);
    let b = world::run(seed);
    assert!(
        a.trace.len() > 10,
        "a run should trace more than its plan: {:?}",
        a.trace
    );
    if let Some(i) = a.trace.iter().zip(&b.trace).position(|(x, y)| x != y) {
        panic!(
            "seed {seed} ran differently the second time, from line {i}:\nfirst:  {}\nsecond: {}",
            a.trace[i], b.trace[i]
        );
    }
    assert_eq!(
        a.trace.len(),
        b.trace.len(),
        "seed {seed}: the traces differ in length"
    );
}
