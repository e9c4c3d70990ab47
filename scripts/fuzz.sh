#!/usr/bin/env bash
# Fuzzes every reader and the YAML config validator with libFuzzer (+ ASan + UBSan) for
# SECONDS each (default 60) and prints one table row per target. Exit 1 on any finding.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      targets: tiff mha nrrd nifti raw hdf5 npy config
# Build folder: $VOXPRESS_FUZZ_BUILD or ./build-fuzz (clang, -DVP_FUZZ=ON, configured here).
# Seeds come from our own writers and phantoms (vp_fuzz_seeds); the growing corpus stays in
# BUILD/fuzz-corpus/TARGET, crashing inputs in BUILD/fuzz-findings/TARGET (crash-*, timeout-*, oom-*).
# Reproduce one: BUILD/fuzz/fuzz_TARGET BUILD/fuzz-findings/TARGET/crash-...
# $VP_SEEDS_BUILD: another build tree to make the seed writer in (e.g. build, the Release one).
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
seeds_build="${VP_SEEDS_BUILD:-$build}"
ninja -C "$build" -j "$jobs" $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null
ninja -C "$seeds_build" -j "$jobs" vp_fuzz_seeds >/dev/null
rm -rf "$build/fuzz-seeds"
"$seeds_build/fuzz/vp_fuzz_seeds" "$build/fuzz-seeds"

# Each harness writes its inputs under $TMPDIR: RAM when there is some.
export TMPDIR="${TMPDIR:-$([[ -w /dev/shm ]] && echo /dev/shm || echo /tmp)}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/fuzz/lsan.supp:print_suppressions=0}"
status=0
printf '%-8s %12s %8s %6s %5s %20s\n' target executions crashes hangs ooms unique_crashing_inputs
for t in "${targets[@]}"; do
  corpus="$build/fuzz-corpus/$t" findings="$build/fuzz-findings/$t" log="$build/fuzz-logs/$t.log"
  rm -rf "$findings"  # this run's findings only
  mkdir -p "$corpus" "$findings" "$(dirname "$log")"
  # One worker process (-fork=1) that survives crashes, hangs (20 s) and OOMs (2 GB), so every
  # finding of the run is kept and counted, not just the first.
  "$build/fuzz/fuzz_$t" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$findings/" "$corpus" "$build/fuzz-seeds/$t" >"$log" 2>&1 || true
  # The fork-mode status line: "#EXECS: cov: .. oom/timeout/crash: O/T/C time: .."
  last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1 || true)
  execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
  read -r ooms hangs crashes < <(sed -E 's|.*oom/timeout/crash: ([0-9]+)/([0-9]+)/([0-9]+).*|\1 \2 \3|' <<<"$last")
  unique=$(find "$findings" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
  printf '%-8s %12s %8s %6s %5s %20s\n' "$t" "${execs:-0}" "${crashes:-?}" "${hangs:-?}" "${ooms:-?}" "$unique"
  if [[ -z "$last" || "${crashes:-1}" != 0 || "${hangs:-1}" != 0 || "${ooms:-1}" != 0 || "$unique" != 0 ]]; then
    status=1
  fi
done
exit $status
