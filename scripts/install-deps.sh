#!/usr/bin/env bash
# Installs every Debian package tabby needs to build, test and benchmark.
# Idempotent: safe to run again; skips apt entirely when everything is present.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config
  # engine: LibTorch 1.13 (CPU) and a fast BLAS for its dense layers
  libtorch-dev libopenblas0-pthread
  # image codecs
  libjpeg62-turbo-dev libpng-dev zlib1g-dev libgif-dev
  # command line, config, json, formatting
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libfmt-dev
  # charts, serving, downloads, checksums
  libcairo2-dev libcpp-httplib-dev libcurl4-openssl-dev libssl-dev
  # tests, and clang with libFuzzer + sanitizer runtimes for the fuzz targets (scripts/fuzz.sh)
  libgtest-dev libgmock-dev clang-14 libclang-rt-14-dev
  # allocator that keeps large freed blocks (see CMakeLists.txt)
  libgoogle-perftools-dev
  # reference implementation for tests and the Python peer in benchmarks
  python3 python3-torch python3-torchvision python3-pil python3-numpy
)
# The HTML report is checked in headless Chromium when asked for (TABBY_WITH_BROWSER=1).
if [[ "${TABBY_WITH_BROWSER:-0}" == "1" ]]; then PACKAGES+=(chromium); fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
