"""Renders the GPU kit's results.json (bench/gpu/run.sh, written under $OUT)
as markdown: OUT/results.md on the device machine, and the "GPU" section of
bench/RESULTS.md here.

  python3 bench/gpu/render.py RESULTS.json [MORE.json]             # the markdown on stdout
  python3 bench/gpu/render.py RESULTS.json [MORE.json] --into bench/RESULTS.md

Several results files (the benchmark call's, then the --pets call's) make one
section: the machine of the first, then each file's parts in turn.

--into replaces the block between the GPU markers of that file (appending it
at the end the first time) and leaves everything else as it is: the CPU
figures above it are never touched, and bench_report.py keeps the block when
it re-renders the CPU report.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench_report import acc, pct, rate, ratio, secs, table  # noqa: E402

BEGIN = "<!-- tabby-gpu-section:begin (bench/gpu/render.py writes this block; edit results.json, not this) -->"
END = "<!-- tabby-gpu-section:end -->"
FULL_EPOCH_IMAGES = 2000  # cats_and_dogs_filtered/train


def ok_data(entry):
    return entry.get("data") if entry and entry.get("ok") else None


def status(entry):
    if not entry:
        return "—"
    if entry.get("skipped"):
        return "skipped" + (f" ({entry['why']})" if entry.get("why") else "")
    if entry.get("timed_out"):
        return "timed out"
    if not entry.get("ok"):
        return f"failed (exit {entry.get('rc')}, log {entry.get('log')})"
    return "ok"


def tabby_rate(c):
    """Training images/s of tabby's last epoch (history.csv), and its seconds."""
    t = c.get("tabby") or {}
    hist = [h for h in t.get("history") or [] if isinstance(h.get("seconds"), float)]
    if not t.get("ok") or not hist:
        return None, None
    images = ((t.get("run") or {}).get("images") or {}).get("train") or c.get("images")
    return images / hist[-1]["seconds"], hist[-1]["seconds"]


def tabby_epoch_rates(c):
    t = c.get("tabby") or {}
    images = ((t.get("run") or {}).get("images") or {}).get("train") or c.get("images")
    return [images / h["seconds"] for h in t.get("history") or [] if isinstance(h.get("seconds"), float)]


def peer_rate(c):
    d = ok_data(c.get("peer"))
    if not d or not d.get("epochs"):
        return None, None
    e = d["epochs"][-1]
    return e["images"] / e["train_seconds"], e["train_seconds"]


def peer_epoch_rates(c):
    d = ok_data(c.get("peer"))
    return [e["images"] / e["train_seconds"] for e in (d or {}).get("epochs", [])]


def ceiling_rate(entry):
    d = ok_data(entry)
    return d.get("images_per_s") if d else None


def config_text(c):
    cl = {"default": "tabby default layout (channels-last), peer NCHW", "on": "channels-last both"}.get(
        c["channels_last"], c["channels_last"])
    return f"batch {c['batch']}, {c['precision']}, {cl}"


def header(res):
    m = res.get("machine", {})
    pt = m.get("peer_torch", {}) or {}
    gpu = (pt.get("gpu") or {}).get("name") or ("CPU (dry run)" if res.get("mode") == "cpu-dry-run" else "?")
    out = [f"## GPU: {gpu}", ""]
    if res.get("mode") == "cpu-dry-run":
        out += ["> **CPU dry run** (`bench/gpu/run.sh --cpu-dry-run`): the kit's plumbing on tiny inputs, on the CPU.",
                "> These figures are not GPU measurements.", ""]
    smi = (m.get("nvidia_smi") or "").splitlines()
    out += [f"Run {res.get('started', '?')} → {res.get('updated', '?')} by `bench/gpu/run.sh"
            f"{' --cpu-dry-run' if res.get('mode') == 'cpu-dry-run' else ''}`, tabby {m.get('tabby_revision', '?')}, "
            f"time budget {res.get('budget_seconds', '?')} s.", ""]
    out += [f"- Machine: {m.get('cores', '?')} cores, {m.get('cpu', '?')}, {m.get('memory_gib', '?')} GiB RAM, "
            f"{m.get('os', '?')}, Linux {m.get('kernel', '?')}; load average at start "
            f"{(m.get('loadavg_start') or [0])[0]:.2f}."]
    if smi:
        out += [f"- GPU (`nvidia-smi` at the start): `{smi[-1]}` ({smi[0]})."]
    if pt.get("gpu"):
        g = pt["gpu"]
        out += [f"- CUDA as torch sees it: {g['name']}, {g['memory_gib']} GiB, {g['multiprocessors']} SMs, "
                f"compute capability {g['capability']}."]
    out += [f"- tabby: {m.get('compiler', '?')}, {m.get('cmake', '?')}, Release build against the LibTorch of the "
            f"PyTorch below{', nvcc ' + m['nvcc'] if m.get('nvcc') else ''}.",
            f"- Peer: {m.get('python', '?')} (`{m.get('python_path', '?')}`), torch {pt.get('torch', '?')} "
            f"(CUDA {pt.get('cuda', '?')}, cuDNN {pt.get('cudnn', '?')}), torchvision {pt.get('torchvision', '?')}, "
            f"Pillow {pt.get('pillow', '?')}.", ""]
    return out


