//! Random sequences of registry operations checked against a model after every step:
//! which pools a scrape shows, in which order, with which values and histogram
//! counts.

use crate::support::{ScriptedPool, sample, series};
use poolside_core::{Events, Timing};
use poolside_metrics::{PoolMetrics, Registration};
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;

const SLOTS: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    /// A new pool in the slot, built with a timing hook or without.
    Create {
        slot: usize,
        hook: bool,
    },
    Register(usize),
    Deregister(usize),
    /// Drops the pool, its hook and its registration.
    Drop(usize),
    Acquire(usize),
    Record(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        (slot.clone(), any::<bool>()).prop_map(|(slot, hook)| Op::Create { slot, hook }),
        slot.clone().prop_map(Op::Register),
        slot.clone().prop_map(Op::Deregister),
        slot.clone().prop_map(Op::Drop),
        slot.clone().prop_map(Op::Acquire),
        slot.prop_map(Op::Record),
    ]
}

struct Slot {
    pool: Arc<ScriptedPool>,
    events: Option<Events>,
    registration: Option<Registration>,
    acquires: u64,
    recorded: u64,
}

fn name(slot: usize) -> String {
    format!("p{slot}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn scrapes_follow_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let metrics = PoolMetrics::new();
        let mut slots: Vec<Option<Slot>> = (0..SLOTS).map(|_| None).collect();
        // Registered slots, in registration order.
        let mut order: Vec<usize> = Vec::new();
        for op in ops {
            match op {
                Op::Create { slot, hook } if slots[slot].is_none() => {
                    let events = hook.then(|| metrics.timing_hook(&name(slot)).unwrap());
                    let pool = Arc::new(ScriptedPool::default());
                    slots[slot] = Some(Slot { pool, events, registration: None, acquires: 0, recorded: 0 });
                }
                Op::Register(slot) => {
                    if let Some(s) = &mut slots[slot] {
                        let result = metrics.register(&name(slot), &s.pool);
                        if s.registration.is_some() {
                            prop_assert!(result.is_err(), "a second registration of one name");
                        } else {
                            s.registration = Some(result.unwrap());
                            order.push(slot);
                        }
                    }
                }
                Op::Deregister(slot) => {
                    if let Some(s) = &mut slots[slot] {
                        if s.registration.take().is_some() {
                            order.retain(|&o| o != slot);
                        }
                    }
                }
                Op::Drop(slot) => {
                    slots[slot] = None;
                    order.retain(|&o| o != slot);
                }
                Op::Acquire(slot) => {
                    if let Some(s) = &mut slots[slot] {
                        s.pool.acquire();
                        s.acquires += 1;
                    }
                }
                Op::Record(slot) => {
                    if let Some(Slot { events: Some(events), recorded, .. }) = &mut slots[slot] {
                        events.record(Timing::AcquireWait, Duration::from_millis(1));
                        *recorded += 1;
                    }
                }
                Op::Create { .. } => {}
            }

            let text = metrics.render_prometheus();
            let shown: Vec<String> = series(&text)
                .into_iter()
                .filter(|s| s.name == "poolside_scripted_acquires_total")
                .map(|s| s.labels["pool"].clone())
                .collect();
            let expected: Vec<String> = order.iter().map(|&o| name(o)).collect();
            prop_assert_eq!(&shown, &expected, "pools and their order");
            for &o in &order {
                let s = slots[o].as_ref().unwrap();
                let n = name(o);
                let labels = [("pool", n.as_str()), ("kind", "scripted")];
                prop_assert_eq!(
                    sample(&text, "poolside_scripted_acquires_total", &labels),
                    Some(s.acquires as f64)
                );
                let waits = sample(&text, "poolside_scripted_acquire_wait_seconds_count", &labels);
                prop_assert_eq!(waits, s.events.as_ref().map(|_| s.recorded as f64), "{}", n);
            }
            let waiting = slots.iter().flatten().filter(|s| s.events.is_some() && s.registration.is_none()).count();
            prop_assert_eq!(metrics.pending_hooks(), waiting);
            prop_assert_eq!(metrics.len(), order.len());
        }
    }
}
