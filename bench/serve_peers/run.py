#!/usr/bin/env python3
"""tabby serve beside Seldon's MLServer and TorchServe: the same model, the same
machine, one run (bench/serve_bench.sh sets up the peers and runs this under
their virtual environment).

The model: the tabby run of bench/serve_bench.py (MobileNetV2, ImageNet
features, a 2-class head trained for one epoch, 224x224); the peers rebuild it
with torchvision and load the run's weights (peer_mobilenet.py), so every
server computes the same network on the same input.

The protocols, each measured with the same client for every server that speaks it:
- OIP HTTP, tensor: POST /v2/models/pets/infer with an FP32 [1,3,224,224]
  tensor of pixels 0-255 (one photo resized), as Triton's binary tensor
  extension and as JSON;
- image upload: POST /predictions/pets with real JPEG photos in turn
  (tabby and TorchServe);
- OIP gRPC: ModelInfer with the tensor in raw_input_contents.
The client (serve_load.cpp, C++) keeps --connections clients busy in a closed
loop: each sends its next request when its last was answered; the requests
answered in the --duration s after a --warmup s (the load never pausing
between them) give requests/s, and each one's latency the percentiles. Its own
CPU time per request is reported: 1000 / that is its ceiling on one core.
Servers' peak RSS is summed over their processes (every process of their
session) from /proc.
"""
import argparse
import datetime
import json
import os
import re
import resource
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)

from results_section import write_section  # noqa: E402
from serve_bench import cpu_facts, free_port, train_run  # noqa: E402

MODEL = "pets"


def log(msg):
    print(f"serve-peers: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- inputs


def prepare_inputs(photos, size, work):
    """The tensor bodies (JSON, binary extension, raw for gRPC) of one photo
    resized to the model's size, as pixels 0-255."""
    import numpy as np
    from PIL import Image

    height, width = size
    image = Image.open(photos[0]).convert("RGB").resize((width, height), Image.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1)[None].copy()
    shape = list(pixels.shape)
    raw = os.path.join(work, "pixels.f32")
    pixels.tofile(raw)
    tensor = {"name": "images", "shape": shape, "datatype": "FP32"}
    json_body = os.path.join(work, "infer.json")
    with open(json_body, "w") as f:
        json.dump({"inputs": [dict(tensor, data=[int(v) for v in pixels.ravel()])]}, f, separators=(",", ":"))
    header = json.dumps({"inputs": [dict(tensor, parameters={"binary_data_size": pixels.nbytes})]},
                        separators=(",", ":")).encode()
    binary_body = os.path.join(work, "infer.bin")
    with open(binary_body, "wb") as f:
        f.write(header + pixels.tobytes())
    return {"shape": shape, "raw": raw, "json": json_body, "binary": binary_body, "header_length": len(header)}


# ---------------------------------------------------------------- loads


def http_request(url, body_file, content_type, header_length):
    """One request: (status, the start of the answer)."""
    with open(body_file, "rb") as f:
        data = f.read()
    headers = {"Content-Type": content_type}
    if header_length:
        headers["Inference-Header-Content-Length"] = header_length
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=120) as r:
            return r.status, r.read(300).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read(300).decode(errors="replace")
    except Exception as e:  # noqa: BLE001 - not up yet, or refused
        return 0, str(e)


def client_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def http_client_args(url, content_type, header_length, bodies):
    args = ["http", "--url", url, "--header", f"Content-Type: {content_type}"]
    if header_length:
        args += ["--header", f"Inference-Header-Content-Length: {header_length}"]
    for b in bodies:
        args += ["--body", b]
    return args


def grpc_client_args(target, inputs):
    return ["grpc", "--target", target, "--model", MODEL, "--input", "images", "--datatype", "FP32",
            "--shape", ",".join(map(str, inputs["shape"])), "--raw", inputs["raw"], "--output", "probabilities"]


def run_load(client_args, args):
    """A closed-loop load; its client's CPU time per answered request (the
    warm-up's requests counted at the measured rate)."""
    cmd = [args.client] + client_args + ["--connections", str(args.connections), "--warmup", str(args.warmup),
                                          "--duration", str(args.duration)]
    before = client_cpu()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu = client_cpu() - before
    result = json.loads(out.strip().splitlines()[-1])
    sent = max(1.0, result["requests"] * (args.warmup + args.duration) / args.duration)
    result["client_cpu_ms_per_request"] = 1000 * cpu / sent
    result["command"] = shown_command(cmd)
    return result


def shown_command(cmd):
    """The command as a shell line, its photo bodies (a hundred of them) as one placeholder."""
    shown, photos = [], 0
    for i, c in enumerate(cmd):
        if c == "--body" and cmd[i + 1].endswith(".jpg") or c.endswith(".jpg"):
            photos += c.endswith(".jpg")
            continue
        shown.append(shlex.quote(c))
    return " ".join(shown) + (f" --body PHOTO... (each of the {photos} photos)" if photos else "")


