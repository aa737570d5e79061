#!/usr/bin/env bash
# Installs the Python test tools that Debian does not package into one folder
# (default build/pytools), which the tests put on PYTHONPATH: ONNX Runtime,
# one of the runtimes the export tests read tabby's ONNX files with, and
# tritonclient (http and grpc), the client the serve tests talk to `tabby
# serve` with. Pinned versions, without their dependencies: Debian's numpy,
# protobuf and packaging are used, so Debian's python3-onnx and python3-opencv
# keep working beside them, and so are the Debian packages of tritonclient's
# http and grpc extras (python3-rapidjson, -gevent, -geventhttpclient,
# -aiohttp: scripts/install-deps.sh). tritonclient 2.51 is the last whose
# generated protobuf code runs on Debian's protobuf (4.21); its gRPC stubs
# need grpcio >= 1.67, newer than Debian's, hence grpcio from PyPI.
# Nothing is fetched when the pinned versions are already there; pip keeps
# its downloads in its cache (~/.cache/pip).
#   scripts/install-test-tools.sh [DIR]
# Settings: TABBY_PYTHON (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:-${TABBY_BUILD_DIR:-build}/pytools}"
python="${TABBY_PYTHON:-/usr/bin/python3}"
pins=(onnxruntime==1.32.0 flatbuffers==25.12.19 tritonclient==2.51.0 grpcio==1.67.1)
stamp="$target/.tabby-pins"

if [[ -f "$stamp" && "$(cat "$stamp")" == "${pins[*]} $("$python" -V 2>&1)" ]]; then
  echo "install-test-tools: ${pins[*]} present in $target"
  exit 0
fi
rm -rf "$target"
mkdir -p "$target"
if ! "$python" -m pip --version >/dev/null 2>&1; then
  echo "error: $python has no pip" >&2
  echo "hint: scripts/install-deps.sh installs python3-pip" >&2
  exit 1
fi
# --target installs beside the system's packages, not into them (so Debian's
# externally-managed Python is left alone).
PIP_DISABLE_PIP_VERSION_CHECK=1 "$python" -m pip install --quiet --no-deps --only-binary=:all: \
  --target "$target" "${pins[@]}" 2>&1 | grep -v "Running pip as the 'root' user" || true
if ! PYTHONPATH="$target" "$python" -c "import onnxruntime" 2>/dev/null; then
  echo "error: ONNX Runtime did not install into $target" >&2
  echo "hint: the tests need PyPI (pip install ${pins[*]}); check the network or the pip log above" >&2
  exit 1
fi
if ! why=$(PYTHONPATH="$target" "$python" -c "import tritonclient.http, tritonclient.http.aio, tritonclient.grpc" 2>&1); then
  echo "error: tritonclient does not import from $target:" >&2
  echo "$why" | tail -n 1 >&2
  echo "hint: its dependencies are Debian's (scripts/install-deps.sh installs python3-rapidjson," \
    "python3-gevent, python3-geventhttpclient, python3-aiohttp and python3-packaging)" >&2
  exit 1
fi
echo "${pins[*]} $("$python" -V 2>&1)" >"$stamp"
echo "install-test-tools: installed ${pins[*]} into $target"
