#!/usr/bin/env bash
# Runs prebuilt bench executables on another machine (one with many cores and no
# registry access), for the 1/2/4/8/16-thread scaling tables.
#
#   here:   cargo bench -p poolside-benches --no-run --message-format=json  (see docs/benchmarks.md)
#           copy the executables into a folder, named by bench target (bufpool, workerpool, ...)
#   there:  benches/run-prebuilt.sh FOLDER OUT [criterion args...]
#   here:   cargo xtask report OUT/criterion docs/bench/<machine>
#
# The interleaved tables (median, spread, allocations per job) land in
# OUT/bench-report/extra. POOLSIDE_BENCH_NEIGHBORS=n in the environment adds n spinning
# threads to the workerpool bench for the whole run (a busy machine); run once with 0
# and once with n, into two OUT folders, to report quiet and busy.
set -u
bin_dir=${1:?usage: run-prebuilt.sh BIN_DIR OUT_DIR [criterion args...]}
out=${2:?usage: run-prebuilt.sh BIN_DIR OUT_DIR [criterion args...]}
shift 2
mkdir -p "$out"
export CRITERION_HOME="$out/criterion"
export POOLSIDE_BENCH_REPORT_DIR="$out/bench-report"
export POOLSIDE_BENCH_QUICK="${POOLSIDE_BENCH_QUICK:-1}"
export POOLSIDE_BENCH_MAX_THREADS="${POOLSIDE_BENCH_MAX_THREADS:-16}"
{ nproc; lscpu 2>/dev/null | grep -E 'Model name|^CPU\(s\)|NUMA node\(s\)'; } > "$out/machine.txt"
status=0
for exe in "$bin_dir"/*; do
  name=$(basename "$exe")
  [ -x "$exe" ] || continue
  echo "=== $name ($(date +%T))"
  if [ "$name" = bufpool ]; then
    MALLOC_MMAP_THRESHOLD_=131072 timeout "${BENCH_TIMEOUT:-240}" "$exe" --bench "$@" > "$out/$name.log" 2>&1 || status=$?
  else
    timeout "${BENCH_TIMEOUT:-240}" "$exe" --bench "$@" > "$out/$name.log" 2>&1 || status=$?
  fi
  grep -E "^[a-z_]+/|thrpt:" "$out/$name.log" | grep -v '%' | paste - - | tail -60
done
exit $status
