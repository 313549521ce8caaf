//! A model test: random sequences of get / release / break / cancel / tick / resize /
//! close against a live pool, checking after every step that its counts match what
//! the clients observe and that no slot sits idle while someone waits.

use crate::common::{TestConn, TestManager};
use poolside_connpool::Builder;
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
enum Op {
    Get,
    Release(usize),
    Break(usize),
    Cancel(usize),
    Tick(u64),
    Resize(usize),
    Close,
    /// Release (or break) client `.0`, then at once cancel the oldest waiting client,
    /// which the release hands off to: it is cancelled holding the grant.
    Race(usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Get),
        3 => any::<usize>().prop_map(Op::Release),
        1 => any::<usize>().prop_map(Op::Break),
        2 => any::<usize>().prop_map(Op::Cancel),
        1 => (1u64..400).prop_map(Op::Tick),
        1 => (1usize..6).prop_map(Op::Resize),
        1 => Just(Op::Close),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(a, k)| Op::Race(a, k)),
    ]
}

/// What a client task reports: it is waiting, holds a connection, or is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Holding,
    Done,
}

struct Client {
    phase: Arc<std::sync::Mutex<Phase>>,
    /// `true`: drop the connection as broken.
    release: Option<oneshot::Sender<bool>>,
    task: JoinHandle<()>,
}

fn run(ops: Vec<Op>, max_size: usize, min_idle: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let (m, ledger) = TestManager::new();
    runtime.block_on(async {
        let pool = Builder::new()
            .max_size(max_size)
            .min_idle(min_idle)
            .max_lifetime(Duration::from_millis(900))
            .max_idle_time(Duration::from_millis(300))
            .build(m)
            .unwrap();
        let mut clients: Vec<Client> = Vec::new();
        let mut closed = false;
        let settle = || tokio::time::sleep(Duration::from_micros(1));
        for op in ops {
            match op {
                Op::Get => {
                    let phase = Arc::new(std::sync::Mutex::new(Phase::Waiting));
                    let (tx, rx) = oneshot::channel::<bool>();
                    let (p, ph) = (pool.clone(), phase.clone());
                    let task = tokio::spawn(async move {
                        match p.get().await {
                            Ok(mut conn) => {
                                let _: &TestConn = &conn;
                                *ph.lock().unwrap() = Phase::Holding;
                                if rx.await.unwrap_or(false) {
                                    conn.mark_broken();
                                }
                            }
                            Err(e) => assert!(e.is_closed(), "only close fails a get here: {e}"),
                        }
                        *ph.lock().unwrap() = Phase::Done;
                    });
                    clients.push(Client { phase, release: Some(tx), task });
                }
                Op::Release(i) | Op::Break(i) if !clients.is_empty() => {
                    let n = clients.len();
                    let c = &mut clients[i % n];
                    if let Some(tx) = c.release.take() {
                        let _ = tx.send(matches!(op, Op::Break(_)));
                    }
                }
                Op::Cancel(i) if !clients.is_empty() => {
                    let c = &clients[i % clients.len()];
                    c.task.abort();
                    *c.phase.lock().unwrap() = Phase::Done;
                }
                Op::Race(i, broken) if !clients.is_empty() => {
                    let n = clients.len();
                    if let Some(tx) = clients[i % n].release.take() {
                        let _ = tx.send(broken);
                    }
                    // Scheduled after the releasing client: it is cancelled only once
                    // the hand-off reached it.
                    let oldest =
                        clients.iter().find(|c| *c.phase.lock().unwrap() == Phase::Waiting);
                    if let Some(c) = oldest {
                        c.task.abort();
                        *c.phase.lock().unwrap() = Phase::Done;
                    }
                }
                Op::Tick(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                Op::Resize(n) => {
                    let resized = pool.resize(n.max(min_idle));
                    if closed {
                        assert_eq!(resized, Err(poolside_connpool::ResizeError::Closed));
                    } else {
                        resized.expect("resize to at least min_idle is valid");
                    }
                }
                Op::Close => {
                    pool.close();
                    closed = true;
                }
                _ => {}
            }
            settle().await;
            let s = pool.status();
            let count = |want| clients.iter().filter(|c| *c.phase.lock().unwrap() == want).count();
            let (waiting, holding) = (count(Phase::Waiting), count(Phase::Holding));
            assert_eq!(s.in_use, holding, "{s:?}");
            assert_eq!(s.waiting, waiting, "{s:?}");
            assert_eq!(s.idle + s.in_use, s.open, "{s:?}");
            assert!(s.open <= s.max_size.max(holding), "{s:?}");
            assert_eq!(ledger.live(), s.open, "every open slot is one live connection");
            if waiting > 0 {
                assert!(s.idle == 0 && s.open >= s.max_size, "a waiter is starved: {s:?}");
            }
            if closed {
                assert_eq!((s.idle, waiting), (0, 0), "{s:?}");
            } else if waiting == 0 && s.max_size >= min_idle + holding {
                // The janitor re-warms on its next round; a full round is at most 75 ms.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let s = pool.status();
                assert!(s.idle >= min_idle.min(s.max_size - s.in_use), "min_idle lost: {s:?}");
            }
        }
        for c in clients {
            if let Some(tx) = c.release {
                let _ = tx.send(false);
            }
            let _ = c.task.await;
        }
        assert_eq!(pool.status().in_use, 0);
    });
    drop(runtime);
    assert_eq!(ledger.live(), 0, "every connection closed once the pool is gone");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn pool_matches_its_clients(
        ops in proptest::collection::vec(op(), 1..50),
        max_size in 1usize..5,
        min_idle in 0usize..2,
    ) {
        run(ops, max_size, min_idle.min(max_size));
    }
}
