#!/usr/bin/env bash
# The GPU kit (bench/gpu/README.md): on a lent CUDA machine, in one call,
# builds tabby against the LibTorch of its PyTorch, takes the GPU training
# benchmarks beside the PyTorch peer, builds and runs the tests, and writes
# everything as files under $OUT (results.json, results.md, run.log,
# build.log, ctest.log, logs.tgz). results.json/results.md are rewritten after
# every step, so a run cut short still returns what it measured.
#
#   bench/gpu/run.sh                 # there: $OUT set, .carry/shared and third_party/include carried
#   bench/gpu/run.sh --pets          # there: `tabby run` of the tutorial experiment (.carry/pets carried)
#   bench/gpu/run.sh --cpu-dry-run   # here: the same plumbing on the CPU build, tiny sizes, results in
#                                    #       $TMPDIR/tabby-gpu-dry/out unless --out DIR
# Options: --out DIR, --budget SECONDS (whole run; default 480 there, 540 with --pets),
#          --steps LIST (default build,bench,tests; also: configure is part of build), --pets.
# Environment: BUILD_DIR, WORK, JOBS, PYTHON, TABBY_SHARED override the defaults below;
#          CTEST_EXCLUDE (regex; default: the tests that need PetImages, not carried),
#          DRY_TEST_FILTER (the tests a dry run runs from an existing build).
#
# Order: build -> bench -> tests. The benchmarks come before the test build and
# ctest so that a slow test suite cannot eat them; the tests get what is left
# of the budget (each test capped, ctest itself capped), and report
# partially when cut.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root" || exit 1

dry=0 pets=0 budget="" steps="" out="${OUT:-}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cpu-dry-run) dry=1 ;;
    --pets) pets=1 ;;
    --out) out="$2"; shift ;;
    --budget) budget="$2"; shift ;;
    --steps) steps="$2"; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1" >&2; echo "hint: bench/gpu/run.sh --help" >&2; exit 2 ;;
  esac
  shift
done

t0=$(date +%s)
if [[ $dry == 1 ]]; then
  mode=cpu-dry-run device=cpu
  build="${BUILD_DIR:-$root/build-bench}"
  jobs="${JOBS:-1}"
  py="${PYTHON:-/usr/bin/python3}"           # Debian's python3-torch, as the CPU peer uses
  base="${TMPDIR:-/tmp}/tabby-gpu-dry"
  out="${out:-$base/out}"
  work="${WORK:-$base/work}"
  budget="${budget:-900}"
  if [[ $pets == 1 ]]; then shared_default="$root/.carry/pets"; else
    shared_default="$root/.carry/shared"; [[ -d $shared_default/datasets ]] || shared_default="$root/../shared"
  fi
else
  mode=gpu device=cuda
  if [[ -z "$out" ]]; then
    echo "error: OUT is not set: where should the results go?" >&2
    echo "hint: the device tool sets OUT; elsewhere give --out DIR (or use --cpu-dry-run)" >&2
    exit 2
  fi
  build="${BUILD_DIR:-$root/build-gpu}"
  jobs="${JOBS:-$(nproc)}"
  py="${PYTHON:-$(command -v python3 || echo python3)}"
  work="${WORK:-/tmp/tabby-gpu-work}"
  if [[ $pets == 1 ]]; then budget="${budget:-540}"; shared_default="$root/.carry/pets"; else
    budget="${budget:-480}"; shared_default="$root/.carry/shared"
  fi
fi
shared="${TABBY_SHARED:-$shared_default}"
[[ -n "$steps" ]] || { [[ $pets == 1 ]] && steps="build,pets" || steps="build,bench,tests"; }
deadline=$((t0 + budget))
# Logs, runs and test scratch of an earlier call on a still-warm machine must not
# pass for this one's (the data subsets and the build stay).
rm -rf "$work/logs" "$work/runs" "$work/pets" "$work/test-tmp"
mkdir -p "$out" "$work/logs"
rm -f "$out"/{results.json,results.md,build.log,ctest.log,logs.tgz}  # $OUT starts empty there; a dry run's may not
out="$(cd "$out" && pwd)" work="$(cd "$work" && pwd)"
TABBY_SHARED="$(cd "$shared" 2>/dev/null && pwd || echo "$shared")"
export TABBY_SHARED
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
: >"$out/run.log"
exec > >(tee -a "$out/run.log") 2>&1

