//! The waiter line with wait limits: one timekeeper per pool times every queued `get`
//! (no timer per waiter). Timeouts come exactly at each caller's own limit, in
//! deadline order, whatever the mix of limits; first come, first served holds with
//! mixed limits; a waiter dropped at any point passes on what was sent to it; the
//! timekeeper leaves no task behind; a pool used from a second runtime still times
//! out there.

use crate::common::{TestManager, wait_for};
use poolside_connpool::{Builder, GetError, Pool, PoolError, WaitPolicy};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn pool(max_size: usize, wait: WaitPolicy) -> Arc<Pool<TestManager>> {
    let (manager, _ledger) = TestManager::new();
    Arc::new(Builder::new().max_size(max_size).wait(wait).build(manager).unwrap())
}

/// Polls `fut` once with a no-op waker.
fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// A mix of limits, not in arrival order: 1..=37 ms.
fn limit_of(caller: usize) -> Duration {
    ms(1 + (caller as u64 * 17) % 37)
}

#[tokio::test(start_paused = true)]
async fn a_thousand_waiters_with_mixed_limits_time_out_exactly_and_in_deadline_order() {
    const CALLERS: usize = 1000;
    let pool = pool(2, WaitPolicy::Timeout(Duration::from_secs(30)));
    let held = (pool.get().await.unwrap(), pool.get().await.unwrap());
    let order = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut handles = Vec::new();
    for caller in 0..CALLERS {
        let (pool, order) = (pool.clone(), order.clone());
        handles.push(tokio::spawn(async move {
            let limit = limit_of(caller);
            let err = pool.get_timeout(limit).await.map(drop).unwrap_err();
            let waited = start.elapsed();
            order.lock().unwrap().push((waited, caller));
            (limit, waited, err)
        }));
    }
    // Everyone queues before the first deadline (paused time stands still while a
    // task is runnable).
    for _ in 0..100 {
        if pool.status().waiting == CALLERS {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(pool.status().waiting, CALLERS);
    assert_eq!(start.elapsed(), Duration::ZERO);
    for handle in handles {
        let (limit, waited, err) = handle.await.unwrap();
        assert_eq!(waited, limit, "timed out late or early");
        assert_eq!(err.pool_error(), Some(PoolError::TimedOut { waited: limit }), "{err}");
    }
    let order = order.lock().unwrap().clone();
    let times: Vec<Duration> = order.iter().map(|&(waited, _)| waited).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "timeouts out of deadline order");
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.in_use, s.waiting), (2, 0, 2, 0));
    let snap = poolside_core::Snapshot::of(&*pool);
    assert_eq!(snap.value("timeouts"), Some(CALLERS as u64));
    drop(held);
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.in_use, s.waiting), (2, 2, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn first_come_first_served_holds_with_mixed_limits() {
    const CALLERS: usize = 60;
    // The pool's own policy waits without a limit; callers bring their own, or none.
    let pool = pool(1, WaitPolicy::Queue);
    let held = pool.get().await.unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for caller in 0..CALLERS {
        let (pool, served) = (pool.clone(), served.clone());
        handles.push(tokio::spawn(async move {
            // Limits far beyond the test (shorter ones for later arrivals too): none
            // of them expires; they must not reorder the line.
            let conn = match caller % 3 {
                0 => pool.get().await,
                1 => pool.get_timeout(Duration::from_secs(3600 - caller as u64)).await,
                _ => pool.get_timeout(Duration::from_secs(600 + caller as u64)).await,
            }
            .unwrap();
            served.lock().unwrap().push(caller);
            tokio::task::yield_now().await;
            drop(conn);
        }));
        tokio::task::yield_now().await;
    }
    assert_eq!(pool.status().waiting, CALLERS);
    drop(held);
    for handle in handles {
        handle.await.unwrap();
    }
    let served = served.lock().unwrap().clone();
    assert_eq!(served, (0..CALLERS).collect::<Vec<_>>());
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.waiting), (1, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_waiter_does_not_hold_up_the_waiters_behind_it() {
    let pool = pool(1, WaitPolicy::Queue);
    let held = pool.get().await.unwrap();
    let short = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get_timeout(ms(10)).await.map(drop) }
    });
    tokio::task::yield_now().await;
    let long = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get_timeout(ms(100)).await.map(|c| c.id) }
    });
    tokio::task::yield_now().await;
    let err = short.await.unwrap().unwrap_err();
    assert_eq!(err.pool_error(), Some(PoolError::TimedOut { waited: ms(10) }));
    assert_eq!(pool.status().waiting, 1);
    tokio::time::sleep(ms(20)).await;
    let id = held.id;
    drop(held);
    assert_eq!(long.await.unwrap().unwrap(), id);
}

