//! Model-based test: random sequences of submissions and a shutdown, checked against a
//! model of the queue. Every worker is held busy by a gate job, so the queue's
//! occupancy is exactly what the model predicts.

use crate::common::eventually;
use poolside_core::Snapshot;
use poolside_workerpool::{JobError, SubmitError, WorkerPool};
use proptest::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[derive(Debug, Clone)]
enum Op {
    TrySubmit,
    TrySpawn,
    SubmitTimeout,
    Shutdown,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::TrySubmit),
        4 => Just(Op::TrySpawn),
        2 => Just(Op::SubmitTimeout),
        1 => Just(Op::Shutdown),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn submissions_match_the_queue_model(
        workers in 1usize..3,
        depth in 1usize..5,
        ops in prop::collection::vec(op(), 1..24),
    ) {
        let pool = WorkerPool::builder()
            .workers(workers)
            .queue_depth(depth)
            .shutdown_grace(Duration::from_secs(5))
            .build()
            .unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let (release, gate) = crossbeam_channel::bounded::<()>(0);
        for _ in 0..workers {
            let gate = gate.clone();
            pool.submit(move |ctx| {
                // Hold the worker until released or cancelled.
                while !ctx.is_cancelled() {
                    if gate.recv_timeout(Duration::from_millis(1)).is_ok() {
                        return;
                    }
                }
            }).unwrap();
        }
        prop_assert!(eventually(|| Snapshot::of(&pool).value("active") == Some(workers as u64)));

        // The model: how many jobs wait in the queue, whether it is closed.
        let mut queued = 0usize;
        let mut closed = false;
        let mut accepted_handles = Vec::new();
        let mut shutdown_report = None;
        for op in &ops {
            let ran = ran.clone();
            let job = move |_: &poolside_workerpool::JobContext<'_>| { ran.fetch_add(1, Ordering::Relaxed); };
            match op {
                Op::TrySubmit => match pool.try_submit(job) {
                    Ok(()) => { prop_assert!(!closed && queued < depth); queued += 1; }
                    Err(SubmitError::Full(_)) => prop_assert!(!closed && queued == depth),
                    Err(SubmitError::Closed(_)) => prop_assert!(closed),
                    Err(other) => prop_assert!(false, "unexpected {:?}", other),
                },
                Op::TrySpawn => match pool.try_spawn(job) {
                    Ok(handle) => { prop_assert!(!closed && queued < depth); queued += 1; accepted_handles.push(handle); }
                    Err(SubmitError::Full(_)) => prop_assert!(!closed && queued == depth),
                    Err(SubmitError::Closed(_)) => prop_assert!(closed),
                    Err(other) => prop_assert!(false, "unexpected {:?}", other),
                },
                Op::SubmitTimeout => match pool.submit_timeout(job, Duration::from_millis(2)) {
                    Ok(()) => { prop_assert!(!closed && queued < depth); queued += 1; }
                    Err(SubmitError::TimedOut(_)) => prop_assert!(!closed && queued == depth),
                    Err(SubmitError::Closed(_)) => prop_assert!(closed),
                    Err(other) => prop_assert!(false, "unexpected {:?}", other),
                },
                Op::Shutdown => {
                    let result = pool.shutdown(Duration::from_millis(5));
                    if closed {
                        prop_assert!(result.is_err());
                    } else {
                        // The gate jobs are cancelled at the deadline; the queue never ran.
                        let report = result.unwrap();
                        prop_assert_eq!(report.cancelled, workers as u64);
                        prop_assert_eq!(report.not_started, queued as u64);
                        prop_assert_eq!(report.completed, 0);
                        prop_assert!(report.is_clean());
                        closed = true;
                        shutdown_report = Some(report);
                    }
                }
            }
            prop_assert_eq!(pool.queued(), if closed { 0 } else { queued });
        }
        if shutdown_report.is_none() {
            // Open the gates, then drain everything.
            for _ in 0..workers { release.send(()).unwrap(); }
            let report = pool.shutdown(Duration::from_secs(10)).unwrap();
            prop_assert!(report.is_clean());
            prop_assert_eq!(report.cancelled + report.not_started, 0);
            // The report counts what finished during the shutdown; the totals all of it.
            prop_assert_eq!(Snapshot::of(&pool).value("completed"), Some((queued + workers) as u64));
            prop_assert_eq!(ran.load(Ordering::Relaxed), queued);
            for handle in accepted_handles {
                prop_assert_eq!(handle.join(), Ok(()));
            }
        } else {
            prop_assert_eq!(ran.load(Ordering::Relaxed), 0);
            for handle in accepted_handles {
                prop_assert_eq!(handle.join(), Err(JobError::NotStarted));
            }
        }
        let stats = Snapshot::of(&pool);
        prop_assert_eq!(stats.value("workers"), Some(0));
        prop_assert_eq!(stats.value("queued"), Some(0));
    }
}
