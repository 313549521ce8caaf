//! Feature `bytes`: zero-copy freezing, in-place reclaim, caps on return.
#![cfg(feature = "bytes")]

use bytes::BufMut;
use poolside_bufpool::{BufPool, BytesPool};

#[test]
fn freezing_a_buf_guard_does_not_copy() {
    let pool = BufPool::new();
    let mut buf = pool.get(100);
    buf.put_slice(b"no copy");
    let ptr = buf.as_ptr();
    let bytes = buf.freeze();
    assert_eq!(bytes, "no copy");
    assert_eq!(bytes.as_ptr(), ptr, "Bytes took the Vec's allocation");
}

#[test]
fn a_frozen_bytes_mut_is_reclaimed_in_place_once_the_bytes_are_dropped() {
    let pool = BytesPool::new(1024).unwrap();
    let mut buf = pool.get();
    let ptr = buf.as_ptr();
    buf.put_slice(b"secret header");
    let frozen = BytesPool::freeze(buf);
    assert_eq!(frozen.as_ptr(), ptr, "freeze shares the allocation");
    drop(frozen);
    let again = pool.get();
    assert!(again.is_empty(), "the previous borrower's bytes are never observed");
    assert_eq!(again.as_ptr(), ptr, "the allocation was reclaimed, not replaced");
    assert!(again.capacity() >= 1024);
    assert_eq!(pool.stats().misses, 1);
}

#[test]
fn bytes_still_alive_elsewhere_are_never_overwritten() {
    let pool = BytesPool::new(64).unwrap();
    let mut buf = pool.get();
    buf.put_slice(b"kept by a reader");
    let frozen = BytesPool::freeze(buf);
    let mut next = pool.get();
    next.put_slice(&[0xEE; 64]);
    drop(next);
    assert_eq!(frozen, "kept by a reader");
}

#[test]
fn a_bytes_mut_that_grew_past_four_times_its_class_is_dropped() {
    let pool = BytesPool::new(64).unwrap();
    let mut buf = pool.get();
    buf.put_slice(&[1; 1024]);
    drop(buf);
    let stats = pool.stats();
    assert_eq!(stats.rejected, 1);
    assert_eq!(stats.retained_shared, 0);
    assert!(pool.get().capacity() < 1024);
}
