"""Shared by every test directory.

- Each test starts with structlog's defaults, so one test's `revoke.logs.configure()` (say, at
  warning level) cannot hide another test's log events.
- `revoke_cli`: the one way tests run the `revoke` command, through its real entry point
  (`revoke.cli.main`, so the exit-code mapping is included), in a child process (the default:
  what a user runs) or in-process (`in_process=True`: hundreds of runs in seconds).
- `demo_lab`: the demo lab on loopback (moto, a real OpenBao, the GCP IAM double), fresh for each
  test, for the incident and reliability suites.
- `postgres_lab`: one real Postgres server per session (`new_database()` per test).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import structlog

# before any test module imports gRPC: see connectors/gcp/__init__.py
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

# variables a developer's shell may hold that would steer a run elsewhere: never inherited
NOT_INHERITED = ("REVOKE_STORE", "REVOKE_FAULT_KILL_AFTER")


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


class CliRun(NamedTuple):
    """What a run printed and returned; unpacks as (returncode, stdout, stderr)."""

    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def error_line(self) -> str:
        """A rejected run's diagnosis: exit 2 and exactly one `error: ...` line on stderr, no traceback."""
        lines = self.stderr.strip().splitlines()
        assert self.returncode == 2, (self.returncode, self.stdout, self.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), self.stderr
        assert "Traceback" not in self.stderr and "internal error" not in self.stderr, self.stderr
        return lines[0]


def run_revoke(*args: str, cwd: Path | str | None = None, store: Path | str | None = None,
               config: Path | str | None = None, env: dict[str, str] | None = None, in_process: bool = False,
               columns: int = 250, timeout: float = 120) -> CliRun:
    """`revoke [--store URL] [--config FILE] ARGS` in `cwd`. `store` is a URL, or a path for a
    SQLite store; `env` is added to this process's environment (less NOT_INHERITED); `columns`
    is the width tables are drawn at (wide, so no id is folded)."""
    argv: list[str] = []
    if store is not None:
        argv += ["--store", store if isinstance(store, str) else f"sqlite:///{store}"]
    if config is not None:
        argv += ["--config", str(config)]
    argv += args
    extra = {"COLUMNS": str(columns), **(env or {})}
    if in_process:
        return _in_process(argv, cwd, extra)
    child_env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED} | extra
    proc = subprocess.run([sys.executable, "-m", "revoke", *argv], cwd=cwd, env=child_env, capture_output=True,
                          text=True, timeout=timeout)
    return CliRun(proc.returncode, proc.stdout, proc.stderr)


def _in_process(argv: list[str], cwd: Path | str | None, extra: dict[str, str]) -> CliRun:
    from revoke.cli import main

    # real text streams over bytes: commands write JSON to sys.stdout.buffer
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["revoke", *argv])
        for name in NOT_INHERITED:
            mp.delenv(name, raising=False)
        for name, value in extra.items():
            mp.setenv(name, value)
        if cwd is not None:
            mp.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                rc = 0
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CliRun(rc, out.buffer.getvalue().decode(), err.buffer.getvalue().decode())


@pytest.fixture(scope="session")
def revoke_cli() -> Callable[..., CliRun]:
    """`revoke_cli("blast-radius", NODE, cwd=..., store=...)` -> CliRun (see run_revoke)."""
    return run_revoke


@pytest.fixture
def demo_lab(tmp_path: Path) -> Iterator[Any]:
    """An examples.lab.demo.Lab with 5 device certificates; run `revoke_cli(..., cwd=lab.directory)`."""
    from examples.lab.demo import lab

    with lab(tmp_path / "lab", devices=5) as lb:
        yield lb


@pytest.fixture(scope="session")
def postgres_lab() -> Iterator[Any]:
    """One real Postgres server for the session (examples.lab.postgres_lab): take a fresh database
    per test with `postgres_lab.new_database()`; non-superuser roles log in with their password."""
    from examples.lab import postgres_lab as pg

    lab = pg.start()
    try:
        yield lab
    finally:
        lab.stop()
