#!/usr/bin/env bash
# Screenshot of a voxpress report with headless Chromium (for the README and for eyeballing a run).
#   scripts/render_report.sh RUN_DIR/report.html OUT.png [WIDTH,HEIGHT]     (default 1280,2400)
# Needs chromium (scripts/setup.sh --with-test-tools installs it).
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 REPORT.html OUT.png [WIDTH,HEIGHT]" >&2
  exit 2
fi
html="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
out="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
size="${3:-1280,2400}"
[[ -f "$html" ]] || { echo "$0: $1: no such file (expected a report.html)" >&2; exit 2; }
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
[[ -n "$browser" ]] || { echo "$0: chromium not found (apt-get install -y --no-install-recommends chromium)" >&2; exit 2; }
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
rm -f "$out"
"$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
  --user-data-dir="$profile" --window-size="$size" --screenshot="$out" "file://$html" >/dev/null 2>&1 || true
# Chromium exits 0 even when the page is missing: the PNG is the proof.
[[ -s "$out" ]] || { echo "$0: no screenshot written" >&2; exit 1; }
echo "wrote $out"
