//! A model test of the blocking pool: random sequences of get / get with a timeout /
//! release / break / tick / resize / close / health checks turning on and off, each
//! client on its own thread. A failed health check is never a client's error. After
//! every step the pool's counts must match what the client threads observe, no
//! connection may sit idle while a thread waits, live connections must equal
//! `open`, and waiters must be served in arrival order.
#![cfg(feature = "blocking")]

use poolside_connpool::WaitPolicy;
use poolside_connpool::blocking::{BuildError, Builder, Manager, Pool};
use proptest::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
enum Op {
    Get,
    /// Get with a timeout of this many milliseconds.
    GetTimeout(u64),
    Release(usize),
    Break(usize),
    /// Sleep this many milliseconds, then run a janitor round.
    Tick(u64),
    Resize(usize),
    Close,
    /// From now on health checks fail (`true`) or pass.
    Stale(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => Just(Op::Get),
        2 => (1u64..4).prop_map(Op::GetTimeout),
        4 => any::<usize>().prop_map(Op::Release),
        1 => any::<usize>().prop_map(Op::Break),
        1 => (0u64..12).prop_map(Op::Tick),
        1 => (1usize..6).prop_map(Op::Resize),
        1 => Just(Op::Close),
        1 => any::<bool>().prop_map(Op::Stale),
    ]
}

/// Connections that count themselves while alive; checks fail while `stale` is set.
struct Counted(Arc<AtomicUsize>, Arc<AtomicBool>);

struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

