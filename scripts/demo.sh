#!/usr/bin/env bash
# From a fresh clone: install, build, run the demo batch over data_samples/.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
scripts/setup.sh
build="${VOXPRESS_BUILD:-build}"
out="${1:-runs/demo}"
"$build/voxpress" run configs/demo.yaml --out "$out"
echo
echo "demo finished in $(( $(date +%s) - start )) s. Results in $(cd "$out" && pwd):"
echo "  report.html    the pressure-series report (open in a browser)"
echo "  metrics.csv    every number, tidy long form; metrics.json with provenance"
echo "  samples/       per-sample outputs (label volumes, slices, tables)"
