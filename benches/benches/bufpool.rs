//! poolside-bufpool against plain allocation and the peer object pools.
//!
//! * `bufpool_fill_256b/<impl>`: one thread, get + fill 256 bytes + put.
//! * `bufpool_threads/<impl>/<threads>`: the same on 1, 2, 4, 8, 16 threads at once,
//!   aggregate throughput.
//! * the extra table `bufpool_threads_rounds`: get(256) + resize(256) + drop on 1 and 2
//!   threads (more where the machine has the cores) sharing one pool, fresh threads
//!   each run, the contenders interleaved round by round; medians and spread (see
//!   `bufpool_rounds`). The same table with mimalloc is in `bufpool_mimalloc`.
//! * `bufpool_1mib/<impl>`: get + fill 1 MiB + put, with `MALLOC_MMAP_THRESHOLD_=131072`
//!   so the allocator maps and unmaps each large buffer, as it does for many real
//!   services. glibc reads the variable at start-up, so when it is not set the bench
//!   binary re-runs itself with it (same arguments); 256-byte allocations are far below
//!   the threshold, so the other scenarios are unaffected.
//! * `bufpool_jagged_small/<impl>`: the ≤ 4 KiB requests of a jagged workload, tiered
//!   `BufPool` vs one single-class pool; the peak resident memory of the whole jagged
//!   workload (90% ≤ 4 KiB, 9% ≤ 64 KiB, 1% ≤ 1 MiB, 64 buffers held at once) is
//!   measured in child processes (VmHWM) and written as an extra table, with the
//!   allocations per operation of every steady-state path.

mod bufpool_rounds;

use bufpool_rounds::{contender, run_rounds, table};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use parking_lot::Mutex;
use poolside_benches::alloc::{CountingAllocator, measure};
use poolside_benches::{full_or_quick, thread_counts, write_extra_report};
use poolside_bufpool::{BufPool, Pool};
use std::hint::black_box;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

const SMALL: usize = 256;
const LARGE: usize = 1024 * 1024;

fn fill(buf: &mut Vec<u8>, len: usize) {
    buf.resize(len, 0xA5);
    black_box(&buf[..]);
}

/// opool needs an allocator type.
struct VecAllocator(usize);

impl opool::PoolAllocator<Vec<u8>> for VecAllocator {
    fn allocate(&self) -> Vec<u8> {
        Vec::with_capacity(self.0)
    }
    fn reset(&self, v: &mut Vec<u8>) {
        v.clear();
    }
}

/// The classic free list: a mutex around a vector of buffers.
struct MutexFreeList {
    free: Mutex<Vec<Vec<u8>>>,
    size: usize,
}

impl MutexFreeList {
    fn new(size: usize) -> Self {
        MutexFreeList { free: Mutex::new(Vec::new()), size }
    }
    fn get(&self) -> Vec<u8> {
        self.free.lock().pop().unwrap_or_else(|| Vec::with_capacity(self.size))
    }
    fn put(&self, mut v: Vec<u8>) {
        v.clear();
        self.free.lock().push(v);
    }
}

/// The implementations that share one instance between threads.
#[derive(Debug, Clone, Copy)]
enum Impl {
    BufPool,
    Pool,
    Alloc,
    ObjectPool,
    Opool,
    MutexFreeList,
}

impl Impl {
    const ALL: [Impl; 6] = [
        Impl::BufPool,
        Impl::Pool,
        Impl::Alloc,
        Impl::ObjectPool,
        Impl::Opool,
        Impl::MutexFreeList,
    ];

    fn name(self) -> &'static str {
        match self {
            Impl::BufPool => "poolside/BufPool",
            Impl::Pool => "poolside/Pool",
            Impl::Alloc => "alloc-Vec::with_capacity",
            Impl::ObjectPool => "object-pool",
            Impl::Opool => "opool",
            Impl::MutexFreeList => "mutex-freelist",
        }
    }
}

/// One pool of every implementation for a given buffer size.
struct Contenders {
    bufpool: BufPool,
    pool: Pool<Vec<u8>>,
    object_pool: object_pool::Pool<Vec<u8>>,
    opool: opool::Pool<VecAllocator, Vec<u8>>,
    mutex: MutexFreeList,
    size: usize,
}

