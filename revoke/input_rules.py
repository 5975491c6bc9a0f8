"""What every input file must respect, and how an error line may name its parts.

The loaders (`revoke/yamlio.py` for YAML and the entry point, `revoke/json_input.py` for JSON)
share these limits; every error names the file, the line and a field, never a value: the file
may be any file (`path: /etc/shadow`) and its values may be credentials.
"""

from __future__ import annotations

import re
from typing import Any

from revoke.secret_shapes import credential_shape

MAX_DEPTH = 64  # nested mappings and lists; a real inventory uses 5
MAX_INT = 2**63  # every integer n in an input file has |n| < MAX_INT
MAX_YAML_BYTES = 16 << 20  # the line-keeping YAML loader reads ~0.25 MB/s: ~1 min
MAX_JSON_BYTES = 1 << 30  # 1M nodes / 5M edges as JSON is ~600 MB
INT_RANGE = f"integer out of range (|n| < 2**{MAX_INT.bit_length() - 1})"
NOT_FINITE = "number out of range (infinite or not a number)"
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels"

_FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,39}$")


def shown_key(key: Any) -> str:
    """A key as an error line may show it: a field-like name is quoted; anything else (a line of
    some other file, a credential used as a key) is only described."""
    if isinstance(key, str) and _FIELD_NAME_RE.match(key) and credential_shape(key) is None:
        return repr(key)
    return "(a key not shown)"


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """`accounts.0.region` for a validation error's location: plain names and indices as they
    are, any other key (a file name, a line of some other file) as `?`."""
    parts = []
    for part in loc:
        shown = shown_key(part)
        parts.append(str(part) if isinstance(part, int) else shown[1:-1] if shown.startswith("'") else "?")
    return ".".join(parts)


def shown_keys(keys: list[Any]) -> str:
    """`['colour', 'weight']`: several keys as shown_key shows each."""
    return "[" + ", ".join(sorted(shown_key(k) for k in keys)) + "]"
