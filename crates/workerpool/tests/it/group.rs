//! Group (errgroup): order, first failure cancels the rest, panics are reported.

use poolside_workerpool::{GroupError, WorkerPool};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[test]
fn results_come_back_in_submission_order() {
    let pool = WorkerPool::new(4).unwrap();
    let mut group = pool.group::<usize, String>();
    for i in 0..100 {
        group
            .spawn(move |_| {
                // Later jobs finish first.
                std::thread::sleep(Duration::from_micros(((100 - i) * 10) as u64));
                Ok(i)
            })
            .unwrap();
    }
    assert_eq!(group.len(), 100);
    assert_eq!(group.wait(), Ok((0..100).collect::<Vec<_>>()));
}

#[test]
fn the_first_error_cancels_running_jobs_and_skips_queued_ones() {
    let pool = WorkerPool::builder().workers(2).queue_depth(64).build().unwrap();
    let skipped_work = Arc::new(AtomicUsize::new(0));
    let mut group = pool.group::<(), &'static str>();
    // Job 0 runs until cancelled; job 1 fails; jobs 2.. are queued behind them.
    group
        .spawn(
            |ctx| {
                if ctx.wait_cancelled(Duration::from_secs(30)) { Err("cancelled") } else { Ok(()) }
            },
        )
        .unwrap();
    group
        .spawn(|_| {
            std::thread::sleep(Duration::from_millis(20));
            Err("boom")
        })
        .unwrap();
    for _ in 0..20 {
        let skipped_work = skipped_work.clone();
        group
            .spawn(move |_| {
                skipped_work.fetch_add(1, Ordering::Relaxed);
                Ok(())
            })
            .unwrap();
    }
    let started = std::time::Instant::now();
    assert_eq!(group.wait(), Err(GroupError::Failed { index: 1, error: "boom" }));
    assert!(started.elapsed() < Duration::from_secs(10), "the long job was cancelled");
    // Queued jobs may have started before the failure landed, but not all of them
    // (two workers, one blocked): most were skipped.
    assert!(skipped_work.load(Ordering::Relaxed) < 20);
}

#[test]
fn a_panic_is_reported_with_its_index_and_message() {
    let pool = WorkerPool::new(2).unwrap();
    let mut group = pool.group::<u8, String>();
    group.spawn(|_| Ok(1)).unwrap();
    group.spawn(|_| -> Result<u8, String> { panic!("bad input") }).unwrap();
    let err = group.wait().unwrap_err();
    assert_eq!(err, GroupError::Panicked { index: 1, message: "bad input".into() });
    assert_eq!(err.to_string(), "job 1 of the group panicked: bad input");
}

#[test]
fn cancel_stops_the_group_and_an_empty_group_is_ok() {
    let pool = WorkerPool::new(1).unwrap();
    let empty = pool.group::<(), ()>();
    assert!(empty.is_empty());
    assert_eq!(empty.wait(), Ok(vec![]));

    let started = Arc::new(AtomicUsize::new(0));
    let mut group = pool.group::<bool, ()>();
    let flag = started.clone();
    group
        .spawn(move |ctx| {
            flag.fetch_add(1, Ordering::Relaxed);
            Ok(ctx.wait_cancelled(Duration::from_secs(30)))
        })
        .unwrap();
    while started.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    group.cancel();
    assert_eq!(group.wait(), Ok(vec![true]), "the running job saw the cancellation");

    let mut group = pool.group::<bool, String>();
    group.cancel();
    group.spawn(|_| Ok(false)).unwrap();
    let err = group.wait().unwrap_err();
    assert_eq!(err, GroupError::Cancelled { index: 0 });
    assert_eq!(err.to_string(), "job 0 of the group was cancelled before it started");
}

#[test]
fn a_shutdown_past_its_deadline_reports_unstarted_group_jobs() {
    let pool = WorkerPool::builder().workers(1).queue_depth(8).build().unwrap();
    std::thread::scope(|s| {
        let mut group = pool.group::<u8, ()>();
        group
            .spawn(|ctx| {
                ctx.wait_cancelled(Duration::from_secs(30));
                Ok(0)
            })
            .unwrap();
        group.spawn(|_| Ok(1)).unwrap();
        let waiter = s.spawn(move || group.wait());
        std::thread::sleep(Duration::from_millis(20));
        let report = pool.shutdown(Duration::from_millis(10)).unwrap();
        assert_eq!(report.not_started, 1);
        assert_eq!(waiter.join().unwrap(), Err(GroupError::NotStarted { index: 1 }));
    });
}
