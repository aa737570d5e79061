"""Shared bits of the Python peers: thread set-up, the allocator in use, JSON out.

The peers run under /usr/bin/python3 (Debian's python3-torch 1.13 and
python3-torchvision 0.14). Debian's torch starts with 1 intra-op thread on
this machine; a user who cares about speed sets it to the core count, and so
do the peers (tabby uses all cores too), so both sides compute on the same
cores.
"""
import json
import os
import sys
import time

T_PROCESS_START = time.monotonic()  # as early as the peer can note it

import torch  # noqa: E402


def configure_threads(threads=0):
    n = threads if threads > 0 else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def allocator():
    """'tcmalloc' when the peer runs with tcmalloc preloaded, else glibc's malloc."""
    return "tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "glibc"


def facts(threads):
    return {"allocator": allocator(), "threads": threads, "torch": torch.__version__,
            "python": sys.version.split()[0], "loadavg_start": os.getloadavg()[0]}


def emit(result):
    """The result as one JSON line on stdout (progress goes to stderr)."""
    result["loadavg_end"] = os.getloadavg()[0]
    print(json.dumps(result), flush=True)


def log(msg):
    print(msg, file=sys.stderr, flush=True)
