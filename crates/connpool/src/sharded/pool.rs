//! [`ShardedPool`]: one pool per shard, each key routed by a [`ShardSelector`].

use super::error::BuildError;
use super::selector::{JumpHash, ShardKey, ShardSelector};
use crate::{GetError, Manager, Pool, PooledConn};
use poolside_core::{Instrumented, Label, Metric, MetricDesc, MetricVisitor};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// One [`Pool`] per shard, with its own settings and manager; [`get(&key)`](Self::get)
/// routes through the selector. Each shard waits, times out and fails on its own, so a
/// stalled shard only ever delays the callers whose keys live there.
///
/// ```
/// use poolside_connpool::{Builder, sharded::JumpHash, Manager, sharded::ShardedPool};
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
pub struct ShardedPool<K: ?Sized, M: Manager, S = JumpHash> {
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

impl<K: ShardKey + ?Sized, M: Manager> ShardedPool<K, M, JumpHash> {
    /// Shards selected by [`JumpHash`], the stable default. Fails with
    /// [`BuildError::NoShards`] when `shards` is empty.
    ///
    /// ```
    /// use poolside_connpool::sharded::{BuildError, ShardedPool};
    /// use poolside_connpool::tcp::TcpManager;
    /// let none: Vec<poolside_connpool::Pool<TcpManager>> = Vec::new();
    /// let err = ShardedPool::<str, _>::new(none).unwrap_err();
    /// assert_eq!(err, BuildError::NoShards);
    /// ```
    pub fn new(shards: Vec<Pool<M>>) -> Result<Self, BuildError> {
        ShardedPool::with_selector(shards, JumpHash)
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
