//! A read-through cache in Redis behind a pool: 64 tasks on 16 connections look
//! values up, compute and store the misses with a time to live, for two seconds.
//!
//! Uses `REDIS_URL` or `POOLSIDE_REDIS_URL` (`cargo xtask examples` sets the latter to
//! its throwaway redis-server); without either it says so and exits.
//!
//! `REDIS_URL=redis://127.0.0.1:6379/0 cargo run -p poolside-connpool --features redis --example redis_cache`

#[cfg(feature = "redis")]
async fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    use poolside_connpool::{Builder, Pool, WaitPolicy, redis::RedisManager};
    use redis::AsyncCommands;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    let pool: Pool<RedisManager> = Builder::new()
        .max_size(16)
        .min_idle(2)
        .connect_timeout(Duration::from_secs(2))
        .wait(WaitPolicy::Timeout(Duration::from_secs(2)))
        .build(RedisManager::new(url)?)?;
    let prefix = format!("poolside:example:{}", std::process::id());
    let (hits, misses) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut tasks = Vec::new();
    for t in 0..64u64 {
        let (pool, prefix, hits, misses) =
            (pool.clone(), prefix.clone(), hits.clone(), misses.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = t;
            while Instant::now() < deadline {
                n = (n * 31 + 7) % 500; // 500 distinct keys
                let key = format!("{prefix}:{n}");
                let mut conn = pool.get().await?;
                let cached: Option<u64> = conn.get(&key).await?;
                match cached {
                    Some(value) => {
                        assert_eq!(value, n * n);
                        hits.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        // The "expensive" computation, stored for 60 s.
                        let () = conn.set_ex(&key, n * n, 60).await?;
                        misses.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for task in tasks {
        task.await?.map_err(|e| e.to_string())?;
    }
    let (hits, misses) = (hits.load(Ordering::Relaxed), misses.load(Ordering::Relaxed));
    println!("{} lookups in 2 s: {hits} hits, {misses} misses", hits + misses);
    let status = pool.status();
    println!("pool: {} open, {} idle", status.open, status.idle);
    // Tidy up the example's keys.
    let mut conn = pool.get().await?;
    let keys: Vec<String> = conn.keys(format!("{prefix}:*")).await?;
    if !keys.is_empty() {
        let () = conn.del(keys).await?;
    }
    drop(conn);
    pool.close();
    Ok(())
}

#[cfg(not(feature = "redis"))]
async fn run(_url: &str) -> Result<(), Box<dyn std::error::Error>> {
    println!("this build lacks the `redis` feature: add --features redis");
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::var("REDIS_URL").or_else(|_| std::env::var("POOLSIDE_REDIS_URL")) {
        Ok(url) => run(&url).await,
        Err(_) => {
            println!("REDIS_URL / POOLSIDE_REDIS_URL not set: nothing to connect to");
            Ok(())
        }
    }
}
