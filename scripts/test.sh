#!/usr/bin/env bash
# Sets up and builds (scripts/build.sh), then runs every test: unit tests,
# integration tests driving the real binary on tiny generated images and small
# subsets of ../shared/datasets, and a brief run of each fuzz target.
# TABBY_SHARED points at the shared data (default ../shared next to the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/build.sh
build_dir="${TABBY_BUILD_DIR:-build}"
./scripts/install-test-tools.sh "$build_dir/pytools"
start=$(date +%s)
ctest --test-dir "$build_dir" --output-on-failure -j "${TABBY_JOBS:-$(nproc)}" --timeout 900
echo "tests: ctest finished in $(( $(date +%s) - start ))s"

if [[ -x scripts/fuzz.sh && "${TABBY_SKIP_FUZZ:-0}" != "1" ]]; then
  ./scripts/fuzz.sh "${TABBY_FUZZ_SECONDS:-10}"
fi
