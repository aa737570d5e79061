#!/usr/bin/python3
"""Build the held-out evaluation set for accuracy claims.

Microsoft PetImages (shared/datasets/pet_images/PetImages/{Cat,Dog}) and
cats_and_dogs_filtered (shared/datasets/cats_and_dogs_filtered/{train,validation}/{cats,dogs})
both come from the Kaggle Dogs vs Cats photos, so some PetImages photos are the very
images a model was trained or validated on. This script drops every PetImages photo that
is a near-duplicate of any cats_and_dogs_filtered photo (train AND validation), then
draws a seeded, class-balanced sample of what is left and writes it as a CSV that tabby
reads as a dataset (header `path,label`, absolute paths, labels `cats` / `dogs`: the
class names of cats_and_dogs_filtered, so a model trained there maps directly).

Near-duplicate test: each image converted to grey, resized to 24x24, flattened,
mean-subtracted and L2-normalised; a PetImages photo whose correlation (dot product of
those vectors) with any filtered photo exceeds --threshold (0.95) is excluded.

Unreadable files (PIL verify or full decode fails, empty files, formats tabby does not
decode) are skipped and counted. Grey, CMYK, palette and RGBA images are converted to RGB
before the grey signature is taken.

    /usr/bin/python3 experiments/heldout_petimages.py            # writes experiments/out/heldout_petimages.{csv,json}
    /usr/bin/python3 experiments/heldout_petimages.py --count 500 --seed 7 --out /tmp/h.csv

Uses only the Python standard library, numpy and PIL.
"""

import argparse
import csv
import json
import multiprocessing
import os
import sys
import time
import warnings

import numpy as np
from PIL import Image

SIDE = 24
# Formats tabby's decoders read (src/tabby/image: jpeg, png, bmp, gif).
TABBY_FORMATS = {"JPEG", "PNG", "BMP", "GIF"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}
# PetImages folder -> label used by cats_and_dogs_filtered.
PET_CLASSES = [("Cat", "cats"), ("Dog", "dogs")]
FILTERED_SPLITS = ["train", "validation"]
FILTERED_CLASSES = ["cats", "dogs"]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_shared(flag):
    """--shared, else $TABBY_SHARED, else ../shared beside the repository."""
    candidates = []
    if flag:
        candidates.append(("--shared", flag))
    else:
        if os.environ.get("TABBY_SHARED"):
            candidates.append(("$TABBY_SHARED", os.environ["TABBY_SHARED"]))
        candidates.append(("../shared beside the repository", os.path.join(os.path.dirname(REPO), "shared")))
    for _, path in candidates:
        if os.path.isdir(os.path.join(path, "datasets")):
            return os.path.abspath(path)
    tried = ", ".join(f"{how} = {path}" for how, path in candidates)
    sys.exit(f"error: no shared data folder found (tried {tried}); "
             "pass --shared DIR or set TABBY_SHARED to the folder holding datasets/")


def list_images(folder):
    if not os.path.isdir(folder):
        sys.exit(f"error: folder '{folder}' does not exist")
    names = [n for n in os.listdir(folder)
             if os.path.splitext(n)[1].lower() in IMAGE_EXTS and not n.startswith(".")]

    def key(n):  # numeric order for N.jpg, name order otherwise
        stem = os.path.splitext(n)[0]
        tail = stem.rsplit(".", 1)[-1]
        return (0, int(tail), n) if tail.isdigit() else (1, 0, n)

    return [os.path.join(folder, n) for n in sorted(names, key=key)]


def signature(path):
    """(vector or None, status) for one file.

    status: 'ok' (JPEG), 'ok:<FORMAT>' (another format tabby reads), or why it is skipped:
    'empty', 'corrupt', 'blank' (a single flat colour), 'format:<FORMAT>'.
    """
    try:
        if os.path.getsize(path) == 0:
            return None, "empty"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # truncated-EXIF and similar chatter
            with Image.open(path) as im:
                fmt = im.format
                im.verify()
            if fmt not in TABBY_FORMATS:
                return None, f"format:{fmt}"
            with Image.open(path) as im:
                im.load()
                if im.mode != "RGB":  # L, CMYK, P, RGBA, ...
                    im = im.convert("RGB")
                if im.width < 1 or im.height < 1:
                    return None, "corrupt"
                grey = im.convert("L").resize((SIDE, SIDE), Image.BILINEAR)
        v = np.asarray(grey, dtype=np.float32).reshape(-1)
        v = v - v.mean()
        norm = float(np.linalg.norm(v))
        if norm < 1e-3:  # one flat colour (PetImages has a blank white one): nothing to classify
            return None, "blank"
        return v / norm, "ok" if fmt == "JPEG" else f"ok:{fmt}"
    except Exception:  # noqa: BLE001 - any decode failure means unreadable
        return None, "corrupt"


