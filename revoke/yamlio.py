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
"""

from __future__ import annotations

import gc
import json
import math
import re
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from revoke.errors import InputError
from revoke.secret_shapes import credential_shape

MAX_DEPTH = 64  # nested mappings and lists; a real inventory uses 5
MAX_INT = 2**63  # every integer n in an input file has |n| < MAX_INT
MAX_YAML_BYTES = 16 << 20  # the line-keeping YAML loader reads ~0.25 MB/s: ~1 min
MAX_JSON_BYTES = 1 << 30  # 1M nodes / 5M edges as JSON is ~600 MB
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
            raise InputError(f"nested deeper than {MAX_DEPTH} levels", line=self.peek_event().start_mark.line + 1)

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
        raise _BadScalar(f"integer out of range (|n| < 2**{MAX_INT.bit_length() - 1})", line=node.start_mark.line + 1)
    value = loader.construct_yaml_int(node)
    if abs(value) >= MAX_INT:
        raise _BadScalar(f"integer out of range (|n| < 2**{MAX_INT.bit_length() - 1})", line=node.start_mark.line + 1)
    return int(value)


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> float:
    value = loader.construct_yaml_float(node)
    if not math.isfinite(value):
        raise _BadScalar("number out of range (infinite or not a number)", line=node.start_mark.line + 1)
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
        return _load_json(text) if is_json else _load_yaml(text)
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


# -- JSON -------------------------------------------------------------------------------------------
class _Refused(ValueError):
    """Raised from inside json's hooks; `problem` says what to look for to find the line."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Refused("duplicate", f"duplicate key {shown_key(key)}")
    return mapping


def _bounded_int(text: str) -> int:
    if len(text) > 20 or abs(value := int(text)) >= MAX_INT:
        raise _Refused("number", f"integer out of range (|n| < 2**{MAX_INT.bit_length() - 1})")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("number", "number out of range (infinite or not a number)")
    return value


def _no_constant(text: str) -> float:
    raise _Refused("number", "number out of range (infinite or not a number)")


def _load_json(text: str) -> Any:
    try:
        with _gc_paused():
            doc = json.loads(text, object_pairs_hook=_unique_pairs, parse_int=_bounded_int,
                             parse_float=_finite_float, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno) from None
    except _Refused as exc:
        raise InputError(str(exc), line=_json_line(text, exc.problem)) from None
    except RecursionError:
        raise InputError(f"nested deeper than {MAX_DEPTH} levels", line=_json_line(text, "depth")) from None
    if _too_deep(doc):
        raise InputError(f"nested deeper than {MAX_DEPTH} levels", line=_json_line(text, "depth"))
    return doc


_CONTAINERS = (dict, list)


def _too_deep(doc: Any) -> bool:
    """Level by level over the containers only: ~1 s for a 200 MB inventory, less than the gc
    passes `_gc_paused` saves while parsing it."""
    level = [doc] if type(doc) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return True
        below: list[Any] = []
        for item in level:
            below += [v for v in (item.values() if type(item) is dict else item) if type(v) in _CONTAINERS]
        level = below
    return False


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|-?[0-9][0-9.eE+-]*|[A-Za-z]+', re.S)


def json_line(path: Path | str, loc: tuple[Any, ...]) -> int | None:
    """Line of the value at `loc` (e.g. ("nodes", 3, "name"): the key's line) in a JSON file, for
    an error found after parsing: json keeps no positions, so the file is scanned again up to
    that value. None if it is not found or the file is not JSON."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    target = list(loc)
    frames: list[list[Any]] = []  # [is_object, current key or index, expecting a key]
    for m in _JSON_TOKEN.finditer(text):
        tok = m.group()
        head = tok[0]
        if head in "}]":
            if frames:
                frames.pop()
            continue
        if head == ",":
            if frames:
                if frames[-1][0]:
                    frames[-1][2] = True
                else:
                    frames[-1][1] += 1
            continue
        if head == ":":
            if frames:
                frames[-1][2] = False
            continue
        if head == '"' and frames and frames[-1][0] and frames[-1][2]:
            frames[-1][1] = json.loads(tok)
            if [f[1] for f in frames] == target:  # the key of the field looked for
                return text.count("\n", 0, m.start()) + 1
            continue
        if [f[1] for f in frames] == target:  # a value starts where the location points
            return text.count("\n", 0, m.start()) + 1
        if head == "{":
            frames.append([True, None, True])
        elif head == "[":
            frames.append([False, 0, False])
    return None


def _json_line(text: str, problem: str) -> int | None:
    """Where a refused JSON document first has `problem` ("duplicate", "number", "depth"): one
    scan of its tokens, run only once the document was refused."""
    stack: list[set[str] | None] = []
    key: str | None = None
    for m in _JSON_TOKEN.finditer(text):
        tok = m.group()
        head = tok[0]
        hit = False
        if head in "{[":
            stack.append(set() if head == "{" else None)
            hit = problem == "depth" and len(stack) > MAX_DEPTH
        elif head in "}]":
            if stack:
                stack.pop()
        elif head == ",":
            continue
        elif head == '"':
            key = tok
            continue
        elif head == ":":
            keys = stack[-1] if stack else None
            if key is not None and keys is not None:
                name = json.loads(key)
                hit = problem == "duplicate" and name in keys
                keys.add(name)
        elif problem == "number":
            hit = _bad_number(tok)
        if hit:
            return text.count("\n", 0, m.start()) + 1
        key = None
    return None


def _bad_number(tok: str) -> bool:
    if tok in ("NaN", "Infinity"):
        return True
    if not (tok[0].isdigit() or tok[0] == "-"):
        return False
    if len(tok) > 20 and not any(c in tok for c in ".eE"):  # past 2**63, and past what int() converts
        return True
    try:
        value = float(tok) if any(c in tok for c in ".eE") else int(tok)
    except (ValueError, OverflowError):
        return False
    return not math.isfinite(value) or (isinstance(value, int) and abs(value) >= MAX_INT)


_gc_lock = threading.Lock()
_gc_users = 0
_gc_was_enabled = False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic collection while json builds millions of acyclic dicts (full passes over a big
    heap double the parse time); counted, since connectors collect in parallel threads."""
    global _gc_users, _gc_was_enabled
    with _gc_lock:
        if _gc_users == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_was_enabled:
                gc.enable()


# -- naming things in error lines without quoting the file -----------------------------------------
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
