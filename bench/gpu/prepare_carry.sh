#!/usr/bin/env bash
# Fills, HERE, the git-ignored folders that a call of the GPU kit carries to
# the device machine (bench/gpu/README.md), and checks that what travels fits:
#
#   bench/gpu/prepare_carry.sh          third_party/include/ (toml++, CLI11, OpenSSL and gloo headers,
#                                       which the GPU machine lacks / may lack; gloo's as PyTorch 2.x's
#                                       c10d headers need them) and .carry/shared/ (datasets/
#                                       cats_and_dogs_filtered, weights/: MobileNetV2 and SqueezeNet
#                                       1.1 weights, test vectors, imagenet_classes.txt)
#   bench/gpu/prepare_carry.sh --pets   third_party/include/ and .carry/pets/: the PetImages files
#                                       of tabby's train[:40%], train[40%:50%] and train[50%:60%]
#                                       (TFDS order, bench/gpu/tfds_slices.py) as split folders
#                                       train/, validation/, test/, and the MobileNetV2 weights
#
# Options: --shared DIR (source of datasets/ and weights/; default $TABBY_SHARED, else ../shared
#          beside the checkout), --no-squeezenet (leave the SqueezeNet files out),
#          --limit-mib N (what may travel in all; default 60 of the tool's 64 MiB).
# It prints the size of everything that travels in that call (tracked files, untracked files
# git does not ignore, and the carried folders) and fails when the total is over the limit.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

pets=0 squeezenet=1 limit_mib=60
shared="${TABBY_SHARED:-$root/../shared}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --pets) pets=1 ;;
    --shared) shared="$2"; shift ;;
    --no-squeezenet) squeezenet=0 ;;
    --limit-mib) limit_mib="$2"; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1" >&2; echo "hint: bench/gpu/prepare_carry.sh --help" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "error: $1" >&2; [[ -n "${2:-}" ]] && echo "hint: $2" >&2; exit 1; }
[[ -d "$shared/datasets" && -d "$shared/weights" ]] ||
  die "no datasets/ and weights/ in $shared" "give --shared DIR or set TABBY_SHARED"
for ignored in third_party/include/x .carry/x; do
  git check-ignore -q "$ignored" || die "$(dirname "$ignored")/ is not ignored by git" "add it to .gitignore"
done

# ---------------------------------------------------------------- headers
# CMakeLists.txt looks in third_party/include for toml++/toml.h and CLI/CLI.hpp
# when find_package finds no toml++ / CLI11 package (the GPU machine has no
# toml++; its CLI11 package, if found, is used instead of the copy).
mkdir -p third_party/include
for h in toml++ CLI; do
  [[ -d /usr/include/$h ]] || die "/usr/include/$h is missing" "sudo apt-get install libtomlplusplus-dev libcli11-dev"
  rm -rf "third_party/include/$h"
  cp -a "/usr/include/$h" third_party/include/
done
# OpenSSL's headers (libcrypto's runtime is on every Ubuntu; its -dev package may not be):
# the portable ones and this machine's configuration headers, in one folder.
rm -rf third_party/include/openssl
cp -a /usr/include/openssl third_party/include/
cp -a /usr/include/"$(gcc -dumpmachine)"/openssl/. third_party/include/openssl/
# gloo's headers for data-parallel training (scripts/cuda/fetch_gloo_headers.sh says why these).
rm -rf third_party/include/gloo
./scripts/cuda/fetch_gloo_headers.sh "${TABBY_CACHE_DIR:-$HOME/.cache/tabby}/gloo-headers"
cp -a "${TABBY_CACHE_DIR:-$HOME/.cache/tabby}/gloo-headers/include/gloo" third_party/include/
[[ -f third_party/include/gloo/rendezvous/store.h && -f third_party/include/toml++/toml.h && -f third_party/include/CLI/CLI.hpp &&
   -f third_party/include/openssl/evp.h && -f third_party/include/openssl/configuration.h ]] || die "header copy incomplete"

# ---------------------------------------------------------------- data
if [[ $pets == 0 ]]; then
  dest=.carry/shared
  rm -rf "$dest"
  mkdir -p "$dest/datasets" "$dest/weights"
  cp -rL "$shared/datasets/cats_and_dogs_filtered" "$dest/datasets/"
  weights=(mobilenet_v2_imagenet.safetensors mobilenet_v2_testvectors.safetensors imagenet_classes.txt)
  [[ $squeezenet == 1 ]] && weights+=(squeezenet1_1_imagenet.safetensors squeezenet1_1_testvectors.safetensors
                                      squeezenet1_1_imagenet.pth)
  for w in "${weights[@]}"; do cp -L "$shared/weights/$w" "$dest/weights/"; done
else
  dest=.carry/pets
  rm -rf "$dest"
  mkdir -p "$dest/datasets" "$dest/weights"
  slices="$dest/datasets/pet_images_60"
  python3 bench/gpu/tfds_slices.py "$shared/datasets/pet_images/PetImages" \
    'train[:40%]=train' 'train[40%:50%]=validation' 'train[50%:60%]=test' --copy-to "$slices"
  cat >"$slices/SLICES.txt" <<'EOF'
The files of tabby's TFDS-style slices of the whole PetImages folder (8,999 files):
  train/      = train[:40%]     (3,600 files)
  validation/ = train[40%:50%]  (900 files)
  test/       = train[50%:60%]  (899 files)
selected by bench/gpu/tfds_slices.py (tabby's slice order, checked against
resolve_split), so experiments/cats-vs-dogs-tutorial.toml trains on the same
files when its data points here with split = "train", val_split = "validation",
test_split = "test". The other 40% of PetImages does not fit the 64 MiB carry.
EOF
  cp -L "$shared/weights/mobilenet_v2_imagenet.safetensors" "$dest/weights/"
fi

# ---------------------------------------------------------------- sizes
bytes_of_list() {  # NUL-separated paths on stdin -> total bytes of those that exist
  xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}'
}
tracked=$(git ls-files -z | bytes_of_list)
untracked=$(git ls-files -z -o --exclude-standard | bytes_of_list)
carried_headers=$(find third_party/include -type f -print0 | bytes_of_list)
carried_data=$(find "$dest" -type f -print0 | bytes_of_list)
total=$((tracked + untracked + carried_headers + carried_data))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "what travels with a call that carries third_party/include and $dest:"
printf '  %-34s %s\n' "tracked files" "$(mib "$tracked")" \
  "untracked, not ignored" "$(mib "$untracked")" \
  "third_party/include" "$(mib "$carried_headers")" \
  "$dest" "$(mib "$carried_data")" \
  "total" "$(mib "$total") (limit ${limit_mib} MiB; the tool refuses over 64)"
find "$dest" -mindepth 2 -maxdepth 2 | sort | while read -r p; do
  printf '    %-50s %s, %s files\n' "$p" "$(mib "$(find "$p" -type f -print0 | bytes_of_list)")" \
    "$(find "$p" -type f | wc -l)"
done
if (( total > limit_mib * 1048576 )); then
  die "$(mib "$total") would travel, over the ${limit_mib} MiB limit" \
      "carry less (--no-squeezenet), or remove large untracked files from the working tree"
fi
if [[ $pets == 0 ]]; then
  echo "carry: [\"third_party/include\", \".carry/shared\"]"
else
  echo "carry: [\"third_party/include\", \".carry/pets\"]"
fi
