"""The demo lab on loopback (moto, a real OpenBao, the GCP IAM double), fresh for each test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.lab.demo import Lab, lab


@pytest.fixture
def demo_lab(tmp_path: Path) -> Iterator[Lab]:
    with lab(tmp_path / "lab", devices=5) as lb:
        yield lb


def revoke_cli(lb: Lab, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `revoke` command in the lab directory (its revoke.yaml and .revoke/ store)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "revoke", *args], cwd=lb.directory, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