def probe(client_args, args):
    done = subprocess.run([args.client] + client_args + ["--once"], capture_output=True, text=True)
    return (200, "") if done.returncode == 0 else (500, done.stderr.strip())


# ---------------------------------------------------------------- servers


class RssWatch(threading.Thread):
    """Peak of the summed RSS of every process in a session (the server and
    whatever workers it started), sampled every 0.2 s."""

    def __init__(self, sid):
        super().__init__(daemon=True)
        self.sid, self.peak, self.stopped = sid, 0, threading.Event()
        self.page = os.sysconf("SC_PAGE_SIZE")

    def sample(self):
        total = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == self.sid:  # after the name: state, ppid, pgrp, session
                total += int(fields[21]) * self.page
        self.peak = max(self.peak, total)

    def run(self):
        while not self.stopped.wait(0.2):
            self.sample()


class Server:
    """A server process in its own session: started, probed until it answers
    a real request, watched for memory, stopped with SIGTERM then SIGKILL."""

    def __init__(self, name, cmd, env, work, cwd=None):
        self.name, self.cmd = name, cmd
        self.log_path = os.path.join(work, f"{name}.log")
        self.logfile = open(self.log_path, "w")
        log(f"{name}: {' '.join(shlex.quote(c) for c in cmd)}")
        self.process = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self.logfile, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.rss = RssWatch(self.process.pid)
        self.rss.start()

    def wait_answering(self, probe, timeout=180):
        try:
            self._wait_answering(probe, timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_answering(self, probe, timeout):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            last = probe()
            if last[0] == 200:
                return
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} did not answer 200 in {timeout} s: {last}")

    def stop(self):
        self.rss.stopped.set()
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        # Workers that outlive their parent keep the session: end them too.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.logfile.close()
        return self.rss.peak / 2**20


def mlserver_folder(work, run, workers, threads, http_port, grpc_port):
    folder = os.path.join(work, f"mlserver-{workers}")
    os.makedirs(os.path.join(folder, MODEL), exist_ok=True)
    settings = {"host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port, "metrics_port": free_port(),
                "parallel_workers": workers, "debug": False}
    with open(os.path.join(folder, "settings.json"), "w") as f:
        json.dump(settings, f, indent=1)
    model = {"name": MODEL, "implementation": "mlserver_runtime.MobileNetRuntime",
             "max_batch_size": 32, "max_batch_time": 0.005,
             "parameters": {"extra": {"run": run, "threads": threads}}}
    with open(os.path.join(folder, MODEL, "model-settings.json"), "w") as f:
        json.dump(model, f, indent=1)
    return folder


def torchserve_archive(args, run, work):
    store = os.path.join(work, "model-store")
    os.makedirs(store, exist_ok=True)
    mar = os.path.join(store, f"{MODEL}.mar")
    if not os.path.exists(mar):
        extra = [os.path.join(HERE, "peer_mobilenet.py"), os.path.join(BENCH, "peer_models.py"),
                 os.path.join(BENCH, "peer_common.py"), os.path.join(run, "run.json"),
                 os.path.join(run, "weights.safetensors")]
        subprocess.run([os.path.join(args.venv, "bin", "torch-model-archiver"), "--model-name", MODEL,
                        "--version", "1.0", "--handler", os.path.join(HERE, "torchserve_handler.py"),
                        "--extra-files", ",".join(extra), "--export-path", store, "--force"], check=True)
    return store


def torchserve_config(work, store, workers, ports):
    path = os.path.join(work, f"torchserve-{workers}.properties")
    models = {MODEL: {"1.0": {"defaultVersion": True, "marName": f"{MODEL}.mar", "minWorkers": workers,
                              "maxWorkers": workers, "batchSize": 32, "maxBatchDelay": 5, "responseTimeout": 120}}}
    with open(path, "w") as f:
        f.write(f"inference_address=http://127.0.0.1:{ports[0]}\nmanagement_address=http://127.0.0.1:{ports[1]}\n"
                f"metrics_address=http://127.0.0.1:{ports[2]}\nmodel_store={store}\nload_models={MODEL}.mar\n"
                f"models={json.dumps(models)}\ndisable_token_authorization=true\n"
                "install_py_dep_per_model=false\n")
    return path


# ---------------------------------------------------------------- measuring


