"""Helpers for the hostile-input suites: a revoke run in a child process under a memory ceiling
and a time limit (a payload that explodes must fail the test, not the machine), and a small
workspace whose store bytes can be compared before and after a refused run."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

import yaml

from tests.reliability.reliability_testlib import INVENTORY, Workspace

# address space for one CLI run: its imports need ~0.6 GiB, a normal run stays under 150 MB RSS
ADDRESS_SPACE = 3 << 29  # 1.5 GiB


# `python -m revoke ARGS` with its address space capped first (argv[1] is the cap in bytes)
_LIMITED = """
import resource, runpy, sys
cap = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
sys.argv = ["revoke", *sys.argv[2:]]
runpy.run_module("revoke", run_name="__main__", alter_sys=True)
"""


class Bounded(NamedTuple):
    returncode: int
    stdout: str
    stderr: str
    peak_mb: float  # the child's own peak resident memory
    seconds: float


def run_bounded(*args: str, cwd: Path, store: Path | str | None = None, config: Path | None = None,
                timeout: float = 60, address_space: int = ADDRESS_SPACE) -> Bounded:
    """`revoke ARGS` in a child limited to `address_space` bytes and killed after `timeout`
    seconds (then returncode is -9); its peak memory is read with wait4, for this child alone."""
    argv = [sys.executable, "-c", _LIMITED, str(address_space)]
    if store is not None:
        argv += ["--store", store if isinstance(store, str) else f"sqlite:///{store}"]
    if config is not None:
        argv += ["--config", str(config)]
    argv += args
    env = {k: v for k, v in os.environ.items() if k not in ("REVOKE_STORE", "REVOKE_FAULT_KILL_AFTER")}

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        # the child's own high-water mark: ru_maxrss would also carry this (large) test process's
        # peak, which Linux folds into a child at exec
        peak = [0]
        sampler = threading.Thread(target=_sample_hwm, args=(proc.pid, peak), daemon=True)
        sampler.start()
        try:
            _, status, _usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        sampler.join(timeout=1)
        return Bounded(proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                       peak[0] / 1024, seconds)


def _sample_hwm(pid: int, peak: list[int]) -> None:
    """VmHWM (kB) of `pid`'s own address space, sampled until it exits."""
    path = f"/proc/{pid}/status"
    while True:
        try:
            with open(path) as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        peak[0] = max(peak[0], int(line.split()[1]))
                        break
                else:
                    return  # a zombie has no memory lines left
        except (FileNotFoundError, ProcessLookupError, ValueError):
            return
        time.sleep(0.005)


def one_error_line(returncode: int, stderr: str) -> str:
    """A refusal: exit 2 and exactly one `error: ...` line, no traceback."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert returncode == 2, (returncode, stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-2000:]
    return lines[0]


def make_workspace(root: Path) -> Workspace:
    """INVENTORY, a revoke.yaml naming it, and the store path (not yet collected)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY))
    (root / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [{"type": "inventory", "path": "inventory.yaml"}]}))
    return Workspace(root, root / ".revoke" / "revoke.db", root / "revoke.yaml")


def inventory_config(ws: Workspace, name: str, inventory: str) -> Path:
    """A config beside the workspace's with one inventory connector reading `inventory`."""
    cfg = ws.root / name
    cfg.write_text(yaml.safe_dump({"connectors": [{"type": "inventory", "path": inventory}]}))
    return cfg


def billion_laughs(levels: int = 9) -> str:
    """The classic: 9 anchors of 9 aliases each, ~1 KB that expands to 9**levels strings."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def billion_laughs_flow(levels: int = 9) -> str:
    """The same bomb as one flow sequence, for a place that takes a list."""
    items = ['&a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    items += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"
