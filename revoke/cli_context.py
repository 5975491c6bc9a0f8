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
    """A line (or lines) of text for a person: control and bidi characters shown escaped
    (`revoke.textsafe`), whatever the text holds; its line breaks are kept."""
    from revoke.textsafe import safe

    text = safe(text, newlines=True)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def warn(text: str) -> None:
    """One warning line on stderr, shown safely."""
    from revoke.textsafe import safe

    sys.stderr.write(f"warning: {safe(text)}\n")


def console() -> Any:
    """The Rich console for stdout (`revoke.tables.safe_console`): on a terminal, its width; piped
    to a file or a ticket, never folded (ids are copied from there)."""
    from revoke.tables import safe_console

    return safe_console(terminal=sys.stdout.isatty())


def is_terminal() -> bool:
    return sys.stdout.isatty()


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
