#!/usr/bin/env bash
# The Debian package as a user gets it: builds tabby_<version>_amd64.deb from a
# build folder (cpack; its Depends line from dpkg-shlibdeps), then, in a fresh
# minimal root of this machine's release (Debian 12 or 13, debootstrap minbase,
# nothing else installed), runs
# `apt-get install ./tabby_*.deb` and uses the installed tabby: --version, a
# short training on generated images, predict, evaluate, export. Needs root
# (debootstrap, mount, chroot); exit status non-zero on any failure.
#
#   sudo scripts/test-deb.sh [BUILD_DIR]     # default build (scripts/build.sh makes it)
#
# Settings (environment):
#   TABBY_CACHE_DIR      where the base root (a tarball, made once) and the downloaded
#                        packages live (default ~/.cache/tabby)
#   TABBY_DEBIAN_MIRROR  (default http://deb.debian.org/debian)
set -euo pipefail
{
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$(realpath -m "${1:-$SRC/build}")"
CACHE="${TABBY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tabby}"
MIRROR="${TABBY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# shellcheck source=lib/host.sh
. "$SRC/scripts/lib/host.sh"
RELEASE="$(host_release)"
case "$RELEASE" in
  debian12) SUITE=bookworm ;;
  debian13) SUITE=trixie ;;
  *) echo "test-deb: error: the package is built and tested on Debian 12 or 13; this is $(host_release_name)" >&2; exit 1 ;;
esac
BASE="$CACHE/$RELEASE-minbase.tar"
APT_CACHE="$CACHE/$RELEASE-apt"
ROOT="$CACHE/deb-test-root"
MARK=.tabby-deb-test-root

say() { echo "test-deb: $*"; }
fail() {
  echo "test-deb: error: $1" >&2
  [[ -z "${2:-}" ]] || echo "  hint: $2" >&2
  exit 1
}
[[ $(id -u) -eq 0 ]] || fail "needs root (debootstrap, mount and chroot)" "sudo -E $0"
[[ -x "$BUILD/tabby" ]] || fail "no tabby in $BUILD" "build it first: scripts/build.sh"
command -v debootstrap >/dev/null || fail "debootstrap is not installed" "scripts/install-deps.sh installs it"
mkdir -p "$CACHE" "$APT_CACHE"
exec 9>"$ROOT.lock"
flock 9

MOUNTS=()
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local rc=$? i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount -R "${MOUNTS[i]}" 2>/dev/null || umount -R -l "${MOUNTS[i]}" 2>/dev/null || true
  done
  if [[ -e "$ROOT/$MARK" ]] && ! grep -q " $ROOT/" /proc/self/mounts; then rm -rf --one-file-system "$ROOT"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mount_into() {
  mkdir -p "$ROOT$1"
  mount "${@:2}" "$ROOT$1"
  MOUNTS+=("$ROOT$1")
}

start=$SECONDS
say "packaging $BUILD"
rm -f "$BUILD"/tabby_*.deb
(cd "$BUILD" && cpack -G DEB >"$BUILD/cpack.log" 2>&1) || { tail -30 "$BUILD/cpack.log" >&2; fail "cpack failed (log: $BUILD/cpack.log)"; }
deb="$(ls "$BUILD"/tabby_*.deb)"
say "$(basename "$deb"): $(du -h "$deb" | cut -f1); Depends: $(dpkg-deb -f "$deb" Depends)"
dpkg-deb -c "$deb" | awk '{print $6}' | grep -qx './usr/bin/tabby' || fail "the package lacks /usr/bin/tabby"

if [[ ! -s "$BASE" ]]; then
  say "making the minimal $SUITE root once ($BASE)"
  rm -rf "$BASE.dir"
  debootstrap --variant=minbase --components=main --cache-dir="$APT_CACHE" "$SUITE" "$BASE.dir" "$MIRROR" \
    >"$CACHE/$RELEASE-debootstrap.log" 2>&1 || { tail -30 "$CACHE/$RELEASE-debootstrap.log" >&2; fail "debootstrap failed"; }
  tar -C "$BASE.dir" -cf "$BASE.tmp" . && mv "$BASE.tmp" "$BASE" && rm -rf "$BASE.dir"
fi
[[ ! -e "$ROOT" ]] || { [[ -e "$ROOT/$MARK" ]] && rm -rf --one-file-system "$ROOT"; } || fail "$ROOT exists and is not this script's"
mkdir -p "$ROOT"
tar -C "$ROOT" -xf "$BASE"
touch "$ROOT/$MARK"
echo "deb $MIRROR $SUITE main" >"$ROOT/etc/apt/sources.list"
printf 'APT::Install-Recommends "false";\nAcquire::Languages "none";\nAcquire::Retries "3";\n' >"$ROOT/etc/apt/apt.conf.d/90tabby"
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" && chmod 755 "$ROOT/usr/sbin/policy-rc.d"
rm -f "$ROOT/etc/resolv.conf" && cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
mount_into /proc -t proc proc
mount_into /dev --rbind /dev
mount_into /var/cache/apt/archives --bind "$APT_CACHE"
cp "$deb" "$ROOT/tmp/"
in_root() { chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }

say "apt-get install ./$(basename "$deb") in a fresh $SUITE root"
apt_log="$CACHE/deb-test-apt.log"
if ! { in_root apt-get update -q && in_root apt-get install -y -q "/tmp/$(basename "$deb")"; } >"$apt_log" 2>&1; then
  tail -30 "$apt_log" >&2
  fail "apt-get install of the package failed (log: $apt_log)"
fi
say "installed with $(grep -c '^Setting up' "$apt_log") packages set up"

# Two classes of 32x32 colour fields, written here (the root has no Python).
/usr/bin/python3 - "$ROOT/tmp/data" <<'PY'
import os, random, sys
from PIL import Image
random.seed(3)
for c, channel in (("reddish", 0), ("greenish", 1)):
    os.makedirs(os.path.join(sys.argv[1], c), exist_ok=True)
    for i in range(8):
        img = Image.new("RGB", (32, 32))
        img.putdata([tuple((150 if k == channel else 30) + random.randint(0, 90) for k in range(3)) for _ in range(32 * 32)])
        img.save(os.path.join(sys.argv[1], c, f"img{i}.png"))
PY
check() {  # check DESCRIPTION COMMAND...: runs it inside the root, its output to the log
  if ! in_root "${@:2}" >>"$CACHE/deb-test-run.log" 2>&1; then
    tail -20 "$CACHE/deb-test-run.log" >&2
    fail "inside the root, $1 failed: ${*:2}"
  fi
}
: >"$CACHE/deb-test-run.log"
check "the version" /usr/bin/tabby --version
check "training" /usr/bin/tabby train --data /tmp/data --model tutorial-cnn --image-size 32 --epochs 2 \
  --batch-size 4 --validation-split 0.25 --out /tmp/run
check "prediction" /usr/bin/tabby predict /tmp/run /tmp/data --csv /tmp/predictions.csv
check "evaluation" /usr/bin/tabby evaluate /tmp/run --data /tmp/data
check "export" /usr/bin/tabby export /tmp/run --out /tmp/model.onnx
[[ $(wc -l <"$ROOT/tmp/predictions.csv") -eq 17 ]] || fail "predict --csv did not list the 16 images"
[[ -s "$ROOT/tmp/model.onnx" ]] || fail "export wrote no model"
say "passed in $(( SECONDS - start ))s: $(in_root /usr/bin/tabby --version | head -1) trains, predicts, evaluates and exports in a fresh $SUITE root"
exit 0
}
