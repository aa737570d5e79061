#!/usr/bin/env bash
# Installs every Debian package tabby needs to build, test and benchmark, on
# Debian 12 (bookworm: LibTorch 1.13) or Debian 13 (trixie: LibTorch 2.6).
# Idempotent: safe to run again; skips apt entirely when everything is present.
set -euo pipefail

# shellcheck source=lib/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/host.sh"
# Only the clang that carries libFuzzer differs between the releases; every
# other package has the same name on both.
case "$(host_release)" in
  debian12) LLVM=14 ;;
  debian13) LLVM=19 ;;
  *)
    echo "install-deps: error: unsupported system $(host_release_name)" >&2
    echo "  hint: the package list is kept for Debian 12 (bookworm) and Debian 13 (trixie);" \
      "elsewhere install the equivalents of scripts/install-deps.sh's packages by hand" >&2
    exit 1
    ;;
esac

# What a minimal Debian root (debootstrap minbase: the tools below are not in it) needs
# to build, package and test: each script's tools are named here, not assumed.
PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config
  # the tools the scripts and tests call: cpack's .deb (dpkg-shlibdeps needs file and
  # dpkg-dev), downloads over TLS (pip, the CUDA build's fetch), pgrep in the launcher tests
  file dpkg-dev ca-certificates curl procps
  # engine: LibTorch (CPU) and a fast BLAS for its dense layers; gloo's headers for its
  # data-parallel training (c10d's ProcessGroupGloo includes them)
  libtorch-dev libopenblas0-pthread libgloo-dev
  # image codecs
  libjpeg62-turbo-dev libpng-dev zlib1g-dev libgif-dev
  # command line, config, json, formatting
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libfmt-dev
  # charts, serving, downloads, checksums
  libcairo2-dev libcpp-httplib-dev libcurl4-openssl-dev libssl-dev
  # tabby serve: HTTP/1.1 on Boost.Beast/Asio, the Open Inference Protocol over gRPC
  libboost-dev libgrpc++-dev protobuf-compiler-grpc
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
  # tritonclient's http and grpc dependencies, for the serve tests' clients (tritonclient
  # itself and grpcio come from PyPI: scripts/install-test-tools.sh)
  python3-rapidjson python3-gevent python3-geventhttpclient python3-aiohttp python3-packaging
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
