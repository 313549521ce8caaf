//! `Pool::add` with a caller waiting: the added connection goes to the oldest
//! waiter, including a caller that holds a slot while the pool dials (a hanging
//! connect) or backs off after failed dials; counts stay exact.

use crate::common::{Ledger, TestConn, TestManager};
use poolside_connpool::{Builder, Manager, Pool, WaitPolicy};
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

/// A connection from a second, healthy manager, to add to the pool under test.
async fn outside_conn() -> (TestConn, Arc<Ledger>) {
    let (manager, ledger) = TestManager::new();
    (manager.connect().await.unwrap(), ledger)
}

/// Lets spawned tasks run until `cond` holds (paused time does not move).
async fn until(mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition never held");
}

fn pool_with(manager: TestManager, max_size: usize) -> Arc<Pool<TestManager>> {
    Arc::new(
        Builder::new()
            .max_size(max_size)
            .wait(WaitPolicy::Queue)
            .connect_timeout(Duration::from_secs(600))
            .connect_retries(1_000)
            .build(manager)
            .unwrap(),
    )
}

#[tokio::test(start_paused = true)]
async fn add_goes_to_a_caller_waiting_on_a_hanging_dial() {
    let (manager, ledger) = TestManager::new();
    ledger.connect_delay_ms.store(3_600_000, SeqCst); // hangs for an hour
    let pool = pool_with(manager, 1);
    let getter = tokio::spawn({
        let pool = pool.clone();
        async move {
            let conn = pool.get().await.unwrap();
            let id = conn.id;
            (conn.into_owned(), id)
        }
    });
    until(|| pool.status().open == 1).await;
    let (added, outside) = outside_conn().await;
    let meta = pool.add(added).expect("handed to the dialling caller, not refused as Full");
    let (conn, _) = tokio::time::timeout(Duration::from_millis(1), getter)
        .await
        .expect("the waiting get returns at once")
        .unwrap();
    assert!(conn.is_from(&outside), "the get received the added connection");
    assert_eq!(conn.meta().id, meta.id);
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.in_use, s.waiting), (1, 0, 1, 0), "no leaked slot");
    drop(conn);
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.in_use), (1, 1, 0));
    assert_eq!(ledger.connects.load(SeqCst), 0, "the hanging dial was abandoned");
    // The pool is full now: a further add is refused and handed back.
    let (extra, _) = outside_conn().await;
    assert!(pool.add(extra).is_err());
    pool.close();
    assert_eq!(pool.status().open, 0);
    assert_eq!(outside.live(), 0, "closed with the pool");
}

#[tokio::test(start_paused = true)]
async fn add_goes_to_a_caller_waiting_out_the_dial_backoff() {
    let (manager, ledger) = TestManager::new();
    ledger.fail_connect.store(true, SeqCst);
    let pool = pool_with(manager, 1);
    let getter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get_owned().await }
    });
    // Let it fail a few dials: it is then waiting for the backoff, holding the slot.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(pool.status().open == 1 && !getter.is_finished());
    let (added, outside) = outside_conn().await;
    pool.add(added).expect("handed to the caller waiting out the backoff");
    let conn = tokio::time::timeout(Duration::from_millis(1), getter)
        .await
        .expect("the waiting get returns at once")
        .unwrap()
        .unwrap();
    assert!(conn.is_from(&outside));
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.in_use, s.waiting), (1, 0, 1, 0));
    drop(conn);
    assert_eq!(pool.status().idle, 1);
    assert_eq!(ledger.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn with_a_free_slot_add_still_ends_the_oldest_dial_and_queued_waiters_follow() {
    let (manager, ledger) = TestManager::new();
    ledger.connect_delay_ms.store(3_600_000, SeqCst);
    let pool = pool_with(manager, 2);
    let first = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get_owned().await.unwrap() }
    });
    until(|| pool.status().open == 1).await;
    // A free slot remains, yet the added connection fills the dialler's slot.
    let (added, outside) = outside_conn().await;
    pool.add(added).unwrap();
    let conn = first.await.unwrap();
    assert!(conn.is_from(&outside));
    assert_eq!(pool.status().open, 1, "the added connection took the dialler's slot");
    // Two more gets: one dials on the free slot, one queues. Adding one connection
    // (the pool is full now) ends the dial; returning the first serves the queue.
    let second = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get_owned().await.unwrap() }
    });
    until(|| pool.status().open == 2).await;
    let third = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get_owned().await.unwrap() }
    });
    until(|| pool.status().waiting == 1).await;
    let (added, outside2) = outside_conn().await;
    pool.add(added).expect("the dialler takes it although the pool is full");
    let second = second.await.unwrap();
    assert!(second.is_from(&outside2));
    assert!(!third.is_finished());
    drop(conn);
    assert!(third.await.unwrap().is_from(&outside));
    drop(second);
    let s = pool.status();
    assert!(s.open <= s.max_size, "{s:?}");
    assert_eq!((s.open, s.idle, s.in_use, s.waiting), (2, 2, 0, 0));
    assert_eq!(ledger.connects.load(SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_dialler_that_leaves_is_not_handed_anything() {
    let (manager, ledger) = TestManager::new();
    ledger.connect_delay_ms.store(3_600_000, SeqCst);
    let pool = pool_with(manager, 1);
    let getter = tokio::spawn({
        let pool = pool.clone();
        async move { drop(pool.get().await) }
    });
    until(|| pool.status().open == 1).await;
    getter.abort();
    let _ = getter.await;
    assert_eq!(pool.status().open, 0, "the cancelled get gave its slot back");
    let (added, outside) = outside_conn().await;
    pool.add(added).expect("a free slot");
    let s = pool.status();
    assert_eq!((s.open, s.idle), (1, 1));
    assert_eq!(outside.live(), 1);
}
