#!/usr/bin/env bash
# Two ranks of `tabby train --distributed` on two "machines": network
# namespaces joined by a veth pair, each with its own address and its own
# loopback. A rank that advertised its hostname's address (127.0.1.1 on
# Debian, Gloo's default) would send the other to that one's own loopback and
# the job would not connect. Rank 0 finds its address from the route to
# MASTER_ADDR; rank 1 is given its interface (--gloo-iface).
#
#   two_hosts.sh TABBY_BIN WORKDIR TRAIN_DIR MODEL_TOML
# Exit 0: trained; 77: cannot make namespaces here (not root); else failed.
set -euo pipefail
tabby=$1 work=$2 train=$3 model=$4
if [[ $(id -u) -ne 0 ]] || ! command -v ip >/dev/null; then
  echo "two_hosts: needs root and iproute2 to make network namespaces" >&2
  exit 77
fi
tag=$$
ns_a="tabby_a_$tag" ns_b="tabby_b_$tag" if_a="tba$tag" if_b="tbb$tag"
if_a=${if_a:0:15} if_b=${if_b:0:15}
net="10.231.$(( tag % 250 ))"
cleanup() { ip netns del "$ns_a" 2>/dev/null || true; ip netns del "$ns_b" 2>/dev/null || true; }
trap cleanup EXIT
if ! ip netns add "$ns_a" 2>/dev/null; then
  echo "two_hosts: this machine refuses network namespaces" >&2
  exit 77
fi
ip netns add "$ns_b"
# `ip netns exec` remounts /sys for the namespace, which fails inside a chroot (the
# Debian 13 test root): nothing to test there.
if ! err=$(ip netns exec "$ns_a" true 2>&1); then
  echo "two_hosts: cannot run programs in a network namespace here: $err" >&2
  exit 77
fi
ip link add "$if_a" type veth peer name "$if_b"
ip link set "$if_a" netns "$ns_a"
ip link set "$if_b" netns "$ns_b"
ip -n "$ns_a" addr add "$net.1/24" dev "$if_a"
ip -n "$ns_b" addr add "$net.2/24" dev "$if_b"
for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set "$if_a" up
ip -n "$ns_b" link set "$if_b" up

rm -rf "$work" && mkdir -p "$work"
common=(train --data "$train" --model "$model" --epochs 2 --image-size 16 --batch-size 4 --seed 7
        --threads 1 --no-report --distributed --dist-timeout 60)
env="WORLD_SIZE=2 MASTER_ADDR=$net.1 MASTER_PORT=29511"
ip netns exec "$ns_a" env $env RANK=0 "$tabby" "${common[@]}" --out "$work/run" >"$work/rank0.log" 2>&1 &
rank0=$!
ip netns exec "$ns_b" env $env RANK=1 "$tabby" "${common[@]}" --out "$work/run-b" --gloo-iface "$if_b" \
  >"$work/rank1.log" 2>&1 &
rank1=$!
status=0
wait "$rank0" || status=$?
wait "$rank1" || status=$?
cat "$work/rank0.log" "$work/rank1.log" >&2
if [[ $status -ne 0 ]]; then echo "two_hosts: a rank failed (exit $status)" >&2; exit 1; fi
grep -q '"replicas_identical": true' "$work/run/run.json" || { echo "two_hosts: replicas not identical" >&2; exit 1; }
[[ ! -e "$work/run-b" ]] || { echo "two_hosts: rank 1 wrote a run folder" >&2; exit 1; }
echo "two_hosts: trained across $net.1 and $net.2"