def signatures(paths, workers, what):
    t0 = time.time()
    if workers > 1:
        with multiprocessing.Pool(workers) as pool:
            results = pool.map(signature, paths, chunksize=64)
    else:
        results = [signature(p) for p in paths]
    print(f"  {what}: {len(paths)} files decoded in {time.time() - t0:.1f} s", flush=True)
    return results


def orientations(vectors):
    """The 8 rotations and mirror images of each 24x24 signature, stacked (variant-major).

    Mean and norm do not change under a permutation of pixels, so the variants stay
    normalised. Variant 0 is the image as it is."""
    grids = vectors.reshape(-1, SIDE, SIDE)
    out = []
    for mirrored in (grids, grids[:, :, ::-1]):
        for k in range(4):
            out.append(np.rot90(mirrored, k, axes=(1, 2)).reshape(len(vectors), -1))
    return np.ascontiguousarray(np.concatenate(out))


def max_correlation(queries, reference, chunk=2048):
    """For each query row: the largest dot product with any reference row, and its index."""
    best = np.full(len(queries), -np.inf, dtype=np.float32)
    arg = np.zeros(len(queries), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        block = queries[start:start + chunk] @ reference.T  # (chunk, n_reference)
        arg[start:start + chunk] = block.argmax(axis=1)
        best[start:start + chunk] = block.max(axis=1)
    return best, arg


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--shared", help="shared data folder (default: $TABBY_SHARED, else ../shared beside the repo)")
    p.add_argument("--out", default=os.path.join(REPO, "experiments", "out", "heldout_petimages.csv"),
                   help="CSV to write; the counts go to the same name with .json")
    p.add_argument("--count", type=int, default=2000, help="images to sample, half per class")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--threshold", type=float, default=0.95, help="correlation above which a photo is a near-duplicate")
    p.add_argument("--workers", type=int, default=2, help="decoding processes")
    p.add_argument("--no-orientations", action="store_true",
                   help="only the issue's test; by default a photo whose correlation with a rotated (90/180/270) "
                        "or mirrored filtered photo exceeds the threshold is excluded too, and counted apart")
    args = p.parse_args()
    if args.count < 2:
        sys.exit("error: --count must be at least 2")

    shared = find_shared(args.shared)
    pet_root = os.path.join(shared, "datasets", "pet_images", "PetImages")
    filtered_root = os.path.join(shared, "datasets", "cats_and_dogs_filtered")
    print(f"shared data: {shared}")

    # 1. Signatures of every cats_and_dogs_filtered photo (train and validation).
    ref_paths, ref_vecs = [], []
    ref_unreadable = 0
    for split in FILTERED_SPLITS:
        for cls in FILTERED_CLASSES:
            paths = list_images(os.path.join(filtered_root, split, cls))
            for path, (v, status) in zip(paths, signatures(paths, args.workers, f"{split}/{cls}")):
                if v is None:
                    ref_unreadable += 1
                    continue
                ref_paths.append(path)
                ref_vecs.append(v)
    reference = np.stack(ref_vecs)
    n_ref = len(ref_paths)
    variants = reference if args.no_orientations else orientations(reference)  # row v * n_ref + j = variant v of j

    # 2. Signatures of PetImages, near-duplicate test against the whole reference.
    counts = {"threshold": args.threshold, "seed": args.seed, "signature": f"grey {SIDE}x{SIDE}, mean-subtracted, L2-normalised",
              "filtered_reference_images": len(ref_paths), "filtered_unreadable": ref_unreadable,
              "orientations_checked": not args.no_orientations,
              "petimages_read": 0, "unreadable": 0, "near_duplicates": 0, "near_duplicates_rotated_or_mirrored": 0,
              "kept": 0, "sampled": 0, "per_class": {}}
    kept = {}
    duplicates = []  # (pet path, pet class, correlation, matched filtered path, variant)
    variant_names = ["as is", "rot90", "rot180", "rot270", "mirror", "mirror+rot90", "mirror+rot180", "mirror+rot270"]
    for folder, label in PET_CLASSES:
        paths = list_images(os.path.join(pet_root, folder))
        results = signatures(paths, args.workers, f"PetImages/{folder}")
        c = {"files": len(paths), "unreadable": 0, "unreadable_detail": {}, "non_jpeg_kept": 0,
             "near_duplicates": 0, "near_duplicates_of_other_class": 0,
             "near_duplicates_rotated_or_mirrored": 0, "kept": 0, "sampled": 0}
        good_paths, good_vecs = [], []
        for path, (v, status) in zip(paths, results):
            if v is None:
                c["unreadable"] += 1
                c["unreadable_detail"][status] = c["unreadable_detail"].get(status, 0) + 1
                continue
            if status != "ok":
                c["non_jpeg_kept"] += 1
            good_paths.append(path)
            good_vecs.append(v)
        if not good_vecs:
            sys.exit(f"error: no readable image in {os.path.join(pet_root, folder)}")
        queries = np.stack(good_vecs)
        best, arg = max_correlation(queries, reference)  # the test: as is
        best_any, arg_any = max_correlation(queries, variants)
        kept[label] = []
        for path, corr, j, corr_any, k in zip(good_paths, best, arg, best_any, arg_any):
            if corr > args.threshold:
                c["near_duplicates"] += 1
                match, variant = ref_paths[j], 0
            elif corr_any > args.threshold:
                c["near_duplicates_rotated_or_mirrored"] += 1
                corr, match, variant = corr_any, ref_paths[k % n_ref], k // n_ref
            else:
                kept[label].append(path)
                continue
            if os.path.basename(os.path.dirname(match)) != label:
                c["near_duplicates_of_other_class"] += 1
            duplicates.append((path, label, float(corr), match, variant_names[variant]))
        c["kept"] = len(kept[label])
        counts["per_class"][label] = c
        counts["petimages_read"] += c["files"]
        counts["unreadable"] += c["unreadable"]
        counts["near_duplicates"] += c["near_duplicates"]
        counts["near_duplicates_rotated_or_mirrored"] += c["near_duplicates_rotated_or_mirrored"]
        counts["kept"] += c["kept"]

    # 3. Seeded, class-balanced sample; rows shuffled (seeded) so any prefix mixes both classes.
    want = {"cats": args.count // 2, "dogs": args.count - args.count // 2}
    rng = np.random.RandomState(args.seed)
    rows = []
    for _, label in PET_CLASSES:
        pool = kept[label]
        if len(pool) < want[label]:
            sys.exit(f"error: only {len(pool)} {label} left after filtering, fewer than the {want[label]} asked for")
        pick = rng.choice(len(pool), size=want[label], replace=False)
        rows += [(pool[i], label) for i in sorted(pick)]
        counts["per_class"][label]["sampled"] = want[label]
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    counts["sampled"] = len(rows)

    out_csv = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out_csv), exist_ok=True)
    with open(out_csv, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["path", "label"])
        w.writerows(rows)
    dup_csv = os.path.splitext(out_csv)[0] + "_duplicates.csv"
    with open(dup_csv, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["path", "label", "correlation", "matches", "orientation"])
        w.writerows((a, b, f"{c:.4f}", d, e) for a, b, c, d, e in sorted(duplicates))
    counts["csv"] = out_csv
    counts["duplicates_csv"] = dup_csv
    out_json = os.path.splitext(out_csv)[0] + ".json"
    with open(out_json, "w") as f:
        json.dump(counts, f, indent=2)
        f.write("\n")

    print(f"PetImages read:   {counts['petimages_read']}")
    print(f"unreadable/blank: {counts['unreadable']}")
    print(f"near-duplicates:  {counts['near_duplicates']} (correlation > {args.threshold} with one of "
          f"{len(ref_paths)} cats_and_dogs_filtered photos)")
    if not args.no_orientations:
        print(f"  + rotated/mirrored near-duplicates: {counts['near_duplicates_rotated_or_mirrored']}")
    for label, c in counts["per_class"].items():
        print(f"  {label}: {c['files']} files, {c['unreadable']} unreadable {c['unreadable_detail'] or ''}, "
              f"{c['near_duplicates']} near-duplicates + {c['near_duplicates_rotated_or_mirrored']} rotated/mirrored "
              f"({c['near_duplicates_of_other_class']} matching the other class), "
              f"{c['kept']} kept, {c['sampled']} sampled")
    print(f"kept:             {counts['kept']}")
    print(f"sampled:          {counts['sampled']} (seed {args.seed})")
    print(f"wrote {out_csv}\n      {out_json}\n      {dup_csv}")


if __name__ == "__main__":
    main()
