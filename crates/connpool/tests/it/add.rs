//! `Pool::add` adopts connections made elsewhere: into a free slot (to the oldest
//! waiter first), never past `max_size`, never into a closed pool, and a refused
//! connection always comes back to the caller.

use poolside_connpool::{AddError, Builder, CloseReason, Manager, Pool, WaitPolicy};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Numbers(AtomicU32);

impl Manager for Numbers {
    type Connection = u32;
    type Error = std::io::Error;
    async fn connect(&self) -> Result<u32, Self::Error> {
        Ok(self.0.fetch_add(1, SeqCst))
    }
    async fn check(&self, _: &mut u32) -> Result<(), Self::Error> {
        Ok(())
    }
}

fn pool(max: usize) -> Pool<Numbers> {
    Pool::builder().max_size(max).wait(WaitPolicy::Queue).build(Numbers(AtomicU32::new(0))).unwrap()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_added_connection_is_idle_and_handed_out() {
    let pool = pool(2);
    let meta = pool.add(100).unwrap();
    let s = pool.status();
    assert_eq!((s.open, s.idle), (1, 1));
    let conn = pool.get().await.unwrap();
    assert_eq!(*conn, 100);
    assert_eq!(conn.meta().id, meta.id);
    assert_eq!(conn.meta().checkouts, 1);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_full_pool_hands_the_connection_back() {
    let pool = pool(2);
    let a = pool.get().await.unwrap();
    pool.add(7).unwrap();
    assert_eq!(pool.add(8), Err(AddError::Full(8)));
    assert_eq!(pool.add(9).unwrap_err().into_inner(), 9);
    let s = pool.status();
    assert_eq!((s.open, s.idle, s.in_use), (2, 1, 1));
    drop(a);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_waiter_keeps_its_place_and_an_add_never_exceeds_max_size() {
    // Callers wait only behind a full pool, and every freed slot goes straight to
    // the oldest of them, so an adopted connection can never overtake the line or
    // push the pool past `max_size`.
    let pool = pool(1);
    let held = pool.get().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { *pool.get().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(pool.status().waiting, 1);
    // Take the held connection out of the pool: its slot goes to the waiter, who
    // dials. Adopting now is refused (the slot is the waiter's).
    let raw = held.detach();
    assert_eq!(pool.add(raw), Err(AddError::Full(raw)));
    assert_eq!(waiter.await.unwrap(), 1);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_added_connection_is_used_before_any_dial() {
    let pool = pool(2);
    let held = pool.get().await.unwrap();
    // One free slot: the added connection takes it, and the next get needs no dial.
    pool.add(77).unwrap();
    let got = pool.get().await.unwrap();
    assert_eq!(*got, 77);
    drop((held, got));
    assert_eq!(pool.status().open, 2);
    assert_eq!(poolside_core::Snapshot::of(&pool).value("dials"), Some(1));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_closed_pool_refuses_and_returns_it() {
    let closes = Arc::new(Mutex::new(Vec::new()));
    let log = closes.clone();
    let pool = Builder::new()
        .on_close(move |m, r| log.lock().unwrap().push((m.id, r)))
        .build(Numbers(AtomicU32::new(0)))
        .unwrap();
    let meta = pool.add(5).unwrap();
    pool.close();
    assert_eq!(*closes.lock().unwrap(), [(meta.id, CloseReason::PoolClosed)]);
    assert_eq!(pool.add(6), Err(AddError::Closed(6)));
    assert_eq!(pool.status().open, 0);
}
