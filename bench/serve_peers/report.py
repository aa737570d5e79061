"""The serve-peers section of bench/RESULTS.md from run.py's figures."""

PROTOCOLS = ("OIP HTTP, binary tensor", "OIP HTTP, JSON tensor", "OIP gRPC, raw tensor", "image upload (JPEG)")
# Which rows of a peer each tabby row is compared with.
PEER_PROTOCOLS = {"OIP HTTP, binary tensor": ("OIP HTTP, binary tensor", "OIP HTTP, JSON tensor"),
                  "OIP HTTP, JSON tensor": ("OIP HTTP, JSON tensor",),
                  "OIP gRPC, raw tensor": ("OIP gRPC, raw tensor",),
                  "image upload (JPEG)": ("image upload (JPEG)",)}


def _row(r):
    r = dict(r, setting=r["setting"].replace("x 1 threads", "x 1 thread").replace("1 workers", "1 worker"))
    if "skipped" in r:
        return f"| {r['protocol']} | {r['server']} | {r['setting']} | skipped: {r['skipped']} | | | | | |"
    return (f"| {r['protocol']} | {r['server']} | {r['setting']} | {r['rps']:.1f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['errors']} | {r.get('peak_rss_mib', 0):.0f} | "
            f"{r['client_cpu_ms_per_request']:.2f} |")


def _client_share(rows):
    measured = [r for r in rows if "skipped" not in r]
    return max((r["rps"] * r["client_cpu_ms_per_request"] / 10 for r in measured), default=0)


def _comparisons(rows):
    lines = []
    measured = [r for r in rows if "skipped" not in r]
    for t in (r for r in measured if r["server"] == "tabby serve"):
        peers = [r for r in measured if r["server"] != "tabby serve" and r["protocol"] in PEER_PROTOCOLS[t["protocol"]]]
        if not peers:
            continue
        best = max(peers, key=lambda r: r["rps"])
        ratio = t["rps"] / best["rps"] if best["rps"] > 0 else float("inf")
        lines.append(f"- {t['protocol']}: tabby {t['rps']:.1f} requests/s, p99 {t['p99_ms']:.1f} ms; best peer "
                     f"{best['server']} ({best['protocol']}, {best['setting']}) {best['rps']:.1f} requests/s, "
                     f"p99 {best['p99_ms']:.1f} ms: **{ratio:.2f}×** the throughput.")
    return lines


def section(res, args=None):
    rows = sorted(res["rows"], key=lambda r: (PROTOCOLS.index(r["protocol"]), r["server"] != "tabby serve"))
    lines = [
        "<!-- tabby-serve-peers-section:begin -->",
        "## Serving: `tabby serve` beside MLServer and TorchServe",
        "",
        f"Run {res['started']} → {res['finished']}, `bench/serve_bench.sh` at {res['commit']}. {res['machine']}, "
        f"load average {res['loadavg_start']:.2f} at the start, {res['loadavg_end']:.2f} at the end."
        + (f" {res['note']}" if res.get("note") else ""),
        "",
        "The same network everywhere: the tabby run of `bench/serve_bench.py` (MobileNetV2 with ImageNet features "
        "and a 2-class head, 224×224, fp32 on the CPU); MLServer (a custom runtime) and TorchServe (a handler in a "
        ".mar) rebuild it with torchvision and load the run's weights, so each server computes the same model on the "
        "same input. A 2-class head rather than ImageNet's 1000 classes because tabby serves trained runs; "
        "a 1000-class head would add under 0.5 % to the network's work. Tensor requests carry one photo as FP32 [1,3,224,224] pixels 0-255 "
        "(tabby's Open Inference Protocol input; the MLServer runtime normalises them as tabby does). Image uploads "
        f"post {res['photos']} real JPEG photos ({res['photo_kb']:.0f} KB on average) in turn. Every server batches "
        "(tabby: 32 images / 5 ms; MLServer adaptive batching and TorchServe batching set to the same). MLServer's "
        "HTTP speaks only JSON tensors (Triton's binary extension is not implemented: SeldonIO/MLServer#324), so its "
        "HTTP rows are JSON and tabby's JSON row is the like-for-like one.",
        "",
        f"Load: closed loop, {res['connections']} clients, {res['duration']} s measured after a {res['warmup']} s "
        "warm-up that runs straight into it, every protocol by the same client, `bench/serve_peers/serve_load.cpp` "
        "(C++: HTTP/1.1 keep-alive on blocking sockets, one connection per client; gRPC by grpc++, one channel per "
        "client). "
        "Client and server share the machine's cores (the load averages above show what else ran). *client CPU "
        "ms/req* is the load generator's own CPU time per answered request: 1000 / that is what it could send on "
        f"one core; at the rates below it used at most {_client_share(res['rows']):.0f} % of one core. Peak RSS sums "
        "every process of the server (its workers and, for TorchServe, the Java front end).",
        "",
        "| protocol | server | setting | requests/s | p50 ms | p99 ms | errors | peak RSS MiB | client CPU ms/req |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(r) for r in rows]
    lines += [""] + _comparisons(res["rows"])
    lines += ["", "Commands:", "", "```sh",
              "bench/serve_bench.sh " + "".join(f"--build {b} " for b in res.get("builds", [])) +
              f"--connections {res['connections']} --warmup {res['warmup']} --duration {res['duration']}"]
    seen = set()
    for r in res["rows"]:
        for key in ("server_command", "command"):
            c = r.get(key)
            if c and c not in seen:
                seen.add(c)
                lines.append(c)
    lines += ["```", "<!-- tabby-serve-peers-section:end -->", ""]
    return "\n".join(lines)
