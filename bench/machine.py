"""The facts a benchmark report needs to be read later: the machine (cores, CPU
model, memory, load at the start), software versions on both sides, and the
tabby revision measured.
"""
import os
import platform
import subprocess


def _cmd(argv, cwd=None):
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _packages(names):
    out = _cmd(["dpkg-query", "-W", "-f", "${Package} ${Version}\n", *names])
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def facts(root):
    revision = _cmd(["git", "rev-parse", "--short", "HEAD"], cwd=root)
    if _cmd(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root):
        revision += " (with uncommitted changes)"
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": round(_mem_gib(), 1),
        "kernel": platform.release(),
        "loadavg_start": os.getloadavg(),
        "tabby_revision": revision,
        "compiler": _cmd(["c++", "--version"]).splitlines()[0] if _cmd(["c++", "--version"]) else "",
        "packages": _packages(["libtorch-dev", "libjpeg62-turbo", "libtcmalloc-minimal4", "python3-torch",
                               "python3-torchvision", "python3-pil", "python3"]),
        "peer_python": _cmd(["/usr/bin/python3", "--version"]),
    }
