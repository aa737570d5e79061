#!/usr/bin/env bash
# tabby serve beside Seldon's MLServer and TorchServe on this machine, in one
# run (bench/serve_peers/run.py says what is measured and how).
#
#   bench/serve_bench.sh [--build build] [--connections 16] [--warmup 5] [--duration 20]
#                        [--mlserver-workers 0,1,2] [--torchserve-workers 1,2] [--into bench/RESULTS.md]
#
# Sets up, once, under build/: the peers pinned from PyPI in a virtual
# environment over Debian's python3-torch and python3-torchvision
# (build/bench-venv, from bench/serve_peers/requirements.txt), Java for
# TorchServe's front end (Debian's default-jre-headless), and the load
# generator (build/bench-load/serve_load, C++ with Debian's grpc++). The table
# and raw JSON land in build/serve-peers/ (serve_peers.md, serve_peers.json).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
peers="$root/bench/serve_peers"
venv="$root/build/bench-venv"
load="$root/build/bench-load"

if ! command -v java >/dev/null; then
  echo "serve-bench: installing default-jre-headless (TorchServe's front end is Java)" >&2
  apt-get install -y --no-install-recommends default-jre-headless >/dev/null
fi

# What the peers take from Debian's Python beside torch (scripts/install-deps.sh has the rest).
if ! /usr/bin/python3 -c "import psutil, click, wheel" 2>/dev/null; then
  apt-get install -y --no-install-recommends python3-psutil python3-click python3-wheel >/dev/null
fi

# The peers' packages: every one pinned (--no-deps), over Debian's torch.
if ! cmp -s "$peers/requirements.txt" "$venv/.requirements.txt" 2>/dev/null; then
  echo "serve-bench: installing MLServer and TorchServe into $venv" >&2
  rm -rf "$venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install --quiet --no-deps -r "$peers/requirements.txt"
  cp "$peers/requirements.txt" "$venv/.requirements.txt"
fi

# The load generator, rebuilt when its source or protocol file changed; the
# protocol file is the one tabby serves (the messages are the protocol's).
proto_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/src/tabby/server/grpc"
if [[ ! -x "$load/serve_load" || "$peers/serve_load.cpp" -nt "$load/serve_load" || "$proto_dir/inference.proto" -nt "$load/serve_load" ]]; then
  echo "serve-bench: building the load generator in $load" >&2
  mkdir -p "$load"
  protoc -I "$proto_dir" --cpp_out="$load" --grpc_out="$load" --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" \
    "$proto_dir/inference.proto"
  # shellcheck disable=SC2046 # pkg-config's flags are meant to split
  g++ -O2 -std=c++17 -I"$load" "$peers/serve_load.cpp" "$load/inference.pb.cc" "$load/inference.grpc.pb.cc" \
    -o "$load/serve_load" $(pkg-config --cflags --libs grpc++ protobuf) -pthread
fi

exec "$venv/bin/python" "$peers/run.py" --venv "$venv" --client "$load/serve_load" "$@"
