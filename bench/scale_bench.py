"""Data at scale: what the input pipeline costs in memory and time as a dataset
grows from ten thousand to a hundred thousand photos (and beyond, where the
disk allows), tabby beside PyTorch's ImageFolder + DataLoader on the same files.

The datasets are folders of symbolic links (cat/, dog/) to the real photos in
../shared/datasets (PetImages, cats_and_dogs_filtered, the full-resolution
Kaggle photos), repeated until each folder holds N files: the decoding work per
file is real, the number of distinct photos is not.

tabby: `tabby train` with a model that does almost no arithmetic (average
pooling straight into a Dense layer), so an epoch's images/s is what the input
pipeline delivers: epoch 1 decodes every file into the cache (--cache disk,
a memory-mapped file under --cache-dir; or auto), later epochs read shuffled
rows from it. Run as one process and as 2 ranks on this machine
(--nproc-per-node 2). Peer: torchvision ImageFolder + Resize + ToTensor through a
DataLoader (shuffle, the same batch and worker count), timed over a fixed
number of batches per epoch (it decodes every file every epoch, so a part of an
epoch gives its rate).

Memory: every process of the run (launcher, ranks, DataLoader workers) is
sampled every 50 ms from /proc/PID/status; the table gives the peak of the sum
over processes of RssAnon (private memory: what the dataset must not make grow)
and of VmRSS (which also counts the mapped cache's pages, the kernel's to
reclaim). Disk: the size of the cache files written.

Usage: python3 bench/scale_bench.py [--sizes 10000,100000] [--image-size 224]
       [--workers 2] [--peer-batches 150] [--work /tmp/tabby-scale] [--tabby build/tabby]
Writes the "scale" section of bench/RESULTS.md and WORK/scale.json.
"""
import argparse
import json
import re
import os
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from results_section import write_section  # noqa: E402

TINY_MODEL = """name = "input-bound"
[[layers]]
type = "GlobalAveragePooling2D"
[[layers]]
type = "Dense"
units = 2
"""


NOTES = """The loader's batch conversion, before and after (measured on its own, same machine, before this run):
uint8 (B,H,W,3) rows became float (B,3,H,W) through a strided uint8→float copy, which LibTorch 1.13 does
about 12× slower than transposing the bytes first and widening them in a contiguous pass (224 px, batch 32,
2 threads: 12.8 ms vs 1.1 ms; `torch` in Python, the same kernels). With the second, an epoch of the 10,000
photos above with the same model took 1.20 s and 1.31 s (7,600–8,300 images/s) where the first took 2.26 s
and 1.66 s (4,400–6,000), with the same loss to the last digit (`tabby train --data DATA-10000 --model
GAP-MODEL --image-size 224 --epochs 2 --cache disk`, epoch 2 of two runs each, history.csv).

A million photos at 224 px would need 150 GB of decoded rows, more than this machine's free disk, so `auto`
streams there (`--cache none`): a first pass checks every file, then every epoch decodes them again on the
worker threads, as the DataLoader does, and nothing grows with the images but per-file metadata.

The fixed cost of a second process, measured on a tiny dataset (256 of the same photos, `--cache disk`, the
same model, two runs each, after this run): one process peaked at 0.12 GiB of RssAnon, two ranks and their
launcher together at 0.33–0.34 GiB. So at 100,000 photos the data's share of private memory was 0.24 − 0.12 =
0.12 GiB for one process and 0.54 − 0.34 = 0.20 GiB for two ranks together: no decoded pixels in either
(they are the mapped file's pages, counted in VmRSS once per process that maps them, held once by the
kernel), the difference being the per-file metadata (paths, labels, the epoch's order: about 0.4 KB a file)
that each rank keeps for itself. The 10,000-photo rows with 2 ranks: `auto` chose disk there since ranks
that each hold a set in memory also gather it from one another; before that rule the same run in memory
peaked at 8.62 GiB of RssAnon (two ranks, 1.5 GB of images).

Large folders, `tabby inspect DIR --json` on the same folders (header probes of every file on 2 threads;
`/usr/bin/time -v`, after this run): 10,000 files 0.59 s and 185 MB peak RSS, 100,000 files 2.55 s and
303 MB, 1,000,000 files 24.3 s and 1.47 GB: time linear in the files, memory about 1.3 KB a file over a
fixed 170 MB, and none of it pixels."""


