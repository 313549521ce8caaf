//! Pooled vs unpooled, roughly: a million 256-byte and a thousand 1 MiB buffers.
//! For real numbers against malloc and the peer pools run
//! `cargo xtask bench bufpool` (criterion, medians, ratios).
//!
//! `cargo run --release -p poolside-bufpool --example pooled_vs_unpooled`

use poolside_bufpool::BufPool;
use std::hint::black_box;
use std::time::Instant;

fn time(label: &str, rounds: usize, size: usize, mut f: impl FnMut(usize)) {
    let started = Instant::now();
    for _ in 0..rounds {
        f(size);
    }
    let per_op = started.elapsed() / rounds as u32;
    println!("{label:<28} {size:>8} B: {per_op:>10.1?} per get + fill + put");
}

fn main() {
    let pool = BufPool::new();
    for (rounds, size) in [(1_000_000, 256), (1_000, 1024 * 1024)] {
        time("Vec::with_capacity", rounds, size, |size| {
            let mut v = Vec::with_capacity(size);
            v.resize(size, 1u8);
            black_box(&v);
        });
        time("BufPool::get", rounds, size, |size| {
            let mut v = pool.get(size);
            v.resize(size, 1u8);
            black_box(&v[..]);
        });
    }
    println!("(debug builds are not representative: use --release)");
}