def measure_server(server, loads, results, base):
    """Runs each (protocol, how) of loads against a started server, checking
    one request first; a protocol the server refuses becomes a skipped row."""
    try:
        for protocol, check, load in loads:
            status, answer = check()
            row = dict(base, protocol=protocol)
            if status != 200:
                row.update(skipped=f"answers {status}: {answer.strip()[:160]}")
                log(f"{server.name} {protocol}: skipped ({row['skipped']})")
            else:
                row.update(load())
                log(f"{server.name} {protocol}: {row['rps']:.1f} requests/s, p50 {row['p50_ms']:.1f} ms, "
                    f"p99 {row['p99_ms']:.1f} ms, {row['errors']} errors, client "
                    f"{row['client_cpu_ms_per_request']:.2f} CPU ms/request")
            results.append(row)
    finally:
        peak = server.stop()
        for row in results:
            if row.get("server_name") == server.name:
                row["peak_rss_mib"] = peak
    log(f"{server.name}: peak RSS {peak:.0f} MiB")


def tensor_loads(http_base, inputs, args, grpc_target, binary=True):
    url = f"{http_base}/v2/models/{MODEL}/infer"
    loads = []
    if binary:
        length = str(inputs["header_length"])
        loads.append(("OIP HTTP, binary tensor",
                      lambda: http_request(url, inputs["binary"], "application/octet-stream", length),
                      lambda: run_load(http_client_args(url, "application/octet-stream", length, [inputs["binary"]]),
                                       args)))
    loads.append(("OIP HTTP, JSON tensor", lambda: http_request(url, inputs["json"], "application/json", ""),
                  lambda: run_load(http_client_args(url, "application/json", "", [inputs["json"]]), args)))
    if grpc_target:
        loads.append(("OIP gRPC, raw tensor", lambda: probe(grpc_client_args(grpc_target, inputs), args),
                      lambda: run_load(grpc_client_args(grpc_target, inputs), args)))
    return loads


def upload_loads(http_base, photos, args):
    url = f"{http_base}/predictions/{MODEL}"
    return [("image upload (JPEG)", lambda: http_request(url, photos[0], "image/jpeg", ""),
             lambda: run_load(http_client_args(url, "image/jpeg", "", photos), args))]


