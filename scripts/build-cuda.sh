#!/usr/bin/env bash
# Builds tabby against the CUDA LibTorch of PyPI's torch==2.11.0 (CUDA 13.0,
# what the GPU machine's PyTorch is) into build-cuda/, on a Debian 12 (or 13) machine
# that has a CUDA 13 toolkit; a GPU is not needed to build or to run the tests.
#
#   scripts/build-cuda.sh            # Debian packages, fetch, configure, build
#   scripts/build-cuda.sh --test     # ... then every test (ctest) on this machine
#   scripts/build-cuda.sh [--test] -- -DSOME_CMAKE_OPTION=...
#   scripts/build-cuda.sh --fetch-only   # only the fetch stage (scripts/test.sh runs it
#                                        # beside the Debian 12 build)
#
# Stages (each prints `build-cuda: STAGE took Ns`):
#   deps       scripts/install-deps.sh (Debian packages; skipped when present)
#   fetch      the torch wheel (pinned by SHA-256) from PyPI, of which only lib/,
#              include/ and share/cmake are kept, and the CUDA runtime libraries
#              libtorch_cuda.so needs that the toolkit lacks (scripts/cuda/fetch_libtorch.py);
#              the gloo headers its c10d headers include (scripts/cuda/fetch_gloo_headers.sh)
#   configure  CMake (Release, Ninja, tests on, benchmarks off)
#   build      ninja
#   tests      ctest, with the CUDA libraries on the library path (--test only)
#
# Settings (environment):
#   CUDAToolkit_ROOT / CUDA_HOME   the CUDA toolkit (default: nvcc on PATH, else /usr/local/cuda)
#   TORCH_CUDA_ARCH_LIST           GPU architectures of the build (default 9.0: H100/H200)
#   TABBY_CUDA_BUILD_DIR           build folder (default build-cuda)
#   TABBY_LIBTORCH_CACHE           where the wheels and the LibTorch tree go (default
#                                  $TABBY_CACHE_DIR/libtorch, else ~/.cache/tabby/libtorch)
#   TABBY_WHEELHOUSE               ':'-separated folders searched for the pinned wheels
#                                  before downloading (e.g. a pip download folder)
#   TABBY_KEEP_WHEELS=1            keep the downloaded wheels (default: deleted once extracted)
#   TABBY_PYPI_SIMPLE              the package index (default https://pypi.org/simple)
#   TABBY_JOBS                     parallel jobs for the build and ctest (default: all cores)
# After a build, `source build-cuda/env.sh` sets the library path for running tabby by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

run_tests=0
fetch_only=0
cmake_extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --test) run_tests=1 ;;
    --fetch-only) fetch_only=1 ;;
    --) shift; cmake_extra=("$@"); break ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1" >&2; echo "hint: scripts/build-cuda.sh --help" >&2; exit 2 ;;
  esac
  shift
done

stage_start=0
stage() { stage_name=$1; stage_start=$(date +%s); echo "build-cuda: $1 ..."; }
stage_done() { echo "build-cuda: $stage_name took $(( $(date +%s) - stage_start ))s${1:+ ($1)}"; }
die() { echo "error: $1" >&2; echo "hint: $2" >&2; exit 1; }
total_start=$(date +%s)

# ---------------------------------------------------------------- CUDA toolkit
# Found before anything is installed or fetched, so a machine without one stops at once.
# shellcheck source=lib/host.sh
. "$root/scripts/lib/host.sh"
find_cuda_toolkit || die "$cuda_missing" "$cuda_hint"
echo "build-cuda: CUDA $cuda_version in $cuda (libraries: $cuda_lib)"

build_dir="${TABBY_CUDA_BUILD_DIR:-build-cuda}"
jobs="${TABBY_JOBS:-$(nproc)}"
cache_root="${TABBY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tabby}"
libtorch_cache="${TABBY_LIBTORCH_CACHE:-$cache_root/libtorch}"
tree="$libtorch_cache/torch-2.11.0-cu130"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"

# ---------------------------------------------------------------- deps
if [[ $fetch_only == 0 ]]; then
  stage deps
  ./scripts/install-deps.sh
  stage_done
fi

