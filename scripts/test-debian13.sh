#!/usr/bin/env bash
# Builds tabby and runs its whole test suite on Debian 13 (trixie: LibTorch 2.6,
# g++ 14) from a Debian 12 machine, inside a debootstrap root that is kept and
# reused by later runs. Inside the root it runs the project's own scripts:
# scripts/install-deps.sh, scripts/build.sh, then ctest as scripts/test.sh does.
# Needs root (debootstrap, mount, chroot); exit status non-zero on any failure.
#
#   sudo scripts/test-debian13.sh             # root, deps, build, tests
#   sudo scripts/test-debian13.sh --prepare   # root and deps only (scripts/test.sh runs
#                                             # this beside the Debian 12 build)
#
# Settings (environment):
#   TABBY_CACHE_DIR         where the root and the package cache live (default ~/.cache/tabby)
#   TABBY_DEBIAN13_ROOT     the root (default $TABBY_CACHE_DIR/debian13-root)
#   TABBY_DEBIAN13_APT      downloaded .deb files, kept across runs and roots
#                           (default $TABBY_CACHE_DIR/debian13-apt)
#   TABBY_DEBIAN13_FRESH=1  make a new root even when one exists
#   TABBY_DEBIAN_MIRROR     (default http://deb.debian.org/debian)
#   TABBY_SHARED            shared data, mounted read-only (default ../shared beside the
#                           checkout); without it the tests that need it skip themselves
#   TABBY_JOBS              parallel compile and test jobs (default: all cores)
#   TABBY_DEBIAN13_FUZZ=1   also build the fuzz targets and run each TABBY_FUZZ_SECONDS
#                           (default 10) as scripts/test.sh does (off: the clang build of
#                           the targets adds minutes, and the fuzz code is the same as on 12)
# Inside the root the source is mounted read-only at /src/tabby, the shared data at
# /src/shared (so the build's default ../shared finds it), and everything is built
# under /build (kept in the root, so a later run rebuilds only what changed).
set -euo pipefail
# Braces: bash reads the whole script before running it, so a checkout edited or
# switched while a run takes its half hour does not change the run halfway.
{
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TABBY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tabby}"
ROOT="${TABBY_DEBIAN13_ROOT:-$CACHE/debian13-root}"
APT_CACHE="${TABBY_DEBIAN13_APT:-$CACHE/debian13-apt}"
MIRROR="${TABBY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SHARED="${TABBY_SHARED:-$SRC/../shared}"
JOBS="${TABBY_JOBS:-$(nproc)}"
SUITE=trixie

say() { echo "debian13: $*"; }
fail() {
  echo "debian13: error: $1" >&2
  [[ -z "${2:-}" ]] || echo "  hint: $2" >&2
  exit 1
}

PREPARE_ONLY=0
case "${1:-}" in
  "") ;;
  --prepare) PREPARE_ONLY=1 ;;
  -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
  *) fail "unknown option $1" "scripts/test-debian13.sh [--prepare]" ;;
esac

