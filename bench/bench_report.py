"""Renders the driver's results.json into bench/RESULTS.md: one table per
benchmark (tabby, the peer as a user runs it, the peer with tcmalloc, ratios),
the exact commands, and the machine and versions they ran on.
"""
import os

FULL_EPOCH_IMAGES = 2000  # cats_and_dogs_filtered/train


# ---------------------------------------------------------------- formatting


def torch2_versions(versions):
    """'2.11.0+cu130 0.26.0+cu130 2' (what torch2_peer.check() prints) in words."""
    parts = str(versions).split()
    if len(parts) != 3:
        return f"torch and torchvision ({versions})"
    return f"torch {parts[0]} and torchvision {parts[1]} ({parts[2]} intra-op threads by default)"

def rate(x):
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def secs(x):
    if x is None:
        return "—"
    if x >= 120:
        return f"{x / 60:.1f} min"
    return f"{x:.1f} s" if x >= 10 else f"{x:.2f} s"


def ratio(a, b):
    return "—" if not a or not b else f"{a / b:.2f}×"


def pct(x):
    return "—" if x is None else f"{100 * x:.0f}%"


def acc(x):
    return "—" if x is None or x != x else f"{x:.3f}"


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def commands(*entries):
    """A code block of the exact commands of the successful and failed runs given."""
    lines = []
    for e in entries:
        if e and e.get("command"):
            lines.append(e["command"] + ("" if e.get("ok") else "    # FAILED, see " + str(e.get("log"))))
    return "Commands (from the repository root):\n\n```sh\n" + "\n".join(lines) + "\n```"


def data(entry):
    return entry["data"] if entry and entry.get("ok") else None


def wall(entry):
    return entry["wall_seconds"] if entry and entry.get("ok") else None


# ---------------------------------------------------------------- sections

def header(res):
    m = res["machine"]
    pk = m.get("packages", {})
    quick = res["mode"] == "quick"
    out = ["# tabby CPU benchmarks", ""]
    if quick:
        out += ["> **Quick mode** (`bench/run_all.sh --quick`): tiny inputs, a smoke check that every case runs.",
                "> These figures are not measurements; run `bench/run_all.sh` on a quiet machine for those.", ""]
    load = m["loadavg_start"]
    end = res.get("loadavg_end") or [None]
    out += [
        f"Run {res['started']} → {res.get('finished', '?')} ({secs(res.get('total_seconds'))} in all), "
        f"`bench/run_all.sh{' --quick' if quick else ''}`, tabby {m['tabby_revision']}.",
        "",
        f"- Machine: {m['cores']} cores, {m['cpu']}, {m['memory_gib']} GiB RAM, Linux {m['kernel']}; "
        f"load average at start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min)"
        + (f", at end {end[0]:.2f}" if end[0] is not None else "")
        + (f"; before each of its {len(res['loadavg_before_commands'])} commands between "
           f"{min(res['loadavg_before_commands']):.2f} and {max(res['loadavg_before_commands']):.2f}"
           if res.get("loadavg_before_commands") else "") + ".",
        f"- tabby: {m['compiler']}, Release build, LibTorch {pk.get('libtorch-dev', '?')} (Debian), "
        f"libjpeg-turbo {pk.get('libjpeg62-turbo', '?')}, tcmalloc {pk.get('libtcmalloc-minimal4', '?')} linked in.",
        f"- Peer: {m['peer_python']} (`/usr/bin/python3`), torch {pk.get('python3-torch', '?')}, torchvision "
        f"{pk.get('python3-torchvision', '?')}, Pillow {pk.get('python3-pil', '?')} (Debian packages). "
        "The same LibTorch build computes on both sides.",
        "",
        "How to read the tables:",
        "",
        f"- Both sides use all {m['cores']} cores for compute: tabby by default, the peer through "
        f"`torch.set_num_threads({m['cores']})` (Debian's torch starts with 1 intra-op thread; "
        "a user who leaves it there is slower still). Decoding: tabby's worker threads, the peer's DataLoader "
        "workers (or a process pool), compared at the same count.",
        "- **peer (glibc)** is the peer as a user runs it. **peer (tcmalloc)** runs the same script with "
        "`LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4`: on this VM glibc's malloc hands large "
        "tensor buffers back to the kernel and the page faults of touching them again slow element-wise ops; "
        "tabby links tcmalloc, so this column isolates what is left once the allocator is equal. "
        "Ratios are tabby ÷ peer (above 1: tabby is faster) unless a column says otherwise.",
        *([f"- **peer (PyTorch 2.x)**: the same peer scripts on PyPI's {torch2_versions(res['torch2'])}, "
           "their default wheels (built with CUDA 13, run on the CPU), "
           "with their default allocator (glibc) and threads (`bench/torch2_peer.py` installs them; "
           "`PYTHONPATH`/`LD_LIBRARY_PATH` in each command). Measured in the same run, for the training, "
           "transfer and prediction tables."] if res.get("torch2") else []),
        "- Files are read once before any timed pass (warm page cache) on both sides.",
        "- Raw per-step/per-epoch numbers and every log: `results.json` and `logs/` in the work folder "
        f"(`{res.get('work', '?')}`).",
        "",
    ]
    if res.get("failed"):
        out += ["**Failed commands** (their cells show —):", ""]
        out += [f"- `{f['command']}` → exit {f['rc']}, log `{f['log']}`" for f in res["failed"]]
        out += [""]
    return "\n".join(out)


