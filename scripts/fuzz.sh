#!/usr/bin/env bash
# Builds tabby's libFuzzer targets (fuzz/) with clang, AddressSanitizer (leaks
# included) and UndefinedBehaviorSanitizer, writes their seed corpora, runs
# every target for SECONDS (default 600) and prints a summary: executions,
# coverage, corpus size and findings per target. Exit status 1 when any
# target found something (its reproducers are kept under the build folder).
#
#   scripts/fuzz.sh [SECONDS]          # CI: scripts/fuzz.sh 15
#
# Settings (environment):
#   TABBY_FUZZ_BUILD     build folder (default: build-fuzz in the repository)
#   TABBY_FUZZ_TARGETS   targets to run (default: all five)
#   TABBY_FUZZ_PARALLEL  targets run at the same time (default 1)
#   TABBY_FUZZ_NICE      niceness of the fuzzing processes (default 10)
#   TABBY_FUZZ_JOBS      parallel compile jobs (default: all cores)
#   TABBY_FUZZ_PTH       extra .pth files to use as seeds (space separated)
#   CC / CXX             the clang to use (default: clang / clang++)
# The corpus grows in BUILD/corpus/<target> across runs; findings go to
# BUILD/findings/<target>/, logs to BUILD/logs/<target>.log.
#
# Needs clang with the libFuzzer and sanitizer runtimes (scripts/install-deps.sh installs them):
#   Debian 12: apt-get install clang-14 libclang-rt-14-dev   (or: clang libclang-rt-dev)
#   Debian 13: apt-get install clang-19 libclang-rt-19-dev
set -euo pipefail

SECONDS_PER_TARGET="${1:-600}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [[ "$SECONDS_PER_TARGET" -lt 1 ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS]   (seconds per target, default 600)" >&2
  exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${TABBY_FUZZ_BUILD:-$ROOT/build-fuzz}"
TARGETS=(${TABBY_FUZZ_TARGETS:-decode_image safetensors pth model_config csv_and_splits})
PARALLEL="${TABBY_FUZZ_PARALLEL:-1}"
NICE="${TABBY_FUZZ_NICE:-10}"
JOBS="${TABBY_FUZZ_JOBS:-$(nproc)}"

pick() {  # the first of the given commands that exists
  for c in "$@"; do
    if command -v "$c" >/dev/null 2>&1; then echo "$c"; return 0; fi
  done
  return 1
}
CXX_BIN="${CXX:-$(pick clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14 || true)}"
CC_BIN="${CC:-$(pick clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14 || true)}"
install_hint="install clang with its libFuzzer runtime: scripts/install-deps.sh (Debian 12: clang-14 libclang-rt-14-dev, Debian 13: clang-19 libclang-rt-19-dev)"
if [[ -z "$CXX_BIN" || -z "$CC_BIN" ]]; then
  echo "fuzz: error: clang not found" >&2
  echo "  hint: $install_hint" >&2
  exit 1
fi
# A compiler named gcc would get past cmake's check only to fail later.
if ! "$CXX_BIN" --version 2>/dev/null | grep -qi clang; then
  echo "fuzz: error: $CXX_BIN is not clang (libFuzzer needs clang)" >&2
  echo "  hint: set CXX=clang++ CC=clang" >&2
  exit 1
fi
probe_dir="$(mktemp -d)"
trap 'rm -rf "$probe_dir"' EXIT
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' \
  >"$probe_dir/probe.cpp"
if ! "$CXX_BIN" -fsanitize=fuzzer,address,undefined "$probe_dir/probe.cpp" -o "$probe_dir/probe" \
  >"$probe_dir/log" 2>&1; then
  echo "fuzz: error: $CXX_BIN cannot link a libFuzzer + sanitizer program:" >&2
  sed 's/^/  /' "$probe_dir/log" | head -5 >&2
  echo "  hint: $install_hint" >&2
  exit 1
fi

# ---- build ------------------------------------------------------------------------
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  echo "fuzz: configuring $BUILD with $CXX_BIN"
  cmake -S "$ROOT/fuzz" -B "$BUILD" "${generator[@]}" \
    -DCMAKE_C_COMPILER="$CC_BIN" -DCMAKE_CXX_COMPILER="$CXX_BIN" >"$probe_dir/configure.log" 2>&1 || {
    cat "$probe_dir/configure.log" >&2
    echo "fuzz: error: configuring the fuzz targets failed" >&2
    exit 1
  }
