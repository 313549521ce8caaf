//! Shard selectors: how a key picks its shard.

use std::hash::{Hash, Hasher};

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
/// use poolside_connpool::{sharded::ShardSelector, sharded::StableHash};
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
/// use poolside_connpool::{sharded::JumpHash, sharded::ShardSelector};
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
