"""tabby's TFDS-style slices (`train[:40%]`, `train[40%:50%]`, ...) computed in
Python, so that a carried copy of a data set can hold exactly the files that
tabby's split would select from the whole folder.

It follows, step for step, src/tabby/dataset/split_spec.cpp (resolve_split,
slice_range), src/tabby/dataset/shuffle.cpp (seeded_permutation,
uniform_below over std::mt19937_64), src/tabby/util/rng.h (splitmix64,
derive_seed) and the folder walk of src/tabby/dataset/folder.cpp (class
folders sorted; files below each, not hidden, with an image extension, sorted
by (folder, name)). A slice indexes a fixed permutation of the whole split and
returns its samples in scan order.

  python3 bench/gpu/tfds_slices.py ROOT 'train[:40%]'            # prints the files, one a line
  python3 bench/gpu/tfds_slices.py ROOT 'train[:40%]' --counts   # per-class counts
  python3 bench/gpu/tfds_slices.py ROOT 'train[:40%]=train' 'train[40%:50%]=validation' \\
      --copy-to DEST                                                 # DEST/train/<class>/..., DEST/validation/...

Only the plain-folder case is handled (ROOT holds the class folders, its one
split is "train", as Microsoft PetImages), with percent or count bounds.
"""
import argparse
import os
import re
import shutil
import sys

MASK = (1 << 64) - 1
EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")  # FolderScanOptions::extensions
SLICE_ORDER_SEED = 0x7461_6262_7953_4C43  # kSliceOrderSeed
SLICE_ORDER_PURPOSE = 0x534C_4943  # SeedPurpose::slice_order ("SLIC")


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def derive_seed(seed, path):
    h = splitmix64(seed & MASK)
    for p in path:
        h = splitmix64(h ^ splitmix64((p + 0x632BE59BD9B4E019) & MASK))
    return h


class MT19937_64:
    """std::mt19937_64 (its output sequence is fixed by the C++ standard)."""
    N, M = 312, 156
    A, UPPER, LOWER = 0xB5026F5AA96619E9, 0xFFFFFFFF80000000, 0x7FFFFFFF

    def __init__(self, seed):
        self.mt = [0] * self.N
        self.mt[0] = seed & MASK
        for i in range(1, self.N):
            prev = self.mt[i - 1]
            self.mt[i] = (6364136223846793005 * (prev ^ (prev >> 62)) + i) & MASK
        self.index = self.N

    def _twist(self):
        mt = self.mt
        for i in range(self.N):
            x = (mt[i] & self.UPPER) | (mt[(i + 1) % self.N] & self.LOWER)
            xa = x >> 1
            if x & 1:
                xa ^= self.A
            mt[i] = mt[(i + self.M) % self.N] ^ xa
        self.index = 0

    def __call__(self):
        if self.index >= self.N:
            self._twist()
        y = self.mt[self.index]
        self.index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & MASK


def uniform_below(gen, bound):
    if bound <= 1:
        return 0
    threshold = ((1 << 64) - bound) % bound
    while True:
        draw = gen()
        if draw >= threshold:
            return draw % bound


def seeded_permutation(n, seed):
    order = list(range(n))
    gen = MT19937_64(seed)
    for i in range(n, 1, -1):
        j = uniform_below(gen, i)
        order[i - 1], order[j] = order[j], order[i - 1]
    return order


SPEC = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*(?:\[\s*(-?[\d_.]*)\s*(%?)\s*:\s*(-?[\d_.]*)\s*(%?)\s*\])?\s*$")


def parse_spec(text):
    """NAME or NAME[A:B] / NAME[A%:B%] -> (name, from, to, percent)."""
    m = SPEC.match(text)
    if not m:
        raise ValueError(f"bad split spec {text!r}")
    name, a, pa, b, pb = m.groups()
    num = (lambda v: float(v.replace("_", "")) if v else None)
    return name, num(a), num(b), bool(pa or pb)


def slice_range(frm, to, percent, n):
    def index(bound):
        # std::nearbyint rounds halves to even, as Python's round() does.
        pos = float(round(bound * float(n) / 100.0)) if percent else bound
        pos = min(max(pos, -float(n)), float(n))
        i = int(pos)
        if i < 0:
            i = max(n + i, 0)
        return min(i, n)
    begin = index(frm) if frm is not None else 0
    end = index(to) if to is not None else n
    if begin > end:
        raise ValueError(f"slice ends before it starts ({begin} > {end})")
    return begin, end


def _hidden(name):
    return name.startswith(".")


def scan(root):
    """[(class_index, path)] in tabby's scan order, and the class names."""
    classes = sorted(e.name for e in os.scandir(root) if not _hidden(e.name) and e.is_dir())
    samples = []
    for label, cls in enumerate(classes):
        found = []
        pending = [os.path.join(root, cls)]
        while pending:
            d = pending.pop()
            for e in os.scandir(d):
                if _hidden(e.name):
                    continue
                if e.is_dir():
                    pending.append(e.path)
                elif e.is_file() and os.path.splitext(e.name)[1].lower() in EXTENSIONS:
                    found.append((os.fsencode(d), os.fsencode(e.name), e.path))
        found.sort(key=lambda f: (f[0], f[1]))
        samples += [(label, f[2]) for f in found]
    return samples, classes


def select(root, spec_text, samples=None):
    """The samples (class_index, path) that `spec_text` selects over ROOT, in scan order."""
    name, frm, to, percent = parse_spec(spec_text)
    if name != "train":
        raise ValueError(f"{spec_text}: a folder of class folders has the one split 'train'")
    if samples is None:
        samples = scan(root)[0]
    n = len(samples)
    order = seeded_permutation(n, derive_seed(SLICE_ORDER_SEED, [SLICE_ORDER_PURPOSE]))
    begin, end = slice_range(frm, to, percent, n)
    return [samples[i] for i in sorted(order[begin:end])]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", help="a folder of class folders (e.g. PetImages)")
    p.add_argument("specs", nargs="+", help="SPEC or SPEC=DEST_SPLIT_NAME (with --copy-to)")
    p.add_argument("--counts", action="store_true", help="print per-class counts instead of the files")
    p.add_argument("--copy-to", help="copy each slice's files to DEST/<split name>/<class>/")
    a = p.parse_args()
    samples, classes = scan(a.root)
    for item in a.specs:
        spec, _, dest_name = item.partition("=")
        chosen = select(a.root, spec, samples)
        if a.copy_to:
            dest_name = dest_name or parse_spec(spec)[0]
            for label, path in chosen:
                rel = os.path.relpath(path, os.path.join(a.root, classes[label]))
                target = os.path.join(a.copy_to, dest_name, classes[label], rel)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(path, target)
            print(f"{spec} -> {os.path.join(a.copy_to, dest_name)}: {len(chosen)} files "
                  + ", ".join(f"{c} {sum(1 for l, _ in chosen if l == i)}" for i, c in enumerate(classes)),
                  file=sys.stderr)
        elif a.counts:
            print(spec, len(chosen), " ".join(f"{c}={sum(1 for l, _ in chosen if l == i)}"
                                               for i, c in enumerate(classes)))
        else:
            for _, path in chosen:
                print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
