"""The CPU benchmark suite of tabby beside its Python peer, all in one run
(bench/run_all.sh calls this with /usr/bin/python3 after building):

  a  decode + resize throughput   bench_decode      vs peer_decode.py (PIL, PIL draft)
  b  input pipeline               bench_pipeline    vs peer_pipeline.py (ImageFolder + DataLoader)
  c  training throughput          tabby train       vs peer_train.py e2e, and the ceilings
                                  (bench_model; peer_train.py ceiling for reference)
  d  frozen-MobileNetV2 transfer  tabby train (feature cache) vs peer_train.py e2e / features;
     and prediction               tabby predict     vs peer_predict.py

Every peer runs twice: as a user runs it (glibc malloc) and with tcmalloc
preloaded (tabby links tcmalloc). Results: WORK/results.json, rendered into
bench/RESULTS.md by bench_report.py. --quick shrinks every case to a smoke check.
"""
import argparse
import csv
import datetime
import json
import os
import sys

from bench_runner import PEER_PYTHON, Runner
import bench_report
import machine
import torch2_peer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# What each mode runs. Full: sized for about 20-25 minutes on a quiet 2-core machine.
PLANS = {
    "full": {
        "allocators": ["glibc", "tcmalloc"], "peer_ceiling": True,
        "decode_dir": "cats_dogs_fullres", "decode_subset": None, "decode_sizes": [150, 224], "decode_passes": 2,
        "pipeline_dir": "cats_dogs_fullres/training_set", "pipeline_epochs": 2, "pipeline_workers": [0, 1, 2, 3],
        "pick_candidates": [0, 1, 2], "pick_warmup": 2, "pick_steps": 4,
        "train": {"tutorial-cnn": (640, 2), "tutorial-cnn-augmented": (320, 2), "tutorial-mobilenet_v2": (640, 2)},
        "ceiling_steps": {"tutorial-cnn": 8, "tutorial-cnn-augmented": 6, "tutorial-mobilenet_v2": 8},
        "transfer_epochs": 20, "transfer_subset": None, "peer_naive_epochs": 2,
        "predict_dir": "cats_dogs_fullres", "predict_subset": None, "predict_workers": [0, 2],
    },
    # Every code path once, on a few images; the peer with glibc only, except in (a).
    "quick": {
        "allocators": ["glibc"], "peer_ceiling": False,
        "decode_dir": "cats_dogs_fullres/test_set", "decode_subset": 16, "decode_sizes": [150], "decode_passes": 1,
        "pipeline_dir": "cats_dogs_fullres/test_set", "pipeline_epochs": 2, "pipeline_workers": [0, 2],
        "pick_candidates": [2], "pick_warmup": 0, "pick_steps": 1,
        "train": {"tutorial-cnn": (32, 1), "tutorial-cnn-augmented": (32, 1), "tutorial-mobilenet_v2": (32, 1)},
        "ceiling_steps": {"tutorial-cnn": 1, "tutorial-cnn-augmented": 1, "tutorial-mobilenet_v2": 1},
        "transfer_epochs": 2, "transfer_subset": (32, 32), "peer_naive_epochs": 1,
        "predict_dir": "cats_dogs_fullres/test_set", "predict_subset": 16, "predict_workers": [2],
    },
}

# The training cases of (c): tabby preset, image size, the peer's model name,
# and whether it has a pretrained backbone (both sides then load the ImageNet
# weights, ceilings included: a random frozen backbone can produce denormal
# activations, which are slow on CPUs and would not be the real workload).
TRAIN_CASES = [
    ("tutorial-cnn", 150, "tutorial-cnn", False),
    ("tutorial-cnn-augmented", 150, "tutorial-cnn-augmented", False),
    ("tutorial-mobilenet_v2", 160, "mobilenet_v2-augmented", True),
]
BATCH = 32


def shared_root():
    return os.environ.get("TABBY_SHARED") or os.path.normpath(os.path.join(ROOT, "..", "shared"))


def subset_folder(work, source, per_class, name):
    """A class-per-folder copy of SOURCE made of symlinks to the first PER_CLASS
    files (sorted) of each class, so tabby and the peer read the same files."""
    dest = os.path.join(work, "data", name)
    for cls in sorted(os.listdir(source)):
        src_dir = os.path.join(source, cls)
        if not os.path.isdir(src_dir):
            continue
        os.makedirs(os.path.join(dest, cls), exist_ok=True)
        for f in sorted(os.listdir(src_dir))[:per_class]:
            link = os.path.join(dest, cls, f)
            if not os.path.lexists(link):
                os.symlink(os.path.join(src_dir, f), link)
    return dest


