//! Fair tails: once a caller waits, no later arrival overtakes it. Returns go to the
//! oldest waiter (never to the idle stripes where a newcomer could find them), and a
//! newcomer that finds every slot taken queues behind everyone already waiting.
//! Counted orderings on a paused current-thread runtime, so every run is the same.

use crate::common::TestManager;
use poolside_connpool::{Builder, GetError, Pool, PoolError, WaitPolicy};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn pool(max_size: usize) -> Arc<Pool<TestManager>> {
    let (manager, _ledger) = TestManager::new();
    Arc::new(Builder::new().max_size(max_size).wait(WaitPolicy::Queue).build(manager).unwrap())
}

/// Spawns a caller with arrival number `ticket`: it gets a connection, records its
/// ticket in `served`, holds the connection across `hold` yields and returns it.
fn caller(
    pool: &Arc<Pool<TestManager>>,
    served: &Arc<Mutex<Vec<usize>>>,
    ticket: usize,
    hold: usize,
) -> tokio::task::JoinHandle<()> {
    let (pool, served) = (pool.clone(), served.clone());
    tokio::spawn(async move {
        let conn = pool.get().await.unwrap();
        served.lock().unwrap().push(ticket);
        for _ in 0..hold {
            tokio::task::yield_now().await;
        }
        drop(conn);
    })
}

/// Overtakes: for each served caller, how many callers that arrived after it were
/// served before it.
fn overtakes(served: &[usize]) -> Vec<usize> {
    served
        .iter()
        .enumerate()
        .map(|(at, &ticket)| served[..at].iter().filter(|&&earlier| earlier > ticket).count())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_arrival_order_while_newcomers_keep_coming() {
    const CONNS: usize = 3;
    const CALLERS: usize = 200;
    let pool = pool(CONNS);
    pool.warm(CONNS).await.unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    // Callers arrive in bursts between returns: some find an idle connection, most
    // queue; holding times vary so returns interleave with arrivals.
    for ticket in 0..CALLERS {
        handles.push(caller(&pool, &served, ticket, 1 + ticket % 4));
        if ticket % 3 == 0 {
            // Arrivals register in order: let this one reach the pool first.
            tokio::task::yield_now().await;
        }
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let served = served.lock().unwrap().clone();
    assert_eq!(served.len(), CALLERS);
    let worst = overtakes(&served).into_iter().max().unwrap();
    assert!(worst == 0, "a waiter was overtaken by {worst} later arrivals: {served:?}");
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.in_use, s.waiting), (CONNS, CONNS, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_return_goes_to_the_oldest_waiter_not_to_a_newcomer() {
    let pool = pool(1);
    let held = pool.get().await.unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    let waiters: Vec<_> = (0..5).map(|ticket| caller(&pool, &served, ticket, 1)).collect();
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    assert_eq!(pool.status().waiting, 5);
    // The return hands the connection to the oldest waiter at once: a newcomer asking
    // before that waiter has even run finds nothing.
    drop(held);
    let newcomer = pool.try_get().await;
    assert!(
        matches!(newcomer, Err(GetError::Pool(PoolError::Exhausted))),
        "a newcomer took the connection returned while callers waited"
    );
    for waiter in waiters {
        tokio::time::timeout(Duration::from_secs(1), waiter).await.unwrap().unwrap();
    }
    assert_eq!(*served.lock().unwrap(), [0, 1, 2, 3, 4], "served in arrival order");
}

#[tokio::test(start_paused = true)]
async fn each_return_serves_the_next_waiter_before_any_newcomer() {
    let pool = pool(1);
    let held = pool.get().await.unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    let first: Vec<_> = (0..3).map(|ticket| caller(&pool, &served, ticket, 2)).collect();
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    assert_eq!(pool.status().waiting, 3);
    // Return the connection, then newcomers arrive at once, before the waiter woken
    // by that return has even run: all of them queue behind the three.
    drop(held);
    let later: Vec<_> = (3..8).map(|ticket| caller(&pool, &served, ticket, 0)).collect();
    for handle in first.into_iter().chain(later) {
        tokio::time::timeout(Duration::from_secs(1), handle).await.unwrap().unwrap();
    }
    let served = served.lock().unwrap().clone();
    assert_eq!(&served[..3], [0, 1, 2], "the three waiters first: {served:?}");
    assert_eq!(overtakes(&served).into_iter().max(), Some(0), "{served:?}");
}
