#!/usr/bin/env bash
# Installs the Debian packages tabby needs (once), then configures and builds
# the library, the `tabby` binary and the tests into build/ (Release).
# Settings: TABBY_BUILD_DIR (default build), TABBY_JOBS (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh

build_dir="${TABBY_BUILD_DIR:-build}"
jobs="${TABBY_JOBS:-$(nproc)}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTABBY_BUILD_BENCH=OFF -DTABBY_REQUIRE_ONNX=ON -DTABBY_REQUIRE_DISTRIBUTED=ON -DTABBY_REQUIRE_GRPC=ON "$@" >/dev/null
# LibTorch translation units need ~1.5 GB each; more jobs than cores only thrashes.
cmake --build "$build_dir" -j "$jobs"
echo "build: $build_dir/tabby is ready"