say() { echo "[gpu $(( $(date +%s) - t0 ))s] $*"; }
left() { echo $(( deadline - $(date +%s) )); }
has_step() { [[ ",$steps," == *",$1,"* ]]; }
kit() { "$py" "$root/bench/gpu/gpu_bench.py" "$@" --out "$out"; }

# step NAME KIND CAP CMD...: runs CMD under min(CAP, time left), its output in
# WORK/logs/NAME.log, recorded in results.json. Returns CMD's exit status.
step() {
  local name=$1 kind=$2 cap=$3; shift 3
  local l; l=$(left)
  local t=$(( cap < l ? cap : l ))
  local log="$work/logs/$name.log"
  if (( t < 10 )); then
    say "$name: SKIPPED (${l}s left of the ${budget}s budget)"
    kit step --name "$name" --kind "$kind" --rc 125 --status skipped --command "$*"
    return 125
  fi
  say "$name (at most ${t}s): $*"
  local s; s=$(date +%s)
  timeout -k 10 "$t" "$@" >"$log" 2>&1
  local rc=$?
  local took=$(( $(date +%s) - s ))
  say "$name: exit $rc after ${took}s (log: logs.tgz:logs/$name.log)"
  if [[ $rc != 0 ]]; then tail -n 25 "$log"; fi
  kit step --name "$name" --kind "$kind" --rc "$rc" --seconds "$took" --command "$*" --log "$log" \
      ${EXCLUDE_ARG:+--exclude "$EXCLUDE_ARG"}
  return $rc
}

pack() {
  cat "$work"/logs/configure*.log "$work"/logs/build*.log >"$out/build.log" 2>/dev/null || true
  [[ -f "$work/logs/ctest.log" ]] && cp "$work/logs/ctest.log" "$out/ctest.log"
  kit pack --work "$work" || true
}
trap pack EXIT

say "mode $mode, budget ${budget}s, steps $steps; build $build, work $work, out $out"
say "TABBY_SHARED=$TABBY_SHARED python=$py jobs=$jobs"
kit init --mode "$mode" --budget "$budget" --python "$py" || say "init failed (results.json may lack machine facts)"
if command -v nvidia-smi >/dev/null; then nvidia-smi || true; fi

# ------------------------------------------------------------------ build
built=0
if has_step build; then
  cmake_args=(-S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTABBY_BUILD_BENCH=ON)
  if [[ $mode == gpu ]]; then
    if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
    export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"  # Hopper; spares the arch detection
    prefix="$("$py" -c 'import torch;print(torch.utils.cmake_prefix_path)' 2>/dev/null)"
    say "torch cmake prefix: ${prefix:-NOT FOUND}"
    # CMAKE_POLICY_VERSION_MINIMUM: CMake 4 refuses packages whose config files still
    # ask for a policy level under 3.5; this lets such a file through (no effect otherwise).
    tests_on=ON
    [[ $pets == 1 ]] && tests_on=OFF
    cmake_args+=(-DCMAKE_PREFIX_PATH="$prefix" -DTABBY_BUILD_TESTS="$tests_on" -DCMAKE_POLICY_VERSION_MINIMUM=3.5)
    [[ -d third_party/include/toml++ ]] || say "WARNING: third_party/include/toml++ missing (bench/gpu/prepare_carry.sh)"
    # Data-parallel training: gloo's headers matching the machine's PyTorch 2.x (carried).
    [[ -d third_party/include/gloo ]] && cmake_args+=(-DTABBY_GLOO_INCLUDE_DIR="$root/third_party/include")
  fi
  if [[ $mode == gpu || ! -f "$build/build.ninja" ]]; then
    step configure configure 180 cmake "${cmake_args[@]}"
    grep -E -- "-- tabby:|CMake (Error|Warning)" "$work/logs/configure.log" || true
  fi
  targets=(tabby_cli)
  [[ $pets == 1 ]] || targets+=(bench_model)
  if [[ -f "$build/build.ninja" ]] && step build build 360 ninja -C "$build" -j "$jobs" "${targets[@]}"; then
    built=1
  fi
