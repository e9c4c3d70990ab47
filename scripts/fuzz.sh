#!/usr/bin/env bash
# Fuzzes every reader and the YAML config validator with libFuzzer (+ ASan + UBSan) for
# SECONDS each (default 60) and prints one table row per target: executions, crashes (incl.
# sanitizer findings and leaks), hangs, OOMs, unique crashing inputs. Exit 1 on any finding.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      targets: tiff mha nrrd nifti raw hdf5 npy config
# Build folder: $VOXPRESS_FUZZ_BUILD or ./build-fuzz (clang, -DVP_FUZZ=ON, configured here).
# Seeds come from our own writers and phantoms (vp_fuzz_seeds); the growing corpus stays in
# BUILD/fuzz-corpus/TARGET, crashing inputs in BUILD/fuzz-findings/TARGET (crash-*, timeout-*, oom-*).
# Reproduce one: BUILD/fuzz/fuzz_TARGET BUILD/fuzz-findings/TARGET/crash-...
# $VP_SEEDS_BUILD: another build tree to make the seed writer in (e.g. build, the Release one).
# $VP_FUZZ_RUNS=N: a reproducible smoke instead of a timed run — N mutations per target from a
# fixed random seed (-seed=1, -runs=N) on an empty corpus, so the same binary explores the same
# inputs on every machine and a CI verdict does not depend on the machine's speed (CI uses it;
# exploratory fuzzing is the timed form, e.g. scripts/fuzz.sh 1800).
# $VP_FUZZ_SEED=S with a timed run: an empty corpus and -seed=S, so the run explores the same
# inputs in the same order as `VP_FUZZ_RUNS=N` does; a finding after N executions reproduces
# with VP_FUZZ_RUNS=N on any machine (CI: VP_FUZZ_SEED=1 scripts/fuzz.sh 60).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(tiff mha nrrd nifti raw hdf5 npy config)
build="${VOXPRESS_FUZZ_BUILD:-build-fuzz}"
jobs="${VP_JOBS:-$(nproc)}"

if [[ ! -f "$build/build.ninja" ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DVP_FUZZ=ON >/dev/null
fi
ninja -C "$build" -j "$jobs" $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null
# Seeds are deterministic: written once per build folder (delete BUILD/fuzz-seeds to rewrite).
if [[ ! -d "$build/fuzz-seeds" ]]; then
  seeds_build="${VP_SEEDS_BUILD:-$build}"
  ninja -C "$seeds_build" -j "$jobs" vp_fuzz_seeds >/dev/null
  "$seeds_build/fuzz/vp_fuzz_seeds" "$build/fuzz-seeds.tmp" && mv "$build/fuzz-seeds.tmp" "$build/fuzz-seeds"
fi

# Each harness writes its inputs under $TMPDIR: RAM when there is some.
export TMPDIR="${TMPDIR:-$([[ -w /dev/shm ]] && echo /dev/shm || echo /tmp)}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/fuzz/lsan.supp:print_suppressions=0}"
status=0
failed=()
printf '%-8s %12s %8s %6s %5s %20s\n' target executions crashes hangs ooms unique_crashing_inputs
for t in "${targets[@]}"; do
  corpus="$build/fuzz-corpus/$t" findings="$build/fuzz-findings/$t" log="$build/fuzz-logs/$t.log"
  rm -rf "$findings"  # this run's findings only
  mkdir -p "$corpus" "$findings" "$(dirname "$log")"
  # One process: libFuzzer stops at its first finding and saves it (crash-*, leak-*, timeout-*
  # for a hang past 20 s, oom-* past 2 GB); fork mode would restart the process every few seconds,
  # which costs more than the fuzzing itself for targets that load ITK and HDF5.
  # libhdf5 mallocs metadata blocks of the size a corrupt file states (fuzz_hdf5: 80 TB in
  # H5C_protect) and handles a NULL as a read error; the reader runs it in a child process whose
  # address space is capped (hdf5_io.cpp), where such a request must fail as it does under
  # glibc: ASan returns NULL instead of aborting, and libFuzzer's malloc limit (which would dump
  # the child's input as an oom-*) is lifted; the parent's RSS limit still holds.
  opts=$ASAN_OPTIONS
  malloc_limit=()
  [[ $t == hdf5 ]] && opts="$opts:allocator_may_return_null=1" && malloc_limit=(-malloc_limit_mb=1048576)
  # ITK's NrrdIO and MetaIO and libhdf5 keep memory on every malformed input (suppressed above):
  # libFuzzer's per-input leak check then re-runs and heap-scans each such input (nrrd: 150 -> 1750
  # exec/s without it). Leaks are still checked once at exit over all inputs (LeakSanitizer's
  # report fails the run), only not pinned to one input.
  leaks=()
  [[ $t == nrrd || $t == mha || $t == hdf5 ]] && leaks=(-detect_leaks=0)
  if [[ -n "${VP_FUZZ_RUNS:-}" ]]; then
    rm -rf "$corpus" && mkdir -p "$corpus"
    budget=(-runs="$VP_FUZZ_RUNS" -seed=1)
  elif [[ -n "${VP_FUZZ_SEED:-}" ]]; then
    rm -rf "$corpus" && mkdir -p "$corpus"
    budget=(-max_total_time="$seconds" -seed="$VP_FUZZ_SEED")
  else
    budget=(-max_total_time="$seconds")
  fi
  ASAN_OPTIONS=$opts "$build/fuzz/fuzz_$t" "${budget[@]}" "${leaks[@]}" "${malloc_limit[@]}" -timeout=20 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$findings/" "$corpus" "$build/fuzz-seeds/$t" >"$log" 2>&1 || true
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1)
  count() { find "$findings" -maxdepth 1 -type f -name "$1" | wc -l; }
  crashes=$(($(count 'crash-*') + $(count 'leak-*') + $(count 'deadly*')))
  hangs=$(count 'timeout-*')
  ooms=$(count 'oom-*')
  unique=$(find "$findings" -maxdepth 1 -type f | wc -l)
  printf '%-8s %12s %8s %6s %5s %20s\n' "$t" "${execs:-0}" "$crashes" "$hangs" "$ooms" "$unique"
  if [[ -z "$execs" || "$unique" != 0 ]] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:' "$log"; then
    status=1
    failed+=("$t")
  fi
done
# A CI machine is gone after the run: print what reproduces each finding, so that its log alone is
# enough (the sanitizer report, then the input's first bytes; inputs are at most 64 KiB).
for t in "${failed[@]}"; do
  echo "== $t: the end of $build/fuzz-logs/$t.log" >&2
  grep -vE '^(#[0-9]+|INFO:)' "$build/fuzz-logs/$t.log" | tail -n 40 >&2
  for f in "$build/fuzz-findings/$t"/*; do
    [[ -f $f ]] || continue
    echo "== $t: $f ($(stat -c %s "$f") bytes; base64 of the first 6 KiB)" >&2
    head -c 6144 "$f" | base64 >&2
  done
done
exit $status