def log(msg):
    print(f"scale-bench: {msg}", file=sys.stderr, flush=True)


def shared_root():
    for c in (os.environ.get("TABBY_SHARED"), os.path.join(HERE, "..", "..", "shared")):
        if c and os.path.isdir(os.path.join(c, "datasets")):
            return os.path.realpath(c)
    sys.exit("scale-bench: error: ../shared not found (set TABBY_SHARED)")


def real_photos(shared):
    """Every cat and dog photo in the shared datasets, by class."""
    by_class = {"cat": [], "dog": []}
    roots = {
        "cat": ["pet_images/PetImages/Cat", "cats_and_dogs_filtered/train/cats",
                "cats_and_dogs_filtered/validation/cats", "cats_dogs_fullres/training_set/cats"],
        "dog": ["pet_images/PetImages/Dog", "cats_and_dogs_filtered/train/dogs",
                "cats_and_dogs_filtered/validation/dogs", "cats_dogs_fullres/training_set/dogs"],
    }
    for c, dirs in roots.items():
        for d in dirs:
            full = os.path.join(shared, "datasets", d)
            if os.path.isdir(full):
                by_class[c] += sorted(os.path.join(full, f) for f in os.listdir(full))
    return by_class


def make_folder(root, n, photos):
    """root/{cat,dog}/NNNNNNN.jpg: n links in all, half per class."""
    stamp = os.path.join(root, ".complete")
    if os.path.exists(stamp):
        return
    shutil.rmtree(root, ignore_errors=True)
    for c in ("cat", "dog"):
        os.makedirs(os.path.join(root, c))
        src = photos[c]
        for i in range(n // 2):
            os.symlink(src[i % len(src)], os.path.join(root, c, f"{i:07d}.jpg"))
    open(stamp, "w").close()


class MemorySampler:
    """Peak of the summed RssAnon and VmRSS over a process and its descendants."""

    def __init__(self, pid):
        self.pid, self.peak_anon, self.peak_rss, self.peak_procs = pid, 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def _children():
        kids = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
        return kids

    def _tree(self):
        kids, out, todo = self._children(), [], [self.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo += kids.get(p, [])
        return out

    @staticmethod
    def _status(pid):
        anon = rss = 0
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        anon = int(line.split()[1]) * 1024
                    elif line.startswith("VmRSS:"):
                        rss = int(line.split()[1]) * 1024
        except OSError:
            pass
        return anon, rss

    def _run(self):
        while not self._stop.is_set():
            tree = self._tree()
            sums = [self._status(p) for p in tree]
            self.peak_anon = max(self.peak_anon, sum(s[0] for s in sums))
            self.peak_rss = max(self.peak_rss, sum(s[1] for s in sums))
            self.peak_procs = max(self.peak_procs, len(tree))
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self._thread.join()


def measured(argv, env=None, log_path=None):
    t0 = time.monotonic()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        sampler = MemorySampler(proc.pid)
        rc = proc.wait()
        sampler.stop()
    if rc != 0:
        sys.exit(f"scale-bench: error: {' '.join(argv)} exited {rc}; see {log_path}")
    return {"seconds": time.monotonic() - t0, "peak_anon": sampler.peak_anon, "peak_rss": sampler.peak_rss,
            "processes": sampler.peak_procs}


def history_seconds(run):
    """Each epoch's seconds, from the run's history.csv."""
    with open(os.path.join(run, "history.csv")) as f:
        header = f.readline().strip().split(",")
        col = header.index("seconds")
        return [float(line.split(",")[col]) for line in f if line.strip()]


def tabby_case(a, folder, n, ranks, mode, work, epochs=2):
    cache = os.path.join(work, "cache")
    run = os.path.join(work, f"run-{n}-{ranks}-{mode}")
    shutil.rmtree(run, ignore_errors=True)
    model = os.path.join(work, "input-bound.toml")
    with open(model, "w") as f:
        f.write(TINY_MODEL)
    argv = [a.tabby, "train", "--data", folder, "--model", model, "--image-size", str(a.image_size), "--epochs", str(epochs),
            "--batch-size", "32", "--lr", "0.001", "--no-report", "--out", run, "--cache", mode, "--cache-dir", cache]
    if ranks > 1:
        argv += ["--nproc-per-node", str(ranks), "--threads", "1"]
    log_path = os.path.join(work, f"tabby-{n}-{ranks}-{mode}.log")
    r = measured(argv, log_path=log_path)
    text = open(log_path).read()
    secs = history_seconds(run)
    decode = re.search(r"decoded and resized (\d+) images to \S+ in .*? \((\d+) images/s\)", text)
    cache_bytes = sum(os.path.getsize(os.path.join(cache, f)) for f in os.listdir(cache)
                      if f.endswith(".rows")) if os.path.isdir(cache) else 0
    chosen = ("disk" if "disk cache" in text else "none" if "--cache none" in text else "memory")
    out = {"side": "tabby", "images": n, "ranks": ranks, "mode": mode, "chosen": chosen, **r, "epoch_seconds": secs,
           "cache_bytes": cache_bytes, "reused": "reusing the disk cache" in text}
    # The first pass decodes into the cache before epoch 1; the epochs read from it.
    if decode:
        out["first_pass_images_per_s"] = float(decode.group(2))
    if secs:
        out["later_epoch_images_per_s"] = n / min(secs)
    log(f"tabby {n} images, {ranks} rank(s), --cache {mode}: {r['seconds']:.0f} s, epochs {secs}, "
        f"RssAnon {r['peak_anon'] / 2**30:.2f} GiB, RSS {r['peak_rss'] / 2**30:.2f} GiB")
    return out


PEER = r"""
import sys, time, torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms
folder, size, workers, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(2)
tf = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor()])
t = time.monotonic()
ds = datasets.ImageFolder(folder, transform=tf)
print(f"listed {len(ds)} files in {time.monotonic() - t:.1f} s", flush=True)
loader = DataLoader(ds, batch_size=32, shuffle=True, num_workers=workers)
for epoch in (1, 2):
    t, seen = time.monotonic(), 0
    for i, (x, y) in enumerate(loader):
        seen += len(y)
        if i + 1 == batches:
            break
    print(f"epoch {epoch}: {seen} images in {time.monotonic() - t:.2f} s", flush=True)
"""


def peer_case(a, folder, n, work):
    log_path = os.path.join(work, f"peer-{n}.log")
    r = measured(["/usr/bin/python3", "-c", PEER, folder, str(a.image_size), str(a.workers), str(a.peer_batches)],
                 log_path=log_path)
    text = open(log_path).read()
    rates = [int(m.group(1)) / float(m.group(2)) for m in re.finditer(r"epoch \d: (\d+) images in ([\d.]+) s", text)]
    out = {"side": "peer", "images": n, **r, "images_per_s": rates}
    log(f"peer {n} images: {rates}, RssAnon {r['peak_anon'] / 2**30:.2f} GiB, RSS {r['peak_rss'] / 2**30:.2f} GiB")
    return out


def gib(b):
    return f"{b / 2**30:.2f}"


def render(res):
    rows = []
    for n in res["sizes"]:
        cases = [c for c in res["cases"] if c["images"] == n]
        peer = next((c for c in cases if c["side"] == "peer"), None)
        peer_rate = max(peer["images_per_s"]) if peer and peer["images_per_s"] else 0
        if peer:
            rows.append(f"| {n:,} | PyTorch DataLoader, {res['workers']} workers | 1 | — | "
                        f"{peer_rate:,.0f} | {peer_rate:,.0f} | {gib(peer['peak_anon'])} | {gib(peer['peak_rss'])} | — | — |")
        for c in cases:
            if c["side"] != "tabby":
                continue
            later = c.get("later_epoch_images_per_s", 0)
            first = f"{c['first_pass_images_per_s']:,.0f}" if "first_pass_images_per_s" in c else "— (reused)"
            ratio = f"{later / peer_rate:.1f}×" if peer_rate and later else "—"
            rows.append(f"| {n:,} | tabby --cache {c['mode']} → {c['chosen']}{', reused' if c['reused'] else ''} | {c['ranks']} | "
                        f"{', '.join(f'{x:.1f}' for x in c['epoch_seconds'])} | {first} | {later:,.0f} | "
                        f"{gib(c['peak_anon'])} | {gib(c['peak_rss'])} | {c['cache_bytes'] / 1e9:.1f} GB | {ratio} |")
    return "\n".join([
        "<!-- tabby-scale-section:begin (bench/scale_bench.py writes this section) -->",
        "## Data at scale: the disk cache (images/s of the input pipeline, memory, disk)",
        "",
        f"Run {res['started']} → {res['finished']}, `python3 bench/scale_bench.py --sizes "
        f"{','.join(str(s) for s in res['sizes'])} --image-size {res['image_size']} --workers {res['workers']}`, "
        f"tabby {res['revision']}, on {res['machine']}.",
        "",
        f"Folders of N symbolic links to the {res['photos']:,} real cat and dog photos of ../shared (PetImages, "
        "cats_and_dogs_filtered, the full-resolution Kaggle set), repeated to N. tabby: `tabby train` with a model "
        "that does almost no arithmetic (global average pooling into a Dense layer, batch 32), 2 epochs. Epoch 1 decodes "
        "nothing: the first pass before it decodes every file into the cache (its rate is the 'first pass' column), "
        "then each epoch reads shuffled rows from the cache (the 'epochs' column, the faster of the two); "
        "2 ranks: `--nproc-per-node 2 --threads 1` "
        "(a global batch of 64). Peer: torchvision `ImageFolder` + `Resize` + `ToTensor` through a `DataLoader` "
        f"(shuffle, batch 32, {res['workers']} workers), {res['peer_batches']} batches per epoch (it decodes every "
        "file in every epoch, so part of an epoch gives its rate), best of 2 epochs. Memory: peaks of the sums over "
        "every process of the run (launcher, ranks, DataLoader workers), sampled every 50 ms: RssAnon is private "
        "memory, VmRSS adds the mapped cache's pages (the kernel's page cache, shared and reclaimable). "
        "Epoch seconds are the run's history.csv. The epochs column is a training run's rate with that "
        "input-bound model (the loader's batches plus a trivial forward and backward pass), so it understates "
        "what the loader alone delivers.",
        "",
        "| images | side | processes | epoch seconds | first pass images/s | epochs images/s | "
        "peak RssAnon GiB | peak VmRSS GiB | cache on disk | later ÷ peer |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        res.get("notes", ""),
        "<!-- tabby-scale-section:end -->",
        "",
    ])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--peer-batches", type=int, default=150)
    p.add_argument("--work", default="/tmp/tabby-scale")
    p.add_argument("--tabby", default=os.path.join(HERE, "..", "build", "tabby"))
    p.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    p.add_argument("--no-ranks", action="store_true", help="leave the 2-rank runs out")
    p.add_argument("--largest-full", type=int, default=200000,
                   help="above this many images: one process, one epoch (default 200000)")
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    os.makedirs(a.work, exist_ok=True)
    photos = real_photos(shared_root())
    rev = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    res = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "sizes": sizes, "image_size": a.image_size,
           "workers": a.workers, "peer_batches": a.peer_batches, "revision": rev.strip(),
           "machine": f"{os.cpu_count()} cores ({cpu}), {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.1f} GiB RAM",
           "photos": len(photos["cat"]) + len(photos["dog"]), "cases": []}
    for n in sizes:
        folder = os.path.join(a.work, f"data-{n}")
        log(f"making {folder}")
        make_folder(folder, n, photos)
        shutil.rmtree(os.path.join(a.work, "cache"), ignore_errors=True)
        res["cases"].append(peer_case(a, folder, n, a.work))
        if n > a.largest_full:
            # Decoded rows of this many would not fit the disk here: auto streams, and one
            # epoch (decoding every file again) is the figure; no cache to reuse.
            res["cases"].append(tabby_case(a, folder, n, 1, "auto", a.work, epochs=1))
            continue
        res["cases"].append(tabby_case(a, folder, n, 1, "auto", a.work))
        res["cases"].append(tabby_case(a, folder, n, 1, "auto", a.work))  # a second run: a disk cache is reused
        if not a.no_ranks:
            shutil.rmtree(os.path.join(a.work, "cache"), ignore_errors=True)
            res["cases"].append(tabby_case(a, folder, n, 2, "auto", a.work))
        shutil.rmtree(os.path.join(a.work, "cache"), ignore_errors=True)
        with open(os.path.join(a.work, "scale.json"), "w") as f:
            json.dump(res, f, indent=2)
    res["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    res["notes"] = NOTES
    with open(os.path.join(a.work, "scale.json"), "w") as f:
        json.dump(res, f, indent=2)
    write_section(a.results, "scale", render(res))
    log(f"wrote the scale section of {a.results}")


if __name__ == "__main__":
    main()
