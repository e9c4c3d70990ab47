#!/usr/bin/env bash
# Regenerates data_samples/ bit-identically from the two phantom specs kept there.
# Builds nothing: pass the voxpress binary (default build/voxpress).
#   scripts/make_data_samples.sh [path/to/voxpress]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
voxpress="$(realpath -m "${1:-$root/build/voxpress}")"
if [[ ! -x "$voxpress" ]]; then
  echo "make_data_samples.sh: no voxpress binary at '$voxpress' (build it, or pass its path)" >&2
  exit 2
fi
cd "$root/data_samples"
rm -rf series fibsem slices
"$voxpress" phantom --spec phantom_ct.yaml --out series --slices slices
"$voxpress" phantom --spec phantom_fibsem.yaml --out fibsem --prefix fibsem_ --slices slices
( cd "$root/data_samples" && find series fibsem slices -type f | LC_ALL=C sort | xargs sha256sum ) > SHA256SUMS
echo "data_samples: $(du -sh --apparent-size . | cut -f1) in $(find series fibsem slices -type f | wc -l) files; checksums in data_samples/SHA256SUMS"
