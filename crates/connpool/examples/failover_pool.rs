//! A failover pool: a primary and a warm spare line server, each behind a fault proxy.
//! Callers run requests through `run` while the primary is black-holed for a second
//! and then recovers: no request fails, traffic moves to the spare and back.
//!
//! `cargo run -p poolside-connpool --example failover_pool`

use poolside_connpool::{
    Builder, WaitPolicy, failover::FailoverBuilder, failover::Failure, tcp::HealthCheck,
    tcp::TcpManager,
};
use poolside_faultproxy::{FaultMode, FaultProxy, LineServer, Timeline, ping_pong};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;

/// The health check: a protocol-level ping, so a black-holed peer fails it.
struct Ping;

impl HealthCheck for Ping {
    async fn check(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        ping_pong(stream).await
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (primary_server, spare_server) = (LineServer::ping_pong()?, LineServer::ping_pong()?);
    let (primary_proxy, spare_proxy) = (
        FaultProxy::start(primary_server.local_addr())?,
        FaultProxy::start(spare_server.local_addr())?,
    );
    let pool_for = |proxy: &FaultProxy, min_idle| {
        Builder::new()
            .max_size(4)
            .min_idle(min_idle)
            .connect_timeout(Duration::from_millis(200))
            .wait(WaitPolicy::Timeout(Duration::from_millis(200)))
            .build(TcpManager::new(proxy.local_addr().to_string()).with_check(Ping))
    };
    let pool = FailoverBuilder::new()
        .trip_after(Failure::Request, 3)
        .probe_after(Duration::from_millis(200))
        .probe_timeout(Duration::from_millis(200))
        .request_timeout(Duration::from_millis(100))
        .build(pool_for(&primary_proxy, 0)?, pool_for(&spare_proxy, 2)?)?;

    let timeline = Arc::new(Timeline::new(&["primary", "spare"], Duration::from_millis(250)));
    let stop = Arc::new(AtomicBool::new(false));
    let primary_addr = primary_proxy.local_addr();
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (pool, timeline, stop) = (pool.clone(), timeline.clone(), stop.clone());
            tokio::spawn(async move {
                let mut failed = 0;
                while !stop.load(Ordering::Relaxed) {
                    let served_by = pool
                        .run(|stream| {
                            Box::pin(async move {
                                ping_pong(stream).await?;
                                stream.peer_addr()
                            })
                        })
                        .await;
                    match served_by {
                        Ok(addr) => timeline.record(usize::from(addr != primary_addr)),
                        Err(err) => {
                            eprintln!("request failed: {err}");
                            failed += 1;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                failed
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    timeline.mark("primary black-holed");
    primary_proxy.handle().set_mode(FaultMode::Blackhole).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    timeline.mark("primary recovered");
    primary_proxy.handle().set_mode(FaultMode::Pass).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failed = 0;
    for caller in callers {
        failed += caller.await?;
    }

    println!("requests served per 250 ms, by backend:\n{}", timeline.render_text());
    println!("{:?}", pool.stats());
    println!("failed requests: {failed}");
    assert_eq!(failed, 0, "callers caught in the switch were retried on the spare");
    assert_eq!(
        pool.state(),
        poolside_connpool::failover::FailoverState::Primary,
        "back on the primary"
    );

    pool.close();
    primary_proxy.shutdown().await;
    spare_proxy.shutdown().await;
    primary_server.shutdown().await;
    spare_server.shutdown().await;
    Ok(())
}
