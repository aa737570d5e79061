#!/usr/bin/env python3
"""Fetches the CUDA LibTorch of PyPI's torch wheel for a C++ build.

    fetch_libtorch.py --dest DIR --cuda-lib-dirs DIR[:DIR...] [--wheels DIR] [--wheelhouse DIR...]

Writes DIR/torch/{lib,include,share/cmake} and, for each CUDA runtime library
that libtorch_cuda.so needs and the CUDA toolkit on this machine lacks, the
library from its NVIDIA wheel under DIR/nvidia/<package>/lib. That is the
layout of the wheels in site-packages, so the RUNPATH the wheels carry
($ORIGIN/../../nvidia/<package>/lib) finds those libraries with no
LD_LIBRARY_PATH.

Only Python's standard library is used (Debian's python3 may lack pip). Every
wheel is pinned by file name and SHA-256; a download that does not match is
discarded. A finished tree holds DIR/.complete (the wheels' digests); with
it in place nothing is fetched again. Prints one line per step on stderr and,
on stdout, the seconds spent downloading and extracting.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
import zipfile

TORCH = {
    "project": "torch",
    "version": "2.11.0",
    # The C++ libraries are the same in every CPython variant of the wheel; this
    # one is Debian 12's python (3.11), so pip may share the file.
    "file": "torch-2.11.0-cp311-cp311-manylinux_2_28_x86_64.whl",
    "sha256": "7aa2f9bbc6d4595ba72138026b2074be1233186150e9292865e04b7a63b8c67a",
}

# What torch 2.11.0's METADATA pins for libraries a CUDA toolkit install may
# not have. soname: what libtorch_cuda.so (or libtorch_nvshmem.so) needs.
EXTRA_LIBS = [
    {
        "soname": "libcusparseLt.so.0",
        "project": "nvidia-cusparselt-cu13",
        "version": "0.8.0",
        "file": "nvidia_cusparselt_cu13-0.8.0-py3-none-manylinux2014_x86_64.whl",
        "sha256": "25e30a8a7323935d4ad0340b95a0b69926eee755767e8e0b1cf8dd85b197d3fd",
        "member": "nvidia/cusparselt/lib/libcusparseLt.so.0",
    },
    {
        "soname": "libnvshmem_host.so.3",
        "project": "nvidia-nvshmem-cu13",
        "version": "3.4.5",
        "file": "nvidia_nvshmem_cu13-3.4.5-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        "sha256": "290f0a2ee94c9f3687a02502f3b9299a9f9fe826e6d0287ee18482e78d495b80",
        "member": "nvidia/nvshmem/lib/libnvshmem_host.so.3",
    },
    {
        # cuda-toolkit[cufile]==13.0.2 resolves to this wheel.
        "soname": "libcufile.so.0",
        "project": "nvidia-cufile",
        "version": "1.15.1.6",
        "file": "nvidia_cufile-1.15.1.6-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        "sha256": "08a3ecefae5a01c7f5117351c64f17c7c62efa5fffdbe24fc7d298da19cd0b44",
        "member": "nvidia/cu13/lib/libcufile.so.0",
    },
]

# libtorch_python.so and the Python package are of no use to a C++ program;
# bin/ holds protoc and torch_shm_manager, which nothing here runs.
TORCH_KEEP = re.compile(r"^torch/(lib/[^/]+\.so[.0-9]*|include/.+|share/cmake/.+)$")
TORCH_SKIP = {"torch/lib/libtorch_python.so"}


def log(msg):
    print(f"fetch-libtorch: {msg}", file=sys.stderr, flush=True)


def fail(msg, hint):
    print(f"error: {msg}", file=sys.stderr)
    print(f"hint: {hint}", file=sys.stderr)
    sys.exit(1)


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def index_url(index, project):
    return f"{index.rstrip('/')}/{project}/"


def find_url(index, wheel):
    """The download URL of wheel['file'] from the simple index (PEP 691 JSON, else PEP 503 HTML)."""
    req = urllib.request.Request(
        index_url(index, wheel["project"]),
        headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        body = r.read()
        kind = r.headers.get("Content-Type", "")
    if "json" in kind:
        for f in json.loads(body).get("files", []):
            if f.get("filename") == wheel["file"]:
                listed = f.get("hashes", {}).get("sha256")
                if listed and listed != wheel["sha256"]:
                    fail(f"the index lists {wheel['file']} with SHA-256 {listed}, not the pinned {wheel['sha256']}",
                         "the file on the index changed; check before updating the pin in scripts/cuda/fetch_libtorch.py")
                return urllib.request.urljoin(req.full_url, f["url"])
    else:
        for href in re.findall(rb'href="([^"]+)"', body):
            url = href.decode().replace("&amp;", "&")
            if url.split("#")[0].rsplit("/", 1)[-1] == wheel["file"]:
                return urllib.request.urljoin(req.full_url, url.split("#")[0])
    fail(f"{wheel['file']} is not on {index_url(index, wheel['project'])}",
         "is TABBY_PYPI_SIMPLE a PyPI mirror? The wheel may also be put into a folder named by TABBY_WHEELHOUSE")


def download(url, path, expected, attempts=3):
    tmp = path + ".part"
    for attempt in range(1, attempts + 1):
        h = hashlib.sha256()
        got = 0
        try:
            with urllib.request.urlopen(url, timeout=120) as r, open(tmp, "wb") as out:
                total = int(r.headers.get("Content-Length") or 0)
                next_report = 0.25
                while True:
                    block = r.read(1 << 20)
                    if not block:
                        break
                    out.write(block)
                    h.update(block)
                    got += len(block)
                    if total and got / total >= next_report and got < total:
                        log(f"  {os.path.basename(path)}: {got >> 20} of {total >> 20} MiB")
                        next_report += 0.25
        except (urllib.error.URLError, OSError) as e:
            log(f"  attempt {attempt}: {e}")
            continue
        if h.hexdigest() == expected:
            os.replace(tmp, path)
            return got
        log(f"  attempt {attempt}: SHA-256 {h.hexdigest()} instead of {expected}")
    if os.path.exists(tmp):
        os.remove(tmp)
    fail(f"could not download {url} with the pinned SHA-256 ({attempts} attempts)",
         "check the network access to PyPI (files.pythonhosted.org); a partial file is never used")


def obtain(wheel, wheels_dir, wheelhouses, index):
    """Path of the verified wheel, downloaded when no folder has it."""
    for folder in [wheels_dir] + wheelhouses:
        candidate = os.path.join(folder, wheel["file"])
        if os.path.isfile(candidate):
            if sha256_of(candidate) == wheel["sha256"]:
                log(f"{wheel['file']}: found in {folder}")
                return candidate, 0
            log(f"{candidate}: SHA-256 does not match the pin, ignored")
    os.makedirs(wheels_dir, exist_ok=True)
    url = find_url(index, wheel)
    path = os.path.join(wheels_dir, wheel["file"])
    start = time.monotonic()
    log(f"{wheel['file']}: downloading {url}")
    size = download(url, path, wheel["sha256"])
    took = max(time.monotonic() - start, 1e-3)
    log(f"{wheel['file']}: {size / 2**20:.0f} MiB in {took:.0f}s ({size / 2**20 / took:.1f} MiB/s), SHA-256 ok")
    return path, size


def extract(whl, names, dest):
    with zipfile.ZipFile(whl) as z:
        for name in names:
            info = z.getinfo(name)
            target = os.path.join(dest, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            # Shared libraries must stay executable; zip keeps the Unix mode in the upper bits.
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(target, mode if mode else 0o644)


def toolkit_has(soname, cuda_lib_dirs):
    return any(os.path.exists(os.path.join(d, soname)) for d in cuda_lib_dirs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", required=True, help="where the tree goes (replaced when incomplete)")
    ap.add_argument("--cuda-lib-dirs", required=True, help="the CUDA toolkit's library folders, ':'-separated")
    ap.add_argument("--wheels", help="download folder (default DEST/../wheels)")
    ap.add_argument("--wheelhouse", action="append", default=[], help="folder to look in before downloading")
    ap.add_argument("--keep-wheels", action="store_true", help="keep the downloaded wheels after extracting")
    ap.add_argument("--index", default=os.environ.get("TABBY_PYPI_SIMPLE", "https://pypi.org/simple"))
    args = ap.parse_args()

    dest = os.path.abspath(args.dest)
    wheels_dir = os.path.abspath(args.wheels or os.path.join(os.path.dirname(dest), "wheels"))
    cuda_lib_dirs = [d for d in args.cuda_lib_dirs.split(":") if d]
    wanted = [TORCH] + [w for w in EXTRA_LIBS if not toolkit_has(w["soname"], cuda_lib_dirs)]
    stamp_text = "".join(f"{w['file']} {w['sha256']}\n" for w in wanted)

    stamp = os.path.join(dest, ".complete")
    if os.path.isfile(stamp) and open(stamp).read() == stamp_text:
        log(f"{dest}: already complete")
        print("download_s=0 extract_s=0 downloaded_mib=0")
        return

    for w in EXTRA_LIBS:
        if w not in wanted:
            log(f"{w['soname']}: in the CUDA toolkit, not fetched")

    t0 = time.monotonic()
    fetched = [(w, *obtain(w, wheels_dir, args.wheelhouse, args.index)) for w in wanted]
    t1 = time.monotonic()

    # Extracted beside the destination and renamed at the end, so an
    # interrupted run never leaves a tree that looks complete.
    work = dest + ".partial"
    shutil.rmtree(work, ignore_errors=True)
    for w, path, _ in fetched:
        with zipfile.ZipFile(path) as z:
            if w is TORCH:
                names = [n for n in z.namelist()
                         if TORCH_KEEP.match(n) and n not in TORCH_SKIP and not n.endswith("/")]
            else:
                names = [w["member"]]
        log(f"{w['file']}: extracting {len(names)} files")
        extract(path, names, work)
    with open(os.path.join(work, ".complete"), "w") as f:
        f.write(stamp_text)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(work, dest)
    t2 = time.monotonic()

    if not args.keep_wheels:
        for _, path, size in fetched:
            if size and os.path.dirname(path) == wheels_dir:
                os.remove(path)
    downloaded = sum(size for _, _, size in fetched)
    print(f"download_s={t1 - t0:.0f} extract_s={t2 - t1:.0f} downloaded_mib={downloaded / 2**20:.0f}")


if __name__ == "__main__":
    main()
