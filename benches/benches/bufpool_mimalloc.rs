//! poolside-bufpool against mimalloc, with mimalloc as the global allocator (so the
//! pools' own allocations come from it too).
//!
//! What a user picks for small buffers is often a faster allocator rather than a pool;
//! these scenarios show where a pool still pays with one and where it does not:
//!
//! * `bufpool_mimalloc_fill_256b/<impl>`: one thread, get + fill 256 bytes + drop.
//! * `bufpool_mimalloc_1mib/<impl>`: get + fill 1 MiB + drop.
//! * `bufpool_mimalloc_struct/<impl>`: a request-like struct with a byte body, a list
//!   and a map, filled and dropped: pooled and cleared in place, or built anew.
//! * the extra table `bufpool_mimalloc_threads`: the 256-byte scenario on 1 and 2
//!   threads that share one pool (fresh threads each run), contenders interleaved
//!   round by round, medians and spread (see `bufpool_rounds`).
//! * the extra table `bufpool_mimalloc_pays`: the 1 MiB and struct scenarios on one
//!   thread, interleaved the same way.

mod bufpool_rounds;

use bufpool_rounds::{contender, run_rounds, table};
use criterion::{Criterion, Throughput, criterion_group};
use poolside_benches::{full_or_quick, thread_counts, write_extra_report};
use poolside_bufpool::{BufPool, Pool, PoolBuilder};
use std::collections::HashMap;
use std::hint::black_box;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SMALL: usize = 256;
const LARGE: usize = 1024 * 1024;

fn fill(buf: &mut Vec<u8>, len: usize) {
    buf.resize(len, 7);
    black_box(&buf[..]);
}

/// A request-like object: the kind of struct with collections that services build per
/// request.
#[derive(Default)]
struct Request {
    body: Vec<u8>,
    ids: Vec<u64>,
    headers: HashMap<u64, u64>,
}

impl Request {
    fn fill(&mut self) {
        self.body.resize(512, 1);
        self.ids.extend(0..32);
        for k in 0..16 {
            self.headers.insert(k, k * 3);
        }
        black_box(&*self);
    }

    fn clear(&mut self) {
        self.body.clear();
        self.ids.clear();
        self.headers.clear();
    }
}

fn request_pool() -> Pool<Request> {
    PoolBuilder::with_reset(Request::default, Request::clear).build().expect("valid settings")
}

fn fill_256b(c: &mut Criterion) {
    let mut group = c.benchmark_group("bufpool_mimalloc_fill_256b");
    group.throughput(Throughput::Elements(1));
    let bufs = BufPool::new();
    let pool: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(SMALL));
    group.bench_function("poolside/BufPool", |b| b.iter(|| fill(&mut bufs.get(SMALL), SMALL)));
    group.bench_function("poolside/Pool", |b| b.iter(|| fill(&mut pool.get(), SMALL)));
    group.bench_function("mimalloc", |b| b.iter(|| fill(&mut Vec::with_capacity(SMALL), SMALL)));
    group.finish();
}

fn one_mib(c: &mut Criterion) {
    let mut group = c.benchmark_group("bufpool_mimalloc_1mib");
    group.throughput(Throughput::Bytes(LARGE as u64));
    let bufs = BufPool::new();
    group.bench_function("poolside/BufPool", |b| b.iter(|| fill(&mut bufs.get(LARGE), LARGE)));
    group.bench_function("mimalloc", |b| b.iter(|| fill(&mut Vec::with_capacity(LARGE), LARGE)));
    group.finish();
}

fn structs(c: &mut Criterion) {
    let mut group = c.benchmark_group("bufpool_mimalloc_struct");
    group.throughput(Throughput::Elements(1));
    let pool = request_pool();
    group.bench_function("poolside/Pool", |b| b.iter(|| pool.get().fill()));
    group.bench_function("mimalloc", |b| b.iter(|| Request::default().fill()));
    group.finish();
}

/// The 256-byte scenario on threads sharing one pool, interleaved.
fn threads(_: &mut Criterion) {
    if !selected("bufpool_mimalloc_threads") {
        return;
    }
    let bufs = BufPool::new();
    let pool: Pool<Vec<u8>> = Pool::new(|| Vec::with_capacity(SMALL));
    let contenders = [
        contender("poolside/BufPool", || fill(&mut bufs.get(SMALL), SMALL)),
        contender("poolside/Pool", || fill(&mut pool.get(), SMALL)),
        contender("mimalloc", || fill(&mut Vec::with_capacity(SMALL), SMALL)),
    ];
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let counts: Vec<usize> = thread_counts().into_iter().filter(|&t| t <= cores.max(2)).collect();
    let rounds = full_or_quick(7, 3);
    let results = run_rounds(&contenders, &counts, rounds, full_or_quick(3_000_000, 300_000));
    write_extra_report(
        "bufpool_mimalloc_threads",
        &table(
            "bufpool with mimalloc as the global allocator: get(256) + resize(256) + drop, threads sharing one pool",
            "cargo bench -p poolside-benches --bench bufpool_mimalloc -- bufpool_mimalloc_threads",
            &contenders,
            &results,
            &[2],
            rounds,
        ),
    );
}

/// Where a pool still pays with mimalloc, and where it does not: one thread, interleaved.
fn pays(_: &mut Criterion) {
    if !selected("bufpool_mimalloc_pays") {
        return;
    }
    let rounds = full_or_quick(7, 3);
    let bufs = BufPool::new();
    let pool = request_pool();
    let mut md = String::new();
    let scenarios = [
        (
            "256 B buffer: get + fill + drop",
            [
                contender("poolside", || fill(&mut bufs.get(SMALL), SMALL)),
                contender("mimalloc", || fill(&mut Vec::with_capacity(SMALL), SMALL)),
            ],
            3_000_000,
        ),
        (
            "1 MiB buffer: get + fill + drop",
            [
                contender("poolside", || fill(&mut bufs.get(LARGE), LARGE)),
                contender("mimalloc", || fill(&mut Vec::with_capacity(LARGE), LARGE)),
            ],
            3_000,
        ),
        (
            "struct with a 512 B body, 32 ids, 16-entry map: get + fill + drop",
            [
                contender("poolside", || pool.get().fill()),
                contender("mimalloc", || Request::default().fill()),
            ],
            300_000,
        ),
    ];
    for (scenario, contenders, ops) in &scenarios {
        let results = run_rounds(contenders, &[1], rounds, full_or_quick(*ops, ops / 10));
        md.push_str(&table(
            &format!("bufpool vs mimalloc, one thread: {scenario}"),
            "cargo bench -p poolside-benches --bench bufpool_mimalloc -- bufpool_mimalloc_pays",
            contenders,
            &results,
            &[1],
            rounds,
        ));
        md.push('\n');
    }
    write_extra_report("bufpool_mimalloc_pays", &md);
}

/// Whether a report that criterion does not run itself matches the command line's
/// filter: no filter, or a filter contained in `report`.
fn selected(report: &str) -> bool {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| report.contains(f.as_str()))
}

criterion_group! {
    name = benches;
    config = poolside_benches::criterion_config();
    targets = fill_256b, one_mib, structs, threads, pays
}

fn main() {
    benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}
