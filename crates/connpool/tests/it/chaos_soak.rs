//! Chaos soak on real loopback sockets: a single pool's backend cycles through random
//! faults (latency, black hole, resets, refused connects, slow closes) for a bounded
//! time under load. Asserts: no panic; no operation waits beyond the configured
//! timeouts; the pool's counts stay consistent throughout; at the end every
//! connection opened was closed exactly once, on the client and through the proxy.

use crate::common::Rng;
use poolside_connpool::{Builder, Manager, Pool, WaitPolicy};
use poolside_faultproxy::{FaultMode, FaultProxy, LineServer, ping_pong};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

const SOAK: Duration = Duration::from_secs(3);
const CALLERS: usize = 16;
const MAX_SIZE: usize = 8;
const WAIT: Duration = Duration::from_millis(200);
const REQUEST_TIMEOUT: Duration = Duration::from_millis(150);

/// Opens streams through the proxy and counts every open and every close (drop).
struct Counting {
    addr: String,
    opened: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
}

struct CountedStream {
    stream: TcpStream,
    closed: Arc<AtomicU64>,
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.closed.fetch_add(1, SeqCst);
    }
}

impl Manager for Counting {
    type Connection = CountedStream;
    type Error = io::Error;

    async fn connect(&self) -> io::Result<CountedStream> {
        let stream = TcpStream::connect(&self.addr).await?;
        self.opened.fetch_add(1, SeqCst);
        Ok(CountedStream { stream, closed: self.closed.clone() })
    }

    async fn check(&self, conn: &mut CountedStream) -> io::Result<()> {
        ping_pong(&mut conn.stream).await
    }
}

fn mode(dice: &mut Rng) -> FaultMode {
    match dice.below(7) {
        0 | 1 => FaultMode::Pass,
        2 => FaultMode::Latency(Duration::from_millis(1 + dice.below(20))),
        3 => FaultMode::Blackhole,
        4 => FaultMode::Reset,
        5 => FaultMode::Refuse,
        _ => FaultMode::SlowClose(Duration::from_millis(1 + dice.below(30))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_faults_under_load_keep_the_pool_consistent_and_leak_nothing() {
    let server = LineServer::ping_pong().unwrap();
    let proxy = FaultProxy::start(server.local_addr()).unwrap();
    let (opened, closed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let manager = Counting {
        addr: proxy.local_addr().to_string(),
        opened: opened.clone(),
        closed: closed.clone(),
    };
    let pool: Pool<Counting> = Builder::new()
        .max_size(MAX_SIZE)
        .min_idle(2)
        .max_lifetime(Duration::from_millis(800))
        .health_check_after(Duration::from_millis(20))
        .max_health_retries(2)
        .connect_timeout(WAIT)
        .wait(WaitPolicy::Timeout(WAIT))
        .build(manager)
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed, slowest_us) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let (pool, stop) = (pool.clone(), stop.clone());
        let (served, failed, slowest_us) = (served.clone(), failed.clone(), slowest_us.clone());
        callers.push(tokio::spawn(async move {
            while !stop.load(SeqCst) {
                let started = Instant::now();
                let ok = match pool.get().await {
                    Ok(mut conn) => {
                        let answered =
                            tokio::time::timeout(REQUEST_TIMEOUT, ping_pong(&mut conn.stream))
                                .await;
                        let ok = matches!(answered, Ok(Ok(())));
                        if !ok {
                            conn.mark_broken();
                        }
                        ok
                    }
                    Err(_) => false,
                };
                slowest_us.fetch_max(started.elapsed().as_micros() as u64, SeqCst);
                if ok { &served } else { &failed }.fetch_add(1, SeqCst);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }

    // Chaos: a new random mode every 30-150 ms, while the pool's levels are sampled.
    // Deterministic chaos: the same schedule on every run.
    let mut dice = Rng(0x5EED);
    let started = Instant::now();
    let mut samples = 0u64;
    while started.elapsed() < SOAK {
        proxy.handle().set_mode(mode(&mut dice)).await.unwrap();
        let dwell = Instant::now() + Duration::from_millis(30 + dice.below(120));
        while Instant::now() < dwell {
            // Levels are read without the lock (only `open` is one atomic), so the
            // exact sum is checked once the load stops.
            let s = pool.status();
            assert!(s.open <= MAX_SIZE, "open above max: {s:?}");
            samples += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    proxy.handle().set_mode(FaultMode::Pass).await.unwrap();
    stop.store(true, SeqCst);
    for caller in callers {
        caller.await.expect("no caller panicked");
    }

    // The janitor may still be re-warming min_idle: give a dial in flight time to land.
    let settled = Instant::now() + Duration::from_secs(1);
    while pool.status().open != pool.status().idle && Instant::now() < settled {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let s = pool.status();
    assert_eq!((s.in_use, s.waiting), (0, 0), "{s:?}");
    assert_eq!(s.open, s.idle, "{s:?}");
    assert_eq!(opened.load(SeqCst) - closed.load(SeqCst), s.open as u64, "live = open");
    let (served, failed) = (served.load(SeqCst), failed.load(SeqCst));
    let slowest = Duration::from_micros(slowest_us.load(SeqCst));
    println!(
        "{served} requests served, {failed} failed under chaos; slowest {slowest:?}; \
         {} connections opened; {samples} level samples",
        opened.load(SeqCst)
    );
    assert!(served > 500 && failed > 0, "both outcomes happened: {served} / {failed}");
    // A get is bounded by WAIT (connect and health checks included), a request by
    // REQUEST_TIMEOUT; the rest is scheduling slack on a busy 2-core machine.
    assert!(slowest <= WAIT + REQUEST_TIMEOUT + Duration::from_millis(300), "waited {slowest:?}");

    pool.close();
    drop(pool);
    let opened = opened.load(SeqCst);
    let proxy_side = tokio::time::timeout(
        Duration::from_secs(5),
        proxy.handle().wait_for_stats(|stats| stats.open == 0),
    )
    .await;
    assert_eq!(closed.load(SeqCst), opened, "every connection closed exactly once");
    let proxy_side = proxy_side.expect("the proxy saw every connection close");
    assert!(proxy_side.accepted >= opened);
    proxy.shutdown().await;
    server.shutdown().await;
}
