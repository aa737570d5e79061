#!/usr/bin/env bash
# The whole CPU benchmark suite in one go: builds tabby and the bench programs
# (Release, -DTABBY_BUILD_BENCH=ON) in build-bench/, then runs bench/driver.py
# with Debian's /usr/bin/python3 (the Python peer needs its torch), which
# times tabby and the peer side by side and writes bench/RESULTS.md.
#
#   bench/run_all.sh            full suite (about 20-25 minutes on a quiet 2-core machine)
#   bench/run_all.sh --quick    smoke check of every case on tiny inputs (a few minutes)
# Other flags go to the driver: --only abcd, --work DIR, --out FILE, --report-only.
# Environment: BUILD_DIR (default build-bench), SKIP_BUILD=1 to use the build as it is,
# TABBY_SHARED (default ../shared beside the checkout).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"
cd "$root"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  if [[ ! -f "$build/build.ninja" ]]; then
    cmake -S "$root" -B "$build" -G Ninja -DTABBY_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  if ! ninja -C "$build" tabby_cli bench_decode bench_pipeline bench_model >"$build/bench-build.log" 2>&1; then
    tail -n 30 "$build/bench-build.log" >&2
    echo "error: building tabby and the bench programs failed (log: $build/bench-build.log)" >&2
    exit 1
  fi
fi
for program in tabby bench/bench_decode bench/bench_pipeline bench/bench_model; do
  if [[ ! -x "$build/$program" ]]; then
    echo "error: $build/$program is missing" >&2
    echo "hint: build it: cmake -S . -B build-bench -G Ninja -DTABBY_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release" \
         "&& ninja -C build-bench tabby_cli bench_decode bench_pipeline bench_model" >&2
    exit 1
  fi
done
if [[ ! -x /usr/bin/python3 ]] || ! /usr/bin/python3 -c "import torch, torchvision, PIL" 2>/dev/null; then
  echo "error: the Python peer needs /usr/bin/python3 with torch, torchvision and PIL" >&2
  echo "hint: sudo apt-get install python3-torch python3-torchvision python3-pil (scripts/install-deps.sh)" >&2
  exit 1
fi

exec /usr/bin/python3 "$root/bench/driver.py" --build "$build" "$@"
