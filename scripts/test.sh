#!/usr/bin/env bash
# The whole test suite on every build this machine can make, one after another:
#   debian12  Debian 12 and its LibTorch 1.13 (scripts/build.sh into build/): unit tests,
#             integration tests driving the real binary on tiny generated images and
#             small subsets of ../shared/datasets, the installed library, the Debian
#             package installed into a fresh root of the same release
#             (scripts/test-deb.sh; needs root), and a brief run of each fuzz target
#   debian13  Debian 13 and its LibTorch 2.6: on a Debian 13 machine the same steps as
#             debian12, natively; on a Debian 12 machine inside a debootstrap root kept
#             under ~/.cache/tabby (scripts/test-debian13.sh; needs root)
#   cuda      the CUDA LibTorch 2.11 of PyPI's torch wheel, compiled with this
#             machine's CUDA 13 toolkit (scripts/build-cuda.sh --test into build-cuda/):
#             every test, on the CPU (no GPU is needed to build or test it)
# By default: the machine's own release first, then the CUDA build where a CUDA 13
# toolkit is present (one line says so where it is not), then, on Debian 12, Debian 13.
# Downloads that do not need the CPU (the torch wheel, the Debian 13 root and its
# packages) run beside the first build. Each build's time is printed at the end.
#
# Settings (environment):
#   TABBY_TEST_BUILDS   which builds, in order (e.g. "debian12 cuda debian13", what CI
#                       asks for); a build named here that this machine cannot make
#                       stops the run at once with a hint
#   TABBY_SHARED        the shared data (default ../shared next to the checkout)
#   TABBY_JOBS          parallel jobs (default: all cores)
#   TABBY_SKIP_FUZZ=1   leave the fuzz targets out; TABBY_FUZZ_SECONDS (default 10 each)
#   and those of scripts/build-cuda.sh and scripts/test-debian13.sh (caches, mirror).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

# shellcheck source=lib/host.sh
. scripts/lib/host.sh
native="$(host_release)"
if [[ -z "$native" ]]; then
  echo "error: tabby's tests run on Debian 12 or 13; this is $(host_release_name)" >&2
  echo "hint: use a Debian 12 or 13 machine (or a debootstrap root of one)" >&2
  exit 2
fi
if [[ -n "${TABBY_TEST_BUILDS:-}" ]]; then
  read -r -a builds <<<"$TABBY_TEST_BUILDS"
else
  builds=("$native")
  if find_cuda_toolkit; then builds+=(cuda); fi
  if [[ "$native" == debian12 ]]; then builds+=(debian13); fi
  if [[ -n "$cuda_missing" ]]; then
    echo "tests: leaving the CUDA build out ($cuda_missing);" \
      "TABBY_TEST_BUILDS=\"$native cuda${builds[1]:+ ${builds[1]}}\" asks for it"
  fi
fi
[[ ${#builds[@]} -gt 0 ]] || { echo "error: TABBY_TEST_BUILDS names no build" >&2
  echo "hint: choose from: debian12 cuda debian13" >&2; exit 2; }
# A build asked for that this machine cannot make fails now, not after the others' half hour.
for b in "${builds[@]}"; do
  case "$b" in
    debian12|debian13)
      if [[ "$b" == debian12 && "$native" != debian12 ]]; then
        echo "error: the debian12 build runs on a Debian 12 machine; this is $(host_release_name)" >&2
        echo "hint: leave debian12 out of TABBY_TEST_BUILDS here (this machine's build is $native)" >&2
        exit 2
      fi ;;
    cuda)
      if ! find_cuda_toolkit; then
        echo "error: the cuda build was asked for, but $cuda_missing" >&2
        echo "hint: $cuda_hint; or leave cuda out of TABBY_TEST_BUILDS" >&2
        exit 2
      fi ;;
    *) echo "error: unknown build '$b' in TABBY_TEST_BUILDS" >&2
       echo "hint: choose from: debian12 cuda debian13" >&2; exit 2 ;;
  esac
done
wants() { [[ " ${builds[*]} " == *" $1 "* ]]; }
export TABBY_SHARED="${TABBY_SHARED:-$root/../shared}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo -E"; fi

logs="${TABBY_TEST_LOGS:-build/test-logs}"
mkdir -p "$logs"
times=()
# Each step below ends its build with `|| return`: inside `if` bash ignores set -e.
timed() {  # timed NAME COMMAND...: runs it, records its time, stops at its failure
  local name=$1 start=$SECONDS
  shift
  echo "tests: ==== $name ===="
  if "$@"; then
    times+=("$name $(( SECONDS - start ))s")
    echo "tests: $name passed in $(( SECONDS - start ))s"
  else
    local rc=$?
    echo "tests: $name FAILED (exit $rc) after $(( SECONDS - start ))s" >&2
    exit "$rc"
  fi
}

# What the background preparations print goes to logs; a failure there shows when
# its build's turn comes, with the log's tail.
./scripts/install-deps.sh
if wants cuda; then
  ./scripts/build-cuda.sh --fetch-only >"$logs/cuda-fetch.log" 2>&1 &
  cuda_fetch=$!
fi
if wants debian13 && [[ "$native" != debian13 ]]; then
  $SUDO ./scripts/test-debian13.sh --prepare >"$logs/debian13-prepare.log" 2>&1 &
  debian13_prepare=$!
fi
waited() {  # waited PID LOG: the background step's exit status, its log's tail on failure
  if wait "$1"; then
    grep -E "^(build-cuda|debian13):" "$2" | tail -n 3 || true
  else
    local rc=$?
    tail -n 30 "$2" >&2
    echo "tests: the preparation logged in $2 failed (exit $rc)" >&2
    return "$rc"
  fi
}

native_build() {  # this machine's own release: build, tests, the package, fuzz
  ./scripts/build.sh || return
  local build_dir="${TABBY_BUILD_DIR:-build}"
  ./scripts/install-test-tools.sh "$build_dir/pytools" || return
  local start=$SECONDS
  ctest --test-dir "$build_dir" --output-on-failure -j "${TABBY_JOBS:-$(nproc)}" --timeout 900 || return
  echo "tests: ctest finished in $(( SECONDS - start ))s"
  $SUDO ./scripts/test-deb.sh "$build_dir" || return
  if [[ "${TABBY_SKIP_FUZZ:-0}" != "1" ]]; then
    ./scripts/fuzz.sh "${TABBY_FUZZ_SECONDS:-10}" || return
  fi
}
debian12() { native_build; }
cuda() {
  waited "$cuda_fetch" "$logs/cuda-fetch.log" || return
  ./scripts/build-cuda.sh --test
}
debian13() {
  if [[ "$native" == debian13 ]]; then native_build; return; fi
  waited "$debian13_prepare" "$logs/debian13-prepare.log" || return
  $SUDO ./scripts/test-debian13.sh
}

for b in "${builds[@]}"; do
  timed "$b" "$b"
done
echo "tests: all passed on $native, builds ${builds[*]}: ${times[*]}"
