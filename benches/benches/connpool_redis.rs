//! poolside-connpool's Redis adapter against deadpool-redis and bb8-redis on a real
//! server, in the same run.
//!
//! * `connpool_redis_getset`: through a pool of 16 connections from 64 tasks, each
//!   operation checks a connection out, `SET`s the task's key and `GET`s it back.
//!   deadpool-redis and bb8-redis hold the redis crate's `MultiplexedConnection`
//!   (a driver task per connection reads the replies); poolside runs twice, with its
//!   default link (the task holding the connection writes the command and reads the
//!   reply itself) and with `RedisManager::multiplexed()`, the peers' connection type,
//!   so the table separates what the link gives from what the pool gives. Every
//!   contender keeps the redis crate's default timeouts. deadpool-redis pings on
//!   every recycle (it has no setting to skip it); bb8-redis runs without checkout
//!   tests; poolside uses its default, a `PING` only for connections idle longer than
//!   500 ms.
//!
//! * extra report `connpool_redis_interleaved`: the same four in interleaved
//!   rounds, each round running every contender once in rotating order, plus
//!   poolside and bb8-redis with 64 connections for the 64 tasks (nobody waits).
//!
//! Needs `POOLSIDE_REDIS_URL` (`cargo xtask bench` starts a redis-server and sets it);
//! without it the bench says so and skips.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use poolside_benches::{criterion_config, full_or_quick, write_extra_report};

#[path = "support/interleaved.rs"]
mod interleaved;
#[path = "support/peers.rs"]
mod peers;
use poolside_connpool::{Builder, Pool, redis::RedisManager};
use redis::AsyncCommands;
use std::time::Instant;
use tokio::runtime::Runtime;

const SIZE: usize = 16;
const TASKS: usize = 64;
/// SET + GET pairs per criterion iteration (split evenly over the tasks).
const OPS_PER_ITER: u64 = 256;

