"""Python peer for input-pipeline throughput: torchvision ImageFolder +
DataLoader delivering shuffled batches of (B,3,S,S) float tensors, what
bench_pipeline times in tabby (first pass, then epochs from its cache).

The peer has no cache: every epoch opens, decodes and resizes every file again
(ImageFolder's PIL loader, Resize((S,S)), ToTensor), in NUM_WORKERS processes;
0 workers decodes in the main process. The consumer only takes each batch.
Workers are not persistent (DataLoader's default), so each epoch includes
their start-up, as a user's loop sees it. Prints one JSON line on stdout.
"""
import argparse
import time

from peer_common import configure_threads, emit, facts, log

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchvision import datasets, transforms  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir")
    p.add_argument("--size", type=int, default=150)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    threads = configure_threads(a.threads)
    tf = transforms.Compose([transforms.Resize((a.size, a.size)), transforms.ToTensor()])
    ds = datasets.ImageFolder(a.dir, transform=tf)
    for path, _ in ds.samples:  # warm the page cache, as bench_pipeline does
        with open(path, "rb") as fh:
            fh.read()
    out = {"peer": "torchvision", "dir": a.dir, "images": len(ds), "size": a.size, "batch": a.batch,
           "runs": [], **facts(threads)}
    torch.manual_seed(1337)
    for w in a.workers:
        loader = DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=w)
        epochs = []
        for e in range(1, a.epochs + 1):
            t0 = time.monotonic()
            seen = 0
            checksum = 0.0
            for x, y in loader:  # x is (B,3,S,S) float in [0,1]
                seen += len(y)
                checksum += x[0, 0, 0, 0].item()  # keeps the batch observably used
            s = time.monotonic() - t0
            epochs.append({"epoch": e, "seconds": s, "images": seen, "images_per_s": seen / s})
            log(f"peer pipeline, {w} workers, epoch {e}: {s:.2f} s, {seen / s:.0f} images/s")
        out["runs"].append({"workers": w, "epochs": epochs,
                            "best_images_per_s": max(r["images_per_s"] for r in epochs)})
    best = max(out["runs"], key=lambda r: r["best_images_per_s"])
    out["best_workers"] = best["workers"]
    emit(out)


if __name__ == "__main__":
    main()