def section_decode(d):
    tabby, peer_g, peer_t = data(d["tabby"]), data(d["peer"].get("glibc")), data(d["peer"].get("tcmalloc"))

    def find(src, key, **want):
        if not src:
            return None
        for r in src["results"]:
            if all(r.get(k) == v for k, v in want.items()):
                return r["images_per_s"]
        return None

    combos = sorted({(r["size"], r["threads"]) for r in tabby["results"]}) if tabby else []
    rows = []
    for size, n in combos:
        t_dct = find(tabby, "threads", mode="dct", size=size, threads=n)
        t_full = find(tabby, "threads", mode="full", size=size, threads=n)
        pil = [find(p, "procs", mode="pil", size=size, procs=n) for p in (peer_g, peer_t)]
        draft = [find(p, "procs", mode="draft", size=size, procs=n) for p in (peer_g, peer_t)]
        best_peer = max([x for x in pil + draft if x] or [0]) or None
        rows.append([f"{size}×{size}", n, rate(t_dct), rate(t_full), rate(pil[0]), rate(draft[0]), rate(pil[1]),
                     rate(draft[1]), ratio(t_dct, pil[0]), ratio(t_dct, draft[0]), ratio(t_dct, best_peer)])
    images = tabby["images"] if tabby else "?"
    mp = f", {tabby['mean_megapixels']:.2f} megapixels on average" if tabby else ""
    out = [
        "## a. Decode + resize throughput (images/s)", "",
        f"`{d['dir']}`: {images} JPEG photos at their original size{mp}; each decoded to RGB and resized "
        "to the target, best of the timed passes. tabby **dct**: libjpeg-turbo decoding at a reduced DCT scale "
        "(1/2, 1/4, 1/8 while the image stays at least the target size), then bilinear resize (what its image "
        "cache does per file); **full**: full-size decode, same resize. PIL: `Image.open` + `convert(\"RGB\")` + "
        "`resize((S,S), BILINEAR)` (what ImageFolder + `Resize` do); **PIL draft**: `Image.draft(\"RGB\", (S,S))` "
        "first, PIL's own DCT-domain downscale, the fair second peer. Several workers: tabby threads, the peer "
        "a `multiprocessing.Pool` started before the clock, files split into equal shares.", "",
        table(["size", "workers", "tabby dct", "tabby full", "PIL (glibc)", "PIL draft (glibc)", "PIL (tcmalloc)",
               "PIL draft (tcmalloc)", "dct ÷ PIL", "dct ÷ PIL draft", "dct ÷ best peer"], rows), "",
        commands(d["tabby"], d["peer"].get("glibc"), d["peer"].get("tcmalloc")), ""]
    return "\n".join(out)


