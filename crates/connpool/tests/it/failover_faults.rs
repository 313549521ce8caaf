//! FailoverPool acceptance run on real loopback sockets: a primary and a spare line
//! server, each behind a fault-injecting proxy, under steady load; the primary is
//! black-holed for an outage window and then recovers.
//!
//! Asserts: zero lost requests; traffic on the spare within 1 s of the breaker
//! tripping; back on the primary within 1 s of its recovery. Prints the timeline
//! (successes per 100 ms per backend).
//!
//! The outage lasts 2 s here; the documented run uses 30 s and writes the SVG chart:
//!
//! ```sh
//! POOLSIDE_FAILOVER_OUTAGE_SECS=30 POOLSIDE_FAILOVER_SVG=$PWD/docs/topologies-failover.svg \
//!   cargo test -p poolside-connpool --test failover_faults -- --nocapture
//! ```

use poolside_connpool::{
    Builder, WaitPolicy, failover::FailoverBuilder, failover::FailoverPool,
    failover::FailoverState, failover::Failure, tcp::HealthCheck, tcp::TcpManager,
};
use poolside_faultproxy::{FaultMode, FaultProxy, LineServer, Timeline, ping_pong};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;
use tokio::net::TcpStream;

/// A `PING`/`PONG` round trip: the health check and the request alike.
struct PingPong;

impl HealthCheck for PingPong {
    async fn check(&self, stream: &mut TcpStream) -> io::Result<()> {
        ping_pong(stream).await
    }
}

const CALLERS: usize = 16;
const PRIMARY: usize = 0;
const SPARE: usize = 1;

fn outage() -> Duration {
    let secs = std::env::var("POOLSIDE_FAILOVER_OUTAGE_SECS").ok().and_then(|v| v.parse().ok());
    Duration::from_secs(secs.unwrap_or(2))
}

fn pool_on(proxy: &FaultProxy, min_idle: usize) -> poolside_connpool::Pool<TcpManager<PingPong>> {
    Builder::new()
        .max_size(8)
        .min_idle(min_idle)
        .connect_timeout(Duration::from_millis(250))
        .wait(WaitPolicy::Timeout(Duration::from_millis(250)))
        .build(TcpManager::new(proxy.local_addr().to_string()).with_check(PingPong))
        .expect("valid settings")
}

/// Polls (every 5 ms, for at most `limit`) until the pool is in `state`.
async fn wait_for_state(
    pool: &FailoverPool<TcpManager<PingPong>>,
    state: FailoverState,
    limit: Duration,
) -> bool {
    tokio::time::timeout(limit, async {
        while pool.state() != state {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_blackholed_then_recovered_loses_no_request() {
    let (primary_server, spare_server) =
        (LineServer::ping_pong().unwrap(), LineServer::ping_pong().unwrap());
    let primary_proxy = FaultProxy::start(primary_server.local_addr()).unwrap();
    let spare_proxy = FaultProxy::start(spare_server.local_addr()).unwrap();
    let pool = FailoverBuilder::new()
        .window(Duration::from_secs(1))
        .trip_after(Failure::Request, 3)
        .probe_after(Duration::from_millis(250))
        .probe_timeout(Duration::from_millis(250))
        .request_timeout(Duration::from_millis(150))
        .build(pool_on(&primary_proxy, 0), pool_on(&spare_proxy, 4))
        .unwrap();

    let timeline = Arc::new(Timeline::new(&["primary", "spare"], Duration::from_millis(100)));
    let (stop, served, lost) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let primary_addr = primary_proxy.local_addr();
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let (pool, timeline) = (pool.clone(), timeline.clone());
        let (stop, served, lost) = (stop.clone(), served.clone(), lost.clone());
        callers.push(tokio::spawn(async move {
            while !stop.load(SeqCst) {
                let outcome = pool
                    .run(|stream| {
                        Box::pin(async move {
                            ping_pong(stream).await?;
                            stream.peer_addr()
                        })
                    })
                    .await;
                match outcome {
                    Ok(peer) => {
                        served.fetch_add(1, SeqCst);
                        let primary = peer == primary_addr;
                        timeline.record(if primary { PRIMARY } else { SPARE });
                    }
                    Err(err) => {
                        eprintln!("lost a request: {err}");
                        lost.fetch_add(1, SeqCst);
                    }
                }
                // Pacing: steady load rather than a CPU-bound spin on 2 cores.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    timeline.mark("primary black-holed");
    primary_proxy.handle().set_mode(FaultMode::Blackhole).await.unwrap();
    assert!(wait_for_state(&pool, FailoverState::Spare, Duration::from_secs(5)).await, "no trip");
    timeline.mark("breaker tripped");
    let blackholed_at = timeline.mark_at("primary black-holed").unwrap();
    tokio::time::sleep(outage().saturating_sub(timeline.elapsed() - blackholed_at)).await;
    primary_proxy.handle().set_mode(FaultMode::Pass).await.unwrap();
    timeline.mark("primary recovered");
    assert!(
        wait_for_state(&pool, FailoverState::Primary, Duration::from_secs(5)).await,
        "never moved back"
    );
    timeline.mark("back on primary");
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, SeqCst);
    for caller in callers {
        caller.await.expect("no caller panicked");
    }

    println!("{}", timeline.render_text());
    let stats = pool.stats();
    println!("{stats:?}");
    if let Ok(path) = std::env::var("POOLSIDE_FAILOVER_SVG") {
        let title = format!(
            "FailoverPool: primary black-holed for {} s, {CALLERS} callers (successes per 100 ms)",
            outage().as_secs()
        );
        std::fs::write(&path, timeline.render_svg(&title)).expect("writing the SVG");
        println!("wrote {path}");
    }

    let at = |label: &str| timeline.mark_at(label).unwrap();
    let (tripped, recovered) = (at("breaker tripped"), at("primary recovered"));
    let on_spare = timeline.first_bucket_dominated_by(SPARE, 0.9, tripped).expect("spare traffic");
    let on_primary =
        timeline.first_bucket_dominated_by(PRIMARY, 0.9, recovered).expect("primary traffic");
    println!(
        "detected after {:?}; spare carries traffic {:?} after the trip; primary {:?} after recovery",
        tripped - at("primary black-holed"),
        on_spare.saturating_sub(tripped),
        on_primary.saturating_sub(recovered),
    );
    assert_eq!(lost.load(SeqCst), 0, "every request completed");
    assert!(served.load(SeqCst) > 1000, "steady load: {} requests", served.load(SeqCst));
    assert!(on_spare.saturating_sub(tripped) <= Duration::from_secs(1), "moved to the spare late");
    assert!(
        on_primary.saturating_sub(recovered) <= Duration::from_secs(1),
        "moved back to the primary late"
    );
    assert_eq!(stats.trips, 1);
    assert!(stats.probes >= 1 && stats.retries >= 1);

    pool.close();
    for proxy in [primary_proxy, spare_proxy] {
        proxy.shutdown().await;
    }
    primary_server.shutdown().await;
    spare_server.shutdown().await;
}
