#!/usr/bin/env bash
# From a fresh clone: install, build, run the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-test-tools
build="${VOXPRESS_BUILD:-build}"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
