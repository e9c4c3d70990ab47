#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer (clang, with the fuzz
# harnesses: the tree scripts/fuzz.sh uses) and runs the tests there; any finding fails a test.
#   scripts/sanitize.sh [CTEST_ARGS...]     (build folder: $VOXPRESS_FUZZ_BUILD or ./build-fuzz)
# Without arguments, all tests run; e.g. `scripts/sanitize.sh -R 'io|config'` runs a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${VOXPRESS_FUZZ_BUILD:-build-fuzz}"
jobs="${VP_JOBS:-$(nproc)}"
if [[ ! -f "$build/build.ninja" ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DVP_FUZZ=ON >/dev/null
fi
echo "== building with ASan + UBSan in $build"
ninja -C "$build" -j "$jobs"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/fuzz/lsan.supp:print_suppressions=0}"
echo "== tests under ASan + UBSan"
ctest --test-dir "$build" --output-on-failure -j "$jobs" "$@"
