//! The first pooled buffer: get one, use it, drop it, get it back clean.
//!
//! `cargo run -p poolside-bufpool --example first_pooled_buffer`

use poolside_bufpool::Pool;

fn main() {
    let pool: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(4096));

    let mut buf = pool.get();
    buf.extend_from_slice(b"hello, pool");
    let first_address = buf.as_ptr();
    println!("borrowed a buffer: {} bytes used, {} reserved", buf.len(), buf.capacity());
    drop(buf); // back to the pool: cleared, capacity kept

    let buf = pool.get();
    println!(
        "borrowed again: {} bytes used, {} reserved, same allocation: {}",
        buf.len(),
        buf.capacity(),
        buf.as_ptr() == first_address
    );
    assert!(buf.is_empty() && buf.as_ptr() == first_address);
    let stats = pool.stats();
    println!("hits {}, misses {} (one allocation served both gets)", stats.hits, stats.misses);
}