[[ $(id -u) -eq 0 ]] || fail "needs root (debootstrap, mount and chroot)" "sudo -E $0"
ROOT="$(realpath -m "$ROOT")"
APT_CACHE="$(realpath -m "$APT_CACHE")"
[[ "$ROOT" != / && "$ROOT" != "$SRC" && "$SRC" != "$ROOT"/* ]] || fail "refusing to use '$ROOT' as the root"
mkdir -p "$(dirname "$ROOT")" "$APT_CACHE"

# One run at a time per root: a second would build into the same /build.
exec 9>"$ROOT.lock"
if ! flock -n 9; then
  say "waiting for another run that uses $ROOT"
  flock 9
fi

# ---- stages and mounts -------------------------------------------------------------------
CURRENT=""
stage_start=0
TIMES=()
begin() { stage_start=$(date +%s); CURRENT="$1"; }
end() {
  local secs=$(( $(date +%s) - stage_start ))
  TIMES+=("$CURRENT ${secs}s${1:+ ($1)}")
  say "stage $CURRENT: ${secs}s${1:+ ($1)}"
  CURRENT=""
}
# shellcheck source=lib/chroot.sh
. "$SRC/scripts/lib/chroot.sh"
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local rc=$?
  if [[ $rc -ne 0 && -n "${CURRENT:-}" ]]; then
    echo "debian13: FAILED in stage $CURRENT after $(( $(date +%s) - stage_start ))s" >&2
  fi
  unmount_remembered
  # Whatever is left (a debootstrap that was interrupted mounts its own /proc).
  unmount_all_under "$ROOT"
  unmount_all_under "$ROOT.new"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# A run killed outright (no trap) leaves its mounts; remove them before anything else.
unmount_all_under "$ROOT"
unmount_all_under "$ROOT.new"

# ---- stage: debootstrap ------------------------------------------------------------------
begin debootstrap
# Only folders this script made are ever removed: a TABBY_DEBIAN13_ROOT that
# names anything else is refused, and nothing is removed while mounted.
MARK=.tabby-debian13-root
remove_root() {
  [[ -z "$(mounts_under "$1")" ]] || fail "$1 still has mounts; not removing it"
  rm -rf --one-file-system "$1"
}
if [[ -e "$ROOT" && ! -e "$ROOT/$MARK" ]]; then
  fail "$ROOT exists but was not made by this script" "remove it, or set TABBY_DEBIAN13_ROOT to another path"
fi
if [[ "${TABBY_DEBIAN13_FRESH:-0}" == 1 && -e "$ROOT" ]]; then
  say "removing the old root (TABBY_DEBIAN13_FRESH=1)"
  remove_root "$ROOT"
fi
if [[ -e "$ROOT" ]]; then
  end "reused $ROOT"
else
  if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap on this machine"
    host_log="$(dirname "$ROOT")/debian13-host-apt.log"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        debootstrap debian-archive-keyring gpgv; } >"$host_log" 2>&1; then
      tail -20 "$host_log" >&2
      fail "could not install debootstrap (log: $host_log)"
    fi
  fi
  [[ -e /usr/share/debootstrap/scripts/$SUITE ]] || fail "this debootstrap does not know $SUITE" \
    "apt-get install debootstrap from Debian 12 or later"
  # Built beside the final place and moved there whole, so an interrupted run
  # never leaves a half-made root that a later run would take for a good one.
  if [[ -e "$ROOT.new" ]]; then
    # debootstrap makes its /debootstrap first and removes it last.
    [[ -d "$ROOT.new/debootstrap" || -e "$ROOT.new/$MARK" ]] || rmdir "$ROOT.new" 2>/dev/null ||
      fail "$ROOT.new exists but was not made by this script" "remove it"
    remove_root "$ROOT.new"
  fi
  say "making a $SUITE root in $ROOT (minbase, packages cached in $APT_CACHE)"
  log="$(dirname "$ROOT")/debian13-debootstrap.log"
  if ! debootstrap --variant=minbase --components=main --cache-dir="$APT_CACHE" \
    "$SUITE" "$ROOT.new" "$MIRROR" >"$log" 2>&1; then
    tail -30 "$log" >&2
    [[ ! -f "$ROOT.new/debootstrap/debootstrap.log" ]] || tail -30 "$ROOT.new/debootstrap/debootstrap.log" >&2
    fail "debootstrap failed (log: $log)"
  fi
  touch "$ROOT.new/$MARK"
  mv "$ROOT.new" "$ROOT"
  end "new root"
fi

# The root's settings, written on every run so that a root made by an older
# version of this script gets them too.
# - no service may start inside the chroot while packages are installed;
# - dpkg need not fsync (a lost root is simply made again), and documentation
#   is not unpacked: both make installing the ~2 GB of packages faster;
# - apt: no recommends, no translations, retries for a flaky mirror.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/90tabby" <<'EOF'
force-unsafe-io
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
EOF
cat >"$ROOT/etc/apt/apt.conf.d/90tabby" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Acquire::Retries "3";
EOF
echo "deb $MIRROR $SUITE main" >"$ROOT/etc/apt/sources.list"
# Name resolution as on this machine (the one debootstrap copied may be stale).
rm -f "$ROOT/etc/resolv.conf"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# TLS as on this machine too: pip (the test tools from PyPI) trusts what this
# machine trusts, which may include a proxy's own certificate authority.
host_ca="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
if [[ -s "$host_ca" ]]; then
  mkdir -p "$ROOT/etc/ssl/certs"
  cp -L "$host_ca" "$ROOT/etc/ssl/certs/tabby-host-ca.crt"
fi
if [[ ! -s "$ROOT/etc/hosts" ]]; then
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
fi

mount_into "$ROOT" /proc -t proc proc
mount_into "$ROOT" /sys -t sysfs -o ro sysfs
mount_into "$ROOT" /dev --rbind /dev
mount --make-rslave "$ROOT/dev"
mount_into "$ROOT" /var/cache/apt/archives --bind "$APT_CACHE"
mount_into "$ROOT" /src/tabby --bind -o ro "$SRC"
shared_note="absent: tests that need it skip"
if [[ -d "$SHARED" ]]; then
  mount_into "$ROOT" /src/shared --bind -o ro "$(realpath "$SHARED")"
  shared_note="$(realpath "$SHARED") at /src/shared"
else
  rmdir "$ROOT/src/shared" 2>/dev/null || true
fi
say "source $SRC at /src/tabby (read-only); shared data: $shared_note"

in_root() {  # a command inside the root, with a clean environment
  local env=(HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TABBY_JOBS="$JOBS")
  [[ ! -d "$ROOT/src/shared" ]] || env+=(TABBY_SHARED=/src/shared)
  [[ ! -s "$ROOT/etc/ssl/certs/tabby-host-ca.crt" ]] || env+=(PIP_CERT=/etc/ssl/certs/tabby-host-ca.crt)
  local v
  for v in CI TABBY_OFFLINE; do
    [[ -z "${!v:-}" ]] || env+=("$v=${!v}")
  done
  chroot "$ROOT" /usr/bin/env -i "${env[@]}" "$@"
}

# ---- stage: deps -------------------------------------------------------------------------
begin deps
# apt's and dpkg's hundreds of lines go to a log; the summary line and, on failure, the tail show.
deps_log="$(dirname "$ROOT")/debian13-deps.log"
if ! in_root /src/tabby/scripts/install-deps.sh >"$deps_log" 2>&1; then
  tail -40 "$deps_log" >&2
  fail "scripts/install-deps.sh failed inside the root (log: $deps_log)"
fi
grep '^install-deps:' "$deps_log" | cut -c1-200
# shellcheck disable=SC2016  # dpkg-query's own ${Version}
end "libtorch-dev $(in_root dpkg-query -W -f='${Version}' libtorch-dev), g++ $(in_root g++ -dumpfullversion)"

if [[ $PREPARE_ONLY == 1 ]]; then
  say "prepared (build and tests left to a run without --prepare): ${TIMES[*]}"
  exit 0
fi

# ---- stage: build ------------------------------------------------------------------------
begin build
in_root env TABBY_BUILD_DIR=/build/tabby /src/tabby/scripts/build.sh
in_root /src/tabby/scripts/install-test-tools.sh /build/tabby/pytools
end

# ---- stage: tests ------------------------------------------------------------------------
begin tests
in_root ctest --test-dir /build/tabby --output-on-failure -j "$JOBS" --timeout 900
end

if [[ "${TABBY_DEBIAN13_FUZZ:-0}" == 1 ]]; then
  begin fuzz
  in_root env TABBY_FUZZ_BUILD=/build/fuzz /src/tabby/scripts/fuzz.sh "${TABBY_FUZZ_SECONDS:-10}"
  end
else
  say "fuzz targets skipped (TABBY_DEBIAN13_FUZZ=1 runs them)"
fi

say "passed on Debian 13: ${TIMES[*]}"
exit 0
}
