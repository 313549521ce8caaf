//! Interleaved rounds for the buffer-pool scaling tables, shared by the `bufpool` and
//! `bufpool_mimalloc` bench binaries (each with its own global allocator).
//!
//! Criterion runs one contender after another, so a slow phase of a busy machine (a
//! neighbour's build, a CPU quota) can land on one contender only. Here every round
//! runs every contender once at every thread count, the order rotating from round to
//! round, and the table reports each contender's median over the rounds with the
//! spread (lowest–highest), plus the ratios of the medians.
//!
//! Each run starts fresh threads that share one instance of the contender, as an
//! application's worker threads share one pool: a thread's first operation on the
//! pool is inside the timed window, like everything else it does.

use std::time::Instant;

/// A contender: a name for the table and a run of its operation.
pub(crate) struct Contender<'a> {
    /// The row name (`poolside/BufPool`, `mimalloc`, ...).
    pub(crate) name: &'static str,
    /// One run: `(threads, ops_per_thread)` to M ops/s, made by [`contender`] so that
    /// each operation is compiled into its own loop (no call per operation).
    pub(crate) run: Box<dyn Fn(usize, usize) -> f64 + Sync + 'a>,
}

/// A contender running `op`, one get–fill–drop operation, called from several threads
/// at once.
pub(crate) fn contender<'a, F: Fn() + Sync + 'a>(name: &'static str, op: F) -> Contender<'a> {
    Contender { name, run: Box::new(move |threads, ops| run_once(&op, threads, ops)) }
}

/// Aggregate throughput (M ops/s) of `threads` fresh threads each running `op`
/// `ops_per_thread` times; the clock starts before the threads are released.
pub(crate) fn run_once<F: Fn() + Sync>(op: &F, threads: usize, ops_per_thread: usize) -> f64 {
    let barrier = std::sync::Barrier::new(threads + 1);
    let started = std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..ops_per_thread {
                    op();
                }
            });
        }
        let started = Instant::now();
        barrier.wait();
        started
    });
    (threads * ops_per_thread) as f64 / started.elapsed().as_secs_f64() / 1e6
}

/// Median and spread of one contender at one thread count.
pub(crate) struct Summary {
    /// The median rate, M ops/s.
    pub(crate) median: f64,
    /// The lowest rate of any round.
    pub(crate) low: f64,
    /// The highest rate of any round.
    pub(crate) high: f64,
}

fn summarize(mut rates: Vec<f64>) -> Summary {
    rates.sort_by(f64::total_cmp);
    let n = rates.len();
    let median = if n % 2 == 1 { rates[n / 2] } else { (rates[n / 2 - 1] + rates[n / 2]) / 2.0 };
    Summary { median, low: rates[0], high: rates[n - 1] }
}

/// Runs `rounds` interleaved rounds and returns, per thread count, one summary per
/// contender (in the order given).
pub(crate) fn run_rounds(
    contenders: &[Contender<'_>],
    thread_counts: &[usize],
    rounds: usize,
    ops_per_thread: usize,
) -> Vec<(usize, Vec<Summary>)> {
    let mut rates = vec![vec![Vec::with_capacity(rounds); contenders.len()]; thread_counts.len()];
    for round in 0..rounds {
        for (t, &threads) in thread_counts.iter().enumerate() {
            for k in 0..contenders.len() {
                // Rotate the order so that no contender always runs first.
                let i = (k + round) % contenders.len();
                rates[t][i].push((contenders[i].run)(threads, ops_per_thread));
            }
        }
    }
    thread_counts
        .iter()
        .zip(rates)
        .map(|(&threads, per)| (threads, per.into_iter().map(summarize).collect()))
        .collect()
}

/// A rate with three significant digits (0.0123, 1.23, 123.4).
fn rate(value: f64) -> String {
    match value {
        v if v >= 100.0 => format!("{v:.1}"),
        v if v >= 1.0 => format!("{v:.2}"),
        v => format!("{v:.4}"),
    }
}

/// A markdown table of the summaries, with each contender's median against the
/// `baselines` (by index into `contenders`) and against its own 1-thread median.
pub(crate) fn table(
    title: &str,
    command: &str,
    contenders: &[Contender<'_>],
    results: &[(usize, Vec<Summary>)],
    baselines: &[usize],
    rounds: usize,
) -> String {
    let mut md = format!(
        "### {title}\n\nMedian of {rounds} interleaved rounds (lowest–highest), M ops/s \
         aggregate; every round runs every contender at every thread count. \
         Command: `{command}`.\n\n| threads | implementation | median | spread |"
    );
    for &b in baselines {
        md.push_str(&format!(" vs {} |", contenders[b].name));
    }
    md.push_str(" vs own 1 thread |\n|---:|---|---:|---:|");
    for _ in baselines {
        md.push_str("---:|");
    }
    md.push_str("---:|\n");
    let one_thread = results.iter().find(|(t, _)| *t == 1);
    for (threads, summaries) in results {
        for (i, s) in summaries.iter().enumerate() {
            md.push_str(&format!(
                "| {threads} | {} | {} | {}–{} |",
                contenders[i].name,
                rate(s.median),
                rate(s.low),
                rate(s.high)
            ));
            for &b in baselines {
                md.push_str(&format!(" {:.2}× |", s.median / summaries[b].median));
            }
            match one_thread {
                Some((_, base)) => md.push_str(&format!(" {:.2}× |\n", s.median / base[i].median)),
                None => md.push_str(" – |\n"),
            }
        }
    }
    md
}