def measure_tabby(tabby, name, run, photos, inputs, env, args, rows):
    """Every protocol this tabby speaks; gRPC when its serve has --grpc-port."""
    grpc = "--grpc-port" in subprocess.run([tabby, "serve", "--help"], capture_output=True, text=True).stdout
    port, grpc_port = free_port(), free_port()
    cmd = [tabby, "serve", run, "--port", str(port), "--name", MODEL] + (["--grpc-port", str(grpc_port)] if grpc else [])
    server = Server(name, cmd, env, args.work)
    base_url = f"http://127.0.0.1:{port}"
    server.wait_answering(lambda: http_request(f"{base_url}/predictions/{MODEL}", photos[0], "image/jpeg", ""))
    with open(server.log_path) as f:
        m = re.search(r"(\d+) instances? x (\d+) threads?", f.read())
    setting = f"{m.group(1)} instances x {m.group(2)} threads" if m else "defaults"
    if len(args.build or []) > 1:
        setting += f", {os.path.relpath(tabby, os.path.dirname(ROOT))}"
    base = {"server": "tabby serve", "server_name": name, "setting": setting,
            "server_command": " ".join(shlex.quote(c) for c in cmd)}
    loads = tensor_loads(base_url, inputs, args, f"127.0.0.1:{grpc_port}" if grpc else None)
    loads += upload_loads(base_url, photos, args)
    if not grpc:
        rows.append(dict(base, protocol="OIP gRPC, raw tensor", skipped="this build has no --grpc-port"))
    measure_server(server, loads, rows, base)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", action="append", help="a build holding tabby (default build/; several: each measured)")
    p.add_argument("--venv", default=os.path.join(ROOT, "build", "bench-venv"))
    p.add_argument("--client", default=os.path.join(ROOT, "build", "bench-load", "serve_load"),
                   help="the load generator (bench/serve_peers/serve_load.cpp, built by serve_bench.sh)")
    p.add_argument("--shared", default=os.environ.get("TABBY_SHARED", os.path.join(ROOT, "..", "shared")))
    p.add_argument("--work", default=os.path.join(ROOT, "build", "serve-peers"))
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--duration", type=int, default=20)
    p.add_argument("--photos", type=int, default=100)
    p.add_argument("--mlserver-workers", default="0,1,2", help="parallel_workers settings tried (0: inference in "
                   "the server's own process)")
    p.add_argument("--torchserve-workers", default="1,2")
    p.add_argument("--servers", default="tabby,mlserver,torchserve")
    p.add_argument("--into", default="", help="a RESULTS.md whose serve-peers section is replaced")
    p.add_argument("--note", default="", help="a sentence for the section's header (what else the machine ran)")
    p.add_argument("--render", metavar="JSON", help="no measuring: the section from an earlier run's serve_peers.json")
    args = p.parse_args()
    if args.render:
        with open(args.render) as f:
            res = json.load(f)
        if args.note:
            res["note"] = args.note
        publish(res, args)
        return
    os.makedirs(args.work, exist_ok=True)
    servers = args.servers.split(",")
    # Several builds: each build's tabby is measured (a branch's new protocol beside main's, say).
    builds = args.build or [os.path.join(ROOT, "build")]
    cores = os.cpu_count() or 1
    folder = os.path.join(args.shared, "datasets", "cats_dogs_fullres", "test_set")
    photos = sorted(os.path.join(folder, c, f) for c in ("cats", "dogs") for f in os.listdir(os.path.join(folder, c)))
    photos = photos[::max(1, len(photos) // args.photos)][:args.photos]
    run = train_run(os.path.join(builds[0], "tabby"), args.shared, args.work)
    with open(os.path.join(run, "run.json")) as f:
        size = json.load(f)["image_size"]
    inputs = prepare_inputs(photos, size, args.work)
    model_name, vector, _ = cpu_facts()
    res = {"started": datetime.datetime.now().isoformat(timespec="seconds"),
           "machine": f"{model_name} ({vector}), {cores} cores", "loadavg_start": os.getloadavg()[0],
           "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip(),
           "builds": [os.path.relpath(b, ROOT) for b in (args.build or [])], "connections": args.connections, "warmup": args.warmup, "duration": args.duration,
           "photos": len(photos), "photo_kb": sum(os.path.getsize(f) for f in photos) / len(photos) / 1024,
           "rows": []}
    rows = res["rows"]
    env = dict(os.environ, TABBY_SHARED=args.shared)
    venv_env = dict(env, PATH=os.path.join(args.venv, "bin") + os.pathsep + env.get("PATH", ""),
                    PYTHONPATH=os.pathsep.join([HERE, BENCH]))

    for k, build in enumerate(builds if "tabby" in servers else []):
        measure_tabby(os.path.join(build, "tabby"), f"tabby-{k}", run, photos, inputs, env, args, rows)

    if "mlserver" in servers:
        for workers in [int(w) for w in args.mlserver_workers.split(",")]:
            threads = max(1, cores // max(1, workers))
            http_port, grpc_port = free_port(), free_port()
            folder_ = mlserver_folder(args.work, run, workers, threads, http_port, grpc_port)
            name = f"mlserver-{workers}"
            cmd = [os.path.join(args.venv, "bin", "mlserver"), "start", folder_]
            server = Server(name, cmd, venv_env, args.work)
            base_url = f"http://127.0.0.1:{http_port}"
            loads = tensor_loads(base_url, inputs, args, f"127.0.0.1:{grpc_port}")
            server.wait_answering(loads[1][1])
            setting = (f"parallel_workers {workers} x {threads} threads" if workers else
                       f"parallel_workers 0 (inference in the server process), {threads} threads")
            measure_server(server, loads, rows, {"server": "MLServer", "server_name": name, "setting": setting,
                                                 "workers": workers, "server_command": " ".join(shlex.quote(c) for c in cmd)})

    if "torchserve" in servers:
        store = torchserve_archive(args, run, args.work)
        for workers in [int(w) for w in args.torchserve_workers.split(",")]:
            threads = max(1, cores // workers)
            ports = (free_port(), free_port(), free_port())
            config = torchserve_config(args.work, store, workers, ports)
            name = f"torchserve-{workers}"
            cmd = [os.path.join(args.venv, "bin", "torchserve"), "--start", "--foreground", "--ncs",
                   "--model-store", store, "--ts-config", config, "--disable-token-auth"]
            server = Server(name, cmd, dict(venv_env, PEER_THREADS=str(threads)), args.work, cwd=args.work)
            base_url = f"http://127.0.0.1:{ports[0]}"
            loads = upload_loads(base_url, photos, args)
            server.wait_answering(loads[0][1])
            measure_server(server, loads, rows, {"server": "TorchServe", "server_name": name,
                                                 "setting": f"{workers} workers x {threads} threads",
                                                 "workers": workers, "server_command": " ".join(shlex.quote(c) for c in cmd)})

    res["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    res["loadavg_end"] = os.getloadavg()[0]
    res["note"] = args.note
    with open(os.path.join(args.work, "serve_peers.json"), "w") as f:
        json.dump(res, f, indent=1)
    publish(res, args)


def publish(res, args):
    """The section as markdown beside the JSON, printed, and into --into."""
    from report import section  # noqa: E402 - the table's wording lives beside the numbers' collection
    text = section(res)
    with open(os.path.join(args.work, "serve_peers.md"), "w") as f:
        f.write(text)
    print(text)
    if args.into:
        write_section(args.into, "serve-peers", text)
        log(f"wrote the serve-peers section of {args.into}")


if __name__ == "__main__":
    main()
