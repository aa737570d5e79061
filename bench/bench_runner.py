"""Running one benchmark command for the driver: the exact command line as a
reader can paste it, its wall time, its JSON result (the last stdout line that
parses), and its logs kept under the work folder. A failing command is
recorded, not fatal: the report marks what failed and the rest still runs.
"""
import json
import os
import shlex
import subprocess
import sys
import time

TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
PEER_PYTHON = "/usr/bin/python3"  # Debian's python3-torch; never the pyenv python3 on PATH


class Result:
    def __init__(self, name, command, rc, wall, data, log_path, loadavg):
        self.name, self.command, self.rc, self.wall, self.data, self.log_path = name, command, rc, wall, data, log_path
        self.loadavg = loadavg  # 1-minute load average just before the command started

    @property
    def ok(self):
        return self.rc == 0 and self.data is not None

    def to_json(self):
        return {"name": self.name, "command": self.command, "rc": self.rc, "wall_seconds": self.wall,
                "data": self.data, "log": self.log_path, "loadavg": self.loadavg}


def _parse_json(text):
    """The whole output as JSON (tabby's --json), else its last line that parses (the peers')."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") or line.startswith("["):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


class Runner:
    """Runs commands from the repository root; logs go to WORK/logs/NAME.{out,err}."""

    def __init__(self, root, work, echo=True):
        self.root, self.work, self.echo = root, work, echo
        self.results = []
        os.makedirs(os.path.join(work, "logs"), exist_ok=True)

    def rel(self, path):
        """A path as the command line shows it: relative to the repository root when inside it."""
        path = os.path.abspath(path)
        return os.path.relpath(path, self.root) if path.startswith(self.root + os.sep) else path

    def run(self, name, argv, tcmalloc=False, json_from=None, timeout=None, env_extra=None):
        """Runs argv (strings); tcmalloc=True preloads tcmalloc (peer's second column);
        env_extra: variables added to the environment (the PyTorch 2.x peer's), shown in the command.
        json_from: a file to read the result from instead of stdout (e.g. `--json > FILE`)."""
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        prefix = ""
        for k, v in (env_extra or {}).items():
            env[k] = v
            prefix += f"{k}={shlex.quote(v)} "
        if tcmalloc:
            env["LD_PRELOAD"] = TCMALLOC
            prefix = f"LD_PRELOAD={TCMALLOC} "
        argv = [str(a) for a in argv]
        command = prefix + " ".join(shlex.quote(a) for a in argv)
        out_path = os.path.join(self.work, "logs", name + ".out")
        err_path = os.path.join(self.work, "logs", name + ".err")
        if self.echo:
            print(f"[bench] {name}: {command}", file=sys.stderr, flush=True)
        loadavg = os.getloadavg()[0]
        t0 = time.monotonic()
        with open(out_path, "w") as out, open(err_path, "w") as err:
            try:
                rc = subprocess.run(argv, cwd=self.root, env=env, stdout=out, stderr=err, timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                rc = 124
        wall = time.monotonic() - t0
        data = None
        source = json_from or out_path
        if rc == 0 and os.path.exists(source):
            with open(source) as f:
                text = f.read()
            data = _parse_json(text)
        result = Result(name, command, rc, wall, data, self.rel(err_path), loadavg)
        if self.echo:
            state = "ok" if result.ok else f"FAILED (exit {rc}, see {result.log_path})"
            print(f"[bench] {name}: {wall:.1f} s, {state}", file=sys.stderr, flush=True)
        self.results.append(result)
        return result
