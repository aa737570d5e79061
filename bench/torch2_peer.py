#!/usr/bin/env python3
"""The benchmark peer on modern PyTorch: PyPI's torch 2.11.0 and torchvision
0.26.0 (their default wheels, built with CUDA 13, run here on the CPU with
their default allocator and threads) beside Debian's python3-torch 1.13.

  bench/torch2_peer.py setup     # install into $TABBY_CACHE_DIR/peer-torch2 (pip, pinned)
  bench/torch2_peer.py check     # print the versions it imports

The wheels go into a folder of their own with --no-deps (Debian's numpy and
PIL stay in use); the pure-Python packages torch needs come too. The CUDA
wheel's libraries load from the CUDA 13 toolkit (/usr/local/cuda) and from the
runtime libraries scripts/build-cuda.sh fetched (cuSPARSELt, NVSHMEM, cuFile
in its LibTorch cache); nothing runs on a GPU. bench/driver.py runs each peer
a third time with env() when the folder is set up.
"""
import glob
import os
import subprocess
import sys

PINS = ["torch==2.11.0", "torchvision==0.26.0", "sympy==1.14.0", "mpmath==1.4.1", "networkx==3.6.1",
        "jinja2==3.1.6", "markupsafe==3.0.4", "filelock==4.3.2", "fsspec==2026.9.0", "typing_extensions==4.16.0"]
PYTHON = "/usr/bin/python3"


def cache_dir():
    base = os.environ.get("TABBY_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tabby")
    return base


def folder():
    return os.environ.get("TABBY_TORCH2_PEER") or os.path.join(cache_dir(), "peer-torch2")


def library_dirs():
    """The CUDA runtime libraries the wheel's libtorch_cuda.so links."""
    dirs = [d for d in ("/usr/local/cuda/lib64",) if os.path.isdir(d)]
    libtorch = os.environ.get("TABBY_LIBTORCH_CACHE") or os.path.join(cache_dir(), "libtorch")
    for lib in ("cu13/lib", "cusparselt/lib", "nvshmem/lib"):
        dirs += sorted(glob.glob(os.path.join(libtorch, "torch-2.11.0-cu130", "nvidia", lib)))
    return dirs


def env():
    """Environment additions that make PYTHON import torch 2.11, or None when not set up."""
    if not os.path.isdir(os.path.join(folder(), "torch")):
        return None
    return {"PYTHONPATH": folder(), "LD_LIBRARY_PATH": ":".join(library_dirs())}


def check():
    extra = env()
    if extra is None:
        return None
    code = "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.get_num_threads())"
    r = subprocess.run([PYTHON, "-c", code], env=dict(os.environ, **extra), capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


def setup():
    target = folder()
    os.makedirs(target, exist_ok=True)
    subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", "--only-binary=:all:", "--target", target,
                    *PINS], check=True)
    versions = check()
    if not versions:
        sys.exit("torch2_peer: torch 2.11 does not import; are the CUDA 13 toolkit and "
                 "scripts/build-cuda.sh --fetch-only's libraries there?")
    print(f"torch2_peer: {versions} (torch, torchvision, threads) in {target}")


if __name__ == "__main__":
    if sys.argv[1:] == ["setup"]:
        setup()
    elif sys.argv[1:] == ["check"]:
        print(check() or "not set up: bench/torch2_peer.py setup")
    else:
        sys.exit(__doc__)