def build_and_tests(res):
    steps = res.get("steps") or {}
    if not steps:
        return []
    rows = []
    for name, s in steps.items():
        extra = s.get("progress") or ""
        if s.get("summary") and name.startswith("configure"):
            extra = "; ".join(x.replace("-- ", "") for x in s["summary"] if "tabby:" in x)
        if s.get("counts"):
            extra = ", ".join(f"{v} {k}" for k, v in sorted(s["counts"].items()))
            if s.get("summary"):
                extra += f" ({s['summary']['percent_passed']}% of {s['summary']['total']} passed)"
        rows.append([f"`{name}`", s.get("status", "?"), secs(s.get("seconds")), extra or "—"])
    out = ["### Build and tests", "", table(["step", "status", "time", "what it says"], rows), ""]
    for name, s in steps.items():
        if s.get("not_passed"):
            out += [f"Tests of `{name}` that did not pass ({len(s['not_passed'])}; logs in `logs.tgz`, "
                    "`ctest.log`):", ""]
            out += [f"- `{t}`" for t in s["not_passed"][:60]]
            out += [""]
        if s.get("excluded"):
            out += [f"Excluded from `{name}` (`ctest -E`): `{s['excluded']}` — they need data the kit does not "
                    "carry.", ""]
        if s.get("errors"):
            out += [f"First errors of `{name}`:", "", "```", *s["errors"][:10], "```", ""]
    return out


def training(res):
    cases = res.get("cases") or []
    if not cases:
        return []
    b = res.get("bench") or {}
    images = b.get("images")
    plan = b.get("plan") or {}
    dev = plan.get("device", "cuda")
    where = "the GPU" if dev == "cuda" else "the CPU"
    epochs = cases[0]["epochs"]
    rows, detail, cmds = [], [], []
    for c in cases:
        t, t_sec = tabby_rate(c)
        ceil = ceiling_rate(c.get("ceiling"))
        p, _ = peer_rate(c)
        pceil = ceiling_rate(c.get("peer_ceiling"))
        rows.append([f"{c['model']} @{c['size']}", config_text(c), rate(t),
                     secs(FULL_EPOCH_IMAGES / t) if t else "—", rate(ceil), pct(t / ceil) if t and ceil else "—",
                     rate(p), rate(pceil), pct(p / pceil) if p and pceil else "—", ratio(t, p), ratio(ceil, pceil)])
        run = (c.get("tabby") or {}).get("run") or {}
        tr = run.get("train") or {}
        cd, pd = ok_data(c.get("ceiling")) or {}, ok_data(c.get("peer")) or {}
        detail.append([f"{c['model']} @{c['size']}", c["config"],
                       " / ".join(rate(x) for x in tabby_epoch_rates(c)) or "—",
                       " / ".join(rate(x) for x in peer_epoch_rates(c)) or "—",
                       secs((c.get("tabby") or {}).get("wall_seconds")), secs(run.get("decode_seconds")),
                       f"{tr.get('precision', '?')}, cl {tr.get('channels_last', '?')}, {run.get('device', '?')}"
                       if tr.get("precision") else "—",
                       # bench_model and the peer name device and precision only off their CPU defaults
                       f"{cd.get('precision', 'fp32')} on {cd.get('device', 'cpu')}"
                       + (f", synced {rate(cd['synced_images_per_s'])}/s" if cd.get("synced_images_per_s") else "")
                       if cd else "—",
                       f"{pd.get('precision', 'fp32')}, cl {'on' if pd.get('channels_last') else 'off'}, "
                       f"{pd.get('device', 'cpu')}" if pd else "—",
                       secs((c.get("peer") or {}).get("wall_seconds")),
                       "; ".join(f"{k}: {status(c.get(k))}" for k in ("tabby", "ceiling", "peer", "peer_ceiling")
                                 if status(c.get(k)) != "ok") or "all ok"])
        cmds += [c.get(k) for k in ("tabby", "ceiling", "peer", "peer_ceiling")]
    out = [f"### Training throughput on {where} (training images/s)", "",
           f"`{b.get('data', '?')}` ({images} images, 2 classes), {epochs} epoch{'s' if epochs != 1 else ''} "
           f"without validation, Adam, seed 1337. **tabby e2e** is `tabby train --device {dev}` end to end (its "
           "images are decoded once into its uint8 cache, which lives on the GPU when it fits); the rate is that of "
           "the **last epoch** (`history.csv`; the first pays for cuDNN's autotuning). \"Epoch\" is a full "
           f"2,000-image epoch at that rate. **Ceiling**: `bench_model --device {dev}`, the same model on a "
           f"synthetic batch already on {where} (forward, fp32 loss, backward, Adam, accuracy tally), after two "
           "warm-up steps; on CUDA its steps run back to back as `fit()` runs them (step metrics stay on the "
           "device), timed to a synchronize at the end (the rate with a synchronize after every step is in the "
           "second table). **Peer**: `bench/peer_train.py` — "
           "the same model in PyTorch + torchvision, `ImageFolder` + `DataLoader` "
           f"({plan.get('workers', '?')} workers, on CUDA with `pin_memory` and persistent workers; decoding and "
           "augmentation per image on PIL images every epoch), `torch.autocast` for bf16, cuDNN's autotuner on; "
           f"its ceiling is the same model on a batch already on {where}, its loop as the user's (`loss.item()` "
           "every step), synchronized before every clock reading. Ratios: tabby ÷ peer (above 1: tabby is "
           "faster).", "",
           table(["model", "setting", "tabby e2e", "tabby epoch (2,000 images)", "tabby ceiling",
                  "tabby e2e ÷ ceiling", "peer e2e", "peer ceiling", "peer e2e ÷ ceiling", "tabby ÷ peer (e2e)",
                  "tabby ÷ peer (ceiling)"], rows), "",
           "Per epoch, and what ran (wall = whole process: start-up, CUDA set-up, decoding, every epoch):", "",
           table(["model", "setting", "tabby epochs (images/s)", "peer epochs (images/s)", "tabby wall",
                  "tabby decode", "tabby recorded", "ceiling ran", "peer ran", "peer wall", "status"], detail), ""]
    lines = [e["command"] + ("" if e.get("ok") else "    # " + status(e)) for e in cmds if e and e.get("command")]
    out += ["Commands (from the repository root):", "", "```sh", *lines, "```", ""]
    return out


