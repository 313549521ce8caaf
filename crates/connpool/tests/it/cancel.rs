//! Cancellation: thousands of `get` futures dropped at random points (queued,
//! connecting, health-checking, holding) must leak no slot or connection, and must
//! never swallow a hand-off meant for another waiter.

use crate::common::{Rng, TestManager};
use poolside_connpool::{Builder, Status};
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;
use tokio::time::sleep;

fn assert_quiet(status: Status) {
    assert_eq!(status.idle + status.in_use, status.open, "{status:?}");
    assert!(status.open <= status.max_size, "{status:?}");
    assert_eq!(status.waiting, 0, "{status:?}");
    assert_eq!(status.in_use, 0, "{status:?}");
}

#[tokio::test(start_paused = true)]
async fn cancellation_storm_leaks_nothing() {
    let (m, ledger) = TestManager::new();
    // Slow dials and checks so that aborts land inside them too.
    ledger.connect_delay_ms.store(3, SeqCst);
    ledger.check_delay_ms.store(2, SeqCst);
    let pool =
        Builder::new().max_size(8).health_check_after(Duration::from_millis(5)).build(m).unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut tasks = Vec::new();
    for round in 0..4000u64 {
        let p = pool.clone();
        let hold = rng.below(6);
        tasks.push(tokio::spawn(async move {
            if let Ok(conn) = p.get().await {
                sleep(Duration::from_millis(hold)).await;
                drop(conn);
            }
        }));
        if round % 3 == 0 {
            let victim = rng.below(tasks.len() as u64) as usize;
            tasks[victim].abort();
        }
        if rng.below(4) == 0 {
            sleep(Duration::from_millis(rng.below(3))).await;
        }
    }
    // Every task that was not aborted must finish: no lost wake-up leaves one hanging.
    let mut finished = 0;
    for t in tasks {
        let joined = tokio::time::timeout(Duration::from_secs(60), t).await;
        match joined.expect("a waiter hung: a wake-up was lost") {
            Ok(()) => finished += 1,
            Err(e) => assert!(e.is_cancelled()),
        }
    }
    assert!(finished > 2000, "most gets completed ({finished})");
    assert_quiet(pool.status());
    assert_eq!(ledger.live(), pool.status().open);
    let connects = ledger.connects.load(SeqCst);
    drop(pool);
    assert_eq!(ledger.closes.load(SeqCst), connects, "every connection closed exactly once");
}

#[test]
fn multi_thread_abort_stress_keeps_counts() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let (m, ledger) = TestManager::new();
    let connects = runtime.block_on(async {
        let pool = Builder::new().max_size(4).build(m).unwrap();
        let mut tasks = Vec::new();
        let mut rng = Rng(7);
        for _ in 0..3000 {
            let p = pool.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..3 {
                    let conn = p.get().await.unwrap();
                    tokio::task::yield_now().await;
                    drop(conn);
                }
            }));
            if rng.below(2) == 0 {
                let victim = rng.below(tasks.len() as u64) as usize;
                tasks[victim].abort();
            }
        }
        for t in tasks {
            let _ = t.await;
        }
        assert_quiet(pool.status());
        assert!(pool.status().open <= 4);
        ledger.connects.load(SeqCst)
    });
    assert_eq!(ledger.closes.load(SeqCst), connects);
}

/// The lock-free return path and the locked wait path meet through a store-then-load
/// hand-shake; if either side could miss the other, a waiter would sleep next to an
/// idle connection and this run would hang (caught by the timeout).
#[test]
fn multi_thread_handoff_never_loses_a_wakeup() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let (m, ledger) = TestManager::new();
    runtime.block_on(async {
        let pool = Builder::new().max_size(3).build(m).unwrap();
        let tasks: Vec<_> = (0..48)
            .map(|i| {
                let p = pool.clone();
                tokio::spawn(async move {
                    for round in 0..1500u32 {
                        let conn = p.get().await.unwrap();
                        // Sometimes hold across a yield, so waiters form and drain.
                        if (round + i) % 7 == 0 {
                            tokio::task::yield_now().await;
                        }
                        drop(conn);
                    }
                })
            })
            .collect();
        let all = async {
            for t in tasks {
                t.await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(60), all)
            .await
            .expect("a waiter hung next to an idle connection: a wake-up was lost");
        assert_quiet(pool.status());
        assert_eq!(ledger.live(), pool.status().open);
    });
}
