"""JSON input: the standard parser (a 122 MB inventory in ~1 s; PyYAML takes minutes) with the
limits of `revoke/input_rules.py`: duplicate keys refused (json would keep the last silently),
integers and floats bounded, nesting bounded. json keeps no positions, so the line of a refused
value is found by a second scan of the text, run only once the document was refused.
"""

from __future__ import annotations

import gc
import json
import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from revoke.errors import InputError
from revoke.input_rules import INT_RANGE, MAX_DEPTH, MAX_INT, NOT_FINITE, TOO_DEEP, shown_key


class _Refused(ValueError):
    """Raised from inside json's hooks; `problem` says what to look for to find the line."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):  # rare: only then find which key came twice
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused("duplicate", f"duplicate key {shown_key(key)}")
            seen.add(key)
    return mapping


def _bounded_int(text: str) -> int:
    if len(text) > 20 or abs(value := int(text)) >= MAX_INT:
        raise _Refused("number", INT_RANGE)
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("number", NOT_FINITE)
    return value


def _no_constant(text: str) -> float:
    raise _Refused("number", NOT_FINITE)


def load_json(text: str) -> Any:
    """The document in `text`, or an InputError with the line where known (no file name)."""
    with _gc_paused():
        doc = _quick(text)
    if doc is not _UNSURE:
        return doc
    try:
        with _gc_paused():
            doc = json.loads(text, object_pairs_hook=_unique_pairs, parse_int=_bounded_int,
                             parse_float=_finite_float, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno) from None
    except _Refused as exc:
        raise InputError(str(exc), line=_json_line(text, exc.problem)) from None
    except RecursionError:
        raise InputError(TOO_DEEP, line=_json_line(text, "depth")) from None
    if _too_deep(doc):
        raise InputError(TOO_DEEP, line=_json_line(text, "depth"))
    return doc


_UNSURE = object()
QUICK_MAX_CHARS = 256 << 20
# every key in JSON text ends with `"`, optional whitespace, `:`: counting those never misses a key
_SPACED_KEY_END = re.compile(r'"[ \t\r\n]+:')
_DIGIT_MAP = bytes(49 if 48 <= b <= 57 else 48 for b in range(256))  # digit -> "1", else "0"
_DIGIT_RUN = b"1" * 19
_CHUNK = 1 << 24


def _quick(text: str) -> Any:
    """orjson's parse (~2x the standard parser's speed) when it provably reads what the careful
    parse would accept, else _UNSURE (the careful parse then decides, and names the line):
    - no duplicate key: orjson keeps the last silently, so the keys it kept are counted against
      an upper bound of the keys in the text (a `"` then `:`); equal means none was dropped;
    - no run of 19 digits anywhere: orjson reads integers past 2**63 (some as floats), the
      careful parse refuses them;
    - not nested deeper than MAX_DEPTH; orjson refuses NaN, Infinity and 1e400 itself.
    Past QUICK_MAX_CHARS the careful parse runs: orjson holds its own copy of the document while
    it builds the Python one (~1.1 GB more at peak for a 658 MB, 5M-edge inventory)."""
    if len(text) > QUICK_MAX_CHARS or _long_digit_run(text):
        return _UNSURE
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _UNSURE
    deep, keys = _shape(doc)
    if deep or keys != _key_bound(text):
        return _UNSURE
    return doc


def _long_digit_run(text: str) -> bool:
    """Whether 19 or more digits follow each other anywhere: each byte mapped to digit or not,
    then one substring search (a regex would step through the 58M characters of a 1M-edge
    inventory one by one)."""
    overlap = len(_DIGIT_RUN) - 1
    for start in range(0, len(text), _CHUNK):  # by chunks: no copy of a 600 MB text at once
        piece = text[max(0, start - overlap) : start + _CHUNK]
        if _DIGIT_RUN in piece.encode("utf-8", "surrogatepass").translate(_DIGIT_MAP):
            return True
    return False


def _key_bound(text: str) -> int:
    """At least the number of keys in the JSON text (see `_quick`); the regex for spaced key ends
    (`"key" :`) runs only when whitespace precedes a `:` somewhere (not json.dumps's output)."""
    bound = text.count('":')
    if any(f"{space}:" in text for space in " \n\t\r"):
        bound += sum(1 for _ in _SPACED_KEY_END.finditer(text))
    return bound


def _shape(doc: Any) -> tuple[bool, int]:
    """(nested deeper than MAX_DEPTH, number of keys of all its mappings)."""
    level = [doc] if type(doc) in _CONTAINERS else []
    depth = keys = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return True, keys
        below: list[Any] = []
        for item in level:
            if type(item) is dict:
                keys += len(item)
                below += [v for v in item.values() if type(v) in _CONTAINERS]
            else:
                below += [v for v in item if type(v) in _CONTAINERS]
        level = below
    return False, keys


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
