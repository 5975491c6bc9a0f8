"""Reliability and security suite: shared fixtures and helpers.

`demo_lab` and `revoke_cli` come from the incident suite. Figures measured here are printed and,
when REVOKE_FIGURES=path is set, appended to that file as JSON lines (README-reliability.md quotes
them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.incident.conftest import demo_lab, revoke_cli  # noqa: F401 - fixture re-exported

ROOT = Path(__file__).resolve().parents[2]


def record_figures(name: str, data: dict[str, Any]) -> None:
    line = json.dumps({"test": name, **data}, sort_keys=True, default=str)
    print(f"FIGURES {line}")
    target = os.environ.get("REVOKE_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


def revoke_admin(cwd: Path, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real CLI."""
    return subprocess.run([sys.executable, "-m", "revoke", *args], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)
