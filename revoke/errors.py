"""The root error. Every error a user can cause or fix carries one diagnostic line."""

from __future__ import annotations


class RevokeError(Exception):
    """Base of every expected error; the CLI prints `diagnostic()` and exits with `exit_code`."""

    exit_code = 2

    def diagnostic(self) -> str:
        return str(self)


class InputError(RevokeError):
    """Bad input: a file, a line, a field or a node id. Nothing was changed."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        self.source = source
        self.line = line
        where = ""
        if source:
            where = f"{source}:{line}: " if line else f"{source}: "
        super().__init__(f"{where}{message}")


class StoreError(RevokeError):
    """The store is missing, unreadable, corrupt or locked."""


class UnknownNodeError(InputError):
    def __init__(self, node_id: str, suggestions: list[str] | None = None) -> None:
        hint = f" (did you mean: {', '.join(suggestions)}?)" if suggestions else ""
        super().__init__(f"unknown node {node_id!r}{hint}")
        self.node_id = node_id
