//! Support code shared by the poolside benchmarks.
//!
//! Conventions every bench follows, so `cargo xtask bench` can build its ratio table:
//!
//! * one criterion **group per scenario** (`bufpool_fill_256b`, `connpool_get_drop`),
//! * one **function id per implementation**: ours start with `poolside` (for example
//!   `poolside/BufPool`), peers carry the peer crate's name (`object-pool`, `deadpool`),
//! * a parameter (`BenchmarkId::new(name, threads)`) where the scenario has one.
//!
//! Figures that criterion does not measure (allocations per operation, peak resident
//! memory) are written as markdown fragments with [`write_extra_report`]; the xtask
//! appends them to the report.
//!
//! ```
//! let stats = poolside_benches::alloc::measure(|| {
//!     let v: Vec<u8> = Vec::with_capacity(64);
//!     std::hint::black_box(v);
//! });
//! // Without the counting allocator installed as the global allocator nothing is counted.
//! assert_eq!(stats.allocations, 0);
//! ```

pub mod alloc;

use std::path::PathBuf;
use std::time::Duration;

/// Whether the run was started with `cargo xtask bench --quick`.
pub fn quick() -> bool {
    std::env::var_os("POOLSIDE_BENCH_QUICK").is_some_and(|v| v == "1")
}

/// Picks the full-run or quick-run value.
///
/// ```
/// let iterations = poolside_benches::full_or_quick(1_000_000, 100_000);
/// assert!(iterations == 1_000_000 || iterations == 100_000);
/// ```
pub fn full_or_quick<T>(full: T, quick_value: T) -> T {
    if quick() { quick_value } else { full }
}

/// A criterion configuration suited to the run: short in quick mode, the defaults
/// otherwise. Command-line flags still override it.
pub fn criterion_config() -> criterion::Criterion {
    let c = criterion::Criterion::default().without_plots();
    if quick() {
        c.warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(600))
            .sample_size(10)
    } else {
        c.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
    }
}

/// The thread counts of the scaling tables: 1, 2, 4, 8, 16 (capped by
/// `POOLSIDE_BENCH_MAX_THREADS` when set).
pub fn thread_counts() -> Vec<usize> {
    let cap = std::env::var("POOLSIDE_BENCH_MAX_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16usize);
    [1, 2, 4, 8, 16].into_iter().filter(|&t| t <= cap).collect()
}

/// Where extra report fragments go: `$POOLSIDE_BENCH_REPORT_DIR/extra`, or
/// `target/bench-report/extra` in the workspace.
pub fn extra_report_dir() -> PathBuf {
    let base =
        std::env::var_os("POOLSIDE_BENCH_REPORT_DIR").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-report")
        });
    base.join("extra")
}

/// Writes a markdown fragment (a heading and a table, say) that `cargo xtask bench`
/// appends to its report, and prints it so a plain `cargo bench` shows it too.
pub fn write_extra_report(name: &str, markdown: &str) {
    println!("\n{markdown}");
    let dir = extra_report_dir();
    if let Err(err) = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join(format!("{name}.md")), markdown))
    {
        eprintln!("could not write the extra report {name}: {err}");
    }
}
