//! A scriptable test manager that counts every connect, check and close.
#![allow(dead_code, unreachable_pub)]

pub mod redis_server;

use poolside_connpool::Manager;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

/// What happened to the connections of one test, and what should go wrong next.
#[derive(Debug, Default)]
pub struct Ledger {
    pub connects: AtomicUsize,
    pub closes: AtomicUsize,
    pub checks: AtomicUsize,
    pub fail_connect: AtomicBool,
    pub fail_check: AtomicBool,
    pub connect_delay_ms: AtomicU64,
    pub check_delay_ms: AtomicU64,
    /// Connection ids at or below this report `is_broken` on return.
    pub broken_up_to: AtomicUsize,
}

impl Ledger {
    pub fn live(&self) -> usize {
        self.connects.load(SeqCst) - self.closes.load(SeqCst)
    }
}

/// A connection that reports its own close.
pub struct TestConn {
    pub id: usize,
    ledger: Arc<Ledger>,
}

impl TestConn {
    /// Whether this connection was opened by the manager keeping `ledger`.
    pub fn is_from(&self, ledger: &Arc<Ledger>) -> bool {
        Arc::ptr_eq(&self.ledger, ledger)
    }
}

impl fmt::Debug for TestConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TestConn({})", self.id)
    }
}

impl Drop for TestConn {
    fn drop(&mut self) {
        self.ledger.closes.fetch_add(1, SeqCst);
    }
}

#[derive(Debug)]
pub struct TestError(pub &'static str);

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for TestError {}

#[derive(Debug, Clone, Default)]
pub struct TestManager(pub Arc<Ledger>);

impl TestManager {
    pub fn new() -> (Self, Arc<Ledger>) {
        let ledger = Arc::new(Ledger::default());
        (TestManager(ledger.clone()), ledger)
    }
}

impl Manager for TestManager {
    type Connection = TestConn;
    type Error = TestError;

    async fn connect(&self) -> Result<TestConn, TestError> {
        let delay = self.0.connect_delay_ms.load(SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if self.0.fail_connect.load(SeqCst) {
            return Err(TestError("connection refused"));
        }
        let id = self.0.connects.fetch_add(1, SeqCst) + 1;
        Ok(TestConn { id, ledger: self.0.clone() })
    }

    async fn check(&self, _conn: &mut TestConn) -> Result<(), TestError> {
        self.0.checks.fetch_add(1, SeqCst);
        let delay = self.0.check_delay_ms.load(SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if self.0.fail_check.load(SeqCst) {
            return Err(TestError("ping failed"));
        }
        Ok(())
    }

    fn is_broken(&self, conn: &mut TestConn) -> bool {
        conn.id <= self.0.broken_up_to.load(SeqCst)
    }
}

/// A small deterministic generator (xorshift), so a failing schedule replays.
pub struct Rng(pub u64);

impl Rng {
    /// The next raw value (never zero for a non-zero seed).
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A `before_acquire` hook that approves each connection once `gate` is notified: a
/// get held inside the hook for as long as the test wants.
pub fn approve_when_notified<C>(
    gate: Arc<tokio::sync::Notify>,
) -> impl for<'a> Fn(
    &'a mut C,
    poolside_connpool::ConnMeta,
) -> poolside_connpool::hooks::HookFuture<'a, bool>
+ Send
+ Sync
+ 'static {
    move |_conn, _meta| {
        let gate = gate.clone();
        Box::pin(async move {
            gate.notified().await;
            Ok(true)
        })
    }
}

/// An event hook that runs `look` at every event once it is set: a test sets it to
/// read its pool (`status()` and the like), which would deadlock if an event were
/// reported under the pool's lock. `looks` counts the events it looked at.
#[derive(Default)]
pub struct LookingHook {
    pub look: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
    pub looks: std::sync::atomic::AtomicUsize,
}

impl LookingHook {
    fn look(&self) {
        if let Some(look) = self.look.get() {
            look();
            self.looks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl poolside_connpool::events::EventHook for LookingHook {
    fn on_timing(&self, _: poolside_connpool::events::Timing, _: std::time::Duration) {
        self.look();
    }
    fn on_connection(&self, _: poolside_connpool::events::ConnEvent) {
        self.look();
    }
}

/// Waits until `done` holds, asking every 5 ms; fails with `what` after 10 s of real
/// time (for tests on real-time runtimes of their own).
pub async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let looked = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while !done().await {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    });
    looked.await.expect(what);
}
