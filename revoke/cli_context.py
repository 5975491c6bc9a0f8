"""What every command shares: the global options (carried on the typer context), the store they
name, stdout and the Rich console, the one `--format` check and the one `--out` writer.

Command modules (`cli_graph`, `cli_incident`, `cli_sweep`, `cli_report`, `cli_permissions`,
`cli_demo`) import from here, never from `revoke.cli`, which imports them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer

from revoke.errors import InputError

if TYPE_CHECKING:
    from revoke.store import Store


@dataclass
class Globals:
    store: str
    config: str
    log_format: str
    verbose: bool


def G(ctx: typer.Context) -> Globals:
    globals_: Globals = ctx.obj
    return globals_


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def console() -> Any:
    import os

    from rich.console import Console

    # tables piped to a file or a ticket should not wrap ids at 80 columns
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "200"))
    return Console(width=width, emoji=False, highlight=False)


def check_format(value: str, allowed: tuple[str, ...]) -> str:
    # an InputError, not typer.BadParameter: the entry point maps it to exit 2 with one line
    if value not in allowed:
        raise InputError(f"--format: {value!r} is not one of {', '.join(allowed)}")
    return value


def open_store(g: Globals, *, create: bool = False) -> Store:
    from revoke.store import Store

    return Store(g.store, create=create)


def write_output(path: str, data: bytes) -> None:
    """`--out FILE`: 0600, atomic, never through a symbolic link (revoke/files.py)."""
    from revoke.files import write_private

    write_private(path, data)
