//! `ShardedPool`: one pool per shard, each key routed to its shard by a pluggable
//! selector, so a slow or dead shard never holds up callers of the others.

use crate::{BuildError, GetError, Manager, Pool, PooledConn};
use poolside_core::{Instrumented, Label, Metric, MetricDesc, MetricVisitor};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

/// Picks the shard of a key.
pub trait ShardSelector<K: ?Sized>: Send + Sync + 'static {
    /// The shard index for `key`, in `0..shards` (`shards` ≥ 1).
    fn select(&self, key: &K, shards: usize) -> usize;
}

/// FNV-1a of the key's [`Hash`] bytes, modulo the shard count: the same key maps to the
/// same shard in every run and every build (on one architecture), unlike
/// `std::collections::hash_map::DefaultHasher`, whose algorithm may change.
///
/// ```
/// use poolside_connpool::{ShardSelector, StableHash};
/// let shard = StableHash.select("user:42", 8);
/// assert!(shard < 8);
/// assert_eq!(shard, StableHash.select("user:42", 8));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct StableHash;

/// Jump consistent hashing (Lamping and Veach): going from `n` to `n + 1` shards moves
/// only about `1 / (n + 1)` of the keys, where [`StableHash`]'s modulo moves most.
///
/// ```
/// use poolside_connpool::{JumpHash, ShardSelector};
/// let moved = (0..10_000u32).filter(|k| JumpHash.select(k, 8) != JumpHash.select(k, 9)).count();
/// assert!(moved < 1_600, "about a ninth of the keys move, here {moved}");
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JumpHash;

/// FNV-1a, 64 bits: tiny, fixed, and good enough to spread keys over shards.
struct Fnv1a(u64);

impl Hasher for Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

fn stable_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut hasher = Fnv1a(0xcbf2_9ce4_8422_2325);
    key.hash(&mut hasher);
    hasher.finish()
}

/// The jump consistent hash of `key` over `buckets` buckets.
fn jump(mut key: u64, buckets: usize) -> usize {
    let (mut bucket, mut next) = (0u64, 0u64);
    while next < buckets as u64 {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        next = ((bucket + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as u64;
    }
    bucket as usize
}

impl<K: Hash + ?Sized> ShardSelector<K> for StableHash {
    fn select(&self, key: &K, shards: usize) -> usize {
        (stable_hash(key) % shards.max(1) as u64) as usize
    }
}

impl<K: Hash + ?Sized> ShardSelector<K> for JumpHash {
    fn select(&self, key: &K, shards: usize) -> usize {
        jump(stable_hash(key), shards.max(1))
    }
}

/// One [`Pool`] per shard, with its own settings and manager; [`get(&key)`](Self::get)
/// routes through the selector. Each shard waits, times out and fails on its own, so a
/// stalled shard only ever delays the callers whose keys live there.
///
/// ```
/// use poolside_connpool::{Builder, JumpHash, Manager, ShardedPool};
/// use std::convert::Infallible;
///
/// struct Shard(usize);
/// impl Manager for Shard {
///     type Connection = usize;
///     type Error = Infallible;
///     async fn connect(&self) -> Result<usize, Infallible> { Ok(self.0) }
///     async fn check(&self, _: &mut usize) -> Result<(), Infallible> { Ok(()) }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let shards = (0..4).map(|i| Builder::new().max_size(8).build(Shard(i))).collect::<Result<Vec<_>, _>>()?;
/// let pool: ShardedPool<str, Shard, JumpHash> = ShardedPool::with_selector(shards, JumpHash)?;
/// let conn = pool.get("customer:17").await?;
/// assert_eq!(*conn, pool.shard_for("customer:17"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct ShardedPool<K: ?Sized, M: Manager, S = StableHash> {
    shards: Arc<[Pool<M>]>,
    labels: Arc<[String]>,
    selector: Arc<S>,
    _key: PhantomData<fn(&K)>,
}

impl<K: ?Sized, M: Manager, S> Clone for ShardedPool<K, M, S> {
    fn clone(&self) -> Self {
        ShardedPool {
            shards: self.shards.clone(),
            labels: self.labels.clone(),
            selector: self.selector.clone(),
            _key: PhantomData,
        }
    }
}

impl<K: Hash + ?Sized, M: Manager> ShardedPool<K, M, StableHash> {
    /// Shards selected by [`StableHash`]. Fails with [`BuildError::NoShards`] when
    /// `shards` is empty.
    pub fn new(shards: Vec<Pool<M>>) -> Result<Self, BuildError> {
        ShardedPool::with_selector(shards, StableHash)
    }
}

impl<K: ?Sized, M: Manager, S: ShardSelector<K>> ShardedPool<K, M, S> {
    /// Shards selected by `selector`.
    pub fn with_selector(shards: Vec<Pool<M>>, selector: S) -> Result<Self, BuildError> {
        if shards.is_empty() {
            return Err(BuildError::NoShards);
        }
        let labels: Vec<String> = (0..shards.len()).map(|i| i.to_string()).collect();
        Ok(ShardedPool {
            shards: shards.into(),
            labels: labels.into(),
            selector: Arc::new(selector),
            _key: PhantomData,
        })
    }

    /// The shard index of `key` (a selector's answer past the last shard is clamped
    /// to it). A panic in the selector propagates here; [`get`](Self::get) catches it.
    pub fn shard_for(&self, key: &K) -> usize {
        self.selector.select(key, self.shards.len()).min(self.shards.len() - 1)
    }

    /// A connection from the shard of `key`, under that shard's wait policy. A panic
    /// in the selector is caught, logged and reported as
    /// [`GetError::Panicked`]; no shard is touched.
    pub async fn get(&self, key: &K) -> Result<PooledConn<'_, M>, GetError<M::Error>> {
        let shard = crate::unwind::guard("a shard selector", || self.shard_for(key))
            .map_err(|p| GetError::Panicked { during: p.during, message: p.message })?;
        self.shards[shard].get().await
    }

    /// The shard pools, by index.
    pub fn shards(&self) -> &[Pool<M>] {
        &self.shards
    }

    /// Closes every shard.
    pub fn close(&self) {
        self.shards.iter().for_each(Pool::close);
    }
}