fn runtime() -> Runtime {
    let threads = std::env::var("POOLSIDE_BENCH_MAX_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A warmed poolside pool of `size` connections; `multiplexed` picks the peers'
/// connection type instead of the default link.
fn ours(rt: &Runtime, url: &str, size: usize, multiplexed: bool) -> Pool<RedisManager> {
    let manager = RedisManager::new(url).unwrap();
    let manager = if multiplexed { manager.multiplexed() } else { manager };
    rt.block_on(async {
        let pool = Builder::new().max_size(size).build(manager).unwrap();
        pool.warm(size).await.unwrap();
        pool
    })
}

/// Registers one bench: `TASKS` tasks share `$pool`; each SET + GET runs on a
/// connection `$get` checks out of the task's pool `$p`.
macro_rules! bench_getset {
    ($group:expr, $rt:expr, $name:expr, $pool:expr, |$p:ident| $get:expr) => {{
        let shared = $pool;
        $group.bench_function(BenchmarkId::new($name, "pool16_tasks64"), |b| {
            b.iter_custom(|iters| {
                let per_task = (iters * OPS_PER_ITER).div_ceil(TASKS as u64);
                $rt.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|t| {
                            let $p = shared.clone();
                            tokio::spawn(async move {
                                let key = format!("poolside:bench:{}:{t}", $name);
                                for i in 0..per_task {
                                    let mut conn = $get.unwrap();
                                    let () = conn.set(&key, i).await.unwrap();
                                    let got: u64 = conn.get(&key).await.unwrap();
                                    assert_eq!(got, i);
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("bench task");
                    }
                    start.elapsed()
                })
            })
        });
    }};
}

fn redis_getset(c: &mut Criterion) {
    let Ok(url) = std::env::var("POOLSIDE_REDIS_URL") else {
        eprintln!(
            "connpool_redis bench: POOLSIDE_REDIS_URL is not set; skipping connpool_redis_getset"
        );
        return;
    };
    let rt = runtime();
    let mut group = c.benchmark_group("connpool_redis_getset");
    group.throughput(Throughput::Elements(OPS_PER_ITER));

    bench_getset!(group, rt, "poolside", ours(&rt, &url, SIZE, false), |p| p.get().await);
    let multiplexed = ours(&rt, &url, SIZE, true);
    bench_getset!(group, rt, "poolside, multiplexed", multiplexed, |p| p.get().await);

    let deadpool = {
        let pool = deadpool_redis::Config::from_url(url.as_str())
            .builder()
            .unwrap()
            .max_size(SIZE)
            .runtime(deadpool_redis::Runtime::Tokio1)
            .build()
            .unwrap();
        rt.block_on(async {
            let mut held = Vec::new();
            for _ in 0..SIZE {
                held.push(pool.get().await.unwrap());
            }
        });
        pool
    };
    bench_getset!(group, rt, "deadpool-redis", deadpool, |p| p.get().await);

    let bb8 = rt.block_on(peers::bb8_pool(
        bb8_redis::RedisConnectionManager::new(url.as_str()).unwrap(),
        SIZE,
    ));
    bench_getset!(group, rt, "bb8-redis", bb8, |p| p.get().await);
    group.finish();
}

/// SET then GET of the task's key (`i` carries the task in its millions).
macro_rules! getset_op {
    ($name:expr) => {
        |p, i| async move {
            let key = format!("poolside:bench:interleaved:{}:{}", $name, i / 1_000_000);
            let mut conn = p.get().await.unwrap();
            let () = conn.set(&key, i).await.unwrap();
            let got: u64 = conn.get(&key).await.unwrap();
            assert_eq!(got, i);
        }
    };
}

fn redis_interleaved(_c: &mut Criterion) {
    let Ok(url) = std::env::var("POOLSIDE_REDIS_URL") else {
        eprintln!(
            "connpool_redis bench: POOLSIDE_REDIS_URL is not set; skipping connpool_redis_interleaved"
        );
        return;
    };
    use interleaved::contender;
    let rt = runtime();
    let deadpool = deadpool_redis::Config::from_url(url.as_str())
        .builder()
        .unwrap()
        .max_size(SIZE)
        .runtime(deadpool_redis::Runtime::Tokio1)
        .build()
        .unwrap();
    let bb8 = rt.block_on(peers::bb8_pool(
        bb8_redis::RedisConnectionManager::new(url.as_str()).unwrap(),
        SIZE,
    ));
    // Diagnostic pair: as many connections as tasks, so nobody waits and the pools'
    // hand-off policies (FIFO to the oldest waiter vs whoever asks next) play no part.
    let bb8_unshared = rt.block_on(peers::bb8_pool(
        bb8_redis::RedisConnectionManager::new(url.as_str()).unwrap(),
        TASKS,
    ));
    let contenders = [
        contender("poolside", TASKS, ours(&rt, &url, SIZE, false), getset_op!("poolside")),
        contender(
            "poolside, multiplexed link",
            TASKS,
            ours(&rt, &url, SIZE, true),
            getset_op!("poolside-mux"),
        ),
        contender("deadpool-redis", TASKS, deadpool, getset_op!("deadpool")),
        contender("bb8-redis", TASKS, bb8, getset_op!("bb8")),
        contender(
            "poolside, pool 64 (nobody waits)",
            TASKS,
            ours(&rt, &url, TASKS, false),
            getset_op!("poolside64"),
        ),
        contender("bb8-redis, pool 64 (nobody waits)", TASKS, bb8_unshared, getset_op!("bb864")),
    ];
    let md = interleaved::run(
        &rt,
        "connpool_redis_interleaved: SET + GET, pool 16, 64 tasks",
        full_or_quick(15, 7),
        2048,
        &contenders,
    );
    write_extra_report("connpool_redis_interleaved", &md);
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = redis_getset, redis_interleaved
}
criterion_main!(benches);
