#!/usr/bin/env python3
"""tabby serve against a Python peer serving the same model, in one run.

The model: MobileNetV2 from ImageNet weights with a 2-class head at 224x224, a
tabby run trained for one epoch on cats_and_dogs_filtered (its accuracy does
not matter here). The load: wrk keeps N connections busy posting real JPEG
photos (cats_dogs_fullres/test_set, ~45 KB each, taken in turn) to
POST /predictions/<model> for D seconds after a warm-up; requests/s and the
latency percentiles are wrk's. The peer (bench/peer_serve.py): Flask under
gunicorn's sync workers, PIL decoding, torchvision's model, at each worker
count W in --peer-workers with the cores split between the workers; its best
W is compared. Both run on this machine's cores beside the load generator.

  bench/serve_bench.py --build build [--connections 16] [--duration 20] [--into bench/RESULTS.md]

Writes the section between <!-- tabby-serve-section:begin --> and
<!-- tabby-serve-section:end --> of --into (replacing an older one), and the raw
figures as JSON to --work/serve.json.
"""
import argparse
import datetime
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

from results_section import write_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRK_SCRIPT = r"""
local bodies = {}
local n = 0
init = function(args)
  for _, path in ipairs(args) do
    local f = assert(io.open(path, "rb"))
    n = n + 1
    bodies[n] = f:read("*all")
    f:close()
  end
end
local i = 0
request = function()
  i = i % n + 1
  return wrk.format("POST", wrk.path, {["Content-Type"] = "image/jpeg"}, bodies[i])
end
local bad = 0
response = function(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("TABBYBENCH %d %d %f %f %f %f %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, summary.errors.status))
end
"""


def cpu_facts():
    """The CPU's model name, and whether it computes bfloat16 natively (AVX512-BF16 or AMX)."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "unknown CPU":
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    native = sorted(flags & {"avx512_bf16", "amx_bf16"})
    vector = "AVX512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return model, vector, native


def log(msg):
    print(f"serve-bench: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, process, timeout=300):
    import urllib.request
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 in {timeout} s")


def run_wrk(url, photos, connections, seconds, work):
    script = os.path.join(work, "post_photos.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT)
    cmd = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s", "-s", script, url, "--"] + photos
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    m = re.search(r"TABBYBENCH (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", out)
    if not m:
        raise RuntimeError(f"wrk gave no summary:\n{out}")
    requests, duration_us = int(m.group(1)), int(m.group(2))
    return {"requests": requests, "seconds": duration_us / 1e6, "rps": requests / (duration_us / 1e6),
            "p50_ms": float(m.group(3)) / 1000, "p90_ms": float(m.group(4)) / 1000,
            "p99_ms": float(m.group(5)) / 1000, "max_ms": float(m.group(6)) / 1000,
            "non_200": int(m.group(7)), "command": " ".join(shlex.quote(c) for c in cmd[:-len(photos)]) + " -- PHOTOS..."}


def measure(name, start_cmd, env, ready_path, predict_path, photos, args, work):
    port = free_port()
    cmd = [c.replace("{port}", str(port)) for c in start_cmd]
    log(f"{name}: {' '.join(cmd)}")
    logfile = open(os.path.join(work, f"{name}.log"), "w")
    process = subprocess.Popen(cmd, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}{ready_path}", process)
        url = f"http://127.0.0.1:{port}{predict_path}"
        run_wrk(url, photos, args.connections, args.warmup, work)
        result = run_wrk(url, photos, args.connections, args.duration, work)
        result["server"] = " ".join(shlex.quote(c) for c in cmd)
        logfile.flush()
        with open(os.path.join(work, f"{name}.log")) as f:
            m = re.search(r"(\d+) instances? x (\d+) threads?", f.read())
        if m:
            result["instances"], result["instance_threads"] = int(m.group(1)), int(m.group(2))
        log(f"{name}: {result['rps']:.1f} requests/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
            f"{result['non_200']} not 200")
        return result
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        logfile.close()


def train_run(tabby, shared, work):
    run = os.path.join(work, "mobilenet_v2_224")
    if os.path.exists(os.path.join(run, "weights.safetensors")):
        return run
    data = os.path.join(shared, "datasets", "cats_and_dogs_filtered")
    cmd = [tabby, "train", "--data", os.path.join(data, "train"), "--val", os.path.join(data, "validation"),
           "--model", "mobilenet_v2", "--freeze-backbone", "--image-size", "224", "--epochs", "1",
           "--out", run, "--overwrite", "--no-report"]
    log("training the served run: " + " ".join(cmd))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return run


def rate(r):
    """Requests/s, with every round's when there were several (the row is the median round)."""
    rounds = r.get("rounds", [])
    return f"{r['rps']:.1f}" + (f" ({', '.join(f'{x:.1f}' for x in rounds)})" if len(rounds) > 1 else "")