impl Contenders {
    fn new(size: usize) -> Self {
        Contenders {
            bufpool: BufPool::new(),
            pool: Pool::new(move || Vec::with_capacity(size)),
            object_pool: object_pool::Pool::new(64, move || Vec::with_capacity(size)),
            opool: opool::Pool::new(64, VecAllocator(size)),
            mutex: MutexFreeList::new(size),
            size,
        }
    }
}

/// Binds `$op` to the get-fill-put closure of `$which` and evaluates `$body` with it.
/// The choice is made once, outside the timed loop, so every closure is monomorphised
/// and no implementation pays for dispatch.
macro_rules! with_op {
    ($contenders:expr, $which:expr, |$op:ident| $body:expr) => {{
        let c: &Contenders = &$contenders;
        let size = c.size;
        match $which {
            Impl::BufPool => {
                let $op = || fill(&mut c.bufpool.get(size), size);
                $body
            }
            Impl::Pool => {
                let $op = || fill(&mut c.pool.get(), size);
                $body
            }
            Impl::Alloc => {
                let $op = || fill(&mut Vec::with_capacity(size), size);
                $body
            }
            Impl::ObjectPool => {
                let $op = || {
                    let mut v = c.object_pool.pull(|| Vec::with_capacity(size));
                    v.clear(); // object-pool does not reset returned objects
                    fill(&mut v, size)
                };
                $body
            }
            Impl::Opool => {
                let $op = || fill(&mut c.opool.get(), size);
                $body
            }
            Impl::MutexFreeList => {
                let $op = || {
                    let mut v = c.mutex.get();
                    fill(&mut v, size);
                    c.mutex.put(v);
                };
                $body
            }
        }
    }};
}

fn fill_256b(c: &mut Criterion) {
    let mut group = c.benchmark_group("bufpool_fill_256b");
    group.throughput(Throughput::Elements(1));
    let contenders = Contenders::new(SMALL);
    for which in Impl::ALL {
        group.bench_function(which.name(), |b| with_op!(contenders, which, |op| b.iter(op)));
    }
    // After the runs: the pools hand back the buffer they just used, malloc the chunk.
    if runs_group("bufpool_fill_256b") {
        write_extra_report("bufpool_fill_256b_placement", &placement_report(&contenders));
    }
    // lifeguard is single-threaded (Rc), so it is not in the shared contenders.
    let lifeguard: lifeguard::Pool<Vec<u8>> = lifeguard::Pool::with_size(64);
    group.bench_function("lifeguard", |b| {
        b.iter(|| {
            let mut v = lifeguard.new();
            fill(&mut v, SMALL)
        })
    });
    group.finish();
}

/// Where each contender's 256-byte fill lands within its 4 KiB page. A fill that
/// crosses a page boundary is split by the hardware and takes several nanoseconds
/// longer, whoever owns the buffer; where a buffer lands depends on everything the
/// process allocated before, so an unlucky placement shows up here rather than as an
/// unexplained slow row.
fn placement_report(c: &Contenders) -> String {
    let page_offset = |buf: &[u8]| buf.as_ptr() as usize % 4096;
    let rows = [
        (Impl::BufPool.name(), page_offset(&c.bufpool.get(c.size))),
        (Impl::Pool.name(), page_offset(&c.pool.get())),
        // malloc hands a freed chunk straight back: the same place as in the loop.
        (Impl::Alloc.name(), page_offset(&Vec::with_capacity(c.size))),
    ];
    let mut md = String::from(
        "### bufpool: where the 256-byte fill lands (offset of the buffer in its 4 KiB page)\n\n\
         | implementation | offset | fill crosses a page |\n|---|---:|---|\n",
    );
    for (name, offset) in rows {
        let crosses = if offset + c.size > 4096 { "yes (split stores)" } else { "no" };
        md.push_str(&format!("| {name} | {offset} | {crosses} |\n"));
    }
    md
}

