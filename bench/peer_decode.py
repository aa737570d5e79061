"""Python peer for decode + resize throughput: what bench_decode times in tabby,
done with PIL the way Python input pipelines do it.

Modes:
  pil    Image.open + convert("RGB") + resize((S,S), BILINEAR): what
         torchvision's ImageFolder loader + Resize((S,S)) do per file
  draft  the same after Image.draft("RGB", (S,S)): libjpeg's DCT-domain
         downscale (1/2, 1/4, 1/8 while the image stays >= S), PIL's
         counterpart of tabby's reduced-scale decoding: the fair second peer
Each on 1 process and on each --procs count (a multiprocessing Pool, the files
split into interleaved shares, as DataLoader workers or tabby's threads share
them; the pool is started before the clock). Best of --passes timed passes, after
an untimed pass that warms the page cache. Prints one JSON line on stdout.
"""
import argparse
import multiprocessing as mp
import os
import time

from peer_common import emit, facts, log

from PIL import Image  # noqa: E402
import PIL  # noqa: E402


def image_files(folder):
    files = []
    for root, _, names in os.walk(folder):
        files += [os.path.join(root, n) for n in names if n.lower().endswith((".jpg", ".jpeg", ".png"))]
    return sorted(files)


def decode_share(args):
    """Decodes and resizes every file of one share; returns the failure count."""
    files, size, mode = args
    failures = 0
    for f in files:
        try:
            with Image.open(f) as im:
                if mode == "draft":
                    im.draft("RGB", (size, size))
                im.convert("RGB").resize((size, size), Image.BILINEAR)
        except Exception:  # noqa: BLE001 - counted like tabby's DecodeError
            failures += 1
    return failures


def time_mode(files, size, mode, procs, passes, pool):
    shares = [(files[i::procs], size, mode) for i in range(procs)]
    seconds = []
    failures = 0
    for _ in range(passes):
        t0 = time.monotonic()
        failures = sum(pool.map(decode_share, shares, chunksize=1)) if pool else decode_share(shares[0])
        seconds.append(time.monotonic() - t0)
    best = min(seconds)
    return {"mode": mode, "procs": procs, "size": size, "images": len(files), "failures": failures,
            "seconds": seconds, "best_seconds": best, "images_per_s": len(files) / best,
            "ms_per_image": best * 1000 / len(files)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir")
    p.add_argument("--size", type=int, action="append")
    p.add_argument("--procs", type=int, action="append", help="process counts besides 1")
    p.add_argument("--passes", type=int, default=2)
    a = p.parse_args()
    files = image_files(a.dir)
    if not files:
        raise SystemExit(f"error: no images under {a.dir}")
    for f in files:  # warm the page cache
        with open(f, "rb") as fh:
            fh.read()
    sizes = a.size or [150]
    procs_list = sorted({1, *(a.procs or [])})
    out = {"peer": "pil", "pillow": PIL.__version__, "dir": a.dir, "images": len(files), "passes": a.passes,
           "results": [], **facts(1)}
    for procs in procs_list:
        pool = mp.Pool(procs) if procs > 1 else None
        if pool:
            pool.map(decode_share, [([], 1, "pil")] * procs)  # workers up before the clock
        for size in sizes:
            for mode in ("pil", "draft"):
                r = time_mode(files, size, mode, procs, a.passes, pool)
                out["results"].append(r)
                log(f"peer PIL {mode} {size}px, {procs} process(es): {r['images_per_s']:.0f} images/s")
        if pool:
            pool.close()
            pool.join()
    emit(out)


if __name__ == "__main__":
    main()
