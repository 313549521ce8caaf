//! A tiered buffer pool: small, medium and large classes, each buffer filed by its
//! capacity, so a jagged workload does not turn every pooled buffer into a large one.
//!
//! `cargo run -p poolside-bufpool --example tiered_buffers`

use poolside_bufpool::BufPool;
use std::io::Write;

fn main() -> std::io::Result<()> {
    let pool = BufPool::new();
    for size in [200, 3_000, 20_000, 500_000, 200] {
        let mut buf = pool.get(size);
        buf.write_all(&vec![b'x'; size])?;
        println!("request of {size:>7} bytes served by a buffer of {:>8} bytes", buf.capacity());
    }
    for (class, stats) in pool.class_stats() {
        println!(
            "class {class:>8}: hits {:>2} misses {:>2} retained {:>2}",
            stats.hits, stats.misses, stats.retained_shared
        );
    }
    Ok(())
}
