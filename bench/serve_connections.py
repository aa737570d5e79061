#!/usr/bin/env python3
"""tabby serve under a flood of idle and slow connections, beside real clients.

For each binary given (the new one, and with --old the one to compare with):
  1. quiet: C clients post JPEG photos to POST /predictions/<model> over
     keep-alive connections for D seconds, while a probe asks
     GET /v2/health/ready every 50 ms on a fresh connection;
  2. flood: the same, after opening I idle keep-alive connections (each sent
     one GET /v2/health/live and then nothing) and while S clients send a
     request head one line every 300 ms.
Reported: predictions/s (and the flood's as a share of the quiet one), the
probe's p50/p99 latency and how many probes got no 200 within 30 s, the slow
clients the server hung up on, and the server's resident memory before and
during the flood (/proc/PID/status).

  bench/serve_connections.py --tabby build/tabby [--old /work/main/build/tabby]
      [--work /tmp/serve-connections] [--idle 2000] [--slow 500] [--clients 16] [--duration 20]

The served run is trained once into --work (tutorial-cnn, one epoch of
cats_and_dogs_filtered at 64x64: the model is small on purpose, so the
figures are about connections, not convolutions).
"""
import argparse
import http.client
import json
import os
import re
import resource
import select
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(line):
    print(line, file=sys.stderr, flush=True)


def train_run(tabby, shared, work):
    run = os.path.join(work, "tutorial_cnn_64")
    if os.path.exists(os.path.join(run, "weights.safetensors")):
        return run
    data = os.path.join(shared, "datasets", "cats_and_dogs_filtered")
    cmd = [tabby, "train", "--data", os.path.join(data, "train"), "--model", "tutorial-cnn", "--image-size", "64",
           "--epochs", "1", "--out", run, "--overwrite", "--no-report"]
    log("training the served run: " + " ".join(cmd))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return run


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


class Server:
    def __init__(self, tabby, run, work, name, extra):
        self.log_path = os.path.join(work, f"{name}.log")
        self.logfile = open(self.log_path, "w")
        cmd = [tabby, "serve", run, "--port", "0", "--host", "127.0.0.1", "--device", "cpu"] + extra
        log("starting: " + " ".join(cmd))
        self.process = subprocess.Popen(cmd, stderr=self.logfile, stdout=subprocess.DEVNULL)
        deadline = time.time() + 120
        self.port = None
        while self.port is None and time.time() < deadline:
            with open(self.log_path) as f:
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.05)
        while time.time() < deadline:
            if probe(self.port, 5)[0] == 200:
                return
            time.sleep(0.1)
        raise RuntimeError("the server did not become ready: " + open(self.log_path).read())

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.logfile.close()


def probe(port, timeout):
    """GET /v2/health/ready on a fresh connection: (status or None, seconds)."""
    start = time.perf_counter()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", "/v2/health/ready")
        status = c.getresponse().status
        c.close()
    except OSError:
        status = None
    return status, time.perf_counter() - start


def predictor(port, photos, model, until, results):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    ok = failed = 0
    k = 0
    while time.time() < until:
        try:
            c.request("POST", f"/predictions/{model}", body=photos[k % len(photos)],
                      headers={"Content-Type": "image/jpeg"})
            r = c.getresponse()
            r.read()
            if r.status == 200:
                ok += 1
            else:
                failed += 1
        except (OSError, http.client.HTTPException):
            failed += 1
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        k += 1
    results.append((ok, failed))


def prober(port, stop, latencies, failures):
    while not stop.is_set():
        status, seconds = probe(port, 30)
        if status == 200:
            latencies.append(seconds)
        else:
            failures.append(status)
        time.sleep(0.05)


def dribbler(port, count, stop, outcome):
    """`count` clients sending a request head a line every 300 ms until hung up on."""
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.setblocking(False)
        socks.append(s)
    opened = time.perf_counter()
    open_socks = set(socks)
    closed_after = []
    line = 0
    next_line = time.perf_counter()
    while open_socks and not stop.is_set():
        now = time.perf_counter()
        if now >= next_line:
            text = b"GET /v2/health/ready HTTP/1.1\r\n" if line == 0 else f"X-Slow-{line}: y\r\n".encode()
            for s in list(open_socks):
                try:
                    s.send(text)
                except OSError:
                    pass
            line += 1
            next_line += 0.3
        poller = select.poll()  # not select(): descriptors past 1024 are out of its range
        by_fd = {s.fileno(): s for s in open_socks}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        for fd, _ in poller.poll(50):
            s = by_fd[fd]
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                open_socks.discard(s)
                closed_after.append(time.perf_counter() - opened)
    outcome["hung_up"] = len(closed_after)
    outcome["still_open"] = len(open_socks)
    outcome["median_close_s"] = statistics.median(closed_after) if closed_after else None
    for s in socks:
        s.close()


