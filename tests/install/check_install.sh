#!/usr/bin/env bash
# A user's program against an installed tabby: `cmake --install` of BUILD into
# a prefix outside the tree, examples/classify configured there with
# find_package(tabby CONFIG REQUIRED) and built, then run on a run folder that
# the installed `tabby` trained; its labels and probabilities must be those of
# `tabby predict`.
#   tests/install/check_install.sh BUILD_DIR WORK_DIR
set -euo pipefail
source_dir="$(cd "$(dirname "$0")/../.." && pwd)"
build="$(cd "$1" && pwd)"
work="$2"
python="${TABBY_PYTHON:-/usr/bin/python3}"
fail() { echo "check_install: $1" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log" || fail "cmake --install failed (log: $work/install.log)"
for f in bin/tabby include/tabby/api/classifier.h include/tabby/util/error.h; do
  [[ -e "$prefix/$f" ]] || fail "the install lacks $f"
done
config="$(find "$prefix" -name tabbyConfig.cmake | head -1)"
[[ -n "$config" ]] || fail "the install lacks tabbyConfig.cmake"
lib="$(find "$prefix" -name 'libtabby.so*' -type f | head -1)"
[[ -n "$lib" ]] || fail "the install lacks libtabby.so"
# The installed header must stand alone: no LibTorch or other dependency headers.
if grep -h '^#include' "$prefix/include/tabby/api/classifier.h" | grep -v '<[a-z_]*>' | grep -qv 'tabby/'; then
  fail "classifier.h includes headers that are not installed"
fi

# Two classes of 32x32 colour fields, written with PIL.
"$python" - "$work/data" <<'PY'
import os, random, sys
from PIL import Image
random.seed(7)
for c, channel in (("reddish", 0), ("greenish", 1)):
    os.makedirs(os.path.join(sys.argv[1], c), exist_ok=True)
    for i in range(6):
        img = Image.new("RGB", (32, 32))
        img.putdata([tuple((150 if k == channel else 30) + random.randint(0, 90) for k in range(3)) for _ in range(32 * 32)])
        img.save(os.path.join(sys.argv[1], c, f"img{i}.png"))
PY
"$prefix/bin/tabby" train --data "$work/data" --model tutorial-cnn --image-size 32 --epochs 2 --batch-size 4 \
  --device cpu --threads 1 --out "$work/run" >"$work/train.log" 2>&1 || fail "the installed tabby could not train (log: $work/train.log)"

cmake -S "$source_dir/examples/classify" -B "$work/classify" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >"$work/configure.log" 2>&1 || fail "examples/classify did not configure (log: $work/configure.log)"
cmake --build "$work/classify" >"$work/build.log" 2>&1 || fail "examples/classify did not build (log: $work/build.log)"

mapfile -t images < <(find "$work/data" -name '*.png' | sort)
"$work/classify/classify" "$work/run" "${images[@]}" >"$work/classify.out" || fail "classify failed: $(cat "$work/classify.out")"
"$prefix/bin/tabby" predict "$work/run" "$work/data" --csv "$work/predict.csv" --threads 1 >/dev/null 2>&1 || fail "tabby predict failed"

# Same file order (sorted paths), same label and probability to 6 decimals.
"$python" - "$work/classify.out" "$work/predict.csv" <<'PY'
import csv, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if "\t" in l]
want = list(csv.DictReader(open(sys.argv[2])))
assert len(rows) == len(want) == 12, (len(rows), len(want))
for got, exp in zip(rows, want):
    assert got[0] == exp["path"], (got[0], exp["path"])
    assert got[1] == exp["label"], (got, exp)
    assert abs(float(got[2]) - float(exp["probability"])) <= 2e-6, (got, exp)
print(f"check_install: {len(rows)} images labelled as tabby predict labels them")
PY
echo "check_install: $lib and $config work from $prefix"
