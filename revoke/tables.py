"""Rich tables for people; JSON goes straight to stdout elsewhere."""

from __future__ import annotations

from typing import Any

MAX_PATH_SHOWN = 6


def short_path(path: list[str], length: int | None = None) -> str:
    """A path on one line. `length` is the whole path's when `path` was already shortened (it then
    holds "…", see revoke.blast.ShortPaths); unknown, the count is left out."""
    if len(path) <= MAX_PATH_SHOWN:
        return " -> ".join(path)
    if length is None and "…" in path:
        return " -> ".join([*path[:2], "... more ...", *path[-2:]])
    return " -> ".join([*path[:2], f"... {(length or len(path)) - 4} more ...", *path[-2:]])


def blast_table(console: Any, data: dict[str, Any], *, limit: int = 500) -> None:
    from rich.table import Table

    creds, holders = data["credentials"], data["holders"]
    console.print(f"Blast radius of {', '.join(data['sources'])}: "
                  f"{len(creds)} credentials to act on, {len(holders)} holders/identities exposed")
    table = Table(title="Credentials", show_lines=False)
    for col in ("id", "kind", "provider", "depth", "path"):
        table.add_column(col, overflow="fold")
    for item in creds[:limit]:
        table.add_row(item["id"], item["kind"], item["provider"], str(item["depth"]),
                      short_path(item["path"], item.get("path_length")))
    console.print(table)
    if len(creds) > limit:
        console.print(f"... {len(creds) - limit} more credentials (use --format json for all)")
    table = Table(title="Holders and identities")
    for col in ("id", "kind", "depth"):
        table.add_column(col, overflow="fold")
    for item in holders[:limit]:
        table.add_row(item["id"], item["kind"], str(item["depth"]))
    console.print(table)
    if len(holders) > limit:
        console.print(f"... {len(holders) - limit} more holders (use --format json for all)")
