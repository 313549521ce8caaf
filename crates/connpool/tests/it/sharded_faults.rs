//! ShardedPool acceptance run on real loopback sockets: 8 shards, each behind its own
//! fault-injecting proxy, under load with uniformly drawn keys. One shard's backend
//! stalls (black-holed): the other 7 keep at least 90 % of their baseline throughput,
//! the stalled shard's callers get their configured errors within the configured
//! bounds, and nothing hangs.

use crate::common::Rng;
use poolside_connpool::{Builder, GetError, WaitPolicy, sharded::ShardedPool, tcp::TcpManager};
use poolside_faultproxy::{FaultMode, FaultProxy, LineServer, ping_pong};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;
use tokio::time::Instant;

const SHARDS: usize = 8;
const CALLERS_PER_SHARD: usize = 4;
const STALLED: usize = 3;
const WAIT: Duration = Duration::from_millis(200);
const REQUEST_TIMEOUT: Duration = Duration::from_millis(200);
const PHASE: Duration = Duration::from_millis(1500);

#[derive(Default)]
struct ShardTally {
    served: AtomicU64,
    failed: AtomicU64,
    /// The longest any one operation (checkout + request) took, in microseconds.
    slowest_us: AtomicU64,
}

async fn request(pool: &ShardedPool<u64, TcpManager>, key: u64) -> Result<(), String> {
    let mut conn = pool.get(&key).await.map_err(|e: GetError<_>| e.to_string())?;
    match tokio::time::timeout(REQUEST_TIMEOUT, ping_pong(&mut conn)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            conn.mark_broken();
            Err(e.to_string())
        }
        Err(_) => {
            conn.mark_broken();
            Err(format!("request timed out after {REQUEST_TIMEOUT:?}"))
        }
    }
}

fn served(tallies: &[ShardTally]) -> Vec<u64> {
    tallies.iter().map(|t| t.served.load(SeqCst)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_shard_leaves_the_other_seven_at_full_speed() {
    let server = LineServer::ping_pong().unwrap();
    let proxies: Vec<FaultProxy> =
        (0..SHARDS).map(|_| FaultProxy::start(server.local_addr()).unwrap()).collect();
    let shards = proxies
        .iter()
        .map(|proxy| {
            Builder::new()
                .max_size(CALLERS_PER_SHARD)
                .connect_timeout(WAIT)
                .wait(WaitPolicy::Timeout(WAIT))
                .build(TcpManager::new(proxy.local_addr().to_string()))
        })
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let pool: ShardedPool<u64, TcpManager> = ShardedPool::new(shards).unwrap();

    let tallies: Arc<Vec<ShardTally>> =
        Arc::new((0..SHARDS).map(|_| ShardTally::default()).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let mut callers = Vec::new();
    for caller in 0..SHARDS * CALLERS_PER_SHARD {
        let (pool, tallies, stop) = (pool.clone(), tallies.clone(), stop.clone());
        // Each caller serves one shard's keys, drawn uniformly from that shard's share of
        // the key space: a caller stuck on the stalled shard holds up no other shard.
        let shard = caller % SHARDS;
        callers.push(tokio::spawn(async move {
            let mut keys = Rng(0x9E37_79B9_7F4A_7C15 ^ caller as u64);
            while !stop.load(SeqCst) {
                let key = loop {
                    let key = keys.next();
                    if pool.shard_for(&key) == shard {
                        break key;
                    }
                };
                let started = Instant::now();
                let outcome = request(&pool, key).await;
                let tally = &tallies[shard];
                let took = started.elapsed().as_micros() as u64;
                tally.slowest_us.fetch_max(took, SeqCst);
                match outcome {
                    Ok(()) => tally.served.fetch_add(1, SeqCst),
                    Err(_) => tally.failed.fetch_add(1, SeqCst),
                };
            }
        }));
    }

    // Warm-up, then the baseline phase, then the stalled phase.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = served(&tallies);
    tokio::time::sleep(PHASE).await;
    let baseline: Vec<u64> = served(&tallies).iter().zip(&before).map(|(a, b)| a - b).collect();
    proxies[STALLED].handle().set_mode(FaultMode::Blackhole).await.unwrap();
    let failed_before = tallies[STALLED].failed.load(SeqCst);
    let before = served(&tallies);
    tokio::time::sleep(PHASE).await;
    let stalled: Vec<u64> = served(&tallies).iter().zip(&before).map(|(a, b)| a - b).collect();

    stop.store(true, SeqCst);
    let stopped = Instant::now();
    for caller in callers {
        caller.await.expect("no caller panicked");
    }
    let drain = stopped.elapsed();

    println!("requests per {PHASE:?} phase, by shard (shard {STALLED} stalled in phase 2)");
    println!("shard  baseline  stalled");
    for shard in 0..SHARDS {
        println!("{shard:>5} {:>9} {:>8}", baseline[shard], stalled[shard]);
    }
    let healthy = |counts: &[u64]| -> u64 {
        counts.iter().enumerate().filter(|(s, _)| *s != STALLED).map(|(_, c)| c).sum()
    };
    let ratio = healthy(&stalled) as f64 / healthy(&baseline) as f64;
    println!(
        "healthy shards keep {:.0} % of their baseline; callers drained in {drain:?}",
        ratio * 100.0
    );

    assert!(healthy(&baseline) > 1000, "the baseline carried load: {baseline:?}");
    assert!(ratio >= 0.9, "healthy shards fell to {:.0} % of baseline", ratio * 100.0);
    assert!(
        stalled[STALLED] <= 4 * CALLERS_PER_SHARD as u64,
        "requests in flight at the stall at most"
    );
    let errors = tallies[STALLED].failed.load(SeqCst) - failed_before;
    assert!(
        errors >= 2 * CALLERS_PER_SHARD as u64,
        "the stalled shard's callers got errors: {errors}"
    );
    // Checkout wait and connect are bounded by WAIT, the request by REQUEST_TIMEOUT.
    let bound = (WAIT + REQUEST_TIMEOUT + Duration::from_millis(300)).as_micros() as u64;
    for (shard, tally) in tallies.iter().enumerate() {
        let slowest = tally.slowest_us.load(SeqCst);
        assert!(slowest <= bound, "shard {shard}: an operation took {slowest} us");
    }
    assert!(drain <= Duration::from_secs(1), "callers stopped promptly: {drain:?}");

    pool.close();
    for proxy in proxies {
        proxy.shutdown().await;
    }
    server.shutdown().await;
}