/// A waiter dropped at each point of its life, with a return arriving at each point
/// too: nothing leaks, nothing is lost, and the counts are exact.
#[tokio::test(start_paused = true)]
async fn a_waiter_dropped_at_any_point_passes_on_what_was_sent_to_it() {
    // (polls before the return, return before the drop, advance past the deadline)
    for polls in 0..3 {
        for return_first in [false, true] {
            for expire in [false, true] {
                let pool = pool(1, WaitPolicy::Timeout(ms(50)));
                let held = pool.get().await.unwrap();
                let mut waiter = Box::pin(pool.get());
                for _ in 0..polls {
                    assert!(poll_once(waiter.as_mut()).is_pending());
                }
                if expire {
                    // The timekeeper (if this waiter queued) runs at the deadline.
                    tokio::time::sleep(ms(60)).await;
                }
                if return_first {
                    drop(held);
                    drop(waiter);
                } else {
                    drop(waiter);
                    drop(held);
                }
                let s = pool.status();
                let case = (polls, return_first, expire);
                assert_eq!((s.open, s.idle, s.in_use, s.waiting), (1, 1, 0, 0), "{case:?}");
                // The pool still serves, and times out, normally.
                let conn = pool.get().await.unwrap();
                let started = Instant::now();
                let err = pool.get().await.map(drop).unwrap_err();
                assert_eq!(err.pool_error(), Some(PoolError::TimedOut { waited: ms(50) }));
                assert_eq!(started.elapsed(), ms(50), "{case:?}");
                drop(conn);
                assert_eq!(pool.status().idle, 1, "{case:?}");
            }
        }
    }
}

/// Cancellation racing a stream of returns: many waiters, each dropped after a
/// random number of polls, while connections come and go.
#[tokio::test(start_paused = true)]
async fn cancelled_waiters_among_returns_leak_no_slot() {
    const CONNS: usize = 4;
    let pool = pool(CONNS, WaitPolicy::Timeout(ms(30)));
    pool.warm(CONNS).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for caller in 0..400u64 {
        let pool = pool.clone();
        tasks.spawn(async move {
            let get = pool.get();
            // Dropped after `caller % 5` ms, or served, or timed out first.
            match tokio::time::timeout(ms(caller % 5), get).await {
                Ok(Ok(conn)) => {
                    tokio::time::sleep(ms(caller % 3)).await;
                    drop(conn);
                }
                Ok(Err(e)) => assert!(matches!(e.pool_error(), Some(PoolError::TimedOut { .. }))),
                Err(_) => {}
            }
        });
        if caller % 7 == 0 {
            tokio::task::yield_now().await;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.in_use, s.waiting), (CONNS, CONNS, 0, 0));
}

#[test]
fn the_timekeeper_leaves_no_task_behind_when_the_pool_drops() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        tokio::time::pause();
        let before = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let pool = pool(1, WaitPolicy::Timeout(ms(5)));
        let held = pool.get().await.unwrap();
        let err = pool.get().await.map(drop).unwrap_err();
        assert_eq!(err.pool_error(), Some(PoolError::TimedOut { waited: ms(5) }));
        let alive = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        assert_eq!(alive, before + 1, "one timekeeper while the pool lives");
        drop(held);
        drop(pool);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let after = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        assert_eq!(after, before, "a task outlived the pool");
    });
}

#[test]
fn the_timekeeper_ends_when_the_pool_closes() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        tokio::time::pause();
        let before = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let pool = pool(1, WaitPolicy::Timeout(ms(5)));
        let held = pool.get().await.unwrap();
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { pool.get().await.map(drop) }
        });
        tokio::task::yield_now().await;
        pool.close();
        let err: GetError<_> = waiter.await.unwrap().unwrap_err();
        assert_eq!(err.pool_error(), Some(PoolError::Closed));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let after = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        assert_eq!(after, before, "the timekeeper outlived the close");
        drop(held);
    });
}

