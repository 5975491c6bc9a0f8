"""Incident commands: plan, run, verify, attest, report, rollback."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    return None
