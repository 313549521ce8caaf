//! Owned guards: `'static`, movable into spawned tasks, keep their pool alive, and
//! behave like borrowed guards on return, break and detach.

use crate::common::TestManager;
use poolside_connpool::{Builder, OwnedConn, Pool};
use std::sync::atomic::Ordering::SeqCst;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_guards_move_into_tasks_and_come_back() {
    let (manager, ledger) = TestManager::new();
    let pool: Pool<TestManager> = Builder::new().max_size(2).build(manager).unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let conn: OwnedConn<TestManager> = pool.get_owned().await.unwrap();
                // The guard, not the pool handle, crosses into the next task.
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    conn.id
                })
                .await
                .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert!((1..=2).contains(&task.await.unwrap()));
    }
    let status = pool.status();
    assert_eq!((status.open, status.idle, status.in_use), (2, 2, 0));
    assert_eq!(ledger.connects.load(SeqCst), 2, "reused, never more than max_size");
}

#[tokio::test]
async fn an_owned_guard_keeps_its_pool_alive_and_closes_everything_last() {
    let (manager, ledger) = TestManager::new();
    let pool = Builder::new().max_size(2).build(manager).unwrap();
    let first = pool.get().await.unwrap().into_owned();
    let mut second = pool.get_owned().await.unwrap();
    drop(pool);
    assert_eq!(ledger.live(), 2, "the guards keep the pool and its connections");
    second.mark_broken();
    drop(second);
    assert_eq!(ledger.live(), 1, "a broken owned guard closes its connection");
    drop(first);
    assert_eq!(ledger.live(), 0, "the last guard took the pool, and its idle connection, with it");
}

#[tokio::test]
async fn detaching_an_owned_guard_frees_its_slot() {
    let (manager, ledger) = TestManager::new();
    let pool = Builder::new().max_size(1).build(manager).unwrap();
    let raw = pool.get_owned().await.unwrap().detach();
    assert_eq!(pool.status().open, 0);
    let again = pool.try_get().await.unwrap();
    assert_ne!(again.id, raw.id);
    drop(raw);
    drop(again);
    assert_eq!(ledger.live(), 1);
}
