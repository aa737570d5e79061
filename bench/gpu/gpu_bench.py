"""The GPU kit's driver: bench/gpu/run.sh calls it for every step and it keeps
OUT/results.json (and the rendered OUT/results.md) up to date after each one,
so a run cut short by its time limit still returns what it measured.

  init    machine facts (GPU, driver, torch, cores) -> a fresh results.json
  step    record one shell step (configure, build, ctest...): exit status,
          seconds, and what its log says (CMake's feature summary, ctest's
          per-test results)
  bench   the training benchmarks (below), each command under a timeout and
          all of them before --deadline (what does not fit is marked skipped)
  pets    `tabby run` of the tutorial experiment on the carried PetImages
          slices (bench/gpu/prepare_carry.sh --pets)
  pack    per-command logs and the runs' history.csv/run.json -> OUT/logs.tgz
  render  results.json -> results.md again

The benchmarks: the three tutorial models (tutorial-cnn @150,
tutorial-cnn-augmented @150, tutorial-mobilenet_v2 frozen @160 behind flip +
rotation) on cats_and_dogs_filtered/train, in two settings (CONFIGS): batch 64
fp32, and batch 256 bf16 channels-last. Per model and setting:
  tabby     `tabby train --device D` end to end (images/s of the last epoch
            from history.csv, epoch seconds, decode seconds from run.json)
  ceiling   `bench_model --device D`: the same model on a synthetic batch
            already on the device
  peer      bench/peer_train.py e2e: PyTorch + torchvision, ImageFolder +
            DataLoader (pin_memory, persistent workers), same model, autocast
  peer_ceiling  bench/peer_train.py ceiling: the peer model alone
"""
import argparse
import csv
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
sys.path.insert(0, HERE)

from bench_runner import Runner  # noqa: E402
import render  # noqa: E402

# tabby preset, image size, the peer's model (bench/peer_models.py), pretrained backbone.
MODELS = [
    ("tutorial-cnn", 150, "tutorial-cnn", False),
    ("tutorial-cnn-augmented", 150, "tutorial-cnn-augmented", False),
    ("tutorial-mobilenet_v2", 160, "mobilenet_v2-augmented", True),
]

# The two settings. channels_last None: each side's default (tabby: on; the
# peer: PyTorch's contiguous NCHW, as a user writes it).
CONFIGS = [
    {"name": "fp32-b64", "batch": 64, "precision": "fp32", "channels_last": None},
    {"name": "bf16-b256-cl", "batch": 256, "precision": "bf16", "channels_last": "on"},
]

PLANS = {
    # One H200 with 16 cores: the whole train folder (2,000 images), three
    # epochs (the first pays for cuDNN's autotuning and the first allocations).
    "gpu": {"device": "cuda", "per_class": None, "epochs": 3, "ceiling_steps": 30, "workers": 16, "threads": 0,
            "size": None, "batch": None, "timeout": 120, "ceiling_timeout": 90, "min_start": 15},
    # The plumbing on a small CPU: 32 images per class, one epoch, tiny batches
    # and images, one thread.
    "cpu-dry-run": {"device": "cpu", "per_class": 32, "epochs": 1, "ceiling_steps": 1, "workers": 1, "threads": 1,
                    "size": 64, "batch": 8, "timeout": 300, "ceiling_timeout": 200, "min_start": 5},
}


# ---------------------------------------------------------------- results file

def results_path(out):
    return os.path.join(out, "results.json")


def load(out):
    try:
        with open(results_path(out)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"kind": "tabby-gpu-bench", "steps": {}}


