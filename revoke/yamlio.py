"""Load YAML or JSON keeping line numbers, so every input error can name its file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from revoke.errors import InputError


class LineDict(dict[Any, Any]):
    """A mapping that remembers the line it started on and each key's (1-based; 0 when unknown)."""

    line: int = 0
    key_lines: dict[Any, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines = {}


class LineList(list[Any]):
    """A sequence that remembers its own line and each item's, so a scalar item can be located."""

    line: int = 0
    item_lines: tuple[int, ...] = ()


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    mapping = LineDict()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise InputError("mapping key is not a scalar", line=key_node.start_mark.line + 1) from None
        if key in mapping:
            raise InputError(f"duplicate key {key!r}", line=key_node.start_mark.line + 1)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
    mapping.line = node.start_mark.line + 1
    return mapping


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    seq = LineList(loader.construct_object(child, deep=True) for child in node.value)
    seq.line = node.start_mark.line + 1
    seq.item_lines = tuple(child.start_mark.line + 1 for child in node.value)
    return seq


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_file(path: Path | str, *, what: str = "file") -> Any:
    """Parse a `.json` file with json (YAML parsers are ~100x slower on big inventories), else YAML."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{what} not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what}: {exc}", source=str(path)) from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", source=str(path), line=exc.lineno) from None
    try:
        return yaml.load(text, Loader=_Loader)
    except InputError as exc:
        raise InputError(str(exc).split(": ", 1)[-1], source=str(path), line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError(f"invalid YAML: {_one_line(exc.problem or exc.context)}", source=str(path), line=line) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise InputError(f"invalid YAML: {_one_line(exc.reason)} (character {exc.character!r})",
                         source=str(path), line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {_one_line(exc)}", source=str(path)) from None


def _one_line(value: Any) -> str:
    """Error text on one line: the CLI promises exactly one line per error."""
    return " ".join(str(value).split())


def line_of(value: Any) -> int | None:
    line = getattr(value, "line", 0)
    return line or None


def key_line(mapping: Any, key: Any) -> int | None:
    """Line of `key` in `mapping`, else the mapping's own line."""
    return getattr(mapping, "key_lines", {}).get(key) or line_of(mapping)


def item_line(seq: Any, index: int) -> int | None:
    """Line of `seq[index]`: its own when it is a mapping, else where the sequence put it."""
    own = line_of(seq[index]) if index < len(seq) else None
    lines = getattr(seq, "item_lines", ())
    return own or (lines[index] if index < len(lines) else None) or line_of(seq)


def line_for(data: Any, loc: tuple[Any, ...]) -> int | None:
    """Walk the parsed document along a pydantic error location to the nearest line number."""
    line = getattr(data, "line", None)
    cursor = data
    for part in loc:
        in_list = isinstance(cursor, list) and isinstance(part, int) and part < len(cursor)
        if (isinstance(cursor, dict) and part in cursor) or in_list:
            cursor = cursor[part]
        else:
            break
        line = getattr(cursor, "line", None) or line
    return line
