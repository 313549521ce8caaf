//! Per-connection events on the existing event hook (r2d2's `HandleEvent` parity):
//! connect, checkout, checkin and close, each with the connection's id and duration.

use crate::common::LookingHook;
use poolside_connpool::{
    Builder, Manager, events::ConnEvent, events::EventHook, events::Events, events::Timing,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Slow;

impl Manager for Slow {
    type Connection = u8;
    type Error = std::io::Error;
    async fn connect(&self) -> Result<u8, Self::Error> {
        tokio::time::sleep(Duration::from_millis(3)).await;
        Ok(0)
    }
    async fn check(&self, _: &mut u8) -> Result<(), Self::Error> {
        Ok(())
    }
}

#[derive(Default)]
struct Log {
    events: Mutex<Vec<ConnEvent>>,
    timings: Mutex<Vec<Timing>>,
}

impl EventHook for Log {
    fn on_timing(&self, timing: Timing, _: Duration) {
        self.timings.lock().unwrap().push(timing);
    }
    fn on_connection(&self, event: ConnEvent) {
        self.events.lock().unwrap().push(event);
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn every_lifecycle_step_is_reported_with_its_id_and_duration() {
    let log = Arc::new(Log::default());
    let pool = Builder::new()
        .max_size(2)
        .health_check_after(Duration::from_secs(60))
        .events(Events::from_arc(log.clone()))
        .build(Slow)
        .unwrap();
    let conn = pool.get().await.unwrap();
    tokio::time::sleep(ms(5)).await;
    drop(conn);
    let mut conn = pool.get().await.unwrap();
    tokio::time::sleep(ms(7)).await;
    conn.mark_broken();
    drop(conn);
    // Opened at 3 ms (after its dial), closed at 15 ms.
    let _second = pool.get().await.unwrap();
    pool.close();
    let events = log.events.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            ConnEvent::Connect { id: 1, took: ms(3) },
            ConnEvent::Checkout { id: 1, waited: ms(3) },
            ConnEvent::Checkin { id: 1, held: ms(5) },
            ConnEvent::Checkout { id: 1, waited: Duration::ZERO },
            ConnEvent::Checkin { id: 1, held: ms(7) },
            ConnEvent::Close { id: 1, age: ms(12), reason: "broken" },
            ConnEvent::Connect { id: 2, took: ms(3) },
            ConnEvent::Checkout { id: 2, waited: ms(3) },
        ]
    );
    // The timings still arrive alongside.
    assert!(log.timings.lock().unwrap().contains(&Timing::Dial));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_closure_hook_still_gets_timings_only() {
    let seen = Arc::new(Mutex::new(0usize));
    let s = seen.clone();
    let pool = Builder::new()
        .events(Events::new(move |_: Timing, _: Duration| *s.lock().unwrap() += 1))
        .build(Slow)
        .unwrap();
    drop(pool.get().await.unwrap());
    assert_eq!(*seen.lock().unwrap(), 2, "one dial and one acquire wait");
}

/// A metrics sink that panics on every event.
struct Broken;

impl EventHook for Broken {
    fn on_timing(&self, timing: Timing, _: Duration) {
        panic!("broken sink: {timing:?}");
    }
    fn on_connection(&self, event: ConnEvent) {
        panic!("broken sink: {event:?}");
    }
}

/// An event hook is user code too: one that panics on every event (dial, wait,
/// checkout, checkin, close) loses the events, and the pool's counts stay exact,
/// with waiters, timeouts and closes in the mix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_event_hook_leaks_no_slot_and_hangs_nobody() {
    let pool = Builder::new()
        .max_size(2)
        .wait(poolside_connpool::WaitPolicy::Timeout(Duration::from_secs(5)))
        .events(Events::new(Broken))
        .build(Slow)
        .unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    let conn = pool.get().await.expect("the pool serves despite its hook");
                    tokio::task::yield_now().await;
                    drop(conn);
                }
            })
        })
        .collect();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("nobody hangs")
            .expect("no task panicked");
    }
    let status = pool.status();
    assert_eq!((status.in_use, status.open), (0, status.idle), "{status:?}");
    assert!(status.open <= 2, "{status:?}");
    // Both slots can still be taken at once, and a close reports through the hook too.
    let both = (pool.get().await.unwrap(), pool.get().await.unwrap());
    assert_eq!(pool.status().in_use, 2);
    drop(both);
    pool.close();
    assert_eq!(pool.status().open, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_may_read_the_pool_from_every_lifecycle_step() {
    // Event hooks and `on_close` run at every step: connect, checkout, check-in, and
    // each way a connection closes (broken, retain, resize, idle and lifetime sweeps,
    // close). Each one reads the pool's status; none may run under the pool's lock.
    let cell = Arc::new(std::sync::OnceLock::<poolside_connpool::Pool<Slow>>::new());
    let hook = Arc::new(LookingHook::default());
    let closes = Arc::new(AtomicUsize::new(0));
    let (on_close_cell, on_close_count) = (cell.clone(), closes.clone());
    let pool = Builder::new()
        .max_size(4)
        .max_idle_time(ms(30))
        .max_lifetime(ms(200))
        .janitor_interval(ms(10))
        .events(Events::from_arc(hook.clone()))
        .on_close(move |_, _| {
            let pool: &poolside_connpool::Pool<Slow> = on_close_cell.get().expect("set");
            let status = pool.status();
            assert!(status.in_use <= status.open);
            on_close_count.fetch_add(1, Ordering::Relaxed);
        })
        .build(Slow)
        .unwrap();
    assert!(cell.set(pool.clone()).is_ok(), "set once");
    let looked_at = pool.clone();
    let look = move || {
        let status = looked_at.status();
        assert!(status.open <= status.max_size + 2 && status.in_use <= status.open);
        let _ = (looked_at.is_closed(), looked_at.max_size());
    };
    assert!(hook.look.set(Box::new(look)).is_ok());
    let steps = async {
        let mut held = vec![];
        for _ in 0..4 {
            held.push(pool.get().await.unwrap());
        }
        held[0].mark_broken();
        drop(held);
        pool.retain(|_, meta| meta.id % 2 == 0).unwrap();
        pool.resize(1).unwrap();
        pool.resize(4).unwrap();
        let mut again = vec![];
        for _ in 0..3 {
            again.push(pool.get().await.unwrap());
        }
        drop(again);
        tokio::time::sleep(ms(300)).await; // idle and lifetime sweeps
        drop(pool.get().await.unwrap());
        pool.close();
    };
    tokio::time::timeout(Duration::from_secs(20), steps).await.expect("a callback deadlocked");
    assert!(hook.looks.load(Ordering::Relaxed) > 10);
    assert!(closes.load(Ordering::Relaxed) >= 4, "{closes:?}");
    assert_eq!(pool.status().open, 0);
}
