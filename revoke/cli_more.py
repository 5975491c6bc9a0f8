"""Lab, hygiene and export commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    return None
