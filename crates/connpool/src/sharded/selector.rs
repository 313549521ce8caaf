//! Shard selectors: how a key picks its shard.
//!
//! The built-in selectors hash a key's [`ShardKey`] bytes with FNV-1a (64-bit), a
//! fixed, published function, so where a key lands is part of the crate's contract:
//! the same key and shard count give the same shard on every platform, compiler and
//! release of this major version. `std::hash::Hash` is not used: its output may
//! change between compiler versions and differs between pointer widths.

/// A key a built-in selector can route: it writes fixed, platform-independent bytes
/// into a [`KeyHasher`]. Strings and byte slices write their bytes; integers their
/// little-endian bytes (`usize`/`isize` as 64-bit). Implement it for your own key
/// types by writing the fields that identify them.
///
/// ```
/// use poolside_connpool::sharded::{JumpHash, KeyHasher, ShardKey, ShardSelector};
///
/// struct Tenant { region: u16, id: u64 }
/// impl ShardKey for Tenant {
///     fn write_key(&self, hasher: &mut KeyHasher) {
///         self.region.write_key(hasher);
///         self.id.write_key(hasher);
///     }
/// }
/// let shard = JumpHash.select(&Tenant { region: 1, id: 42 }, 8);
/// assert!(shard < 8);
/// ```
pub trait ShardKey {
    /// Writes the key's bytes.
    fn write_key(&self, hasher: &mut KeyHasher);
}

/// FNV-1a, 64 bits (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`): the
/// stable hash under the built-in selectors.
///
/// ```
/// use poolside_connpool::sharded::KeyHasher;
/// let mut h = KeyHasher::new();
/// h.write(b"a");
/// assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c); // the published FNV-1a test vector
/// ```
#[derive(Debug, Clone, Copy)]
pub struct KeyHasher(u64);

impl KeyHasher {
    /// A hasher at the FNV-1a offset basis.
    pub const fn new() -> Self {
        KeyHasher(0xcbf2_9ce4_8422_2325)
    }

    /// Hashes `bytes` in.
    pub fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash of everything written.
    pub const fn finish(&self) -> u64 {
        self.0
    }

    /// The hash of one key.
    ///
    /// ```
    /// use poolside_connpool::sharded::KeyHasher;
    /// assert_eq!(KeyHasher::hash("a"), 0xaf63_dc4c_8601_ec8c);
    /// ```
    pub fn hash<K: ShardKey + ?Sized>(key: &K) -> u64 {
        let mut hasher = KeyHasher::new();
        key.write_key(&mut hasher);
        hasher.finish()
    }
}

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher::new()
    }
}

impl ShardKey for str {
    fn write_key(&self, hasher: &mut KeyHasher) {
        hasher.write(self.as_bytes());
    }
}

impl ShardKey for String {
    fn write_key(&self, hasher: &mut KeyHasher) {
        hasher.write(self.as_bytes());
    }
}

impl ShardKey for [u8] {
    fn write_key(&self, hasher: &mut KeyHasher) {
        hasher.write(self);
    }
}

impl ShardKey for Vec<u8> {
    fn write_key(&self, hasher: &mut KeyHasher) {
        hasher.write(self);
    }
}

impl<const N: usize> ShardKey for [u8; N] {
    fn write_key(&self, hasher: &mut KeyHasher) {
        hasher.write(self);
    }
}

impl<K: ShardKey + ?Sized> ShardKey for &K {
    fn write_key(&self, hasher: &mut KeyHasher) {
        (**self).write_key(hasher);
    }
}

macro_rules! int_keys {
    ($($int:ty => $wide:ty),* $(,)?) => {$(
        impl ShardKey for $int {
            fn write_key(&self, hasher: &mut KeyHasher) {
                hasher.write(&<$wide>::from(*self).to_le_bytes());
            }
        }
    )*};
}

