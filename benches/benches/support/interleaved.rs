//! Interleaved rounds for the adapter benches: on a shared machine the load changes
//! while criterion measures one contender after another, so these benches also run
//! every contender once per round, in rotating order, and report each one's median
//! throughput and its ratio to the first contender.
//!
//! `POOLSIDE_BENCH_CONTENDERS=a,b` runs only the contenders with those names (for a
//! profile of one pool, or an A/B of two); unset, every contender runs.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// One task's or one round's work.
pub(crate) type Batch = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One contender: a name and a function that runs `n` operations spread over `tasks`
/// tasks.
pub(crate) struct Contender {
    name: &'static str,
    run: Box<dyn Fn(u64) -> Batch>,
}

/// A contender whose operation is `op(pool, i)`, run by `tasks` concurrent tasks.
// Each bench that includes this file uses one kind of contender or the other.
#[allow(dead_code)]
pub(crate) fn contender<P, F, Fut>(name: &'static str, tasks: usize, pool: P, op: F) -> Contender
where
    P: Clone + Send + Sync + 'static,
    F: Fn(P, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    Contender {
        name,
        run: Box::new(move |n| {
            let per_task = n.div_ceil(tasks as u64);
            let handles: Vec<_> = (0..tasks)
                .map(|t| {
                    let (pool, op) = (pool.clone(), op.clone());
                    async move {
                        for i in 0..per_task {
                            op(pool.clone(), t as u64 * 1_000_000 + i).await;
                        }
                    }
                })
                .collect();
            Box::pin(async move {
                let joins: Vec<_> = handles.into_iter().map(tokio::spawn).collect();
                for join in joins {
                    join.await.expect("bench task");
                }
            })
        }),
    }
}

/// A contender whose tasks each own one handle to the pool (cloned once per task, as
/// in `connpool_get_drop`): `run(pool, n)` is one task's loop of `n` operations. The
/// measured work is then the pool's alone, without the update of a reference count
/// that every task shares (what `contender` pays per operation for its clone).
#[allow(dead_code)]
pub(crate) fn contender_loop<P, F>(name: &'static str, tasks: usize, pool: P, run: F) -> Contender
where
    P: Clone + Send + Sync + 'static,
    F: Fn(P, u64) -> Batch + Clone + Send + Sync + 'static,
{
    Contender {
        name,
        run: Box::new(move |n| {
            let per_task = n.div_ceil(tasks as u64);
            let batches: Vec<Batch> = (0..tasks).map(|_| run(pool.clone(), per_task)).collect();
            Box::pin(async move {
                let joins: Vec<_> = batches.into_iter().map(tokio::spawn).collect();
                for join in joins {
                    join.await.expect("bench task");
                }
            })
        }),
    }
}

/// Runs `rounds` rounds of `ops` operations per contender and returns the markdown
/// table (median operations per second, ratio to the first contender's median).
pub(crate) fn run(
    rt: &Runtime,
    title: &str,
    rounds: usize,
    ops: u64,
    contenders: &[Contender],
) -> String {
    let wanted = std::env::var("POOLSIDE_BENCH_CONTENDERS").ok();
    let contenders: Vec<&Contender> = contenders
        .iter()
        .filter(|c| wanted.as_deref().is_none_or(|w| w.split(',').any(|n| n.trim() == c.name)))
        .collect();
    if contenders.is_empty() {
        return format!("### {title}\n\nno contender matches POOLSIDE_BENCH_CONTENDERS\n");
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    for round in 0..rounds {
        for k in 0..contenders.len() {
            let index = (round + k) % contenders.len();
            let started = Instant::now();
            rt.block_on((contenders[index].run)(ops));
            let elapsed = started.elapsed().max(Duration::from_nanos(1));
            rates[index].push(ops as f64 / elapsed.as_secs_f64());
        }
    }
    let medians: Vec<f64> = rates
        .iter_mut()
        .map(|r| {
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        })
        .collect();
    let mut md = format!(
        "### {title}\n\n{rounds} interleaved rounds of {ops} operations per contender \
         (rotating order); median k ops/s, min–max, and the first row's median over each \
         row's.\n\n| contender | median k ops/s | min–max | first / this |\n|---|---:|---:|---:|\n"
    );
    for (i, c) in contenders.iter().enumerate() {
        let (lo, hi) = (rates[i][0], rates[i][rates[i].len() - 1]);
        md.push_str(&format!(
            "| {} | {:.1} | {:.1}–{:.1} | {:.2}× |\n",
            c.name,
            medians[i] / 1e3,
            lo / 1e3,
            hi / 1e3,
            medians[0] / medians[i]
        ));
    }
    md
}
