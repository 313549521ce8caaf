//! ShardedPool: stable routing, a stalled shard does not block the others, per-shard
//! stats, configuration errors. Timed parts run on tokio's paused clock.

use poolside_connpool::{
    Builder, GetError, Manager, WaitPolicy, sharded::BuildError, sharded::JumpHash,
    sharded::ModuloHash, sharded::ShardSelector, sharded::ShardedPool,
};
use poolside_core::Snapshot;
use std::convert::Infallible;
use std::time::Duration;

/// Connections carry their shard's index; a stalled shard never finishes connecting.
struct Shard {
    index: usize,
    stalled: bool,
}

impl Manager for Shard {
    type Connection = usize;
    type Error = Infallible;

    async fn connect(&self) -> Result<usize, Infallible> {
        if self.stalled {
            std::future::pending::<()>().await;
        }
        Ok(self.index)
    }

    async fn check(&self, _: &mut usize) -> Result<(), Infallible> {
        Ok(())
    }
}

fn shards(count: usize, stalled: Option<usize>) -> Vec<poolside_connpool::Pool<Shard>> {
    (0..count)
        .map(|index| {
            Builder::new()
                .max_size(4)
                .connect_timeout(Duration::from_millis(100))
                .wait(WaitPolicy::Timeout(Duration::from_millis(200)))
                .build(Shard { index, stalled: stalled == Some(index) })
                .unwrap()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn keys_always_reach_the_same_shard() {
    let pool: ShardedPool<str, Shard> = ShardedPool::new(shards(8, None)).unwrap();
    for key in ["alpha", "beta", "gamma", "delta", "user:1", "user:2"] {
        let expected = pool.shard_for(key);
        for _ in 0..3 {
            assert_eq!(*pool.get(key).await.unwrap(), expected, "{key}");
        }
    }
    let used: std::collections::HashSet<usize> =
        (0..100).map(|i| pool.shard_for(&format!("k{i}"))).collect();
    assert!(used.len() >= 6, "keys spread over the shards: {used:?}");
}

#[tokio::test(start_paused = true)]
async fn a_stalled_shard_does_not_block_the_others() {
    let pool: ShardedPool<u32, Shard, JumpHash> =
        ShardedPool::with_selector(shards(8, Some(3)), JumpHash).unwrap();
    let stalled_key = (0..1000u32).find(|k| pool.shard_for(k) == 3).unwrap();
    let healthy_keys: Vec<u32> = (0..1000u32).filter(|k| pool.shard_for(k) != 3).take(50).collect();

    let started = tokio::time::Instant::now();
    let stalled = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get(&stalled_key).await.map(|c| *c) })
    };
    // Every other shard answers at once, while the stalled dial is still pending.
    for key in &healthy_keys {
        let conn = pool.get(key).await.unwrap();
        assert_eq!(*conn, pool.shard_for(key));
    }
    assert_eq!(started.elapsed(), Duration::ZERO, "healthy shards waited for nothing");
    // The stalled shard's caller gets its configured error; nothing hangs.
    match stalled.await.unwrap() {
        Err(GetError::ConnectTimeout { after }) => assert_eq!(after, Duration::from_millis(100)),
        other => panic!("expected the shard's connect timeout, got {:?}", other.map(|_| ())),
    }
    assert_eq!(started.elapsed(), Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn stats_are_reported_per_shard() {
    let pool: ShardedPool<str, Shard> = ShardedPool::new(shards(3, None)).unwrap();
    let key = "some key";
    let shard = pool.shard_for(key).to_string();
    for _ in 0..5 {
        drop(pool.get(key).await.unwrap());
    }
    let snap = Snapshot::of(&pool);
    assert_eq!(snap.kind, "connpool");
    assert_eq!(snap.labeled("acquires", &[("shard", &shard)]), Some(5));
    assert_eq!(snap.sum("acquires"), 5);
    assert_eq!(snap.sum("dials"), 1);
    pool.close();
    assert!(pool.shards().iter().all(|p| p.is_closed()));
}

#[test]
fn an_empty_shard_list_is_rejected() {
    let err = ShardedPool::<str, Shard>::new(Vec::new()).unwrap_err();
    assert_eq!(err, BuildError::NoShards);
    assert_eq!(err.setting(), "shards");
    assert_eq!(err.to_string(), "a sharded pool needs at least one shard");
}

/// Where a key lands is part of the crate's contract: these values were computed by
/// an independent implementation of FNV-1a 64 over the key's bytes (strings as UTF-8,
/// integers as little-endian) and of jump consistent hashing, and must never change.
#[test]
fn fixed_keys_map_to_fixed_shards() {
    // (key, shards, JumpHash, ModuloHash)
    let strings = [
        ("user:42", 2, 1, 0),
        ("user:42", 8, 1, 2),
        ("user:42", 100, 80, 10),
        ("alpha", 2, 0, 1),
        ("alpha", 8, 5, 3),
        ("alpha", 100, 63, 15),
        ("tenant-7", 8, 0, 5),
        ("tenant-7", 100, 84, 97),
        ("", 8, 1, 5),
        ("", 100, 90, 37),
    ];
    for (key, n, jump, modulo) in strings {
        assert_eq!(JumpHash.select(key, n), jump, "JumpHash {key:?} over {n}");
        assert_eq!(ModuloHash.select(key, n), modulo, "ModuloHash {key:?} over {n}");
        assert_eq!(JumpHash.select(&key.to_string(), n), jump, "String keys hash like str");
    }
    let integers = [
        (0u64, 8, 7, 5),
        (0, 100, 67, 5),
        (1, 8, 3, 4),
        (1, 100, 96, 96),
        (42, 8, 2, 7),
        (42, 100, 94, 55),
        (u64::MAX, 8, 0, 5),
        (u64::MAX, 100, 18, 57),
    ];
    for (key, n, jump, modulo) in integers {
        assert_eq!(JumpHash.select(&key, n), jump, "JumpHash {key} over {n}");
        assert_eq!(ModuloHash.select(&key, n), modulo, "ModuloHash {key} over {n}");
        // `usize` hashes as 64 bits on every target.
        if let Ok(k) = usize::try_from(key) {
            assert_eq!(JumpHash.select(&k, n), jump, "usize {key} over {n}");
        }
    }
    // The default selector of a sharded pool is JumpHash.
    let pool: ShardedPool<str, Shard> = ShardedPool::new(shards(8, None)).unwrap();
    assert_eq!(pool.shard_for("user:42"), 1);
    assert_eq!(pool.shard_for("alpha"), 5);
}

// The async pool's `get` errors reach a sharded pool's caller unchanged: a
// `before_acquire` hook cut off by the shard's wait limit is `TimedOut`, and a get
// still running the hook when the shards close is `Closed` (its connection closed).
#[tokio::test(start_paused = true)]
async fn a_shards_hook_timeout_and_close_reach_the_caller_unchanged() {
    use poolside_connpool::PoolError;
    use std::sync::Arc;
    use tokio::sync::Notify;

    let gate = Arc::new(Notify::new());
    let shard = Builder::new()
        .max_size(1)
        .wait(WaitPolicy::Timeout(Duration::from_millis(50)))
        .connect_timeout(Duration::from_secs(30))
        .manager(Shard { index: 0, stalled: false })
        .before_acquire(crate::common::approve_when_notified(gate.clone()))
        .build()
        .unwrap();
    let pool: ShardedPool<str, Shard> = ShardedPool::new(vec![shard]).unwrap();
    // A fresh connection skips the hook; the idle one meets it.
    drop(pool.get("k").await.unwrap());
    let err = pool.get("k").await.unwrap_err();
    assert!(matches!(err, GetError::Pool(PoolError::TimedOut { .. })), "{err}");
    assert_eq!(pool.shards()[0].status().open, 0, "the cut-off connection was closed");

    drop(pool.get("k").await.unwrap());
    let pending = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get("k").await.map(|c| *c) })
    };
    tokio::time::sleep(Duration::from_millis(1)).await;
    pool.close();
    gate.notify_waiters();
    let got = pending.await.unwrap();
    assert!(matches!(got, Err(GetError::Pool(PoolError::Closed))), "{got:?}");
    assert_eq!(pool.shards()[0].status().open, 0);
}