int_keys!(u8 => u8, u16 => u16, u32 => u32, u64 => u64, u128 => u128,
          i8 => i8, i16 => i16, i32 => i32, i64 => i64, i128 => i128);

impl ShardKey for usize {
    fn write_key(&self, hasher: &mut KeyHasher) {
        // `usize` is at most 64 bits on every supported target.
        hasher.write(&(*self as u64).to_le_bytes());
    }
}

impl ShardKey for isize {
    fn write_key(&self, hasher: &mut KeyHasher) {
        hasher.write(&(*self as i64).to_le_bytes());
    }
}

/// Picks the shard of a key.
pub trait ShardSelector<K: ?Sized>: Send + Sync + 'static {
    /// The shard index for `key`, in `0..shards` (`shards` ≥ 1).
    fn select(&self, key: &K, shards: usize) -> usize;
}

/// Jump consistent hashing (Lamping and Veach) over [`KeyHasher`], the default
/// selector: going from `n` to `n + 1` shards moves only about `1 / (n + 1)` of the
/// keys, where [`ModuloHash`] moves most. The paper's floating-point step is computed
/// in exact integer arithmetic, so the result does not depend on the platform's
/// floating point either.
///
/// ```
/// use poolside_connpool::sharded::{JumpHash, ShardSelector};
/// let moved = (0..10_000u32).filter(|k| JumpHash.select(k, 8) != JumpHash.select(k, 9)).count();
/// assert!(moved < 1_600, "about a ninth of the keys move, here {moved}");
/// assert_eq!(JumpHash.select("user:42", 8), JumpHash.select("user:42", 8));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JumpHash;

/// [`KeyHasher`] modulo the shard count: as stable as [`JumpHash`], but growing the
/// shard count moves most keys. For a shard count fixed for good.
///
/// ```
/// use poolside_connpool::sharded::{ModuloHash, ShardSelector};
/// let shard = ModuloHash.select("user:42", 8);
/// assert!(shard < 8);
/// assert_eq!(shard, ModuloHash.select("user:42", 8));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ModuloHash;

/// The jump consistent hash of `key` over `buckets` buckets. The paper's step
/// `(b + 1) * (2^31 / ((key >> 33) + 1))` is the exact quotient here: `(b + 1) * 2^31`
/// fits in 128 bits for every `b < 2^64`.
fn jump(mut key: u64, buckets: usize) -> usize {
    let buckets = buckets as u64;
    let (mut bucket, mut next) = (0u64, 0u64);
    while next < buckets {
        bucket = next;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        let step = (u128::from(bucket) + 1) * (1u128 << 31) / (u128::from(key >> 33) + 1);
        next = u64::try_from(step).unwrap_or(u64::MAX);
    }
    // `bucket < buckets`, which came from a `usize`.
    bucket as usize
}

impl<K: ShardKey + ?Sized> ShardSelector<K> for JumpHash {
    fn select(&self, key: &K, shards: usize) -> usize {
        jump(KeyHasher::hash(key), shards.max(1))
    }
}

impl<K: ShardKey + ?Sized> ShardSelector<K> for ModuloHash {
    fn select(&self, key: &K, shards: usize) -> usize {
        // The remainder is below `shards`, a `usize`.
        (KeyHasher::hash(key) % shards.max(1) as u64) as usize
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
    fn selectors_spread_keys_evenly() {
        for selector in [&JumpHash as &dyn ShardSelector<u32>, &ModuloHash] {
            let mut counts = [0usize; 8];
            for key in 0..80_000u32 {
                counts[selector.select(&key, 8)] += 1;
            }
            assert!(counts.iter().all(|&c| (9_000..11_000).contains(&c)), "{counts:?}");
        }
        assert_eq!(ModuloHash.select("a", 1), 0);
    }

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        assert_eq!(KeyHasher::hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(KeyHasher::hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(KeyHasher::hash("foobar"), 0x8594_4171_f739_67e8);
    }
}