fi
echo "fuzz: building (${JOBS} jobs)"
cmake --build "$BUILD" -j "$JOBS" -- >"$BUILD/build.log" 2>&1 || {
  tail -40 "$BUILD/build.log" >&2
  echo "fuzz: error: building the fuzz targets failed (full log: $BUILD/build.log)" >&2
  exit 1
}

# ---- seeds -------------------------------------------------------------------------
SEEDS="$BUILD/seeds"
rm -rf "$SEEDS"
# make_seeds is instrumented too; its leak check has nothing to do with fuzzing.
ASAN_OPTIONS=detect_leaks=0 "$BUILD/make_seeds" "$SEEDS" ${TABBY_FUZZ_PTH:-} | sed 's/^/fuzz: seeds: /'

# ---- run -------------------------------------------------------------------------------
mkdir -p "$BUILD/logs"
rm -f "$BUILD/logs/summary.tsv"
run_target() {
  local t="$1"
  local corpus="$BUILD/corpus/$t" findings="$BUILD/findings/$t" log="$BUILD/logs/$t.log"
  mkdir -p "$corpus" "$findings"
  local start end rc=0
  start=$(date +%s)
  # -timeout: an input taking this long is a finding (a hang); generous, as
  # the machine may be shared. -rss_limit_mb: a decompression bomb that gets
  # past the pixel limits is a finding too.
  nice -n "$NICE" "$BUILD/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 \
    -timeout=60 -rss_limit_mb=2560 -artifact_prefix="$findings/" "$corpus" "$SEEDS/$t" >"$log" 2>&1 || rc=$?
  end=$(date +%s)
  echo "$((end - start)) $rc" >"$BUILD/logs/$t.time"
}

echo "fuzz: running ${#TARGETS[@]} targets for ${SECONDS_PER_TARGET}s each, ${PARALLEL} at a time"
running=0
for t in "${TARGETS[@]}"; do
  if [[ ! -x "$BUILD/fuzz_$t" ]]; then
    echo "fuzz: error: no target fuzz_$t in $BUILD" >&2
    exit 2
  fi
  run_target "$t" &
  running=$((running + 1))
  if [[ $running -ge $PARALLEL ]]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

# ---- summary ---------------------------------------------------------------------------
field() {  # the last value of a libFuzzer stat (e.g. "cov:") in a log
  grep -oE "$1 [0-9]+[a-zA-Z]*" "$2" | tail -1 | awk '{print $2}'
}
status=0
# corpus: libFuzzer's working set at the end (inputs/bytes); on disk: every
# input kept in BUILD/corpus/<target> across runs.
printf '\n%-16s %8s %12s %9s %8s %9s %14s %8s  %s\n' target seconds executions exec/s cov features corpus "on disk" \
  result
for t in "${TARGETS[@]}"; do
  log="$BUILD/logs/$t.log"
  read -r secs rc <"$BUILD/logs/$t.time"
  execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{print $2}' | tail -1)
  cov=$(field 'cov:' "$log")
  ft=$(field 'ft:' "$log")
  corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 | awk '{print $2}')
  corpus_files=$(find "$BUILD/corpus/$t" -type f | wc -l)
  findings=$(find "$BUILD/findings/$t" -type f | wc -l)
  result="ok"
  if [[ "$rc" != 0 || "$findings" -gt 0 ]]; then
    result="FINDING (exit $rc, $findings reproducer(s) in $BUILD/findings/$t; log $log)"
    status=1
  fi
  rate="-"
  if [[ -n "$execs" && "$secs" -gt 0 ]]; then rate=$((execs / secs)); fi
  printf '%-16s %8s %12s %9s %8s %9s %14s %8s  %s\n' "$t" "$secs" "${execs:--}" "$rate" "${cov:--}" "${ft:--}" \
    "${corp:--}" "$corpus_files" "$result"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$secs" "${execs:-0}" "${cov:-0}" "${ft:-0}" "${corp:--}" \
    "$corpus_files" "$result" >>"$BUILD/logs/summary.tsv"
done
if [[ $status -ne 0 ]]; then
  echo "fuzz: findings above; reproduce one with: $BUILD/fuzz_TARGET FILE" >&2
  for t in "${TARGETS[@]}"; do
    grep -m1 -E "ERROR: |FINDING|runtime error" "$BUILD/logs/$t.log" | sed "s/^/  $t: /" >&2 || true
  done
fi
exit $status