def section_pipeline(d):
    tabby, peers = data(d["tabby"]), {k: data(v) for k, v in d["peer"].items()}

    def peer_run(alloc, w):
        p = peers.get(alloc)
        return next((r for r in p["runs"] if r["workers"] == w), None) if p else None

    def epoch_rate(run, which):
        if not run:
            return None
        eps = run["epochs"]
        if which == "first":
            return eps[0]["images_per_s"]
        later = eps[1:] or eps
        return max(e["images_per_s"] for e in later)

    cached = max(e["images_per_s"] for e in tabby["epochs"]) if tabby and tabby["epochs"] else None
    workers = sorted({r["workers"] for p in peers.values() if p for r in p["runs"]} |
                     ({f["threads"] for f in tabby["first_pass"]} if tabby else set()))
    rows = []
    for w in workers:
        first = next((f["images_per_s"] for f in tabby["first_pass"] if f["threads"] == w), None) if tabby else None
        g, t = peer_run("glibc", w), peer_run("tcmalloc", w)
        rows.append([w, rate(first), rate(cached) if first else "—", rate(epoch_rate(g, "first")),
                     rate(epoch_rate(g, "later")), rate(epoch_rate(t, "first")), rate(epoch_rate(t, "later")),
                     ratio(first, epoch_rate(g, "first")), ratio(cached, epoch_rate(g, "later")) if first else "—"])
    n = tabby["images"] if tabby else None
    out = ["## b. Input pipeline: batches of 32 at 150×150 (images/s)", "",
           f"`{d['dir']}` ({n} photos, 2 classes). tabby: `build_image_cache` (decode + resize every file into one "
           "uint8 tensor, N worker threads), then `BatchLoader` epochs from that cache (shuffled, uint8 NHWC → float "
           "(B,3,H,W), prepared on its background thread). Peer: `ImageFolder` + `Resize((150,150))` + `ToTensor` "
           "through a `DataLoader` (shuffle, batch 32, N workers; 0 = in the main process), which decodes every "
           "file again each epoch. The consumer only takes each batch. \"later epochs\": the best epoch after the "
           "first.", ""]
    out += [table(["workers", "tabby first pass", "tabby later epochs (cache)", "peer epoch 1 (glibc)",
                   "peer later epochs (glibc)", "peer epoch 1 (tcmalloc)", "peer later epochs (tcmalloc)",
                   "first pass ÷ peer", "later epochs ÷ peer"], rows), ""]
    if tabby and n:
        best_first = max(f["images_per_s"] for f in tabby["first_pass"])
        peer_best = max((epoch_rate(r, "later") for p in peers.values() if p for r in p["runs"]), default=None)
        if peer_best and cached:
            t10 = n / best_first + 9 * n / cached
            p10 = 10 * n / peer_best
            out += [f"Ten epochs of input for these {n} images: tabby {secs(t10)} (one decoding pass, nine epochs "
                    f"from the cache) vs the peer's best worker count {secs(p10)} (ten decoding passes): "
                    f"**{p10 / t10:.1f}×**.", ""]
    out += [commands(d["tabby"], d["peer"].get("glibc"), d["peer"].get("tcmalloc")), ""]
    return "\n".join(out)


PEER_LABEL = {"glibc": "glibc", "tcmalloc": "tcmalloc", "torch2": "PyTorch 2.x"}


def tabby_epoch_rate(t, images):
    if not t or not t.get("ok") or not t.get("history"):
        return None
    return images / t["history"][-1]["seconds"]


def peer_epoch_rate(p):
    p = data(p)
    if not p or not p.get("epochs"):
        return None
    e = p["epochs"][-1]
    return e["images"] / e["train_seconds"]


