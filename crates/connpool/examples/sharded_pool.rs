//! A sharded pool: four line servers on loopback, one pool per shard, keys routed by
//! jump consistent hashing. Shows where keys land, per-shard metrics, and how few keys
//! move when a fifth shard is added.
//!
//! `cargo run -p poolside-connpool --example sharded_pool`

use poolside_connpool::{
    Builder, Pool, sharded::JumpHash, sharded::ShardSelector, sharded::ShardedPool, tcp::TcpManager,
};
use poolside_core::Snapshot;
use poolside_faultproxy::LineServer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Each shard's server answers with its own name, so we can see who served a key.
    let servers = (0..4)
        .map(|shard| LineServer::start(move |key| Some(format!("shard {shard} has {key}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let shards = servers
        .iter()
        .map(|server| {
            Builder::new().max_size(4).build(TcpManager::new(server.local_addr().to_string()))
        })
        .collect::<Result<Vec<Pool<TcpManager>>, _>>()?;
    let pool: ShardedPool<str, TcpManager, JumpHash> =
        ShardedPool::with_selector(shards, JumpHash)?;

    for key in ["customer:17", "customer:18", "order:9001", "invoice:3"] {
        let mut conn = pool.get(key).await?;
        conn.write_all(format!("{key}\n").as_bytes()).await?;
        let mut answer = String::new();
        BufReader::new(&mut *conn).read_line(&mut answer).await?;
        println!("{key:<12} -> shard {} -> {:?}", pool.shard_for(key), answer.trim_end());
    }

    // Per-shard stats: every shard's series carries a `shard` label.
    let snapshot = Snapshot::of(&pool);
    for shard in 0..4 {
        let label = shard.to_string();
        let dials = snapshot.labeled("dials", &[("shard", label.as_str())]).unwrap_or(0);
        println!("shard {shard}: {dials} connection(s) dialled");
    }

    // Growing from 4 to 5 shards: jump hashing moves about a fifth of the keys.
    let keys: Vec<String> = (0..10_000).map(|i| format!("customer:{i}")).collect();
    let moved = keys
        .iter()
        .filter(|k| JumpHash.select(k.as_str(), 4) != JumpHash.select(k.as_str(), 5))
        .count();
    println!(
        "adding a fifth shard moves {moved} of {} keys ({:.1} %)",
        keys.len(),
        moved as f64 / 100.0
    );
    assert!(moved < 2_500, "jump hashing moves few keys");

    pool.close();
    for server in servers {
        server.shutdown().await;
    }
    Ok(())
}