def save(out, res):
    """results.json and results.md, each replaced atomically."""
    res["updated"] = now()
    tmp = results_path(out) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1)
    os.replace(tmp, results_path(out))
    try:
        text = render.document(res)
    except Exception as e:  # a renderer bug must not lose the measurements
        text = f"# tabby GPU kit\n\nrendering failed: {e!r}; see results.json\n"
    tmp = os.path.join(out, "results.md.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(out, "results.md"))


def now():
    return datetime.datetime.now().isoformat(timespec="seconds")


def sh(argv, timeout=30):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


# ---------------------------------------------------------------- init

TORCH_FACTS = r"""
import json, torch
d = {"torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
try:
    d["cudnn"] = torch.backends.cudnn.version()
except Exception:
    pass
try:
    import torchvision
    d["torchvision"] = torchvision.__version__
except Exception as e:
    d["torchvision"] = None
    d["torchvision_error"] = repr(e)
try:
    import PIL
    d["pillow"] = PIL.__version__
except Exception:
    d["pillow"] = None
if d["cuda_available"]:
    p = torch.cuda.get_device_properties(0)
    d["gpu"] = {"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
                "multiprocessors": p.multi_processor_count, "capability": f"{p.major}.{p.minor}"}
print(json.dumps(d))
"""


def cmd_init(a):
    os.makedirs(a.out, exist_ok=True)
    py = sh([a.python, "-c", TORCH_FACTS], timeout=120)
    try:
        torch_facts = json.loads(py.splitlines()[-1]) if py else {}
    except ValueError:
        torch_facts = {"error": py[-500:]}
    mem = 0.0
    try:
        with open("/proc/meminfo") as f:
            mem = int(next(l for l in f if l.startswith("MemTotal:")).split()[1]) / 2**20
    except (OSError, StopIteration, ValueError):
        pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    revision = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]) or "unknown (no git checkout)"
    if sh(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]):
        revision += " (with uncommitted changes)"
    res = {
        "kind": "tabby-gpu-bench", "mode": a.mode, "started": now(), "budget_seconds": a.budget,
        "machine": {
            "cores": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem, 1), "kernel": platform.release(),
            "os": sh(["sh", "-c", ". /etc/os-release 2>/dev/null && echo \"$PRETTY_NAME\""]),
            "compiler": (sh(["c++", "--version"]).splitlines() or [""])[0],
            "cmake": (sh(["cmake", "--version"]).splitlines() or [""])[0],
            "nvcc": (sh(["sh", "-c", "nvcc --version 2>/dev/null | tail -n 2 | head -n 1"]) or None),
            "nvidia_smi": sh(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,"
                              "power.limit,temperature.gpu,utilization.gpu", "--format=csv"]) or None,
            "python": sh([a.python, "--version"]), "python_path": a.python, "peer_torch": torch_facts,
            "loadavg_start": os.getloadavg(), "tabby_revision": revision,
        },
        "steps": {},
    }
    save(a.out, res)
    print(json.dumps(res["machine"], indent=1), file=sys.stderr)
    return 0


# ---------------------------------------------------------------- step

CTEST_LINE = re.compile(r"Test\s+#(\d+):\s+(\S+)\s+\.*\s*(\*{0,3}[A-Za-z][A-Za-z :()]*?)\s+([\d.]+)\s+sec")
CTEST_SUMMARY = re.compile(r"(\d+)% tests passed, (\d+) tests? failed out of (\d+)")


def parse_ctest(text):
    tests = []
    for m in CTEST_LINE.finditer(text):
        status = m.group(3).strip("* ").strip()
        tests.append({"name": m.group(2), "status": status, "seconds": float(m.group(4))})
    out = {"tests": tests, "counts": {}}
    for t in tests:
        key = t["status"].split(":")[0].split("(")[0].strip().lower() or "?"
        out["counts"][key] = out["counts"].get(key, 0) + 1
    m = CTEST_SUMMARY.search(text)
    if m:
        out["summary"] = {"percent_passed": int(m.group(1)), "failed": int(m.group(2)), "total": int(m.group(3))}
    out["not_passed"] = [t["name"] + " (" + t["status"] + ")" for t in tests
                         if not t["status"].lower().startswith(("passed", "skipped", "not run (disabled)"))]
    out["slowest"] = sorted(tests, key=lambda t: -t["seconds"])[:10]
    return out


