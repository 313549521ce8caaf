//! The acquire-wait timing: one sample per successful get, zero for a connection
//! found idle (no queueing, no dialling), the time in line for a queued get (on
//! tokio's paused clock), and hooks that want only timings get no connection events.

use crate::common::TestManager;
use poolside_connpool::events::{ConnEvent, EventHook, Events, Timing};
use poolside_connpool::{Builder, WaitPolicy};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records every timing and connection event it receives.
#[derive(Default)]
struct Recorder {
    timings: Mutex<Vec<(Timing, Duration)>>,
    connections: Mutex<Vec<ConnEvent>>,
    wants_connections: bool,
}

impl Recorder {
    fn waits(&self) -> Vec<Duration> {
        let timings = self.timings.lock().unwrap();
        timings.iter().filter(|(t, _)| *t == Timing::AcquireWait).map(|(_, d)| *d).collect()
    }
}

struct Hook(Arc<Recorder>);

impl EventHook for Hook {
    fn on_timing(&self, timing: Timing, elapsed: Duration) {
        self.0.timings.lock().unwrap().push((timing, elapsed));
    }
    fn on_connection(&self, event: ConnEvent) {
        self.0.connections.lock().unwrap().push(event);
    }
    fn wants_connection_events(&self) -> bool {
        self.0.wants_connections
    }
}

/// The first bucket of poolside-metrics' default layout a sample falls in
/// (`le` bounds in µs), for readable assertions.
fn bucket_micros(d: Duration) -> u64 {
    const BOUNDS_US: [u64; 12] = [1, 2, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];
    let us = d.as_nanos().div_ceil(1_000) as u64;
    BOUNDS_US.into_iter().find(|&b| us <= b).unwrap_or(u64::MAX)
}

#[tokio::test(start_paused = true)]
async fn immediate_gets_are_zero_waits_and_queued_gets_their_time_in_line() {
    let recorder = Arc::new(Recorder { wants_connections: true, ..Recorder::default() });
    let (manager, _ledger) = TestManager::new();
    let pool = Arc::new(
        Builder::new()
            .max_size(1)
            .wait(WaitPolicy::Queue)
            .events(Events::new(Hook(recorder.clone())))
            .build(manager)
            .unwrap(),
    );
    // The first get dials (paused clock: the dial takes no time).
    drop(pool.get().await.unwrap());
    // Immediate checkouts: an idle connection was there.
    for _ in 0..10 {
        drop(pool.get().await.unwrap());
    }
    let waits = recorder.waits();
    assert_eq!(waits.len(), 11, "one sample per successful get");
    assert!(waits.iter().all(|w| w.is_zero()), "{waits:?}");

    // A queued get: in line for exactly 3 ms of paused time.
    let held = pool.get().await.unwrap();
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|c| c.meta().id) }
    });
    tokio::task::yield_now().await;
    assert_eq!(pool.status().waiting, 1);
    tokio::time::advance(Duration::from_millis(3)).await;
    drop(held);
    assert_eq!(waiter.await.unwrap().unwrap(), 1);

    let waits = recorder.waits();
    assert_eq!(waits.len(), 13, "count stays exact: one sample per successful get");
    assert_eq!(waits[12], Duration::from_millis(3), "{waits:?}");
    assert_eq!(bucket_micros(waits[12]), 5_000, "the queued get lands in le=5ms");
    // A failed get adds no sample.
    let held = pool.get().await.unwrap();
    assert!(pool.try_get().await.is_err());
    drop(held);
    assert_eq!(recorder.waits().len(), 14);
    // The hook asked for connection events: every checkout has one, with its wait.
    let checkouts: Vec<Duration> = recorder
        .connections
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            ConnEvent::Checkout { waited, .. } => Some(*waited),
            _ => None,
        })
        .collect();
    assert_eq!(checkouts, recorder.waits());
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_get_adds_no_sample_and_a_dialled_one_counts_its_dial() {
    let recorder = Arc::new(Recorder::default());
    let (manager, ledger) = TestManager::new();
    ledger.connect_delay_ms.store(7, std::sync::atomic::Ordering::SeqCst);
    let pool = Builder::new()
        .max_size(1)
        .wait(WaitPolicy::Queue)
        .events(Events::new(Hook(recorder.clone())))
        .build(manager)
        .unwrap();
    let held = pool.get().await.unwrap();
    assert_eq!(recorder.waits(), [Duration::from_millis(7)], "waited for the dial");
    assert!(pool.get_timeout(Duration::from_millis(20)).await.is_err());
    assert_eq!(recorder.waits().len(), 1, "timed out: no sample");
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn timings_only_hooks_get_no_connection_events() {
    let recorder = Arc::new(Recorder::default());
    let (manager, _ledger) = TestManager::new();
    let pool = Builder::new()
        .max_size(2)
        .events(Events::new(Hook(recorder.clone())))
        .build(manager)
        .unwrap();
    for _ in 0..5 {
        drop(pool.get().await.unwrap());
    }
    pool.close();
    assert_eq!(recorder.waits().len(), 5);
    assert!(recorder.connections.lock().unwrap().is_empty());
}
