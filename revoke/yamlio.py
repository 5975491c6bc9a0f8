"""Load YAML or JSON keeping line numbers, so every input error can name its file and line.

Every input file (inventories, `revoke.yaml`, playbooks, rules files) comes through `load_file`,
the one guarded path: a small hostile file must not cost gigabytes or minutes, nor crash with a
traceback, nor have its content quoted back in an error line. So:
- only regular files, at most MAX_YAML_BYTES of YAML or MAX_JSON_BYTES of JSON (JSON inventories of
  hundreds of MB are legitimate and parse in seconds; YAML parses ~100x slower);
- no YAML anchors or aliases (`&a`, `*a`, `<<: *a`): they have no use in these files, and a 1 KB
  "billion laughs" of them expands to gigabytes wherever the document is copied or printed;
- containers nested at most MAX_DEPTH deep, integers below 2**63 in size, finite numbers only,
  real calendar dates, no duplicate keys (in JSON too);
- an error line names the file, the line and a field, never a value from the file.
The limits and the naming rules are in `revoke/input_rules.py`, JSON's parsing in `json_input.py`.
"""

from __future__ import annotations

import math
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from revoke.errors import InputError
from revoke.input_rules import INT_RANGE, MAX_DEPTH, MAX_INT, MAX_JSON_BYTES, MAX_YAML_BYTES, NOT_FINITE, TOO_DEEP, shown_key
from revoke.json_input import load_json

_INT_CHARS = 70  # a YAML integer literal longer than this is out of range whatever its base


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


class _BadScalar(InputError):
    """A scalar refused while constructing it; the mapping holding it names its key."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with line numbers, no anchors or aliases, and bounded nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise InputError("YAML anchors and aliases (&name, *name, <<: *name) are not accepted; "
                             "write the value out", line=event.start_mark.line + 1)
        return super().compose_node(parent, index)

    def compose_sequence_node(self, anchor: Any) -> Any:
        self._enter()
        try:
            return super().compose_sequence_node(anchor)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor: Any) -> Any:
        self._enter()
        try:
            return super().compose_mapping_node(anchor)
        finally:
            self._depth -= 1

    def _enter(self) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise InputError(TOO_DEEP, line=self.peek_event().start_mark.line + 1)

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        # a scalar the resolver typed but Python refuses (2026-02-30, 10**5000 digits, bad base64)
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError):
            tag = str(node.tag).rsplit(":", 1)[-1]
            raise _BadScalar(f"invalid {_TAG_NAMES.get(tag, tag)}", line=node.start_mark.line + 1) from None


_TAG_NAMES = {"timestamp": "date or time (not a real calendar date?)", "int": "integer", "float": "number",
              "binary": "base64 value"}


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    mapping = LineDict()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise InputError("mapping key is not a scalar", line=key_node.start_mark.line + 1) from None
        if key in mapping:
            raise InputError(f"duplicate key {shown_key(key)}", line=key_node.start_mark.line + 1)
        try:
            mapping[key] = loader.construct_object(value_node, deep=True)
        except _BadScalar as exc:  # name the field it was given to
            raise InputError(f"field {shown_key(key)}: {exc!s}", line=exc.line) from None
        mapping.key_lines[key] = key_node.start_mark.line + 1
    mapping.line = node.start_mark.line + 1
    return mapping


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    seq = LineList(loader.construct_object(child, deep=True) for child in node.value)
    seq.line = node.start_mark.line + 1
    seq.item_lines = tuple(child.start_mark.line + 1 for child in node.value)
    return seq


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    if len(str(node.value)) > _INT_CHARS:
        raise _BadScalar(INT_RANGE, line=node.start_mark.line + 1)
    value = loader.construct_yaml_int(node)
    if abs(value) >= MAX_INT:
        raise _BadScalar(INT_RANGE, line=node.start_mark.line + 1)
    return int(value)


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> float:
    value = loader.construct_yaml_float(node)
    if not math.isfinite(value):
        raise _BadScalar(NOT_FINITE, line=node.start_mark.line + 1)
    return float(value)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def load_file(path: Path | str, *, what: str = "file") -> Any:
    """Parse a `.json` file with json (YAML parsers are ~100x slower on big inventories), else YAML.
    Every refusal is an InputError naming the file and, where known, the line."""
    path = Path(path)
    src = str(path)
    is_json = path.suffix.lower() == ".json"
    data = _read(path, what, MAX_JSON_BYTES if is_json else MAX_YAML_BYTES)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not UTF-8 text", source=src, line=data.count(b"\n", 0, exc.start) + 1) from None
    del data
    try:
        return load_json(text) if is_json else _load_yaml(text)
    except InputError as exc:
        raise InputError(str(exc), source=src, line=exc.line) from None


def _read(path: Path, what: str, limit: int) -> bytes:
    """The file's bytes: a regular file (not /dev/zero, a FIFO or a directory), at most `limit`."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{what} is not a regular file", source=str(path))
        if info.st_size > limit:
            raise InputError(_too_big(what, info.st_size, limit), source=str(path))
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise InputError(f"{what} not found", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or type(exc).__name__}", source=str(path)) from None
    if len(data) > limit:  # it grew while being read
        raise InputError(_too_big(what, len(data), limit), source=str(path))
    return data


def _too_big(what: str, size: int, limit: int) -> str:
    hint = " (write a large inventory as .json)" if limit == MAX_YAML_BYTES else ""
    return f"{what} is {size / (1 << 20):.0f} MiB; the limit is {limit >> 20} MiB{hint}"


def _load_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except InputError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError(f"invalid YAML: {_unquoted(exc.problem or exc.context)}", line=line) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise InputError(f"invalid YAML: {_one_line(exc.reason)} (character {exc.character!r})", line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {_unquoted(exc)}") from None


def _unquoted(value: Any) -> str:
    """A parser's message on one line, without the file text it quotes (single characters and
    token names such as '<block end>' stay)."""
    return re.sub(r"'([^'\n]{3,})'", lambda m: m.group(0) if m.group(1)[0] in "<\\" else "'…'", _one_line(value))


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
