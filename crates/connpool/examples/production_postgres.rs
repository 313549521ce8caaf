//! A production-shaped pool against PostgreSQL: TLS (rustls, verified against a CA),
//! `Clean` recycling, the automatic statement cache, min idle, lifetimes, a wait
//! timeout, 64 tasks on 16 connections for two seconds, then a graceful close.
//!
//! Uses `DATABASE_URL` (or `POOLSIDE_PG_URL`) when it is set; `cargo xtask examples`
//! sets both to its throwaway server and `POOLSIDE_PG_CA_FILE` to the CA that signed
//! the server's certificate, so the example connects with `sslmode=require`. Without
//! a URL, the same pool shape runs against an embedded loopback TCP server, so the
//! example always runs.
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres POOLSIDE_PG_CA_FILE=ca.pem cargo run -p poolside-connpool --features postgres-rustls --example production_postgres`

use poolside_connpool::{Builder, Manager, Pool, WaitPolicy};
use poolside_core::Snapshot;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn builder() -> Builder {
    Builder::new()
        .max_size(16)
        .min_idle(4)
        .max_lifetime(Duration::from_secs(30 * 60))
        .max_idle_time(Duration::from_secs(10 * 60))
        .connect_timeout(Duration::from_secs(5))
        .wait(WaitPolicy::Timeout(Duration::from_secs(2)))
}

/// Runs 64 tasks doing `work` with a pooled connection for two seconds.
async fn load<M, F, Fut>(pool: Arc<Pool<M>>, work: F) -> Result<u64, Box<dyn std::error::Error>>
where
    M: Manager,
    F: Fn(Arc<Pool<M>>) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(2);
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (pool, work) = (pool.clone(), work.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    work(pool.clone()).await?;
                    done += 1;
                }
                Ok::<u64, Box<dyn std::error::Error + Send + Sync>>(done)
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await?.map_err(|e| e.to_string())?;
    }
    Ok(total)
}

fn report<M: Manager>(label: &str, pool: &Pool<M>, total: u64) {
    let stats = Snapshot::of(pool);
    println!("{label}: {total} operations in 2 s ({} /s)", total / 2);
    for name in ["open", "idle", "dials", "acquires", "timeouts", "health_checks", "closed_broken"]
    {
        println!("  {name:>14}: {}", stats.value(name).unwrap_or_default());
    }
}

/// The pool against a real server: TLS when a CA is given (`POOLSIDE_PG_CA_FILE`, set
/// by `cargo xtask examples`; feature `postgres-rustls`), `Clean` recycling so no
/// session state leaks between users, and the automatic statement cache.
#[cfg(feature = "postgres")]
async fn with_postgres(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    use poolside_connpool::{postgres::PgManager, postgres::RecyclingMethod};
    let config: tokio_postgres::Config = url.parse()?;
    #[cfg(feature = "postgres-rustls")]
    if let Ok(ca) = std::env::var("POOLSIDE_PG_CA_FILE") {
        use poolside_connpool::postgres::PgTlsConfig;
        let mut config = config.clone();
        config.ssl_mode(tokio_postgres::config::SslMode::Require);
        let tls = PgTlsConfig::new().ca_file(ca)?.build()?;
        let manager = PgManager::with_rustls(config, tls);
        return run_postgres(manager.recycling(RecyclingMethod::Clean)).await;
    }
    run_postgres(PgManager::new(config).recycling(RecyclingMethod::Clean)).await
}

#[cfg(feature = "postgres")]
async fn run_postgres<T>(
    manager: poolside_connpool::postgres::PgManager<T>,
) -> Result<(), Box<dyn std::error::Error>>
where
    poolside_connpool::postgres::PgManager<T>: Manager<Connection = poolside_connpool::postgres::PgClient, Error = tokio_postgres::Error>
        + Clone,
{
    use poolside_connpool::postgres::PgManager;
    let manager = manager.automatic_statement_cache(true).statement_cache_capacity(128);
    let pool = Arc::new(builder().build(manager.clone())?);
    {
        let conn = pool.get().await?;
        let row =
            conn.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await?;
        println!("TLS: {}", if row.get::<_, bool>(0) { "on" } else { "off" });
    }
    let total = load(pool.clone(), |pool: Arc<Pool<PgManager<T>>>| async move {
        // One checkout, several statements: `Clean` recycling empties the cache when
        // the connection goes back, so the cache pays within a checkout.
        let conn = pool.get().await?;
        for n in 0..4i32 {
            let row = conn.query_one("SELECT $1::int4", &[&n]).await?;
            assert_eq!(row.get::<_, i32>(0), n);
        }
        Ok(())
    })
    .await?;
    report("PostgreSQL 4 x SELECT $1 per checkout", &pool, total);
    let cache = manager.statement_cache_stats();
    println!(
        "  statement cache: {} hits, {} misses ({:.0} % hits)",
        cache.hits,
        cache.misses,
        100.0 * cache.hit_ratio().unwrap_or(0.0)
    );
    pool.close_graceful(tokio::time::Instant::now() + Duration::from_secs(5)).await?;
    Ok(())
}

#[cfg(not(feature = "postgres"))]
async fn with_postgres(_url: &str) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "DATABASE_URL is set, but this build lacks the `postgres` feature: add --features postgres"
    );
    Ok(())
}

async fn with_embedded_server() -> Result<(), Box<dyn std::error::Error>> {
    use poolside_connpool::tcp::TcpManager;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let pool = Arc::new(builder().build(TcpManager::new(addr.to_string()))?);
    let total = load(pool.clone(), |pool: Arc<Pool<TcpManager>>| async move {
        let mut conn = pool.get().await?;
        conn.write_all(b"SELECT 1").await?;
        let mut reply = [0u8; 8];
        conn.read_exact(&mut reply).await?;
        Ok(())
    })
    .await?;
    report("embedded loopback server", &pool, total);
    pool.close_graceful(tokio::time::Instant::now() + Duration::from_secs(5)).await?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // DATABASE_URL, else the local test server's URL, else an embedded stand-in.
    match std::env::var("DATABASE_URL").or_else(|_| std::env::var("POOLSIDE_PG_URL")) {
        Ok(url) => with_postgres(&url).await,
        Err(_) => {
            println!("DATABASE_URL not set: using an embedded loopback TCP server");
            with_embedded_server().await
        }
    }
}