def phase(server, photos, model, clients, duration, flood=None):
    """One measurement: predictions/s, probe latencies; `flood` = (idle, slow) connections opened first."""
    idle_socks, stop, outcome, threads = [], threading.Event(), {}, []
    if flood:
        idle, slow = flood
        for _ in range(idle):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")  # answered, never read: idle after it
            idle_socks.append(s)
        threads.append(threading.Thread(target=dribbler, args=(server.port, slow, stop, outcome)))
        threads[-1].start()
        time.sleep(1)  # the slow clients' first lines are out
    latencies, failures, results = [], [], []
    probe_thread = threading.Thread(target=prober, args=(server.port, stop, latencies, failures))
    probe_thread.start()
    until = time.time() + duration
    workers = [threading.Thread(target=predictor, args=(server.port, photos, model, until, results))
               for _ in range(clients)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    rss = rss_kb(server.process.pid)
    stop.set()
    probe_thread.join()
    for t in threads:
        t.join()
    for s in idle_socks:
        s.close()
    ok = sum(r[0] for r in results)
    lat = sorted(latencies)
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else None
    return {"predictions_per_s": ok / elapsed, "predictions_failed": sum(r[1] for r in results),
            "probes": len(lat) + len(failures), "probes_not_200": len(failures),
            "probe_p50_ms": pct(0.5), "probe_p99_ms": pct(0.99), "rss_kb": rss, **outcome}


def measure(tabby, run, work, name, photos, args):
    help_text = subprocess.run([tabby, "serve", "--help"], capture_output=True, text=True).stdout
    extra = ["--header-timeout", str(args.header_timeout), "--idle-timeout", "600"] \
        if "--header-timeout" in help_text else []
    server = Server(tabby, run, work, name, extra)
    try:
        rss_start = rss_kb(server.process.pid)
        quiet = phase(server, photos, "tutorial_cnn_64", args.clients, args.duration)
        flood = phase(server, photos, "tutorial_cnn_64", args.clients, args.duration, (args.idle, args.slow))
    finally:
        server.stop()
    return {"binary": tabby, "flags": extra, "rss_start_kb": rss_start, "quiet": quiet, "flood": flood}


def ms(x):
    return "-" if x is None else f"{x:.1f}"


def table(results, args):
    lines = [f"| front end | phase | predictions/s | vs quiet | failed | probe p50 ms | probe p99 ms | "
             f"probes not 200 (30 s) | slow clients hung up | server RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        for ph in ("quiet", "flood"):
            p = r[ph]
            share = p["predictions_per_s"] / r["quiet"]["predictions_per_s"] * 100 if r["quiet"]["predictions_per_s"] else 0
            hung = f"{p['hung_up']}/{args.slow}" if "hung_up" in p else "-"
            lines.append(f"| {name} | {ph} | {p['predictions_per_s']:.1f} | {share:.0f} % | {p['predictions_failed']} | "
                         f"{ms(p['probe_p50_ms'])} | {ms(p['probe_p99_ms'])} | {p['probes_not_200']}/{p['probes']} | "
                         f"{hung} | {p['rss_kb'] / 1024:.0f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tabby", default=os.path.join(ROOT, "build", "tabby"))
    ap.add_argument("--old", help="another tabby binary to measure the same way (e.g. main's build)")
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(ROOT), "shared"))
    ap.add_argument("--work", default="/tmp/serve-connections")
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--slow", type=int, default=500)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--header-timeout", type=float, default=2)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.idle + args.slow + args.clients + 200
    if hard != resource.RLIM_INFINITY and hard < need:
        sys.exit(f"the hard open-file limit ({hard}) is below the {need} connections this opens")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need) if hard == resource.RLIM_INFINITY else hard, hard))
    os.makedirs(args.work, exist_ok=True)
    run = train_run(args.tabby, args.shared, args.work)
    folder = os.path.join(args.shared, "datasets", "cats_dogs_fullres", "test_set", "cats")
    photos = [open(os.path.join(folder, f), "rb").read() for f in sorted(os.listdir(folder))[:20]]
    results = {}
    if args.old:
        results["old (" + args.old + ")"] = measure(args.old, run, args.work, "old", photos, args)
    results["new (" + args.tabby + ")"] = measure(args.tabby, run, args.work, "new", photos, args)
    with open(os.path.join(args.work, "serve_connections.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(table(results, args))


if __name__ == "__main__":
    main()