fn threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("bufpool_threads");
    // One iteration is a whole run of every thread: 10 samples keep the slow peers at
    // 16 threads (object-pool manages ~0.3 M ops/s there) to minutes, not hours.
    group.sample_size(10);
    let ops_per_thread = full_or_quick(200_000, 20_000);
    let contenders = Contenders::new(SMALL);
    for threads in thread_counts() {
        group.throughput(Throughput::Elements((threads * ops_per_thread) as u64));
        for which in Impl::ALL {
            group.bench_function(BenchmarkId::new(which.name(), threads), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let barrier = std::sync::Barrier::new(threads + 1);
                        let started = std::thread::scope(|s| {
                            for _ in 0..threads {
                                s.spawn(|| {
                                    barrier.wait();
                                    with_op!(contenders, which, |op| {
                                        for _ in 0..ops_per_thread {
                                            op();
                                        }
                                    });
                                });
                            }
                            // Start the clock before releasing the workers: once the
                            // barrier opens they may run long before this thread is
                            // scheduled again, and that work must be inside the window.
                            let started = Instant::now();
                            barrier.wait();
                            started
                        });
                        total += started.elapsed();
                    }
                    total
                })
            });
        }
    }
    group.finish();
}

/// The scaling table with every contender interleaved round by round.
fn threads_rounds(_: &mut Criterion) {
    if !selected("bufpool_threads_rounds") {
        return;
    }
    let contenders = Contenders::new(SMALL);
    let c = &contenders;
    let rows = [
        contender(Impl::BufPool.name(), || fill(&mut c.bufpool.get(SMALL), SMALL)),
        contender(Impl::Pool.name(), || fill(&mut c.pool.get(), SMALL)),
        contender(Impl::Alloc.name(), || fill(&mut Vec::with_capacity(SMALL), SMALL)),
    ];
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let counts: Vec<usize> = thread_counts().into_iter().filter(|&t| t <= cores.max(2)).collect();
    let rounds = full_or_quick(7, 3);
    let results = run_rounds(&rows, &counts, rounds, full_or_quick(3_000_000, 300_000));
    write_extra_report(
        "bufpool_threads_rounds",
        &table(
            "bufpool (glibc malloc): get(256) + resize(256) + drop, threads sharing one pool",
            "cargo bench -p poolside-benches --bench bufpool -- bufpool_threads_rounds",
            &rows,
            &results,
            &[2],
            rounds,
        ),
    );
}

fn one_mib(c: &mut Criterion) {
    let mut group = c.benchmark_group("bufpool_1mib");
    group.throughput(Throughput::Bytes(LARGE as u64));
    let contenders = Contenders::new(LARGE);
    for which in Impl::ALL {
        group.bench_function(which.name(), |b| with_op!(contenders, which, |op| b.iter(op)));
    }
    group.finish();
}

/// Request sizes of the jagged workload: 90% ≤ 4 KiB, 9% ≤ 64 KiB, 1% ≤ 1 MiB,
/// from a fixed pseudo-random sequence.
fn jagged_sizes(n: usize) -> Vec<usize> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let pick = state % 100;
            let within = (state >> 8) as usize;
            match pick {
                0..90 => 64 + within % (4 * 1024 - 64),
                90..99 => 4 * 1024 + within % (60 * 1024),
                _ => 64 * 1024 + within % (960 * 1024),
            }
        })
        .collect()
}

const JAGGED_CHILD: &str = "POOLSIDE_BUFPOOL_JAGGED_CHILD";
const HELD_AT_ONCE: usize = 64;

/// Runs the jagged workload with 64 buffers in flight and prints VmHWM in KiB.
fn jagged_child(mode: &str) {
    let sizes = jagged_sizes(full_or_quick(200_000, 50_000));
    match mode {
        "tiered" => {
            let pool = BufPool::new();
            let mut held = std::collections::VecDeque::new();
            for &size in &sizes {
                let mut buf = pool.get(size);
                fill(&mut buf, size);
                held.push_back(buf);
                if held.len() > HELD_AT_ONCE {
                    held.pop_front();
                }
            }
        }
        _ => {
            let pool: Pool<Vec<u8>> = Pool::builder(Vec::new).max_retained(1024).build().unwrap();
            let mut held = std::collections::VecDeque::new();
            for &size in &sizes {
                let mut buf = pool.get();
                fill(&mut buf, size);
                held.push_back(buf);
                if held.len() > HELD_AT_ONCE {
                    held.pop_front();
                }
            }
        }
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("0");
    println!("VMHWM_KIB={hwm}");
}

fn peak_rss_kib(mode: &str) -> Option<u64> {
    let out = std::process::Command::new(std::env::current_exe().ok()?)
        .env(JAGGED_CHILD, mode)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("VMHWM_KIB=")?.parse().ok())
}

