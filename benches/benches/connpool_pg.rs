//! poolside-connpool's PostgreSQL adapter against deadpool-postgres and bb8-postgres
//! on a real server, in the same run.
//!
//! * `connpool_pg_param`: a parameterised `SELECT $1::int` through a pool of 16
//!   connections from 64 tasks, one checkout per query:
//!   - `poolside/auto-cache`: `PgManager` with the automatic statement cache, called
//!     with the SQL text (one round trip per query once cached);
//!   - `poolside/plain`: the same without the cache (prepare + execute each time);
//!   - `deadpool-postgres/plain`: `query_one(&str)`, deadpool's default usage;
//!   - `deadpool-postgres/prepare_cached`: `prepare_cached` then `query_one`;
//!   - `bb8-postgres/plain`: `query_one(&str)`.
//! * `connpool_pg_tls`: `poolside/auto-cache` over TLS (rustls, `sslmode=require`)
//!   and without, when `POOLSIDE_PG_CA_FILE` names the server's CA.
//!
//! * extra report `connpool_pg_interleaved`: the same contenders (and the TLS pair)
//!   in interleaved rounds, each round running every contender once in rotating
//!   order, so a change in the machine's load hits all of them alike.
//!
//! Peers recycle with their cheapest setting (deadpool `Fast`, bb8 without checkout
//! tests); poolside uses its default `Verified` recycling, whose check is skipped for
//! connections used within the last 500 ms. Needs `POOLSIDE_PG_URL` (`cargo xtask
//! bench` starts a server and sets it); without it the bench says so and skips.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use poolside_benches::{criterion_config, full_or_quick, write_extra_report};

#[path = "support/interleaved.rs"]
mod interleaved;
#[path = "support/peers.rs"]
mod peers;
use poolside_connpool::{Builder, Pool, postgres::PgManager, postgres::PgTlsConfig};
use std::time::Instant;
use tokio::runtime::Runtime;
use tokio_postgres::Config;

const SIZE: usize = 16;
const TASKS: usize = 64;
/// Queries per criterion iteration (split evenly over the tasks).
const QUERIES_PER_ITER: u64 = 256;
const SQL: &str = "SELECT $1::int";

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