/// The timekeeper lives on the runtime of the first caller that needed it; a caller
/// on another runtime (here while the first one is not being driven at all) still
/// times out at its limit, and after the first runtime is gone a new timekeeper
/// takes over.
#[test]
fn a_pool_used_from_several_runtimes_times_out_on_each() {
    let first = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let second = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let pool = pool(1, WaitPolicy::Timeout(ms(20)));
    let held = first.block_on(async {
        let held = pool.get().await.unwrap();
        let err = pool.get().await.map(drop).unwrap_err();
        assert_eq!(err.pool_error(), Some(PoolError::TimedOut { waited: ms(20) }));
        held
    });
    // `first` is idle now: its timekeeper does not run.
    let on_second = || {
        second.block_on(async {
            let started = Instant::now();
            let outcome = tokio::time::timeout(Duration::from_secs(10), pool.get()).await;
            let err = outcome.expect("the wait limit was never enforced").map(drop).unwrap_err();
            assert_eq!(err.pool_error(), Some(PoolError::TimedOut { waited: ms(20) }));
            assert!(started.elapsed() >= ms(20));
        });
    };
    on_second();
    drop(first);
    on_second();
    on_second();
    drop(held);
    assert_eq!(pool.status().idle, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_hand_offs_race_on_two_threads_without_losing_a_connection() {
    const CONNS: usize = 3;
    let pool = pool(CONNS, WaitPolicy::Timeout(ms(2)));
    pool.warm(CONNS).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for caller in 0..64u64 {
        let pool = pool.clone();
        tasks.spawn(async move {
            let (mut served, mut timed_out) = (0u32, 0u32);
            for round in 0..40u64 {
                match pool.get().await {
                    Ok(conn) => {
                        served += 1;
                        if (caller + round) % 4 == 0 {
                            tokio::time::sleep(Duration::from_micros(300)).await;
                        } else {
                            tokio::task::yield_now().await;
                        }
                        drop(conn);
                    }
                    Err(e) => {
                        assert_eq!(e.pool_error(), Some(PoolError::TimedOut { waited: ms(2) }));
                        timed_out += 1;
                    }
                }
            }
            (served, timed_out)
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        let (served, timed_out) = done.unwrap();
        total += served + timed_out;
    }
    assert_eq!(total, 64 * 40);
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.in_use, s.waiting), (CONNS, CONNS, 0, 0));
}

/// A manager whose connections are numbers; its pools are filled with `add`, so no
/// dial (which needs a timer) runs.
struct Numbers;

impl poolside_connpool::Manager for Numbers {
    type Connection = u32;
    type Error = std::convert::Infallible;
    async fn connect(&self) -> Result<u32, Self::Error> {
        Ok(0)
    }
    async fn check(&self, _: &mut u32) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A runtime without its time driver cannot run the timekeeper (its sleep panics):
/// the caller it timed is told at once instead of waiting forever, and later callers
/// time themselves, which fails as loudly as any tokio timer there.
#[test]
fn a_runtime_without_timers_does_not_hang_a_timed_waiter() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let pool = Arc::new(
        Builder::new().max_size(1).wait(WaitPolicy::Timeout(ms(20))).build(Numbers).unwrap(),
    );
    pool.add(7).unwrap();
    rt.block_on(async {
        let held = pool.get().await.unwrap();
        let err = pool.get().await.map(drop).unwrap_err();
        assert_eq!(err.pool_error(), Some(PoolError::TimedOut { waited: ms(20) }));
        assert_eq!(pool.status().waiting, 0);
        // Callers now time themselves: tokio's own timer panics without a driver.
        let later = tokio::spawn({
            let pool = pool.clone();
            async move { pool.get().await.map(drop) }
        });
        assert!(later.await.unwrap_err().is_panic());
        assert_eq!(pool.status().waiting, 0);
        drop(held);
        assert_eq!((pool.status().idle, pool.status().open), (1, 1));
    });
}

/// The janitor runs on the runtime the pool was built on. A pool kept beyond that
/// runtime (a `static` pool shared by `#[tokio::test]`s, each with a runtime of its
/// own) gets a new janitor on the runtime that uses it next: idle connections are
/// still swept and `min_idle` still refilled.
#[test]
fn the_janitor_outlives_the_runtime_the_pool_was_built_on() {
    let first = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let pool = first.block_on(async {
        Builder::new()
            .max_size(4)
            .min_idle(1)
            .max_idle_time(ms(40))
            .janitor_interval(ms(10))
            .build(Numbers)
            .unwrap()
    });
    first.block_on(async {
        // The janitor is alive here: it refills to `min_idle`.
        wait_for("the first janitor never refilled", async || pool.status().idle >= 1).await;
    });
    drop(first);
    let second = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    second.block_on(async {
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(pool.get().await.unwrap());
        }
        drop(held);
        assert_eq!(pool.status().idle, 4);
        // Swept down to `min_idle` once idle past 40 ms.
        wait_for("no janitor swept the idle connections", async || pool.status().idle <= 1).await;
        // Taking the last idle one: refilled to `min_idle` again.
        let held = pool.get().await.unwrap();
        wait_for("no janitor refilled min_idle", async || pool.status().idle >= 1).await;
        drop(held);
    });
}