impl<K: ?Sized, M: Manager, S: Send + Sync + 'static> Instrumented for ShardedPool<K, M, S> {
    fn kind(&self) -> &'static str {
        "connpool"
    }

    fn catalogue(&self) -> &'static [&'static MetricDesc] {
        self.shards[0].catalogue()
    }

    fn timings(&self) -> &'static [poolside_core::Timing] {
        self.shards[0].timings()
    }

    /// Every shard's metrics, each with a `shard` label (`"0"`, `"1"`, ...).
    fn visit_metrics(&self, visitor: &mut dyn MetricVisitor) {
        for (shard, label) in self.shards.iter().zip(self.labels.iter()) {
            shard.visit_metrics(&mut |m: Metric<'_>| {
                // Shard pools report unlabeled values; keep any label they add, too.
                let mut labels: [Label<'_>; 4] = [("shard", label.as_str()); 4];
                let extra = m.labels.len().min(3);
                labels[1..=extra].copy_from_slice(&m.labels[..extra]);
                visitor.visit(Metric { desc: m.desc, labels: &labels[..=extra], value: m.value });
            });
        }
    }
}

impl<K: ?Sized, M: Manager, S> fmt::Debug for ShardedPool<K, M, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardedPool").field("shards", &self.shards.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_hash_only_moves_keys_to_the_new_bucket() {
        assert_eq!(jump(0, 1), 0);
        assert_eq!(jump(1, 1), 0);
        for key in 0..1000u64 {
            assert!(jump(key, 10) < 10);
        }
        // Growing the bucket count only ever moves a key to the new bucket.
        for key in 0..10_000u64 {
            let (before, after) = (jump(key, 7), jump(key, 8));
            assert!(after == before || after == 7, "key {key}: {before} -> {after}");
        }
    }

    #[test]
    fn stable_hash_spreads_keys_evenly() {
        let mut counts = [0usize; 8];
        for key in 0..80_000u32 {
            counts[StableHash.select(&key, 8)] += 1;
        }
        assert!(counts.iter().all(|&c| (9_000..11_000).contains(&c)), "{counts:?}");
        assert_eq!(StableHash.select("a", 1), 0);
    }
}
