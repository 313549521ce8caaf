//! Hooks under load: every hook refuses, errs, panics or stalls at random while many
//! tasks get (cancelled at random points), hold and return, with the janitor at 1 ms
//! and short lifetimes. A sampler checks the pool's invariants continuously; at the
//! end every connection ever made is either still open or was reported closed exactly
//! once, nothing leaked, and the pool still serves `max_size` callers.

use poolside_connpool::{Builder, CloseReason, ConnMeta, Manager, WaitPolicy, hooks::HookError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug)]
struct Conn {
    alive: Arc<AtomicUsize>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, SeqCst);
    }
}

#[derive(Clone, Default)]
struct Mgr {
    made: Arc<AtomicUsize>,
    alive: Arc<AtomicUsize>,
}

impl Manager for Mgr {
    type Connection = Conn;
    type Error = std::io::Error;
    async fn connect(&self) -> Result<Conn, Self::Error> {
        tokio::task::yield_now().await;
        self.made.fetch_add(1, SeqCst);
        self.alive.fetch_add(1, SeqCst);
        Ok(Conn { alive: self.alive.clone() })
    }
    async fn check(&self, _: &mut Conn) -> Result<(), Self::Error> {
        tokio::task::yield_now().await;
        Ok(())
    }
}

/// A tiny deterministic generator (xorshift), shared by the hooks.
struct Dice(AtomicU64);

impl Dice {
    fn roll(&self, sides: u64) -> u64 {
        let mut x = self.0.load(SeqCst);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.store(x, SeqCst);
        x % sides
    }
}

/// What a hook does this time: approve, refuse, fail, panic, or approve late.
async fn act(dice: &Dice) -> Result<bool, HookError> {
    match dice.roll(20) {
        0 => Ok(false),
        1 => Err("refused".into()),
        2 => panic!("hook bomb"),
        3 => {
            tokio::time::sleep(Duration::from_micros(200)).await;
            Ok(true)
        }
        _ => Ok(true),
    }
}

async fn storm(seed: u64) {
    let mgr = Mgr::default();
    let dice = Arc::new(Dice(AtomicU64::new(seed | 1)));
    let closes: Arc<Mutex<HashMap<u64, usize>>> = Arc::default();
    let reasons: Arc<Mutex<HashMap<CloseReason, usize>>> = Arc::default();
    let (d1, d2, d3, log, why) =
        (dice.clone(), dice.clone(), dice.clone(), closes.clone(), reasons.clone());
    let max = 4;
    let pool = Builder::new()
        .max_size(max)
        .min_idle(1)
        .max_lifetime(Duration::from_millis(20))
        .janitor_interval(Duration::from_millis(1))
        .health_check_after(Duration::from_micros(100))
        .dial_backoff(Duration::from_micros(100), Duration::from_millis(1))
        .wait(WaitPolicy::Timeout(Duration::from_secs(5)))
        .manager(mgr.clone())
        .after_connect(move |_: &mut Conn, _: ConnMeta| {
            let dice = d1.clone();
            Box::pin(async move {
                act(&dice).await.and_then(|ok| if ok { Ok(()) } else { Err("no".into()) })
            })
        })
        .before_acquire(move |_: &mut Conn, _: ConnMeta| {
            let dice = d2.clone();
            Box::pin(async move { act(&dice).await })
        })
        .after_release(move |_: &mut Conn, _: ConnMeta| {
            let dice = d3.clone();
            Box::pin(async move { act(&dice).await })
        })
        .on_close(move |meta, reason| {
            *log.lock().unwrap().entry(meta.id).or_default() += 1;
            *why.lock().unwrap().entry(reason).or_default() += 1;
        })
        .build()
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = tokio::spawn({
        let (pool, stop) = (pool.clone(), stop.clone());
        async move {
            let mut samples = 0u64;
            while !stop.load(SeqCst) {
                let s = pool.status();
                assert!(s.idle <= s.open && s.open <= s.max_size, "{s:?}");
                assert_eq!(s.in_use, s.open - s.idle, "{s:?}");
                samples += 1;
                tokio::task::yield_now().await;
            }
            samples
        }
    });
    let tasks: Vec<_> = (0..16u64)
        .map(|t| {
            let pool = pool.clone();
            let dice = Dice(AtomicU64::new((seed ^ (t + 1).wrapping_mul(0x9E37_79B9)) | 1));
            tokio::spawn(async move {
                for _ in 0..150 {
                    let cut = Duration::from_micros(dice.roll(400));
                    // A cut-short or failed get just moves on.
                    if let Ok(Ok(mut conn)) = tokio::time::timeout(cut, pool.get()).await {
                        if dice.roll(10) == 0 {
                            conn.mark_broken();
                        }
                        if dice.roll(3) == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // Quiesce: pending after_release tasks finish (each bounded by connect_timeout).
    let pool_idle = async {
        loop {
            let s = pool.status();
            if s.in_use == 0 && mgr.alive.load(SeqCst) == s.open {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), pool_idle).await.expect("the pool settles");
    stop.store(true, SeqCst);
    assert!(sampler.await.unwrap() > 0);

    // Still serves max_size concurrent callers.
    let mut held = Vec::new();
    while held.len() < max {
        if let Ok(conn) = pool.get().await {
            held.push(conn);
        }
    }
    assert_eq!(pool.status().in_use, max);
    drop(held);
    pool.close();
    let drained = async {
        while pool.status().open != 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), drained).await.expect("everything closes");
    assert_eq!(mgr.alive.load(SeqCst), 0, "no connection leaked");
    let closes = closes.lock().unwrap();
    assert!(closes.values().all(|&n| n == 1), "each close reported once");
    assert_eq!(closes.len(), mgr.made.load(SeqCst), "every connection made was closed");
    // The storm did reach every path it is about.
    let reasons = reasons.lock().unwrap();
    for reason in [CloseReason::Hook, CloseReason::Broken, CloseReason::PoolClosed] {
        assert!(reasons.get(&reason).copied().unwrap_or(0) > 0, "{reason:?} in {reasons:?}");
    }
}

#[test]
fn hooks_that_refuse_fail_panic_and_stall_at_random_keep_every_count_exact() {
    for seed in [0x5EED, 0xC0FFEE, 0xBADC0DE] {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(storm(seed));
    }
}