def section(res):
    lines = ["<!-- tabby-serve-section:begin -->", "## Serving: `tabby serve` vs Flask + torchvision", "",
             f"Run {res['started']} → {res['finished']}, `bench/serve_bench.py`, tabby {res['commit']}. "
             f"{res['machine']}", "",
             f"MobileNetV2 (ImageNet weights, 2-class head) at 224×224 on the CPU; wrk posts {res['photos']} real JPEG "
             f"photos ({res['photo_kb']:.0f} KB on average) in turn to `POST /predictions/<model>` over "
             f"{res['connections']} keep-alive connections for {res['duration']} s after a {res['warmup']} s warm-up. "
             "Server and load generator share the machine's cores. The peer decodes with PIL, resizes to 224×224 "
             "(bilinear, as tabby), normalises and runs torchvision's model under `no_grad`, one image per request "
             "(Flask has no batching); its worker counts split the cores between processes. The machine's speed "
             f"drifts over minutes, so tabby and the peer with the most workers are measured in turn, {res['rounds']} "
             "rounds, and their rows give the median round (every round's requests/s in brackets). tabby runs with its "
             "default instances (`--instances`: copies of the model, one inference thread each, sharing the queue); "
             "the row with one instance using every core is measured once beside them. fp32 is the default of both. "
             + res["bf16_note"], "",
             "| server | precision | setting | requests/s | p50 ms | p90 ms | p99 ms | not 200 |",
             "|---|---|---|---|---|---|---|---|"]
    for t in res["tabby"]:
        shape = (f"{t['instances']} instance{'s' if t['instances'] != 1 else ''} x {t['instance_threads']} "
                 f"thread{'s' if t['instance_threads'] != 1 else ''}, " if "instances" in t else "")
        lines.append(f"| tabby serve | {t['precision']} | 1 process, {shape}batching: max 32 images, 5 ms | {rate(t)} | "
                     f"{t['p50_ms']:.1f} | {t['p90_ms']:.1f} | {t['p99_ms']:.1f} | {t['non_200']} |")
    for p in res["peer"]:
        lines.append(f"| Flask + gunicorn (peer) | {p['precision']} | {p['workers']} workers x {p['threads']} threads | "
                     f"{rate(p)} | {p['p50_ms']:.1f} | {p['p90_ms']:.1f} | {p['p99_ms']:.1f} | {p['non_200']} |")
    lines.append("")
    for precision in ("fp32", "bf16"):
        t = next((t for t in res["tabby"] if t["precision"] == precision and not t.get("variant")), None)
        peers = [p for p in res["peer"] if p["precision"] == precision]
        if not t or not peers:
            continue
        best = max(peers, key=lambda p: p["rps"])
        ratio = f"**{t['rps'] / best['rps']:.2f}×**" if best["rps"] > 0 else "(the peer answered no request)"
        lines.append(f"- {precision}: tabby ÷ best peer ({best['workers']} workers): {ratio} the throughput, "
                     f"p99 {t['p99_ms']:.1f} ms vs {best['p99_ms']:.1f} ms.")
    lines += ["", "Commands:", "", "```sh",
              f"bench/serve_bench.py --build {res['build']} --connections {res['connections']} --duration {res['duration']}"]
    lines += [t["server"] for t in res["tabby"]] + [res["tabby"][0]["command"]]
    lines += [p["server"] for p in res["peer"]]
    lines += ["```", "<!-- tabby-serve-section:end -->", ""]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--shared", default=os.environ.get("TABBY_SHARED", os.path.join(ROOT, "..", "shared")))
    p.add_argument("--work", default="/tmp/tabby-serve-bench")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--duration", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--photos", type=int, default=100)
    p.add_argument("--peer-workers", default="1,2,4")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--into", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    tabby = os.path.join(args.build, "tabby")
    cores = os.cpu_count() or 1
    folder = os.path.join(args.shared, "datasets", "cats_dogs_fullres", "test_set")
    photos = sorted(os.path.join(folder, c, f) for c in ("cats", "dogs") for f in os.listdir(os.path.join(folder, c)))
    photos = photos[::max(1, len(photos) // args.photos)][:args.photos]
    res = {"started": datetime.datetime.now().isoformat(timespec="seconds"), "connections": args.connections,
           "rounds": args.rounds,
           "duration": args.duration, "warmup": args.warmup, "photos": len(photos), "build": os.path.relpath(args.build, ROOT),
           "photo_kb": sum(os.path.getsize(f) for f in photos) / len(photos) / 1024,
           "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
           "machine": f"{cores} cores, load average at start {os.getloadavg()[0]:.2f}."}
    cpu_model, vector, native_bf16 = cpu_facts()
    res["machine"] = f"{cpu_model} ({vector}), " + res["machine"]
    precisions = ["fp32"] + (["bf16"] if native_bf16 else [])
    res["bf16_note"] = ("bf16 runs the forward pass in bfloat16 (tabby `serve --precision bf16`, the peer under "
                        "`torch.autocast(\"cpu\", dtype=torch.bfloat16)`), which this CPU computes natively ("
                        + ", ".join(native_bf16) + ")." if native_bf16 else
                        "bf16 is not measured: this CPU has no native bfloat16 (no AVX512-BF16 or AMX), where "
                        "LibTorch emulates it more slowly than fp32.")
    run = train_run(tabby, args.shared, args.work)
    env = dict(os.environ, TABBY_SHARED=args.shared)
    res["tabby"], res["peer"] = [], []
    workers = [int(x) for x in args.peer_workers.split(",")]
    most = max(workers)

    def tabby_once(precision, round_, extra=()):
        r = measure(f"tabby-{precision}-{round_}{'-'.join(('',) + tuple(extra))}",
                    [tabby, "serve", run, "--port", "{port}", "--name", "pets", "--precision", precision, *extra],
                    env, "/v2/health/ready", "/predictions/pets", photos, args, args.work)
        r["precision"] = precision
        if extra:
            r["variant"] = " ".join(extra)
        return r

    def peer_once(precision, w, round_):
        threads = max(1, cores // w)
        peer_env = dict(env, TABBY_RUN=run, PEER_THREADS=str(threads), PEER_PRECISION=precision)
        cmd = ["/usr/bin/python3", "-m", "gunicorn", "-w", str(w), "-b", "127.0.0.1:{port}", "--timeout", "120",
               "--chdir", os.path.join(ROOT, "bench"), "peer_serve:app"]
        # Each worker loads the model before it answers /health.
        r = measure(f"peer-{w}-{precision}-{round_}", cmd, peer_env, "/health", "/predictions/pets", photos, args,
                    args.work)
        r.update(workers=w, threads=threads, precision=precision)
        r["server"] = f"PEER_PRECISION={precision} " + r["server"]
        return r

    # The machine's speed drifts over minutes: the pairs compared (tabby and the peer
    # with the most workers) run in turn, --rounds times, and each row is the
    # round with the median throughput.
    for precision in precisions:
        pairs = [(tabby_once(precision, k), peer_once(precision, most, k)) for k in range(args.rounds)]
        for side, key in ((0, "tabby"), (1, "peer")):
            runs = sorted((p[side] for p in pairs), key=lambda r: r["rps"])
            median = dict(runs[len(runs) // 2])
            median["rounds"] = [round(r["rps"], 1) for r in runs]
            res[key].append(median)
        if precision == "fp32":
            single = tabby_once("fp32", 0, ("--instances", "1"))
            if single.get("instances") != res["tabby"][-1].get("instances"):
                res["tabby"].append(single)
            res["peer"] += [peer_once("fp32", w, 0) for w in workers if w != most]
    res["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    res["machine"] += f" Load average at the end {os.getloadavg()[0]:.2f}."
    with open(os.path.join(args.work, "serve.json"), "w") as f:
        json.dump(res, f, indent=1)
    write_section(args.into, "serve", section(res))
    log(f"wrote the serving section of {args.into}")


if __name__ == "__main__":
    main()
