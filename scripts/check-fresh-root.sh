#!/usr/bin/env bash
# What a newcomer meets: the README's two commands in a fresh minimal Debian root
# (debootstrap minbase, then only git), on a clone of this checkout, with no CUDA
# toolkit. Runs `./scripts/demo.sh` then `./scripts/test.sh` there and says how each
# ended; exit status 0 only when both passed. Every package the commands need must
# come from the project's own scripts: this is the check that they do.
# Needs root (debootstrap, mount, chroot). Not part of scripts/test.sh: it builds
# everything from nothing (about half an hour on Debian 12, where test.sh also makes
# the Debian 13 build in a root of its own inside this one).
#
#   sudo scripts/check-fresh-root.sh debian12|debian13 [demo] [test]   (default: both)
#
# Settings (environment):
#   TABBY_CACHE_DIR       where the roots and the downloaded packages live (default ~/.cache/tabby)
#   TABBY_SHARED          shared data, mounted read-only beside the clone as ../shared
#                         (default ../shared beside the checkout; absent: tests skip, the
#                         demo downloads its data)
#   TABBY_KEEP_ROOT=1     keep the root afterwards (default: removed)
#   TABBY_DEBIAN_MIRROR   (default http://deb.debian.org/debian)
set -euo pipefail
{
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TABBY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tabby}"
MIRROR="${TABBY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SHARED="${TABBY_SHARED:-$SRC/../shared}"

say() { echo "fresh-root: $*"; }
fail() {
  echo "fresh-root: error: $1" >&2
  [[ -z "${2:-}" ]] || echo "  hint: $2" >&2
  exit 1
}
release="${1:-}"
case "$release" in
  debian12) SUITE=bookworm ;;
  debian13) SUITE=trixie ;;
  -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
  *) fail "which release? '${release}'" "scripts/check-fresh-root.sh debian12|debian13 [demo] [test]" ;;
esac
shift
steps=("$@")
[[ ${#steps[@]} -gt 0 ]] || steps=(demo test)
for s in "${steps[@]}"; do
  [[ "$s" == demo || "$s" == test ]] || fail "unknown step '$s'" "the steps are demo and test"
done
[[ $(id -u) -eq 0 ]] || fail "needs root (debootstrap, mount and chroot)" "sudo -E $0 $release"
command -v debootstrap >/dev/null || fail "debootstrap is not installed" "scripts/install-deps.sh installs it"

ROOT="$CACHE/fresh-$release-root"
APT_CACHE="$CACHE/$release-apt"
MARK=.tabby-fresh-root
mkdir -p "$CACHE" "$APT_CACHE"
exec 9>"$ROOT.lock"
flock -n 9 || fail "another check uses $ROOT"

# shellcheck source=lib/chroot.sh
. "$SRC/scripts/lib/chroot.sh"
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local rc=$?
  unmount_remembered
  unmount_all_under "$ROOT"
  if [[ "${TABBY_KEEP_ROOT:-0}" != 1 && -e "$ROOT/$MARK" && -z "$(mounts_under "$ROOT")" ]]; then
    rm -rf --one-file-system "$ROOT"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

unmount_all_under "$ROOT"
if [[ -e "$ROOT" ]]; then
  [[ -e "$ROOT/$MARK" ]] || fail "$ROOT exists but was not made by this script" "remove it"
  rm -rf --one-file-system "$ROOT"
fi
start=$SECONDS
say "making a fresh $SUITE root in $ROOT"
debootstrap --variant=minbase --components=main --cache-dir="$APT_CACHE" "$SUITE" "$ROOT" "$MIRROR" \
  >"$CACHE/fresh-$release-debootstrap.log" 2>&1 ||
  { tail -30 "$CACHE/fresh-$release-debootstrap.log" >&2; fail "debootstrap failed"; }
touch "$ROOT/$MARK"
echo "deb $MIRROR $SUITE main" >"$ROOT/etc/apt/sources.list"
rm -f "$ROOT/etc/resolv.conf" && cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# TLS as on this machine (pip trusts what it trusts, which may include a proxy's authority).
host_ca="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
[[ ! -s "$host_ca" ]] || cp -L "$host_ca" "$ROOT/etc/tabby-host-ca.crt"
[[ -s "$ROOT/etc/hosts" ]] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" && chmod 755 "$ROOT/usr/sbin/policy-rc.d"

mount_into "$ROOT" /proc -t proc proc
mount_into "$ROOT" /sys -t sysfs -o ro sysfs
mount_into "$ROOT" /dev --rbind /dev
mount --make-rslave "$ROOT/dev"
mount_into "$ROOT" /var/cache/apt/archives --bind "$APT_CACHE"
mount_into "$ROOT" /origin --bind -o ro "$SRC"
if [[ -d "$SHARED" ]]; then
  mount_into "$ROOT" /work/shared --bind -o ro "$(realpath "$SHARED")"
  say "shared data: $(realpath "$SHARED") at /work/shared"
else
  say "shared data: absent (tests that need it skip; the demo downloads its data)"
fi

in_root() {
  local env=(HOME=/root LANG=C.UTF-8 TERM=dumb
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
  [[ ! -s "$ROOT/etc/tabby-host-ca.crt" ]] || env+=(PIP_CERT=/etc/tabby-host-ca.crt)
  chroot "$ROOT" /usr/bin/env -i "${env[@]}" "$@"
}
say "installing git, nothing else"
in_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$CACHE/fresh-$release-git.log" 2>&1 &&
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends git \
    >>"$CACHE/fresh-$release-git.log" 2>&1 || { tail -20 "$CACHE/fresh-$release-git.log" >&2; fail "installing git failed"; }
in_root git config --global --add safe.directory /origin
in_root git clone -q /origin /work/main
say "cloned $(git -C "$SRC" rev-parse --short HEAD) into /work/main (uncommitted changes are not in the clone)"
say "set up in $(( SECONDS - start ))s"

results=()
status=0
for step in "${steps[@]}"; do
  t=$SECONDS
  log="$CACHE/fresh-$release-$step.log"
  say "./scripts/$step.sh (log: $log)"
  if in_root bash -c "cd /work/main && ./scripts/$step.sh" >"$log" 2>&1; then
    results+=("$step passed in $(( SECONDS - t ))s")
  else
    rc=$?
    status=1
    tail -n 40 "$log" >&2
    results+=("$step FAILED (exit $rc) after $(( SECONDS - t ))s")
  fi
  say "${results[-1]}; its last line: $(tail -n 1 "$log")"
done
say "$release: ${results[*]}"
exit "$status"
}
