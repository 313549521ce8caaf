//! poolside-bufpool against plain allocation and the peer object pools.
//!
//! * `bufpool_fill_256b/<impl>`: one thread, get + fill 256 bytes + put.
//! * `bufpool_threads/<impl>/<threads>`: the same on 1, 2, 4, 8, 16 threads at once,
//!   aggregate throughput.
//! * `bufpool_1mib/<impl>`: get + fill 1 MiB + put. Run with
//!   `MALLOC_MMAP_THRESHOLD_=131072` (set by `cargo xtask bench`) so the allocator
//!   maps and unmaps each large buffer, as it does for many real services.
//! * `bufpool_jagged_small/<impl>`: the ≤ 4 KiB requests of a jagged workload, tiered
//!   `BufPool` vs one single-class pool; the peak resident memory of the whole jagged
//!   workload (90% ≤ 4 KiB, 9% ≤ 64 KiB, 1% ≤ 1 MiB, 64 buffers held at once) is
//!   measured in child processes (VmHWM) and written as an extra table, with the
//!   allocations per operation of every steady-state path.

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

/// One get-fill-put of every implementation, by name, for a given size.
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

    const NAMES: [&'static str; 6] =
        ["poolside/BufPool", "poolside/Pool", "alloc-Vec::with_capacity", "object-pool", "opool", "mutex-freelist"];

    #[inline]
    fn run(&self, name: &str) {
        let size = self.size;
        match name {
            "poolside/BufPool" => fill(&mut self.bufpool.get(size), size),
            "poolside/Pool" => fill(&mut self.pool.get(), size),
            "alloc-Vec::with_capacity" => fill(&mut Vec::with_capacity(size), size),
            "object-pool" => {
                let mut v = self.object_pool.pull(|| Vec::with_capacity(size));
                v.clear(); // object-pool does not reset returned objects
                fill(&mut v, size)
            }
            "opool" => fill(&mut self.opool.get(), size),
            "mutex-freelist" => {
                let mut v = self.mutex.get();
                fill(&mut v, size);
                self.mutex.put(v);
            }
            other => unreachable!("unknown contender {other}"),
        }
    }
}

fn fill_256b(c: &mut Criterion) {
    let mut group = c.benchmark_group("bufpool_fill_256b");
    group.throughput(Throughput::Elements(1));
    let contenders = Contenders::new(SMALL);
    for name in Contenders::NAMES {
        group.bench_function(name, |b| b.iter(|| contenders.run(name)));
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

fn threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("bufpool_threads");
    let ops_per_thread = full_or_quick(200_000, 20_000);
    let contenders = Contenders::new(SMALL);
    for threads in thread_counts() {
        group.throughput(Throughput::Elements((threads * ops_per_thread) as u64));
        for name in ["poolside/Pool", "poolside/BufPool", "alloc-Vec::with_capacity", "object-pool", "mutex-freelist"] {
            group.bench_function(BenchmarkId::new(name, threads), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let barrier = std::sync::Barrier::new(threads + 1);
                        let started = std::thread::scope(|s| {
                            for _ in 0..threads {
                                s.spawn(|| {
                                    barrier.wait();
                                    for _ in 0..ops_per_thread {
                                        contenders.run(name);
                                    }
                                });
                            }
                            barrier.wait();
                            Instant::now()
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

fn one_mib(c: &mut Criterion) {
    let mut group = c.benchmark_group("bufpool_1mib");
    group.throughput(Throughput::Bytes(LARGE as u64));
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        eprintln!("note: MALLOC_MMAP_THRESHOLD_ is not set; `cargo xtask bench` sets it to 131072 for this bench");
    }
    let contenders = Contenders::new(LARGE);
    for name in ["poolside/BufPool", "poolside/Pool", "alloc-Vec::with_capacity", "object-pool"] {
        group.bench_function(name, |b| b.iter(|| contenders.run(name)));
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
    let out = std::process::Command::new(std::env::current_exe().ok()?).env(JAGGED_CHILD, mode).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| l.strip_prefix("VMHWM_KIB=")?.parse().ok())
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
    group.bench_function("poolside/BufPool-tiered", |b| b.iter(|| fill(&mut tiered.get(small), small)));
    group.bench_function("single-class-Pool", |b| b.iter(|| fill(&mut single.get(), small)));
    group.finish();

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
    const OPS: u64 = 10_000;
    let mut md = String::from(
        "### bufpool: allocations per operation (steady state, after warm-up)\n\n\
         | scenario | implementation | allocs/op | bytes/op |\n|---|---|---:|---:|\n",
    );
    for (scenario, size) in [("fill_256b", SMALL), ("1mib", LARGE)] {
        let contenders = Contenders::new(size);
        for name in Contenders::NAMES {
            contenders.run(name); // warm-up: the pools make their first object
            let stats = measure(|| {
                for _ in 0..OPS {
                    contenders.run(name);
                }
            });
            let (allocs, bytes) = stats.per_op(OPS);
            md.push_str(&format!("| {scenario} | {name} | {allocs:.2} | {bytes:.0} |\n"));
        }
    }
    write_extra_report("bufpool_allocations", &md);
}

criterion_group! {
    name = benches;
    config = poolside_benches::criterion_config();
    targets = fill_256b, threads, one_mib, jagged, allocations
}

fn main() {
    if let Ok(mode) = std::env::var(JAGGED_CHILD) {
        jagged_child(&mode);
        return;
    }
    benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}
