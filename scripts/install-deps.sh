#!/usr/bin/env bash
# Installs every Debian package tabby needs to build, test and benchmark, on
# Debian 12 (bookworm: LibTorch 1.13) or Debian 13 (trixie: LibTorch 2.6).
# Idempotent: safe to run again; skips apt entirely when everything is present.
set -euo pipefail

# Only the clang that carries libFuzzer differs between the releases; every
# other package has the same name on both.
os_release=/etc/os-release
[[ -r "$os_release" ]] || os_release=/usr/lib/os-release
IFS='|' read -r os_id os_codename os_version os_name < <(
  # shellcheck source=/dev/null
  . "$os_release" 2>/dev/null
  echo "${ID:-}|${VERSION_CODENAME:-}|${VERSION_ID:-}|${PRETTY_NAME:-}"
) || true
case "${os_id:-}:${os_codename:-${os_version:-}}" in
  debian:bookworm | debian:12) LLVM=14 ;;
  debian:trixie | debian:13) LLVM=19 ;;
  *)
    echo "install-deps: error: unsupported system '${os_name:-unknown}'" \
      "(ID=${os_id:-?} VERSION_CODENAME=${os_codename:-?} VERSION_ID=${os_version:-?} in $os_release)" >&2
    echo "  hint: the package list is kept for Debian 12 (bookworm) and Debian 13 (trixie);" \
      "elsewhere install the equivalents of scripts/install-deps.sh's packages by hand" >&2
    exit 1
    ;;
esac

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config
  # engine: LibTorch (CPU) and a fast BLAS for its dense layers; gloo's headers for its
  # data-parallel training (c10d's ProcessGroupGloo includes them)
  libtorch-dev libopenblas0-pthread libgloo-dev
  # image codecs
  libjpeg62-turbo-dev libpng-dev zlib1g-dev libgif-dev
  # command line, config, json, formatting
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libfmt-dev
  # charts, serving, downloads, checksums
  libcairo2-dev libcpp-httplib-dev libcurl4-openssl-dev libssl-dev
  # ONNX export (the model written with ONNX's own protobuf classes)
  libonnx-dev libprotobuf-dev protobuf-compiler
  # tests, and clang with libFuzzer + sanitizer runtimes for the fuzz targets (scripts/fuzz.sh)
  libgtest-dev libgmock-dev "clang-$LLVM" "libclang-rt-$LLVM-dev"
  # allocator that keeps large freed blocks (see CMakeLists.txt)
  libgoogle-perftools-dev
  # reference implementation for tests and the Python peer in benchmarks
  python3 python3-torch python3-torchvision python3-pil python3-numpy
  # the serving benchmark's load generator and its Python peer (Flask under gunicorn)
  wrk python3-flask gunicorn
  # a real browser for the tests of the HTML reports and of tabby serve's upload page
  chromium chromium-driver python3-selenium
  # readers of exported ONNX files in the tests (ONNX Runtime comes from PyPI: scripts/install-test-tools.sh)
  python3-onnx python3-opencv python3-pip
  # the Debian 13 build's root (scripts/test-debian13.sh) and the package's install test (scripts/test-deb.sh)
  debootstrap debian-archive-keyring
  # network namespaces as two machines in the data-parallel test (tests/distributed/two_hosts.sh)
  iproute2
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
# Through env: sudo drops the caller's environment.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
