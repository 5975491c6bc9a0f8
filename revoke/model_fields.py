"""Field checks for node and edge mappings read from any file (inventories, snapshots, jobs):
each error names the field and what was expected, never the value."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from revoke.errors import InputError

NODE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*:[^\s]+$")

# Statuses under which a credential no longer works; residual reachability stops at them.
def check_node_id(node_id: Any) -> str:
    if not isinstance(node_id, str) or not NODE_ID_RE.match(node_id):
        raise InputError(f"invalid node id {node_id!r}; expected '<provider>:<type>:<id>' or '<kind>:<name>'")
    return node_id


def parse_time(value: Any, *, field_name: str = "time") -> datetime | None:
    """ISO-8601 to an aware UTC datetime; naive values are taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise InputError(f"invalid {field_name} {value!r}; expected ISO-8601 like 2026-03-31T10:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+05:00 is before the first representable instant
        raise InputError(f"invalid {field_name}: out of range") from None


class FieldError(InputError):
    """A field of a node or edge mapping is wrong. The message names the field and what was
    expected, never the value: the mapping may come from any file (`path: /etc/shadow`)."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"field {field_name!r}: {problem}")
        self.field = field_name


def type_name(value: Any) -> str:
    """What a value is, for "expected text, got a list" in an error line: never the value itself."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return "a date" if hasattr(value, "isoformat") else type(value).__name__


def text_field(data: dict[str, Any], name: str, default: str = "") -> str:
    """A text field: a string, or a number written without quotes; never a list, a mapping or a
    YAML boolean (`name: no` is False: quote it)."""
    value = data.get(name)
    if value is None or value == "":
        return default
    if type(value) is str:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    hint = " (quote the value: YAML reads yes/no/on/off as booleans)" if isinstance(value, bool) else ""
    raise FieldError(name, f"expected text, got {type_name(value)}{hint}")


def time_field(data: dict[str, Any], name: str) -> datetime | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) and not hasattr(value, "isoformat"):
        raise FieldError(name, f"expected an ISO-8601 time like 2026-03-31T10:00Z, got {type_name(value)}")
    try:
        return parse_time(value, field_name=name)
    except InputError:
        raise FieldError(name, "not a valid ISO-8601 time (expected e.g. 2026-03-31T10:00Z)") from None


# ids already checked: an edge list names each node many times, and the regex is the cost
_CHECKED_IDS: set[str] = set()
_CHECKED_LIMIT = 1_000_000  # bounded: a long-running worker keeps no more than this


def node_ref(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if type(value) is str and value in _CHECKED_IDS:
        return value
    if not isinstance(value, str) or not NODE_ID_RE.match(value):
        raise FieldError(name, "expected a node id '<provider>:<type>:<id>' or '<kind>:<name>'")
    if len(_CHECKED_IDS) >= _CHECKED_LIMIT:
        _CHECKED_IDS.clear()
    _CHECKED_IDS.add(value)
    return value


def mapping_field(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FieldError(name, f"expected a mapping, got {type_name(value)}")
    return dict(value)


def labels_field(data: dict[str, Any]) -> dict[str, str]:
    labels = mapping_field(data, "labels")
    out: dict[str, str] = {}
    for key, value in labels.items():
        if isinstance(key, dict | list) or isinstance(value, dict | list) or value is None:
            raise FieldError("labels", f"each label is text: name: value, got {type_name(value)}")
        out[str(key)] = str(value)
    return out