def pets(res):
    p = res.get("pets")
    if not p:
        return []
    out = ["### Tutorial experiment on the GPU (`tabby run`, PetImages 40/10/10 %)", ""]
    if p.get("error"):
        return out + [f"Not run: {p['error']}", ""]
    out += [f"`{p.get('command', '?')}` — {status(p)}, {secs(p.get('wall_seconds'))} wall. The experiment is "
            f"`{p.get('source')}` with its data pointed at the carried slices (`train` = `train[:40%]`, "
            "`validation` = `train[40%:50%]`, `test` = `train[50%:60%]` of the whole PetImages folder: the same "
            "files, selected by `bench/gpu/tfds_slices.py`); `--device cuda`, precision auto (bf16 on CUDA).", ""]
    if p.get("comparison_md"):
        out += [p["comparison_md"].strip(), ""]
    rows = []
    for name, r in (p.get("runs") or {}).items():
        h = r.get("history") or []
        sec = [x["seconds"] for x in h if isinstance(x.get("seconds"), float)]
        last = h[-1] if h else {}
        rows.append([name, len(h), secs(sum(sec)) if sec else "—", secs(sorted(sec)[len(sec) // 2]) if sec else "—",
                     acc(last.get("val_accuracy")),
                     acc((((r.get("run") or {}).get("results") or {}).get("test") or {}).get("accuracy"))])
    if rows:
        out += [table(["run", "epochs", "training time", "median epoch", "last val_accuracy", "test accuracy"], rows),
                ""]
    return out


def section(*results):
    out = header(results[0])
    for i, res in enumerate(results):
        if i:
            out += [f"*Next call:* `bench/gpu/run.sh{' --pets' if res.get('pets') else ''}`, "
                    f"{res.get('started', '?')} → {res.get('updated', '?')}, GPU "
                    f"{((res.get('machine', {}).get('peer_torch') or {}).get('gpu') or {}).get('name', '?')}.", ""]
        out += build_and_tests(res) + training(res) + pets(res)
    return "\n".join(out)


def document(res):
    return "# tabby GPU kit results\n\n" + section(res) + "\n"


def insert(path, block):
    """Replaces the GPU block of PATH (or appends it); the rest stays byte for byte."""
    text = open(path).read() if os.path.exists(path) else ""
    new = BEGIN + "\n" + block.rstrip("\n") + "\n" + END
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + new + tail
    else:
        text = text.rstrip("\n") + "\n\n" + new + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", help="results.json of bench/gpu/run.sh (several: one section)")
    p.add_argument("--into", help="a markdown file (bench/RESULTS.md) whose GPU block to replace")
    a = p.parse_args()
    results = []
    for path in a.results:
        with open(path) as f:
            results.append(json.load(f))
    text = section(*results)
    if a.into:
        insert(a.into, text)
        print(f"GPU section written into {a.into}", file=sys.stderr)
    else:
        print("# tabby GPU kit results\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