impl Manager for Counted {
    type Connection = Live;
    type Error = std::io::Error;
    fn connect(&self) -> Result<Live, std::io::Error> {
        self.0.fetch_add(1, SeqCst);
        Ok(Live(self.0.clone()))
    }
    fn check(&self, _: &mut Live) -> Result<(), std::io::Error> {
        if self.1.load(SeqCst) {
            return Err(std::io::Error::other("stale"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Holding,
    Done,
}

struct Client {
    /// Clients (indices) that were waiting in line when this one arrived.
    earlier: Vec<usize>,
    /// Whether its get succeeded.
    served: Arc<AtomicBool>,
    phase: Arc<Mutex<Phase>>,
    /// `true`: drop the connection as broken.
    release: Option<mpsc::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

fn count(clients: &[Client], phase: Phase) -> usize {
    clients.iter().filter(|c| *c.phase.lock().unwrap() == phase).count()
}

/// Waits until the pool agrees with the clients; fails the case if it never does.
fn settle(
    pool: &Pool<Counted>,
    clients: &[Client],
    live: &AtomicUsize,
) -> Result<(), TestCaseError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let waiting = count(clients, Phase::Waiting);
        let holding = count(clients, Phase::Holding);
        let s = pool.status();
        let agreed = s.waiting == waiting
            && s.in_use == holding
            && (s.waiting == 0 || s.idle == 0)
            && live.load(SeqCst) == s.open
            // No dial in progress (the janitor's, or one a waiter was handed).
            && s.idle + s.in_use == s.open;
        if agreed {
            prop_assert!(s.open <= s.max_size.max(holding), "{:?}", s);
            if s.waiting > 0 {
                prop_assert!(s.open >= s.max_size, "a waiter while a slot is free: {:?}", s);
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(TestCaseError::fail(format!(
                "never settled: {s:?}, clients waiting {waiting} holding {holding}, live {}",
                live.load(SeqCst)
            )));
        }
        thread::sleep(Duration::from_micros(200));
    }
}

fn run(ops: Vec<Op>, max_size: usize, min_idle: usize) -> Result<(), TestCaseError> {
    let live = Arc::new(AtomicUsize::new(0));
    let stale = Arc::new(AtomicBool::new(false));
    let pool = Builder::new()
        .max_size(max_size)
        .min_idle(min_idle)
        .max_lifetime(Duration::from_millis(40))
        .max_idle_time(Duration::from_millis(15))
        .janitor_interval(Duration::from_millis(3))
        .health_check_after(Duration::from_millis(2))
        .max_health_retries(1)
        .wait(WaitPolicy::Queue)
        .build(Counted(live.clone(), stale.clone()))
        .unwrap();
    let mut clients: Vec<Client> = Vec::new();
    let mut closed = false;
    for op in ops {
        match op {
            Op::Get | Op::GetTimeout(_) => {
                let limit = match op {
                    Op::GetTimeout(ms) => Some(Duration::from_millis(ms)),
                    _ => None,
                };
                let phase = Arc::new(Mutex::new(Phase::Waiting));
                let (tx, rx) = mpsc::channel::<bool>();
                // Who was waiting (the pool is settled) when this client arrived.
                let earlier: Vec<usize> = (0..clients.len())
                    .filter(|&k| *clients[k].phase.lock().unwrap() == Phase::Waiting)
                    .collect();
                let served = Arc::new(AtomicBool::new(false));
                let (pool, ph, got_one) = (pool.clone(), phase.clone(), served.clone());
                let thread = thread::spawn(move || {
                    let got = match limit {
                        Some(limit) => pool.get_timeout(limit),
                        None => pool.get(),
                    };
                    match got {
                        Ok(mut conn) => {
                            got_one.store(true, SeqCst);
                            *ph.lock().unwrap() = Phase::Holding;
                            if rx.recv().unwrap_or(false) {
                                conn.mark_broken();
                            }
                            drop(conn);
                            *ph.lock().unwrap() = Phase::Done;
                        }
                        Err(e) => {
                            assert!(
                                e.is_closed() || e.pool_error().is_some(),
                                "unexpected error {e}"
                            );
                            *ph.lock().unwrap() = Phase::Done;
                        }
                    }
                });
                clients.push(Client {
                    earlier,
                    served,
                    phase,
                    release: Some(tx),
                    thread: Some(thread),
                });
            }
            Op::Release(i) | Op::Break(i) => {
                let holding: Vec<usize> = (0..clients.len())
                    .filter(|&k| *clients[k].phase.lock().unwrap() == Phase::Holding)
                    .collect();
                if !holding.is_empty() {
                    let k = holding[i % holding.len()];
                    if let Some(tx) = clients[k].release.take() {
                        tx.send(matches!(op, Op::Break(_))).unwrap();
                    }
                    if let Some(t) = clients[k].thread.take() {
                        t.join().unwrap();
                    }
                }
            }
            Op::Tick(ms) => {
                thread::sleep(Duration::from_millis(ms));
                pool.maintain();
            }
            Op::Resize(n) => match pool.resize(n.max(min_idle)) {
                Ok(()) => prop_assert!(!closed),
                Err(e) => prop_assert_eq!((e, closed), (BuildError::Closed, true)),
            },
            Op::Close => {
                pool.close();
                closed = true;
            }
            Op::Stale(on) => stale.store(on, SeqCst),
        }
        settle(&pool, &clients, &live)?;
        if closed {
            prop_assert_eq!(pool.status().idle, 0);
        }
        // FIFO: nobody was served while a client that was already in line when it
        // arrived is still waiting.
        for (b, client) in clients.iter().enumerate() {
            if client.served.load(SeqCst) {
                for &a in &client.earlier {
                    prop_assert!(
                        *clients[a].phase.lock().unwrap() != Phase::Waiting,
                        "client {} overtook client {}",
                        b,
                        a
                    );
                }
            }
        }
    }
    pool.close();
    for c in &mut clients {
        if let Some(tx) = c.release.take() {
            let _ = tx.send(false);
        }
        if let Some(t) = c.thread.take() {
            t.join().unwrap();
        }
    }
    settle(&pool, &clients, &live)?;
    prop_assert_eq!(pool.status().open, 0);
    prop_assert_eq!(live.load(SeqCst), 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn pool_counts_match_the_clients(
        ops in proptest::collection::vec(op(), 1..40),
        max_size in 1usize..5,
        min_idle in 0usize..2,
    ) {
        run(ops, max_size, min_idle.min(max_size))?;
    }
}