def read_history(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as f:
        return [{k: (float(v) if k not in ("phase",) and v not in ("", "nan") else v) for k, v in row.items()}
                for row in csv.DictReader(f)]


def read_run_json(run_dir):
    with open(os.path.join(run_dir, "run.json")) as f:
        return json.load(f)


def tabby_train(r, ctx, name, args, run_dir):
    """`tabby train ... --json`; the result joined with history.csv and run.json."""
    res = r.run(name, [ctx["tabby"], "train", *args, "--seed", "1337", "--out", r.rel(run_dir), "--overwrite", "--json"])
    out = {"command": res.command, "wall_seconds": res.wall, "ok": res.ok, "log": res.log_path}
    if res.ok:
        out.update(summary=res.data, history=read_history(run_dir), run=read_run_json(run_dir))
    return out


def peer(r, name, script, args, tcmalloc, env_extra=None):
    res = r.run(name, [PEER_PYTHON, f"bench/{script}", *args], tcmalloc=tcmalloc, env_extra=env_extra)
    return {"command": res.command, "wall_seconds": res.wall, "ok": res.ok, "log": res.log_path, "data": res.data}


# Set by main(): the PyTorch 2.x peer's environment (bench/torch2_peer.py), or None.
TORCH2_ENV = None


def both_allocators(r, name, script, args, allocators=("glibc", "tcmalloc"), torch2=True):
    """The peer as a user runs it (glibc's malloc), with tcmalloc preloaded, and
    on PyPI's PyTorch 2.x (its defaults) when that is set up."""
    runs = {}
    if "glibc" in allocators:
        runs["glibc"] = peer(r, name, script, args, False)
    if "tcmalloc" in allocators:
        runs["tcmalloc"] = peer(r, name + "-tcmalloc", script, args, True)
    if torch2 and TORCH2_ENV and allocators:
        runs["torch2"] = peer(r, name + "-torch2", script, args, False, TORCH2_ENV)
    return runs


def data_folder(r, ctx, relative, per_class):
    """A shared data set folder, or its first PER_CLASS files per class (quick mode)."""
    folder = os.path.join(ctx["shared"], "datasets", relative)
    if per_class:
        folder = subset_folder(r.work, folder, per_class, relative.replace("/", "_") + f"-{per_class}")
    return r.rel(folder)


def tabby_program(r, ctx, name, program, args):
    res = r.run(name, [os.path.join(ctx["build"], "bench", program), *args])
    return {"command": res.command, "wall_seconds": res.wall, "ok": res.ok, "log": res.log_path, "data": res.data}


def bench_decode(r, ctx, plan):
    folder = data_folder(r, ctx, plan["decode_dir"], plan["decode_subset"])
    sizes = [a for s in plan["decode_sizes"] for a in ("--size", str(s))]
    passes = ["--passes", str(plan["decode_passes"])]
    cores = str(ctx["cores"])
    return {"dir": folder,
            "tabby": tabby_program(r, ctx, "a-decode-tabby", "bench_decode", [folder, *sizes, "--threads", cores, *passes]),
            "peer": both_allocators(r, "a-decode-peer", "peer_decode.py", [folder, *sizes, "--procs", cores, *passes],
                                    torch2=False)}


def bench_pipeline(r, ctx, plan):
    folder = data_folder(r, ctx, plan["pipeline_dir"], plan["decode_subset"])
    epochs = str(plan["pipeline_epochs"])
    threads = [a for t in sorted({1, ctx["cores"]}) for a in ("--threads", str(t))]
    workers = ",".join(str(w) for w in plan["pipeline_workers"])
    common = ["--size", "150", "--batch", str(BATCH), "--epochs", epochs]
    return {"dir": folder,
            "tabby": tabby_program(r, ctx, "b-pipeline-tabby", "bench_pipeline", [folder, *common, *threads]),
            "peer": both_allocators(r, "b-pipeline-peer", "peer_pipeline.py", [folder, *common, "--workers", workers],
                                    plan["allocators"], torch2=False)}


def imagenet_weights(r, ctx):
    return r.rel(os.path.join(ctx["shared"], "weights", "mobilenet_v2_imagenet.safetensors"))


def pick_workers(r, plan, name, peer_model, size, train_dir, extra=()):
    """The peer's fastest DataLoader worker count for this model, from a few
    training steps each (with tcmalloc: the choice is about decoding, and the
    steps run faster)."""
    res = peer(r, name, "peer_train.py",
               ["--mode", "pick-workers", "--model", peer_model, "--train", train_dir, "--size", str(size),
                "--batch", str(BATCH), "--candidates", ",".join(str(c) for c in plan["pick_candidates"]),
                "--warmup", str(plan["pick_warmup"]), "--steps", str(plan["pick_steps"]), *extra], True)
    res["best_workers"] = res["data"]["best_workers"] if res["ok"] else 2
    return res


def bench_training(r, ctx, plan):
    source = os.path.join(ctx["shared"], "datasets", "cats_and_dogs_filtered", "train")
    cases = []
    for preset, size, peer_model, pretrained in TRAIN_CASES:
        images, epochs = plan["train"][preset]
        data = r.rel(subset_folder(r.work, source, images // 2, f"train-{images}"))
        tag = f"c-{preset}"
        peer_weights = ["--weights", imagenet_weights(r, ctx)] if pretrained else []
        picked = pick_workers(r, plan, tag + "-pick-workers", peer_model, size, data, peer_weights)
        workers = str(picked["best_workers"])
        case = {"model": preset, "peer_model": peer_model, "size": size, "images": images, "epochs": epochs,
                "pick_workers": picked, "workers": picked["best_workers"]}
        case["tabby"] = tabby_train(r, ctx, tag + "-tabby",
                                    ["--data", data, "--model", preset, "--image-size", str(size),
                                     "--batch-size", str(BATCH), "--epochs", str(epochs)],
                                    os.path.join(r.work, "runs", tag))
        case["peer"] = both_allocators(r, tag + "-peer", "peer_train.py",
                                       ["--mode", "e2e", "--model", peer_model, "--train", data, "--size", str(size),
                                        "--batch", str(BATCH), "--epochs", str(epochs), "--workers", workers,
                                        *peer_weights],
                                       plan["allocators"])
        steps = str(plan["ceiling_steps"][preset])
        case["ceiling"] = tabby_program(r, ctx, tag + "-ceiling", "bench_model",
                                        [preset, "--size", str(size), "--batch", str(BATCH), "--steps", steps,
                                         "--mode", "train", *(["--pretrained"] if pretrained else [])])
        case["peer_ceiling"] = both_allocators(r, tag + "-peer-ceiling", "peer_train.py",
                                               ["--mode", "ceiling", "--model", peer_model, "--size", str(size),
                                                "--batch", str(BATCH), "--steps", steps, "--phase", "train",
                                                *peer_weights],
                                               plan["allocators"] if plan["peer_ceiling"] else (), torch2=False)
        cases.append(case)
    return cases


def bench_transfer(r, ctx, plan):
    base = os.path.join(ctx["shared"], "datasets", "cats_and_dogs_filtered")
    if plan["transfer_subset"]:
        n_train, n_val = plan["transfer_subset"]
        train = r.rel(subset_folder(r.work, os.path.join(base, "train"), n_train // 2, f"train-{n_train}"))
        val = r.rel(subset_folder(r.work, os.path.join(base, "validation"), n_val // 2, f"validation-{n_val}"))
    else:
        train, val = r.rel(os.path.join(base, "train")), r.rel(os.path.join(base, "validation"))
    weights = imagenet_weights(r, ctx)
    epochs = plan["transfer_epochs"]
    run_dir = os.path.join(r.work, "runs", "d-mobilenet_v2")
    out = {"train": train, "val": val, "epochs": epochs, "peer_naive_epochs": min(epochs, plan["peer_naive_epochs"])}
    out["tabby"] = tabby_train(r, ctx, "d-transfer-tabby",
                               ["--data", train, "--val", val, "--model", "mobilenet_v2", "--freeze-backbone",
                                "--image-size", "160", "--batch-size", str(BATCH), "--epochs", str(epochs)], run_dir)
    picked = pick_workers(r, plan, "d-transfer-pick-workers", "mobilenet_v2", 160, train, ["--weights", weights])
    out["pick_workers"], out["workers"] = picked, picked["best_workers"]
    common = ["--model", "mobilenet_v2", "--train", train, "--val", val, "--weights", weights, "--size", "160",
              "--batch", str(BATCH), "--workers", str(picked["best_workers"])]
    out["peer_naive"] = both_allocators(r, "d-transfer-peer-naive", "peer_train.py",
                                        ["--mode", "e2e", *common, "--epochs", str(out["peer_naive_epochs"])],
                                        plan["allocators"])
    out["peer_features"] = both_allocators(r, "d-transfer-peer-features", "peer_train.py",
                                           ["--mode", "features", *common, "--epochs", str(epochs)],
                                           plan["allocators"])

    # Prediction with the run just trained, on photos at their original size.
    folder = data_folder(r, ctx, plan["predict_dir"], plan["predict_subset"])
    pred = {"dir": folder}
    json_out = os.path.join(r.work, "predict-tabby.json")
    res = r.run("d-predict-tabby", ["sh", "-c", f"{ctx['tabby']} predict {r.rel(run_dir)} {folder} --json > {json_out}"],
                json_from=json_out)
    pred["tabby"] = {"command": f"{ctx['tabby']} predict {r.rel(run_dir)} {folder} --json > predictions.json",
                     "wall_seconds": res.wall, "ok": res.ok, "log": res.log_path,
                     "images": len(res.data) if res.ok else 0,
                     "labels": {os.path.basename(p["file"]): p.get("label") for p in res.data} if res.ok else {}}
    pred["peer"] = {}
    for w in plan["predict_workers"]:
        for alloc in plan["allocators"] + (["torch2"] if TORCH2_ENV else []):
            lines = os.path.join(r.work, f"predict-peer-{w}-{alloc}.tsv")
            p = peer(r, f"d-predict-peer-w{w}-{alloc}", "peer_predict.py",
                     [folder, "--run", r.rel(run_dir), "--size", "160", "--batch", str(BATCH), "--workers", str(w),
                      "--out", lines], alloc == "tcmalloc", TORCH2_ENV if alloc == "torch2" else None)
            if p["ok"] and pred["tabby"]["ok"]:
                with open(lines) as f:
                    peer_labels = {os.path.basename(l.split("\t")[0]): l.split("\t")[1] for l in f if l.strip()}
                same = sum(1 for k, v in peer_labels.items() if pred["tabby"]["labels"].get(k) == v)
                p["agreement"] = same / max(1, len(peer_labels))
            pred["peer"][f"{w}-{alloc}"] = p
    pred["tabby"].pop("labels")
    out["predict"] = pred
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny inputs: a smoke check of every case")
    p.add_argument("--build", default=os.path.join(ROOT, "build-bench"), help="build folder with tabby and bench_*")
    p.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "tabby-bench"),
                   help="scratch folder: data subsets, runs, logs, results.json")
    p.add_argument("--only", default="abcd", help="which benchmarks to run (letters of a b c d)")
    p.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"), help="the report to write")
    p.add_argument("--report-only", action="store_true", help="re-render the report from WORK/results.json")
    a = p.parse_args()
    results_path = os.path.join(a.work, "results.json")
    if a.report_only:
        with open(results_path) as f:
            results = json.load(f)
        bench_report.write(results, a.out)
        return 0

    mode = "quick" if a.quick else "full"
    plan = PLANS[mode]
    global TORCH2_ENV
    TORCH2_ENV = torch2_peer.env()
    torch2_versions = torch2_peer.check() if TORCH2_ENV else None
    if not torch2_versions:
        TORCH2_ENV = None
        print("[bench] the PyTorch 2.x peer is not set up (bench/torch2_peer.py setup): Debian's 1.13 only",
              file=sys.stderr)
    os.makedirs(a.work, exist_ok=True)
    r = Runner(ROOT, a.work)
    ctx = {"build": r.rel(a.build), "tabby": os.path.join(r.rel(a.build), "tabby"), "shared": shared_root(),
           "cores": os.cpu_count() or 1}
    started = datetime.datetime.now()
    results = {"mode": mode, "plan": plan, "started": started.isoformat(timespec="seconds"),
               "torch2": torch2_versions,
               "machine": machine.facts(ROOT), "work": a.work}
    steps = {"a": ("decode", bench_decode), "b": ("pipeline", bench_pipeline), "c": ("training", bench_training),
             "d": ("transfer", bench_transfer)}
    for letter in "abcd":
        if letter in a.only:
            key, fn = steps[letter]
            results[key] = fn(r, ctx, plan)
            with open(results_path, "w") as f:  # kept after every step, for --report-only
                json.dump(results, f, indent=1)
    results["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    results["total_seconds"] = (datetime.datetime.now() - started).total_seconds()
    results["loadavg_end"] = os.getloadavg()
    results["failed"] = [res.to_json() for res in r.results if not res.ok]
    results["loadavg_before_commands"] = [res.loadavg for res in r.results]
    with open(results_path, "w") as f:
        json.dump(results, f, indent=1)
    bench_report.write(results, a.out)
    print(f"[bench] {mode} run finished in {results['total_seconds'] / 60:.1f} min; report: {r.rel(a.out)}; "
          f"raw results: {results_path}", file=sys.stderr)
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