def cmd_step(a):
    res = load(a.out)
    text = ""
    if a.log and os.path.exists(a.log):
        with open(a.log, errors="replace") as f:
            text = f.read()
    rec = {"rc": a.rc, "seconds": a.seconds, "status": a.status or ("ok" if a.rc == 0 else f"exit {a.rc}"),
           "command": a.command, "log": os.path.basename(a.log) if a.log else None}
    if a.rc == 124 or a.rc == 137:
        rec["status"] = "timed out"
    if a.kind == "configure":
        rec["summary"] = [l.strip() for l in text.splitlines() if "tabby:" in l or "CMake Warning" in l
                          or "CMake Error" in l][:20]
    elif a.kind == "build":
        errors = [l for l in text.splitlines() if "error:" in l or "FAILED:" in l]
        rec["errors"] = errors[:20]
        steps = re.findall(r"^\[(\d+)/(\d+)\]", text, re.M)
        if steps:
            rec["progress"] = f"{steps[-1][0]}/{steps[-1][1]}"
    elif a.kind == "ctest":
        rec.update(parse_ctest(text))
        if a.exclude:
            rec["excluded"] = a.exclude
    if a.rc != 0 and text:
        rec["tail"] = text.splitlines()[-25:]
    res.setdefault("steps", {})[a.name] = rec
    save(a.out, res)
    return 0


# ---------------------------------------------------------------- bench

def subset_folder(work, source, per_class, name):
    """A class-per-folder copy of SOURCE made of symlinks to the first PER_CLASS
    files (sorted) of each class (as bench/driver.py makes its subsets)."""
    dest = os.path.join(work, "data", name)
    for cls in sorted(os.listdir(source)):
        src_dir = os.path.join(source, cls)
        if not os.path.isdir(src_dir):
            continue
        os.makedirs(os.path.join(dest, cls), exist_ok=True)
        for f in sorted(os.listdir(src_dir))[:per_class]:
            link = os.path.join(dest, cls, f)
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(os.path.join(src_dir, f)), link)
    return dest


