#!/usr/bin/env bash
# Builds with AddressSanitizer + UndefinedBehaviorSanitizer (clang, with the fuzz harnesses: the
# tree scripts/fuzz.sh uses) and runs tests there; any finding aborts its test, which fails.
#   scripts/sanitize.sh [CTEST_ARGS...]   everything, every test (ctest; e.g. -R 'Hostile|Config')
#   scripts/sanitize.sh --fast            the subset CI runs (.ci/run), without the voxpress CLI:
#       the readers' and core's test executables (VP_SANITIZE_FAST_TESTS below). The YAML
#       config validator is sanitized in CI by fuzz_config (scripts/fuzz.sh), which runs every
#       configs/*.yaml seed under ASan + UBSan before it mutates them.
# Build folder: $VOXPRESS_FUZZ_BUILD or ./build-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${VOXPRESS_FUZZ_BUILD:-build-fuzz}"
jobs="${VP_JOBS:-$(nproc)}"
fast_tests=(${VP_SANITIZE_FAST_TESTS:-test_core test_io test_io_hostile test_io_itk})
fast=0
if [[ "${1:-}" == "--fast" ]]; then
  fast=1
  shift
fi
# The CLI (hence the whole project) is built first by every test target, except in --fast.
cli=$([[ $fast == 1 ]] && echo OFF || echo ON)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DVP_FUZZ=ON -DVP_TESTS_BUILD_CLI=$cli >/dev/null
# allocator_may_return_null: libhdf5 mallocs what a corrupt file states and handles NULL (fuzz.sh).
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:symbolize=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/fuzz/lsan.supp:print_suppressions=0}"
if [[ $fast == 0 ]]; then
  echo "== building everything with ASan + UBSan in $build"
  ninja -C "$build" -j "$jobs"
  echo "== all tests under ASan + UBSan"
  ctest --test-dir "$build" --output-on-failure -j "$jobs" "$@"
  exit
fi
echo "== building ${fast_tests[*]} with ASan + UBSan in $build"
ninja -C "$build" -j "$jobs" "${fast_tests[@]}"
status=0
for t in "${fast_tests[@]}"; do
  echo "== $t under ASan + UBSan"
  # ctest's working directory for these tests (tests/CMakeLists.txt).
  (cd "$build/tests" && "./$t" --gtest_brief=1 "$@") || status=1
done
exit $status