def section_training(cases):
    rows, detail, cmds = [], [], []
    for c in cases:
        n = c["images"]
        t = tabby_epoch_rate(c["tabby"], n)
        g, tc = peer_epoch_rate(c["peer"].get("glibc")), peer_epoch_rate(c["peer"].get("tcmalloc"))
        t2 = peer_epoch_rate(c["peer"].get("torch2"))
        ceil = data(c["ceiling"])
        ceil_rate = ceil["images_per_s"] if ceil else None
        pc = [data(c["peer_ceiling"].get(k)) for k in ("glibc", "tcmalloc")]
        rows.append([f"{c['model']} @{c['size']}", rate(t), secs(FULL_EPOCH_IMAGES / t) if t else "—", rate(g),
                     rate(tc), rate(t2), ratio(t, g), ratio(t, tc), ratio(t, t2), rate(ceil_rate),
                     pct(t / ceil_rate) if t and ceil_rate else "—",
                     " / ".join(rate(p["images_per_s"]) if p else "—" for p in pc)])
        tw = c["tabby"]["wall_seconds"] if c["tabby"].get("ok") else None
        dec = c["tabby"]["run"].get("decode_seconds") if c["tabby"].get("ok") else None
        detail.append([f"{c['model']} @{c['size']}", f"{n} × {c['epochs']} epoch{'s' if c['epochs'] > 1 else ''}", c["workers"],
                       " / ".join(f"{r['workers']}: {rate(r['images_per_s'])}"
                                  for r in (data(c["pick_workers"]) or {}).get("candidates", [])) or "—",
                       secs(tw), secs(dec), secs(wall(c["peer"].get("glibc"))),
                       secs(wall(c["peer"].get("tcmalloc"))), secs(wall(c["peer"].get("torch2")))])
        cmds += [c["pick_workers"], c["tabby"], c["peer"].get("glibc"), c["peer"].get("tcmalloc"),
                 c["peer"].get("torch2"), c["ceiling"],
                 c["peer_ceiling"].get("glibc"), c["peer_ceiling"].get("tcmalloc")]
    out = ["## c. Training throughput (training images/s, batch 32, Adam)", "",
           "End to end: tabby is the real `tabby train` (decoding included in its process, epoch time from "
           "`history.csv`); the peer is the same model in PyTorch (same layers, batch, optimizer; `ImageFolder` + "
           "`DataLoader` with its best worker count, augmentation as torchvision transforms on PIL images). Both "
           "train on the same subset of `cats_and_dogs_filtered/train` (the first files of each class, symlinked) "
           "without validation, so an epoch is the training loop alone; the rate is that of the **last epoch** "
           "(steady state, after oneDNN's first-use set-up). \"Epoch\" projects a full 2,000-image epoch at that "
           "rate. Ceiling: the same tabby model on one synthetic batch already in memory (`bench_model`: "
           "forward, loss, backward, Adam), two warm-up steps; the peer's ceiling (same model in PyTorch, same "
           "batch) is shown for reference. MobileNetV2: frozen ImageNet backbone, RandomFlip + RandomRotation(0.1) "
           "before it (tabby: on the batch tensor; peer: per image in the transform), GAP, Dropout 0.2, Dense.", "",
           table(["model", "tabby e2e", "tabby epoch (2,000 images)", "peer (glibc)", "peer (tcmalloc)",
                  "peer (PyTorch 2.x)", "tabby ÷ peer (glibc)", "tabby ÷ peer (tcmalloc)", "tabby ÷ peer (2.x)",
                  "tabby ceiling", "tabby e2e ÷ ceiling",
                  "peer ceiling (glibc / tcmalloc)"], rows), "",
           "What ran (wall = whole process, start-up, decoding and per-epoch checkpoints included):", "",
           table(["model", "images × epochs", "peer workers", "peer pick (workers: images/s, tcmalloc)", "tabby wall",
                  "tabby decode", "peer wall (glibc)", "peer wall (tcmalloc)", "peer wall (PyTorch 2.x)"], detail), "",
           commands(*cmds), ""]
    return "\n".join(out)


def naive_projection(p, epochs_wanted):
    """Wall time of the peer's naive run, and projected to epochs_wanted epochs
    from the mean of its measured epochs after the first (or all of them)."""
    d = data(p)
    if not d:
        return None, None, None
    eps = d["epochs"]
    steady = eps[1:] or eps
    mean = sum(e["seconds"] for e in steady) / len(steady)
    projected = p["wall_seconds"] + (epochs_wanted - len(eps)) * mean
    return p["wall_seconds"], projected, eps[-1].get("val_accuracy")