# ---------------------------------------------------------------- fetch
stage fetch
fetch_args=(--dest "$tree" --cuda-lib-dirs "$cuda_lib")
IFS=: read -r -a wheelhouses <<<"${TABBY_WHEELHOUSE:-}"
for w in "${wheelhouses[@]}"; do
  if [[ -n "$w" ]]; then fetch_args+=(--wheelhouse "$w"); fi
done
if [[ "${TABBY_KEEP_WHEELS:-0}" == 1 ]]; then fetch_args+=(--keep-wheels); fi
# Only the standard library is used: Debian's python3 without pip will do.
fetched="$(python3 "$root/scripts/cuda/fetch_libtorch.py" "${fetch_args[@]}")"
# Every library the CUDA LibTorch needs must resolve, or every program fails to
# start; say which are missing now rather than in each of a hundred tests.
export LD_LIBRARY_PATH="$cuda_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
missing="$(ldd "$tree/torch/lib/libtorch.so" | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')"
./scripts/cuda/fetch_gloo_headers.sh "$tree/gloo"
if [[ -n "$missing" ]]; then
  die "LibTorch needs libraries that neither $cuda_lib nor the fetched wheels have: $missing" \
      "libcudnn.so.9 and libnccl.so.2 come with cuDNN 9 and NCCL for CUDA 13 (or PyPI's nvidia-cudnn-cu13, nvidia-nccl-cu13); add their folder to LD_LIBRARY_PATH"
fi
stage_done "$fetched; $(du -sh "$tree" | cut -f1) in $tree"
if [[ $fetch_only == 1 ]]; then
  echo "build-cuda: fetched in $(( $(date +%s) - total_start ))s"
  exit 0
fi

# ---------------------------------------------------------------- configure
stage configure
mkdir -p "$build_dir"
# CMAKE_CUDA_COMPILER and CUDA_TOOLKIT_ROOT_DIR: LibTorch's config enables the
# CUDA language and runs FindCUDA; both must see this toolkit and no other.
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DTABBY_BUILD_TESTS=ON -DTABBY_BUILD_BENCH=OFF \
  -DCMAKE_PREFIX_PATH="$tree/torch" \
  -DCUDAToolkit_ROOT="$cuda" -DCUDA_TOOLKIT_ROOT_DIR="$cuda" -DCMAKE_CUDA_COMPILER="$cuda/bin/nvcc" \
  -DTORCH_CUDA_ARCH_LIST="$TORCH_CUDA_ARCH_LIST" \
  -DTABBY_GLOO_INCLUDE_DIR="$tree/gloo/include" -DTABBY_REQUIRE_DISTRIBUTED=ON \
  "${cmake_extra[@]}" >"$build_dir/configure.log" 2>&1 || {
    tail -n 40 "$build_dir/configure.log" >&2
    die "CMake failed (whole log: $build_dir/configure.log)" "see the CMake errors above"
  }
grep -E -- "^-- tabby:|CMake Warning|PyTorch: CUDA detected" "$build_dir/configure.log" || true
cat >"$build_dir/env.sh" <<EOF
# Sourced to run this build's programs: the CUDA toolkit's libraries are found
# through the library path (the fetched ones through LibTorch's own RUNPATH).
export LD_LIBRARY_PATH="$cuda_lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
EOF
stage_done

# ---------------------------------------------------------------- build
stage build
# LibTorch translation units need ~1.5 GB each; more jobs than cores only thrashes.
nice cmake --build "$build_dir" -j "$jobs"
# A header found in the wrong folder compiles and mixes versions silently:
# Debian's LibTorch 1.13 headers in /usr/include, or the fmt or protobuf LibTorch bundles.
wrong="$(ninja -C "$build_dir" -t deps | grep -E "^ +(/usr/include/(ATen|c10|caffe2|torch|gloo)/|$tree/torch/include/(fmt|google)/)" |
         sort -u | head -n 5 || true)"
if [[ -n "$wrong" ]]; then
  die "the build used headers of another library version, e.g.:$(printf '\n  %s' $wrong)" \
      "start from a fresh build folder (rm -rf $build_dir); see CMakeLists.txt on LibTorch's bundled fmt and protobuf"
fi
stage_done "$build_dir/tabby"

# ---------------------------------------------------------------- tests
if [[ $run_tests == 1 ]]; then
  stage tests
  ./scripts/install-test-tools.sh "$build_dir/pytools"
  nice ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" --timeout 900
  stage_done
fi
echo "build-cuda: done in $(( $(date +%s) - total_start ))s"
