//! Cap what comes back: a buffer that grew to 1 MiB is dropped and counted instead of
//! pinning a megabyte in the pool forever.
//!
//! `cargo run -p poolside-bufpool --example size_cap_on_return`

use poolside_bufpool::{BufPool, Pool};

fn main() {
    // Object pool with a retain policy.
    let pool = Pool::builder(|| Vec::<u8>::with_capacity(4096))
        .retain(|v| v.capacity() <= 64 * 1024)
        .build()
        .unwrap();
    let mut big = pool.get();
    big.resize(1024 * 1024, 0); // one huge request
    drop(big);
    println!("Pool: rejected = {}", pool.stats().rejected);
    assert_eq!(pool.stats().rejected, 1);

    // Buffer pool: anything above the cap (default: the largest class) is dropped.
    let bufs = BufPool::builder().max_capacity(64 * 1024).build().unwrap();
    let mut big = bufs.get(100);
    big.resize(1024 * 1024, 0);
    drop(big);
    println!("BufPool: dropped above the cap = {}", bufs.rejected());
    assert_eq!(bufs.rejected(), 1);
}