else
  [[ -x "$build/tabby" ]] && built=1
fi
tabby="$build/tabby"
[[ -x "$tabby" ]] || { say "no $tabby: nothing to run"; built=0; }

# ------------------------------------------------------------------ benchmarks
if has_step bench && [[ $built == 1 ]]; then
  # Leave the tests their share (unless they are not run), but never below
  # BENCH_MIN seconds for the benchmarks: after a slow build they come first.
  reserve=0
  if has_step tests; then
    reserve="${TESTS_RESERVE:-$([[ $mode == gpu ]] && echo 150 || echo 60)}"
    bench_min="${BENCH_MIN:-200}"
    l=$(left)
    (( l - reserve < bench_min )) && reserve=$(( l > bench_min ? l - bench_min : 0 ))
  fi
  say "bench: until $((budget - reserve))s of the budget"
  TABBY_OFFLINE=1 kit bench --mode "$mode" --work "$work" --tabby "$tabby" --bench-model "$build/bench/bench_model" \
      --python "$py" --shared "$TABBY_SHARED" --device "$device" --deadline $((deadline - reserve)) ||
    say "bench: exit $? (see results.json)"
  pack
fi

# ------------------------------------------------------------------ pets experiment
if has_step pets && [[ $built == 1 ]]; then
  extra=()
  [[ $mode == cpu-dry-run ]] && extra=(--epochs "${PETS_EPOCHS:-1}" --only "${PETS_ONLY:-1-cnn}")
  TABBY_OFFLINE=1 kit pets --mode "$mode" --work "$work" --tabby "$tabby" --python "$py" --shared "$TABBY_SHARED" \
      --device "$device" --deadline $((deadline - 15)) "${extra[@]}" || say "pets: exit $? (see results.json)"
  pack
fi

# ------------------------------------------------------------------ tests
if has_step tests; then
  # Nothing can be installed there: no chromium for the browser tests.
  export TABBY_PYTHON="$py" TABBY_BIN="$tabby" TABBY_NO_BROWSER=1
  EXCLUDE_ARG="${CTEST_EXCLUDE-SharedData\.PetImages}"
  if [[ $mode == gpu ]]; then
    if [[ $built == 1 ]] && step build-tests build 240 ninja -C "$build" -j "$jobs"; then
      export TABBY_TEST_TMP="$work/test-tmp"
      l=$(left)
      step ctest ctest $(( l - 10 )) ctest --test-dir "$build" --output-on-failure -j "${CTEST_JOBS:-8}" \
          --timeout "${CTEST_TIMEOUT:-150}" ${EXCLUDE_ARG:+-E "$EXCLUDE_ARG"} \
          --output-junit "$work/logs/ctest-junit.xml"
    fi
  else
    # A dry run builds no tests (the CPU machine is busy); it runs a few from an
    # existing build with tests, to show that the step and its parsing work.
    tdir="$build"
    [[ -f "$tdir/tests/CTestTestfile.cmake" ]] || tdir="$root/build"
    if [[ -f "$tdir/tests/CTestTestfile.cmake" ]]; then
      export TABBY_BIN="$tdir/tabby" TABBY_TEST_TMP="$work/test-tmp"
      step ctest ctest 300 ctest --test-dir "$tdir" --output-on-failure -j 1 --timeout 120 \
          -R "${DRY_TEST_FILTER:-^(SplitSpec|ResolveSplit|Precision\.)}" ${EXCLUDE_ARG:+-E "$EXCLUDE_ARG"}
    else
      say "tests: no build with tests to run from (skipped)"
    fi
  fi
fi

kit render || true
say "done in $(( $(date +%s) - t0 ))s; results: $out/results.md"
grep -E '^(\||###)' "$out/results.md" | head -n 60 || true
