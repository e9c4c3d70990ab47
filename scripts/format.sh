#!/usr/bin/env bash
# Formats the tracked C++ sources with .clang-format (Debian's clang-format, 14 on Debian 12).
#   scripts/format.sh            rewrite the files in place
#   scripts/format.sh --check    change nothing; list the files that would change and how many
#                                lines each, exit 1 if any would
#   scripts/format.sh [--check] FILE...   only these files
# CI runs the --check form on every tracked file (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
if [[ "${1:-}" == "--check" ]]; then
  check=1
  shift
fi
formatter="${CLANG_FORMAT:-clang-format}"
if ! command -v "$formatter" >/dev/null; then
  echo "format.sh: no $formatter (apt-get install -y --no-install-recommends clang-format)" >&2
  exit 2
fi
if [[ $# -gt 0 ]]; then
  files=("$@")
else
  mapfile -t files < <(git ls-files '*.cpp' '*.h')
fi
if [[ $check -eq 0 ]]; then
  printf '%s\0' "${files[@]}" | xargs -0 -n 50 "$formatter" -i --style=file
  exit 0
fi
changed=0 lines=0
for f in "${files[@]}"; do
  n=$("$formatter" --style=file "$f" | diff "$f" - | grep -c '^<' || true)
  if [[ $n -gt 0 ]]; then
    echo "$f: $n lines"
    changed=$((changed + 1)) lines=$((lines + n))
  fi
done
echo "format.sh: $changed of ${#files[@]} files would change ($lines lines)"
[[ $changed -eq 0 ]]
