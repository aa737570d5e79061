#!/usr/bin/env python3
"""Data-parallel training on this machine: 1 process vs N processes at one
thread each, `tabby train` (--nproc-per-node N) beside PyTorch's
DistributedDataParallel on Gloo (bench/peer_ddp.py), for the tutorial CNN and
the frozen MobileNetV2 with augmentation, on the first images of
cats_and_dogs_filtered/train.

    bench/dist_bench.py [--build build] [--images 640] [--epochs 2] [--world 2]

Each side's rate is that of its last epoch (training only, no validation):
images of the epoch over its seconds. The batch is per process (32), so N
processes take global batches of 32 x N. The peer runs with tcmalloc preloaded
(tabby links it; see the notes at the top of RESULTS.md). Writes the section
between <!-- tabby-distributed-section:begin --> and ...:end --> of --into.
"""
import argparse
import csv
import datetime
import json
import os
import shutil
import subprocess
import sys

from results_section import write_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
# tabby preset, image size, peer model, needs ImageNet weights
CASES = [("tutorial-cnn", 150, "tutorial-cnn", False), ("tutorial-mobilenet_v2", 160, "mobilenet_v2-augmented", True)]


# What to expect on N GPUs with NCCL: arithmetic from the models' sizes, not a measurement.
PAPER = """Expected scaling on N GPUs with NCCL (on paper, not measured: no multi-GPU machine is lent here).
Every step, tabby sums the trainable parameters' gradients with one ring all-reduce per 25 MB
bucket, after the backward pass (it does not overlap them with the backward pass as PyTorch's DDP
does), so a step costs the single-GPU step plus the all-reduce. A ring all-reduce moves
2(N−1)/N times the gradient bytes through each GPU:

| model (trainable parameters) | gradient per step | all-reduce, 8 GPUs on NVLink (~400 GB/s bus bandwidth) | all-reduce, 8 GPUs on PCIe 4 (~20 GB/s) |
|---|---|---|---|
| tutorial-cnn (4,828,610) | 19.3 MB | ~0.1 ms | ~1.7 ms |
| MobileNetV2 fine-tuned, last 7 blocks (1,920,450) | 7.7 MB | ~0.05 ms (latency-bound) | ~0.7 ms |
| MobileNetV2 frozen, head only (2,562) | 10 KB | ~0.03 ms (latency only) | ~0.03 ms |

A batch-32 step of these models takes about a millisecond or more on one H100 (the CNN's forward
and backward are ~35 GFLOP; MobileNetV2's frozen backbone at 160 px ~10 GFLOP forward, every
step when augmentation comes before it). So on NVLink the all-reduce is a few percent of a step and
8 GPUs should give close to 8× the images per second at 8× the global batch; on PCIe the CNN's
gradients cost about as much as its step (~4-5× on 8 GPUs), the frozen MobileNetV2 still scales
almost linearly. The one-off work divides by N: each GPU decodes 1/N of the files and computes
1/N of a feature cache, then the all-gather sends the rest (2,000 images at 160 px: 154 MB, a
fraction of a second on NVLink). With a feature cache the epochs are so short (milliseconds) that
more GPUs cannot help them."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def subset(shared, work, images):
    """The first images/2 files of each class, as symlinks."""
    src = os.path.join(shared, "datasets", "cats_and_dogs_filtered", "train")
    dest = os.path.join(work, f"train-{images}")
    if not os.path.isdir(dest):
        for cls in ("cats", "dogs"):
            os.makedirs(os.path.join(dest, cls))
            for f in sorted(os.listdir(os.path.join(src, cls)))[: images // 2]:
                os.symlink(os.path.join(src, cls, f), os.path.join(dest, cls, f))
    return dest


def last_epoch_rate(run, images):
    with open(os.path.join(run, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    seconds = float(rows[-1]["seconds"])
    return {"seconds": seconds, "rate": images / seconds}


def tabby_run(a, tabby, data, preset, size, world, work):
    run = os.path.join(work, f"{preset}-x{world}")
    cmd = [tabby, "train", "--data", data, "--model", preset, "--image-size", str(size), "--batch-size", "32",
           "--epochs", str(a.epochs), "--seed", "1337", "--threads", "1", "--out", run, "--overwrite", "--no-report"]
    if world > 1:
        cmd += ["--nproc-per-node", str(world)]
    log(" ".join(cmd))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, TABBY_SHARED=a.shared))
    r = last_epoch_rate(run, a.images)
    r["command"] = " ".join(cmd)
    return r


def peer_run(a, data, model, size, world, weights):
    cmd = ["/usr/bin/python3", os.path.join(ROOT, "bench", "peer_ddp.py"), "--model", model, "--train", data,
           "--size", str(size), "--batch", "32", "--epochs", str(a.epochs), "--world", str(world)]
    if weights:
        cmd += ["--weights", os.path.join(a.shared, "weights", "mobilenet_v2_imagenet.safetensors")]
    log(" ".join(cmd))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env=dict(os.environ, LD_PRELOAD=TCMALLOC)).stdout
    res = json.loads(out.strip().splitlines()[-1])
    seconds = res["epochs"][-1]["seconds"]
    return {"seconds": seconds, "rate": res["images"] / seconds, "torch": res["torch"],
            "command": "LD_PRELOAD=" + TCMALLOC + " " + " ".join(cmd)}


def section(res):
    w = res["world"]
    lines = ["<!-- tabby-distributed-section:begin -->", "## Data-parallel training: 1 vs "
             f"{w} processes on this machine", "",
             f"Run {res['started']} → {res['finished']}, `bench/dist_bench.py`, tabby {res['commit']}. {res['machine']}",
             "",
             f"The first {res['images']} images of `cats_and_dogs_filtered/train`, batch 32 per process, one intra-op "
             f"thread per process, {res['epochs']} epoch{'s' if res['epochs'] != 1 else ''}; the rate is the last epoch's (training only). tabby: "
             f"`tabby train --threads 1` for 1 process, `--nproc-per-node {w}` for {w} (Gloo, decoding and the "
             "augmentation inside each process). Peer: PyTorch's DistributedDataParallel on Gloo "
             f"(`bench/peer_ddp.py`, torch {res['peer_torch']}, DistributedSampler, ImageFolder + DataLoader in each "
             "process, tcmalloc preloaded), with 1 and with "
             f"{w} processes. MobileNetV2: frozen ImageNet backbone after RandomFlip + RandomRotation(0.1), so "
             "the backbone runs every step (no feature cache). tabby's single process prepares its next batch "
             "(gathered from the decoded images, converted to float) on a second thread while the model computes, so with one compute thread it "
             "still uses more than one core at times; two processes share the two cores, so its speed-up is "
             "smaller than the peer's, whose single process (no DataLoader workers) uses one.", "",
             f"| model | tabby 1 process | tabby {w} processes | tabby speed-up | peer 1 process | peer {w} "
             f"processes | peer speed-up | tabby ÷ peer ({w} processes) |",
             "|---|---|---|---|---|---|---|---|"]
    for c in res["cases"]:
        t1, tn, p1, pn = c["tabby"][0], c["tabby"][1], c["peer"][0], c["peer"][1]
        lines.append(f"| {c['preset']} @{c['size']} | {t1['rate']:.1f} img/s ({t1['seconds']:.2f} s/epoch) | "
                     f"{tn['rate']:.1f} img/s ({tn['seconds']:.2f} s) | {tn['rate'] / t1['rate']:.2f}× | "
                     f"{p1['rate']:.1f} img/s ({p1['seconds']:.2f} s) | {pn['rate']:.1f} img/s ({pn['seconds']:.2f} s) | "
                     f"{pn['rate'] / p1['rate']:.2f}× | {tn['rate'] / pn['rate']:.2f}× |")
    lines += ["", PAPER, "", "Commands:", "", "```sh", f"bench/dist_bench.py --images {res['images']} --epochs {res['epochs']} "
              f"--world {w}"]
    for c in res["cases"]:
        lines += [r["command"] for r in c["tabby"] + c["peer"]]
    lines += ["```", "<!-- tabby-distributed-section:end -->", ""]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--shared", default=os.environ.get("TABBY_SHARED", os.path.join(ROOT, "..", "shared")))
    p.add_argument("--work", default="/tmp/tabby-dist-bench")
    p.add_argument("--images", type=int, default=640)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--into", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    a = p.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    tabby = os.path.join(a.build, "tabby")
    data = subset(a.shared, a.work, a.images)
    res = {"started": datetime.datetime.now().isoformat(timespec="seconds"), "images": a.images,
           "epochs": a.epochs, "world": a.world, "cases": [],
           "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip(),
           "machine": f"{os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.2f}."}
    for preset, size, peer_model, weights in CASES:
        case = {"preset": preset, "size": size, "tabby": [], "peer": []}
        for world in (1, a.world):
            case["tabby"].append(tabby_run(a, tabby, data, preset, size, world, a.work))
            case["peer"].append(peer_run(a, data, peer_model, size, world, weights))
            res["peer_torch"] = case["peer"][-1]["torch"]
        res["cases"].append(case)
    res["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
    res["machine"] += f" Load average at the end {os.getloadavg()[0]:.2f}."
    with open(os.path.join(a.work, "dist.json"), "w") as f:
        json.dump(res, f, indent=1)
    write_section(a.into, "distributed", section(res))
    log(f"wrote the data-parallel section of {a.into}")


if __name__ == "__main__":
    main()
