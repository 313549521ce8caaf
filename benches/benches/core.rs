//! poolside-core: clearing in place (`Reset`) against building a fresh value.
//!
//! Scenario `core_reset_vec`: refill a 4 KiB `Vec<u8>` — reset-and-reuse vs
//! `Vec::with_capacity` + drop each round. Scenario `core_reset_map`: refill a
//! 64-entry `HashMap` — reset vs a new map each round.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use poolside_benches::alloc::{CountingAllocator, measure};
use poolside_core::Reset;
use std::collections::HashMap;
use std::hint::black_box;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

const VEC_BYTES: usize = 4096;
const MAP_ENTRIES: u64 = 64;

fn fill_vec(v: &mut Vec<u8>) {
    v.extend(std::iter::repeat_n(0xA5, VEC_BYTES));
}

fn fill_map(m: &mut HashMap<u64, u64>) {
    m.extend((0..MAP_ENTRIES).map(|i| (i, i * 3)));
}

fn reset_vec(c: &mut Criterion) {
    let mut group = c.benchmark_group("core_reset_vec");
    group.throughput(Throughput::Bytes(VEC_BYTES as u64));
    let mut reused = Vec::with_capacity(VEC_BYTES);
    group.bench_function(BenchmarkId::new("poolside/Reset", "4KiB"), |b| {
        b.iter(|| {
            reused.reset();
            fill_vec(&mut reused);
            black_box(&reused);
        })
    });
    group.bench_function(BenchmarkId::new("realloc", "4KiB"), |b| {
        b.iter(|| {
            let mut fresh = Vec::with_capacity(VEC_BYTES);
            fill_vec(&mut fresh);
            black_box(fresh);
        })
    });
    group.finish();
}

fn reset_map(c: &mut Criterion) {
    let mut group = c.benchmark_group("core_reset_map");
    group.throughput(Throughput::Elements(MAP_ENTRIES));
    let mut reused = HashMap::with_capacity(MAP_ENTRIES as usize);
    group.bench_function(BenchmarkId::new("poolside/Reset", "64"), |b| {
        b.iter(|| {
            reused.reset();
            fill_map(&mut reused);
            black_box(&reused);
        })
    });
    group.bench_function(BenchmarkId::new("realloc", "64"), |b| {
        b.iter(|| {
            let mut fresh = HashMap::new();
            fill_map(&mut fresh);
            black_box(fresh);
        })
    });
    group.finish();
}

/// Allocations per operation, the `-benchmem` view of the same two scenarios.
fn allocations_report(_: &mut Criterion) {
    const OPS: u64 = 1000;
    let mut reused_vec = Vec::with_capacity(VEC_BYTES);
    let mut reused_map = HashMap::with_capacity(MAP_ENTRIES as usize);
    let rows = [
        (
            "core_reset_vec",
            "poolside/Reset",
            measure(|| {
                for _ in 0..OPS {
                    reused_vec.reset();
                    fill_vec(&mut reused_vec);
                }
            }),
        ),
        (
            "core_reset_vec",
            "realloc",
            measure(|| {
                for _ in 0..OPS {
                    let mut v = Vec::with_capacity(VEC_BYTES);
                    fill_vec(&mut v);
                    black_box(v);
                }
            }),
        ),
        (
            "core_reset_map",
            "poolside/Reset",
            measure(|| {
                for _ in 0..OPS {
                    reused_map.reset();
                    fill_map(&mut reused_map);
                }
            }),
        ),
        (
            "core_reset_map",
            "realloc",
            measure(|| {
                for _ in 0..OPS {
                    let mut m = HashMap::new();
                    fill_map(&mut m);
                    black_box(m);
                }
            }),
        ),
    ];
    let mut md = String::from(
        "### core: allocations per operation\n\n| scenario | implementation | allocs/op | bytes/op |\n|---|---|---:|---:|\n",
    );
    for (scenario, name, stats) in rows {
        let (allocs, bytes) = stats.per_op(OPS);
        md.push_str(&format!("| {scenario} | {name} | {allocs:.2} | {bytes:.0} |\n"));
    }
    poolside_benches::write_extra_report("core_allocations", &md);
}

criterion_group! {
    name = benches;
    config = poolside_benches::criterion_config();
    targets = reset_vec, reset_map, allocations_report
}
criterion_main!(benches);