def read_history(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as f:
        return [{k: (float(v) if k != "phase" and v not in ("", "nan") else v) for k, v in row.items()}
                for row in csv.DictReader(f)]


def read_run_json(run_dir):
    with open(os.path.join(run_dir, "run.json")) as f:
        run = json.load(f)
    keep = ("status", "device", "images", "decode_seconds", "results", "image_size", "error")
    out = {k: run[k] for k in keep if k in run}
    t = run.get("train", {})
    out["train"] = {k: t.get(k) for k in ("batch_size", "precision", "channels_last", "feature_cache", "epochs")}
    return out


class Bench:
    def __init__(self, a, plan, res):
        self.a, self.plan, self.res = a, plan, res
        self.runner = Runner(ROOT, a.work)
        self.deadline = a.deadline

    def left(self):
        return self.deadline - time.time()

    def run(self, name, argv, cap):
        """One command under min(cap, time left); skipped when too little is left."""
        left = self.left()
        if left < self.plan["min_start"]:
            print(f"[gpu] {name}: skipped ({left:.0f} s left before the deadline)", file=sys.stderr, flush=True)
            return {"command": " ".join(shlex.quote(str(x)) for x in argv), "ok": False, "skipped": True}
        r = self.runner.run(name, argv, timeout=max(1, int(min(cap, left))))
        out = {"command": r.command, "ok": r.ok, "rc": r.rc, "wall_seconds": r.wall, "log": os.path.basename(r.log_path)}
        if r.rc == 124:
            out["timed_out"] = True
        if r.ok:
            out["data"] = r.data
        else:  # the error as the command printed it, for results.json readers
            try:
                with open(os.path.join(self.a.work, "logs", name + ".err"), errors="replace") as f:
                    out["tail"] = f.read().splitlines()[-15:]
            except OSError:
                pass
        return out

    def case(self, model, size, peer_model, pretrained, cfg, data):
        a, plan = self.a, self.plan
        size = plan["size"] or size
        batch = plan["batch"] or cfg["batch"]
        prec = cfg["precision"]
        tag = f"{cfg['name']}-{model}"
        threads = ["--threads", str(plan["threads"])] if plan["threads"] else []
        weights = os.path.join(a.shared, "weights", "mobilenet_v2_imagenet.safetensors")
        tabby_cl = ["--channels-last", cfg["channels_last"]] if cfg["channels_last"] else []
        peer_cl = ["--channels-last", cfg["channels_last"] or "off"]
        c = {"model": model, "size": size, "peer_model": peer_model, "config": cfg["name"], "batch": batch,
             "precision": prec, "channels_last": cfg["channels_last"] or "default", "epochs": plan["epochs"],
             "images": self.images, "data": self.runner.rel(data)}
        self.res["cases"].append(c)
        run_dir = os.path.join(a.work, "runs", tag)
        t = self.run(tag + "-tabby",
                     [a.tabby, "train", "--data", data, "--model", model, "--image-size", str(size),
                      "--batch-size", str(batch), "--epochs", str(plan["epochs"]), "--device", plan["device"],
                      "--precision", prec, *tabby_cl, *threads, "--seed", "1337", "--out", run_dir, "--overwrite",
                      "--no-report", "--json"], plan["timeout"])
        if os.path.exists(os.path.join(run_dir, "history.csv")):
            t["history"] = read_history(run_dir)
        if os.path.exists(os.path.join(run_dir, "run.json")):
            t["run"] = read_run_json(run_dir)
        t.pop("data", None)  # run.json's results hold the same
        c["tabby"] = t
        self.save()
        c["ceiling"] = self.run(tag + "-ceiling",
                                [a.bench_model, model, "--size", str(size), "--batch", str(batch),
                                 "--steps", str(plan["ceiling_steps"]), "--mode", "train", "--device", plan["device"],
                                 "--precision", prec, *tabby_cl, *threads, *(["--pretrained"] if pretrained else [])],
                                plan["ceiling_timeout"])
        self.save()
        peer_common = ["--model", peer_model, "--size", str(size), "--batch", str(batch), "--device", plan["device"],
                       "--precision", prec, *peer_cl, *threads, *(["--weights", weights] if pretrained else [])]
        if self.peer_ok:
            c["peer"] = self.run(tag + "-peer",
                                 [a.python, "bench/peer_train.py", "--mode", "e2e", "--train", data,
                                  "--epochs", str(plan["epochs"]), "--workers", str(plan["workers"]), *peer_common],
                                 plan["timeout"])
            self.save()
            c["peer_ceiling"] = self.run(tag + "-peer-ceiling",
                                         [a.python, "bench/peer_train.py", "--mode", "ceiling", "--phase", "train",
                                          "--steps", str(plan["ceiling_steps"]), *peer_common],
                                         plan["ceiling_timeout"])
        else:
            c["peer"] = c["peer_ceiling"] = {"ok": False, "skipped": True, "why": self.peer_why}
        self.save()

    def save(self):
        save(self.a.out, self.res)

    def main(self):
        a, plan = self.a, self.plan
        source = os.path.join(a.shared, "datasets", "cats_and_dogs_filtered", "train")
        if not os.path.isdir(source):
            self.res["bench"] = {"error": f"no {source}: run bench/gpu/prepare_carry.sh and carry .carry"}
            self.save()
            print(f"[gpu] bench: {self.res['bench']['error']}", file=sys.stderr)
            return 1
        data = subset_folder(a.work, source, plan["per_class"], f"train-{plan['per_class']}") \
            if plan["per_class"] else os.path.abspath(source)
        self.images = sum(len(os.listdir(os.path.join(data, c))) for c in os.listdir(data))
        # The peer needs torch and torchvision under this python (and CUDA for a GPU run).
        probe = subprocess.run([a.python, "-c", "import torch, torchvision, PIL; "
                                f"assert {plan['device'] != 'cuda'} or torch.cuda.is_available(), 'no CUDA'"],
                               capture_output=True, text=True)
        self.peer_ok = probe.returncode == 0
        self.peer_why = None if self.peer_ok else (
            f"{a.python} cannot run the peer: " + (probe.stderr.strip().splitlines() or ["?"])[-1])
        if not self.peer_ok:
            print(f"[gpu] peer SKIPPED: {self.peer_why}", file=sys.stderr, flush=True)
        self.res["bench"] = {"plan": plan, "started": now(), "data": self.runner.rel(data), "images": self.images,
                             "deadline": datetime.datetime.fromtimestamp(self.deadline).isoformat(timespec="seconds"),
                             "peer_skipped": self.peer_why}
        self.res["cases"] = []
        for cfg in CONFIGS:
            for model, size, peer_model, pretrained in MODELS:
                self.case(model, size, peer_model, pretrained, cfg, data)
        self.res["bench"]["finished"] = now()
        self.save()
        return 0


def cmd_bench(a):
    res = load(a.out)
    return Bench(a, PLANS[a.mode], res).main()


# ---------------------------------------------------------------- pets

def cmd_pets(a):
    """The tutorial experiment on the carried slices: a copy of
    experiments/cats-vs-dogs-tutorial.toml whose data is the carried
    PetImages slices (train = train[:40%], validation = train[40%:50%],
    test = train[50%:60%] of the whole folder, the same files), out in WORK."""
    res = load(a.out)
    data = os.path.abspath(os.path.join(a.shared, "datasets", "pet_images_60"))
    source = os.path.join(ROOT, "experiments", "cats-vs-dogs-tutorial.toml")
    rec = {"data": data, "source": os.path.relpath(source, ROOT), "started": now()}
    res["pets"] = rec
    if not os.path.isdir(os.path.join(data, "train")):
        rec["error"] = f"no {data}/train: run bench/gpu/prepare_carry.sh --pets and carry .carry/pets"
        save(a.out, res)
        print(f"[gpu] pets: {rec['error']}", file=sys.stderr)
        return 1
    with open(source) as f:
        text = f.read()
    exp_dir = os.path.join(a.work, "pets")
    os.makedirs(exp_dir, exist_ok=True)
    out_dir = os.path.join(exp_dir, "runs")
    repl = {"data": data, "split": "train", "val_split": "validation", "test_split": "test", "out": out_dir}
    lines = []
    for line in text.splitlines():
        m = re.match(r"^(\w+)\s*=", line)
        if m and m.group(1) in repl:
            line = f'{m.group(1)} = {json.dumps(repl[m.group(1)])}  # GPU kit (was: {line.split("=", 1)[1].strip()})'
        lines.append(line)
    exp = os.path.join(exp_dir, "cats-vs-dogs-tutorial-gpu.toml")
    with open(exp, "w") as f:
        f.write("\n".join(lines) + "\n")
    rec["experiment"] = exp
    save(a.out, res)
    runner = Runner(ROOT, a.work)
    left = max(1, int(a.deadline - time.time()))
    json_out = os.path.join(exp_dir, "comparison-stdout.json")
    extra = (f" --epochs {a.epochs}" if a.epochs else "") + (f" --only {shlex.quote(a.only)}" if a.only else "")
    # exec: a timeout then stops tabby itself, not only the shell around it.
    cmd = (f"exec {shlex.quote(a.tabby)} run {shlex.quote(exp)} --device {a.device}{extra} --no-report --json "
           f"> {shlex.quote(json_out)}")
    r = runner.run("pets-experiment", ["sh", "-c", cmd], json_from=json_out, timeout=left)
    rec.update(command=cmd, rc=r.rc, ok=r.ok, wall_seconds=r.wall, log=os.path.basename(r.log_path))
    if r.data:
        rec["comparison"] = r.data
    for name in ("comparison.json", "comparison.md"):
        path = os.path.join(out_dir, name)
        if os.path.exists(path):
            with open(path) as f:
                rec[name.replace(".", "_")] = json.load(f) if name.endswith(".json") else f.read()
    runs = {}
    if os.path.isdir(out_dir):
        for d in sorted(os.listdir(out_dir)):
            run_dir = os.path.join(out_dir, d)
            if os.path.exists(os.path.join(run_dir, "history.csv")):
                runs[d] = {"history": read_history(run_dir)}
                if os.path.exists(os.path.join(run_dir, "run.json")):
                    runs[d]["run"] = read_run_json(run_dir)
    rec["runs"] = runs
    rec["finished"] = now()
    save(a.out, res)
    return 0 if r.ok else 1


# ---------------------------------------------------------------- pack

def cmd_pack(a):
    """WORK/logs/*, each run's small files and the build logs -> OUT/logs.tgz."""
    dest = os.path.join(a.out, "logs.tgz")
    tmp = dest + ".tmp"
    small = {"history.csv", "run.json", "model.toml", "classes.txt", "comparison.md", "comparison.json",
             "comparison.csv", "experiment.json"}
    with tarfile.open(tmp, "w:gz") as tar:
        for base, dirs, files in os.walk(a.work):
            dirs[:] = [d for d in dirs if d != "data"]
            for f in files:
                path = os.path.join(base, f)
                rel = os.path.relpath(path, a.work)
                if rel.startswith("logs" + os.sep) or f in small or f.endswith(".toml") or f.endswith(".log") \
                        or f.endswith(".xml"):
                    if os.path.getsize(path) < 8 << 20:
                        tar.add(path, arcname=rel)
    os.replace(tmp, dest)
    return 0


def cmd_render(a):
    save(a.out, load(a.out))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("init")
    s.add_argument("--mode", choices=sorted(PLANS), required=True)
    s.add_argument("--budget", type=int)
    s.add_argument("--python", default="python3")
    s = sub.add_parser("step")
    s.add_argument("--name", required=True)
    s.add_argument("--kind", choices=["configure", "build", "ctest", "other"], default="other")
    s.add_argument("--rc", type=int, required=True)
    s.add_argument("--seconds", type=float)
    s.add_argument("--status")
    s.add_argument("--command")
    s.add_argument("--log")
    s.add_argument("--exclude")
    for name in ("bench", "pets"):
        s = sub.add_parser(name)
        s.add_argument("--mode", choices=sorted(PLANS), default="gpu")
        s.add_argument("--work", required=True)
        s.add_argument("--tabby", required=True)
        s.add_argument("--bench-model")
        s.add_argument("--python", default="python3")
        s.add_argument("--shared", required=True)
        s.add_argument("--device", default="cuda")
        s.add_argument("--deadline", type=float, required=True, help="seconds since the epoch")
        if name == "pets":
            s.add_argument("--epochs", type=int, help="every model this many epochs (a dry run's 1)")
            s.add_argument("--only", help="only these models of the experiment (comma-separated names)")
    s = sub.add_parser("pack")
    s.add_argument("--work", required=True)
    sub.add_parser("render")
    for s in sub.choices.values():
        s.add_argument("--out", required=True)
    a = p.parse_args()
    if getattr(a, "work", None):
        os.makedirs(os.path.join(a.work, "logs"), exist_ok=True)
    return {"init": cmd_init, "step": cmd_step, "bench": cmd_bench, "pets": cmd_pets, "pack": cmd_pack,
            "render": cmd_render}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
