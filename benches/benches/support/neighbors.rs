//! A busy machine on demand: `POOLSIDE_BENCH_NEIGHBORS=n` starts `n` threads that
//! spin (doing no useful work, never yielding on purpose) for the rest of the run, so
//! a bench shows how a pool behaves when its threads compete with others for the
//! cores. Unset or `0`: no neighbours.
//!
//! Use from a bench with `#[path = "support/neighbors.rs"] mod neighbors;` and call
//! `neighbors::for_run()` at the start of every bench function (the first call starts
//! them; later calls only report the count).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The neighbour count from `POOLSIDE_BENCH_NEIGHBORS` (0 when unset or not a number).
fn count_from_env() -> usize {
    std::env::var("POOLSIDE_BENCH_NEIGHBORS").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Starts the neighbours `POOLSIDE_BENCH_NEIGHBORS` asks for, once per process, and
/// returns how many spin. They run until the process exits.
pub(crate) fn for_run() -> usize {
    static STARTED: OnceLock<usize> = OnceLock::new();
    *STARTED.get_or_init(|| {
        let n = count_from_env();
        for i in 0..n {
            std::thread::Builder::new()
                .name(format!("bench-neighbor-{i}"))
                .spawn(|| {
                    // A private counter: the neighbours burn CPU without sharing a
                    // cache line with each other or with the pools under test.
                    let spins = AtomicU64::new(0);
                    loop {
                        spins.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .expect("spawning a neighbour thread");
        }
        if n > 0 {
            eprintln!("bench: {n} spinning neighbour thread(s) for the whole run");
        }
        n
    })
}