fn jagged(c: &mut Criterion) {
    let mut group = c.benchmark_group("bufpool_jagged_small");
    group.throughput(Throughput::Elements(1));
    // Warm both pools with the jagged workload, then time small requests only.
    let sizes = jagged_sizes(20_000);
    let tiered = BufPool::new();
    let single: Pool<Vec<u8>> = Pool::builder(Vec::new).max_retained(1024).build().unwrap();
    for &size in &sizes {
        fill(&mut tiered.get(size), size);
        fill(&mut single.get(), size);
    }
    let small = 1024;
    group.bench_function("poolside/BufPool-tiered", |b| {
        b.iter(|| fill(&mut tiered.get(small), small))
    });
    group.bench_function("single-class-Pool", |b| b.iter(|| fill(&mut single.get(), small)));
    group.finish();

    if !selected("bufpool_jagged_rss") {
        return;
    }
    let (t, s) = (peak_rss_kib("tiered"), peak_rss_kib("single"));
    let ratio = match (t, s) {
        (Some(t), Some(s)) if t > 0 => format!("{:.1}x lower", s as f64 / t as f64),
        _ => "n/a".into(),
    };
    write_extra_report(
        "bufpool_jagged_rss",
        &format!(
            "### bufpool: jagged workload peak resident memory (child process VmHWM)\n\n\
             | pool | peak RSS |\n|---|---:|\n| poolside/BufPool (tiered) | {} KiB |\n| single-class Pool<Vec<u8>> | {} KiB |\n\n\
             Tiered peak is {ratio}.\n",
            t.map_or("n/a".into(), |v| v.to_string()),
            s.map_or("n/a".into(), |v| v.to_string()),
        ),
    );
}

fn allocations(_: &mut Criterion) {
    if !selected("bufpool_allocations") {
        return;
    }
    let mut md = String::from(
        "### bufpool: allocations per operation (steady state, after warm-up)\n\n\
         | scenario | implementation | allocs/op | bytes/op |\n|---|---|---:|---:|\n",
    );
    // Fewer 1 MiB operations: unpooled, each one maps and unmaps a megabyte.
    for (scenario, size, ops) in [("fill_256b", SMALL, 10_000u64), ("1mib", LARGE, 200)] {
        let contenders = Contenders::new(size);
        for which in Impl::ALL {
            let stats = with_op!(contenders, which, |op| {
                op(); // warm-up: the pools make their first object
                measure(|| {
                    for _ in 0..ops {
                        op();
                    }
                })
            });
            let (allocs, bytes) = stats.per_op(ops);
            md.push_str(&format!("| {scenario} | {} | {allocs:.2} | {bytes:.0} |\n", which.name()));
        }
    }
    write_extra_report("bufpool_allocations", &md);
}

criterion_group! {
    name = benches;
    config = poolside_benches::criterion_config();
    targets = fill_256b, threads, threads_rounds, one_mib, jagged, allocations
}

/// Whether a report that criterion does not run itself matches the command line's
/// filter: no filter, or a filter contained in `report` (`bufpool`, `bufpool_jagged`).
fn selected(report: &str) -> bool {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| report.contains(f.as_str()))
}

/// Whether the command line's filter selects benchmarks of `group`: no filter, or an
/// alternative of a filter (`a|b`) that names the group or a benchmark in it.
fn runs_group(group: &str) -> bool {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    filters.is_empty()
        || filters
            .iter()
            .flat_map(|f| f.split('|'))
            .any(|alt| group.contains(alt) || alt.starts_with(group))
}

const MMAP_THRESHOLD: &str = "MALLOC_MMAP_THRESHOLD_";

fn main() {
    if let Ok(mode) = std::env::var(JAGGED_CHILD) {
        jagged_child(&mode);
        return;
    }
    if std::env::var_os(MMAP_THRESHOLD).is_none() {
        // glibc reads the threshold when the process starts: re-run this binary with it.
        let status = std::process::Command::new(std::env::current_exe().expect("own path"))
            .args(std::env::args_os().skip(1))
            .env(MMAP_THRESHOLD, "131072")
            .status()
            .expect("re-run the bench with MALLOC_MMAP_THRESHOLD_ set");
        std::process::exit(status.code().unwrap_or(1));
    }
    benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}
