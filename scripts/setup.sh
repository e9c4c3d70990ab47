#!/usr/bin/env bash
# Installs voxpress's Debian 12 build dependencies (idempotent) and builds it in Release.
#   scripts/setup.sh [--with-test-tools]     (build folder: $VOXPRESS_BUILD or ./build)
# --with-test-tools also installs headless Chromium, used by the report's rendering test.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake ninja-build g++ pkg-config ccache
  libinsighttoolkit5-dev libfftw3-dev libgdcm-tools
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-ml-dev libpng-dev
  libtbb-dev libyaml-cpp-dev libgtest-dev libtiff-dev libhdf5-dev zlib1g-dev
  nlohmann-json3-dev libcli11-dev
  libpetsc-real-dev libopenmpi-dev openmpi-bin
  librsvg2-bin
  clang libclang-rt-14-dev libfuzzer-14-dev clang-format
  pybind11-dev python3-dev python3-numpy python3-pytest python3-matplotlib python3-tifffile)
if [[ "${1:-}" == "--with-test-tools" ]]; then
  packages+=(chromium)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "== installing ${#missing[@]} Debian packages: ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "== Debian packages: all present"
fi

build="${VOXPRESS_BUILD:-build}"
echo "== building voxpress (Release) in $build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$build"