def section_transfer(d):
    ep = d["epochs"]
    t = d["tabby"]
    t_wall = t["wall_seconds"] if t.get("ok") else None
    t_acc = t["history"][-1].get("val_accuracy") if t.get("ok") else None
    t_fc = t["summary"].get("feature_cache") if t.get("ok") else None
    rows = [["tabby (`tabby train`, feature cache " + ("used" if t_fc else "NOT used") + ")", secs(t_wall), "measured",
             acc(t_acc), "1.00×"]]
    for alloc in [k for k in ("glibc", "tcmalloc", "torch2") if k in d["peer_naive"]]:
        measured, proj, a = naive_projection(d["peer_naive"].get(alloc), ep)
        n = d["peer_naive_epochs"]
        how = "measured" if n >= ep else f"{n} epoch{'s' if n > 1 else ''} measured ({secs(measured)}), projected"
        rows.append([f"peer, frozen backbone in the loop ({PEER_LABEL[alloc]})", secs(proj), how, acc(a) + (
            f" (epoch {n})" if n < ep else ""), ratio(proj, t_wall)])
    for alloc in [k for k in ("glibc", "tcmalloc", "torch2") if k in d["peer_features"]]:
        p = d["peer_features"].get(alloc)
        pd = data(p)
        rows.append([f"peer, features precomputed ({PEER_LABEL[alloc]})", secs(p["wall_seconds"] if pd else None), "measured",
                     acc(pd["epochs"][-1]["val_accuracy"] if pd else None), ratio(p["wall_seconds"] if pd else None,
                                                                             t_wall)])
    out = [f"## d. Frozen-MobileNetV2 transfer: {ep} epochs at 160×160, no augmentation", "",
           f"End to end on `{d['train']}` (train) and `{d['val']}` (validation after every epoch), ImageNet weights, "
           "frozen backbone, GAP, Dropout 0.2, Dense, Adam 1e-3, batch 32: wall time of the whole process "
           "(start-up, decoding, training, validation; tabby also checkpoints every epoch and evaluates the kept "
           "weights at the end). tabby computes the frozen backbone once per image (its feature cache). The first "
           "peer is what a PyTorch user writes: the frozen backbone inside the training loop, `ImageFolder` + "
           f"`DataLoader` with its best worker count ({d['workers']}). The second, stronger peer computes the "
           "features once by hand and trains the head on them. \"peer ÷ tabby\" is how many times longer the peer "
           "takes.", "",
           table(["", "wall time", "", "final val_accuracy", "peer ÷ tabby"], rows), ""]
    out += [commands(t, d["pick_workers"], *d["peer_naive"].values(), *d["peer_features"].values()), ""]

    pr = d["predict"]
    tp = pr["tabby"]
    n = tp.get("images") or None
    t_rate = n / tp["wall_seconds"] if tp.get("ok") and n else None
    prow = [["tabby predict", "—", secs(tp["wall_seconds"] if tp.get("ok") else None), rate(t_rate), "—", "—", "1.00×"]]
    for key, p in pr["peer"].items():
        w, alloc = key.split("-", 1)
        pd = data(p)
        p_rate = pd["images"] / p["wall_seconds"] if pd else None
        prow.append([f"peer ({PEER_LABEL[alloc]})", w, secs(p["wall_seconds"] if pd else None), rate(p_rate),
                     rate(pd["loop_images_per_s"] if pd else None), pct(p.get("agreement")), ratio(t_rate, p_rate)])
    out += ["### Prediction throughput", "",
            f"`tabby predict RUN {pr['dir']}` with the run trained above ({n} photos at their original size, "
            "batches of 32, squashed to 160×160) vs a torchvision script predicting the same files with the same "
            "weights (a `Dataset` of the files + `DataLoader`, `Resize((160,160))`, `ToTensor`, `Normalize`, "
            "`no_grad`, softmax). images/s = files ÷ wall time of the whole process (start-up and model loading "
            "included, as a user waits for it); the peer's rate inside its prediction loop is shown too. "
            "\"same label\": share of files where the peer's top class equals tabby's.", "",
            table(["", "workers", "wall time", "images/s", "peer loop only", "same label", "tabby ÷ peer"], prow), "",
            commands(tp, *pr["peer"].values()), ""]
    return "\n".join(out)


def kept_section(path, name):
    """The block another script wrote into PATH between its markers
    <!-- tabby-NAME-section:begin ... --> and <!-- tabby-NAME-section:end -->
    (bench/gpu/render.py, bench/serve_bench.py, bench/dist_bench.py; the build and serve-connections sections
    are written by hand),
    or "": a run of this script keeps it."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return ""
    begin = text.find(f"<!-- tabby-{name}-section:begin")
    end_marker = f"<!-- tabby-{name}-section:end -->"
    end = text.find(end_marker, begin)
    return text[begin:end + len(end_marker)] + "\n" if begin >= 0 and end >= 0 else ""


def write(res, path):
    kept = [kept_section(path, name)
            for name in ("serve", "serve-model", "serve-connections", "distributed", "scale", "gpu", "build")]
    parts = [header(res)]
    if "decode" in res:
        parts.append(section_decode(res["decode"]))
    if "pipeline" in res:
        parts.append(section_pipeline(res["pipeline"]))
    if "training" in res:
        parts.append(section_training(res["training"]))
    if "transfer" in res:
        parts.append(section_transfer(res["transfer"]))
    parts.extend(k for k in kept if k)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(parts))
    os.replace(tmp, path)