/// Registers one bench: `TASKS` tasks share `$pool`, each running its share of
/// `QUERIES_PER_ITER * iters` queries; `$query` runs one with the task's pool `$p`
/// and parameter `$n` and yields the returned value.
macro_rules! bench_param {
    ($group:expr, $rt:expr, $name:expr, $param:expr, $pool:expr, |$p:ident, $n:ident| $query:expr) => {{
        let shared = $pool;
        $group.bench_function(BenchmarkId::new($name, $param), |b| {
            b.iter_custom(|iters| {
                let per_task = (iters * QUERIES_PER_ITER).div_ceil(TASKS as u64);
                $rt.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|t| {
                            let $p = shared.clone();
                            tokio::spawn(async move {
                                for i in 0..per_task {
                                    let $n = (t as i32) * 1000 + (i % 1000) as i32;
                                    let got: i32 = $query;
                                    assert_eq!(got, $n);
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

fn poolside_pool<T>(rt: &Runtime, manager: PgManager<T>) -> Pool<PgManager<T>>
where
    PgManager<T>: poolside_connpool::Manager,
{
    rt.block_on(async {
        let pool = Builder::new().max_size(SIZE).build(manager).unwrap();
        pool.warm(SIZE).await.unwrap();
        pool
    })
}

fn pg_param(c: &mut Criterion) {
    let Ok(url) = std::env::var("POOLSIDE_PG_URL") else {
        eprintln!("connpool_pg bench: POOLSIDE_PG_URL is not set; skipping connpool_pg_param");
        return;
    };
    let config: Config = url.parse().expect("POOLSIDE_PG_URL");
    let rt = runtime();
    let mut group = c.benchmark_group("connpool_pg_param");
    group.throughput(Throughput::Elements(QUERIES_PER_ITER));
    let param = "pool16_tasks64";

    let auto = poolside_pool(&rt, PgManager::new(config.clone()).automatic_statement_cache(true));
    bench_param!(group, rt, "poolside/auto-cache", param, auto, |p, n| {
        p.get().await.unwrap().query_one(SQL, &[&n]).await.unwrap().get(0)
    });

    let plain = poolside_pool(&rt, PgManager::new(config.clone()));
    bench_param!(group, rt, "poolside/plain", param, plain, |p, n| {
        p.get().await.unwrap().query_one(SQL, &[&n]).await.unwrap().get(0)
    });

    let deadpool = deadpool_pool(&rt, &config);
    bench_param!(group, rt, "deadpool-postgres/plain", param, deadpool.clone(), |p, n| {
        p.get().await.unwrap().query_one(SQL, &[&n]).await.unwrap().get(0)
    });
    bench_param!(group, rt, "deadpool-postgres/prepare_cached", param, deadpool, |p, n| {
        let conn = p.get().await.unwrap();
        let statement = conn.prepare_cached(SQL).await.unwrap();
        conn.query_one(&statement, &[&n]).await.unwrap().get(0)
    });

    let bb8 = rt.block_on(peers::bb8_pool(
        bb8_postgres::PostgresConnectionManager::new(config.clone(), tokio_postgres::NoTls),
        SIZE,
    ));
    bench_param!(group, rt, "bb8-postgres/plain", param, bb8, |p, n| {
        p.get().await.unwrap().query_one(SQL, &[&n]).await.unwrap().get(0)
    });
    group.finish();

    let Ok(ca) = std::env::var("POOLSIDE_PG_CA_FILE") else {
        eprintln!(
            "connpool_pg bench: POOLSIDE_PG_CA_FILE is not set; skipping connpool_pg_tls \
             (`cargo xtask bench` starts a TLS server and sets it)"
        );
        return;
    };
    let mut group = c.benchmark_group("connpool_pg_tls");
    group.throughput(Throughput::Elements(QUERIES_PER_ITER));
    let mut plain_config = config.clone();
    plain_config.ssl_mode(tokio_postgres::config::SslMode::Disable);
    let no_tls = poolside_pool(&rt, PgManager::new(plain_config).automatic_statement_cache(true));
    bench_param!(group, rt, "poolside/auto-cache/no-tls", param, no_tls, |p, n| {
        p.get().await.unwrap().query_one(SQL, &[&n]).await.unwrap().get(0)
    });
    let mut tls_config = config;
    tls_config.ssl_mode(tokio_postgres::config::SslMode::Require);
    let tls = PgTlsConfig::new().ca_file(ca).expect("the CA file").build().expect("a TLS config");
    let with_tls =
        poolside_pool(&rt, PgManager::with_rustls(tls_config, tls).automatic_statement_cache(true));
    bench_param!(group, rt, "poolside/auto-cache/tls", param, with_tls, |p, n| {
        p.get().await.unwrap().query_one(SQL, &[&n]).await.unwrap().get(0)
    });
    group.finish();
}

fn deadpool_pool(rt: &Runtime, config: &Config) -> deadpool_postgres::Pool {
    let manager = deadpool_postgres::Manager::from_config(
        config.clone(),
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    let pool = deadpool_postgres::Pool::builder(manager).max_size(SIZE).build().unwrap();
    rt.block_on(async {
        let mut held = Vec::new();
        for _ in 0..SIZE {
            held.push(pool.get().await.unwrap());
        }
    });
    pool
}

/// The parameter of operation `i`, and the check of its answer.
fn param(i: u64) -> i32 {
    (i % 1_000_000) as i32
}

/// One interleaved operation: `query_one(SQL)` with operation `i`'s parameter on a
/// connection from the pool, checking the answer.
macro_rules! query_one_op {
    () => {
        |p, i| async move {
            let n = param(i);
            let got: i32 = p.get().await.unwrap().query_one(SQL, &[&n]).await.unwrap().get(0);
            assert_eq!(got, n);
        }
    };
}

fn pg_interleaved(_c: &mut Criterion) {
    let Ok(url) = std::env::var("POOLSIDE_PG_URL") else {
        eprintln!(
            "connpool_pg bench: POOLSIDE_PG_URL is not set; skipping connpool_pg_interleaved"
        );
        return;
    };
    use interleaved::contender;
    let config: Config = url.parse().expect("POOLSIDE_PG_URL");
    let rt = runtime();
    let auto = poolside_pool(&rt, PgManager::new(config.clone()).automatic_statement_cache(true));
    let plain = poolside_pool(&rt, PgManager::new(config.clone()));
    let deadpool = deadpool_pool(&rt, &config);
    let bb8 = rt.block_on(peers::bb8_pool(
        bb8_postgres::PostgresConnectionManager::new(config.clone(), tokio_postgres::NoTls),
        SIZE,
    ));
    let mut contenders = vec![
        contender("poolside/auto-cache", TASKS, auto, query_one_op!()),
        contender("poolside/plain", TASKS, plain, query_one_op!()),
        contender("deadpool-postgres/plain", TASKS, deadpool.clone(), query_one_op!()),
        contender("deadpool-postgres/prepare_cached", TASKS, deadpool, |p, i| async move {
            let n = param(i);
            let conn = p.get().await.unwrap();
            let statement = conn.prepare_cached(SQL).await.unwrap();
            let got: i32 = conn.query_one(&statement, &[&n]).await.unwrap().get(0);
            assert_eq!(got, n);
        }),
        contender("bb8-postgres/plain", TASKS, bb8, query_one_op!()),
    ];
    if let Ok(ca) = std::env::var("POOLSIDE_PG_CA_FILE") {
        let mut tls_config = config.clone();
        tls_config.ssl_mode(tokio_postgres::config::SslMode::Require);
        let tls = PgTlsConfig::new().ca_file(ca).expect("the CA file").build().expect("TLS");
        let with_tls = poolside_pool(
            &rt,
            PgManager::with_rustls(tls_config, tls).automatic_statement_cache(true),
        );
        contenders.push(contender(
            "poolside/auto-cache over TLS",
            TASKS,
            with_tls,
            query_one_op!(),
        ));
    }
    let md = interleaved::run(
        &rt,
        "connpool_pg_interleaved: `SELECT $1::int`, pool 16, 64 tasks",
        full_or_quick(15, 7),
        2048,
        &contenders,
    );
    write_extra_report("connpool_pg_interleaved", &md);
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = pg_param, pg_interleaved
}
criterion_main!(benches);
