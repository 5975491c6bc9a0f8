"""How a node id is shown where there is no room for all of it: one shortening for the report's
picture, the CLI tables and the graph exports' labels.

The full id is always somewhere a person can copy it from (a tooltip, the line after a table, the
JSON and TSV outputs, the export's node id): a shortened id is for reading, never for pasting.
"""

from __future__ import annotations

import re

ELLIPSIS = "\u2026"
_HEX = re.compile(r"^[0-9a-f]{24,}$")
MAX_LABEL = 22        # a box in the report's picture
MAX_TABLE_ID = 36     # an id longer than this is shortened in a terminal's table
MAX_NAME = 48         # a name shown beside a shortened id or in a label
TOKEN_PREFIX = 8      # characters of a Vault accessor shown in a token's label


def split_id(node_id: str) -> tuple[str, str]:
    """(`provider:type:`, native id); a `kind:name` holder id is (`kind:`, name)."""
    parts = node_id.split(":", 2)
    if len(parts) == 3:
        return f"{parts[0]}:{parts[1]}:", parts[2]
    if len(parts) == 2:
        return f"{parts[0]}:", parts[1]
    return "", node_id


def shorten_native(native: str, kind: str = "", *, head: int = 10, tail: int = 4, limit: int = MAX_LABEL) -> str:
    """The one shortening: an ARN keeps its resource name (a role or user its last path part), a
    hex digest keeps `head` and `tail` characters, anything longer than `limit` keeps both ends."""
    if native.startswith("arn:"):
        native = native.rsplit(":", 1)[-1]
        if kind in ("user", "role") and "/" in native:
            native = native.rsplit("/", 1)[-1]
    if "/" in native and _HEX.match(native.rsplit("/", 1)[-1]):
        native = native.rsplit("/", 1)[-1]
    if _HEX.match(native):
        return f"{native[:head]}{ELLIPSIS}{native[-tail:]}"
    if len(native) > limit:
        half = (limit - 1) // 2
        return f"{native[:half]}{ELLIPSIS}{native[-half:]}"
    return native


def short_label(node_id: str, kind: str) -> str:
    """The native part of an id, shortened for a box of the report's picture."""
    return shorten_native(split_id(node_id)[1], kind)


def short_id(node_id: str, kind: str = "", name: str | None = None) -> str:
    """An id for a table cell: `x509:ca:bce5…935a (Acme IoT Device CA)`. Ids up to MAX_TABLE_ID
    characters are kept whole; a longer one keeps its `provider:type:` and a shortened native part."""
    if len(node_id) <= MAX_TABLE_ID:
        return node_id
    prefix, native = split_id(node_id)
    short = shorten_native(native, kind, head=4, tail=4, limit=MAX_TABLE_ID - len(prefix))
    if ELLIPSIS not in short:
        short = ELLIPSIS + short  # an ARN cut to its resource name: say that something was cut
    shown = prefix + short
    if name and name not in shown:
        shown += f" ({clip(name)})"
    return shown


def clip(text: str, limit: int = MAX_NAME) -> str:
    return text if len(text) <= limit else text[:limit - 1] + ELLIPSIS


def export_label(node_id: str, kind: str, name: str | None) -> str:
    """A node's label in a graph export. Vault tokens read `token ci-runner (acc-1a2b…)` (display
    name, then the accessor's first characters), so tokens of one method do not all read "token";
    anything else reads `name (short native id)`, or the shortened id when it has no name."""
    native = split_id(node_id)[1]
    if kind == "token" and node_id.startswith("vault:token:"):
        shown = clip(name or "token").replace("token-", "token ", 1)
        acc = native[:TOKEN_PREFIX] + (ELLIPSIS if len(native) > TOKEN_PREFIX else "")
        return f"{shown} ({acc})"
    short = shorten_native(native, kind)
    if name and name != native:
        return f"{clip(name)} ({short})"
    return short_id(node_id, kind)
