"""Text that cannot be turned against its reader.

Ids, names, certificate subjects, attestation notes and provider error text come from the graph,
from a person or from a provider, and some of it is hostile: `ESC[2J` clears a terminal, OSC 8
makes a clickable link, a right-to-left override reorders what a reader sees, a `![x](url)` in a
Markdown report loads a tracking image. Every output escapes such text through this module:

- `safe()`: a terminal or a plain-text file (tables, CLI lines, console logs, the error line).
  Control characters (C0, DEL, C1), format characters (bidi overrides and isolates, zero-width
  characters, the byte-order mark, tag characters) and line/paragraph separators are shown as
  `\\x1b`, `\\u202e`...; a newline is kept only where the text is meant to span lines.
- `tsv_field()`: one TSV field (tab, newline, carriage return and backslash escaped as `\\t`,
  `\\n`, `\\r`, `\\\\`, so a field splits and reads back exactly).
- `md_text()` / `md_code()`: a value inside a Markdown document, as literal text or a code span.
- `reversible()` / `unreversible()`: the documented `\\xNN` escape the graph exports use for
  characters XML 1.0 or Graphviz cannot carry; ids read back exactly.

JSON needs none of this: it escapes control characters itself.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

# Unicode categories Cc (control), Cf (format: bidi, zero-width, BOM, tags), Cs (surrogates), Zl
# and Zp (line and paragraph separators), as of Unicode 15.1, and the 66 noncharacters (U+FFFE...,
# which XML cannot carry); tests/reliability/test_hostile_output.py checks this class against the
# running Python's own Unicode tables.
_OTHER_UNSAFE = (
    "\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufdd0-\ufdef\ufeff\ufff9-\ufffb\ufffe\uffff"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
    + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(1, 17))
)
_UNSAFE = re.compile(f"[\x00-\x1f{_OTHER_UNSAFE}]")
_UNSAFE_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f{_OTHER_UNSAFE}]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def escape_char(ch: str) -> str:
    """`\\x1b`, `\\u202e`, `\\U000e0041`: how an unsafe character is shown."""
    if ch in _SHORT:
        return _SHORT[ch]
    n = ord(ch)
    if n <= 0xFF:
        return f"\\x{n:02x}"
    if n <= 0xFFFF:
        return f"\\u{n:04x}"
    return f"\\U{n:08x}"


def _sub(m: re.Match[str]) -> str:
    return escape_char(m.group(0))


def safe(value: Any, *, newlines: bool = False) -> str:
    """`value` as text a terminal or a plain-text file shows as written. With `newlines`, line
    breaks are kept (a text meant to span lines); otherwise the result is one line."""
    text = "" if value is None else str(value)
    return (_UNSAFE_BUT_NEWLINE if newlines else _UNSAFE).sub(_sub, text)


def is_safe(text: str) -> bool:
    return _UNSAFE.search(text) is None


# --- TSV ---------------------------------------------------------------------------------------
_TSV_SPECIAL = re.compile(r"[\\\t\n\r]")
_TSV_ESC = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def tsv_field(value: Any) -> str:
    """One field of a TSV row: `\\` `\\t` `\\n` `\\r` escaped (as PostgreSQL's text COPY does), then
    every other unsafe character shown as by `safe()`. None is the empty field."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = _TSV_SPECIAL.sub(lambda m: _TSV_ESC[m.group(0)], str(value))
    return safe(text)


def tsv(header: list[str], rows: Any) -> str:
    """A header row and one row per item, tab-separated, every field through `tsv_field`."""
    lines = ["\t".join(tsv_field(h) for h in header)]
    lines += ["\t".join(tsv_field(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


# --- Markdown ------------------------------------------------------------------------------------
# CommonMark lets any ASCII punctuation be backslash-escaped, and then it stands for itself. Escaped
# everywhere: what opens an inline construct (links and images `[ ]`, autolinks and raw HTML `< >`,
# entities `&`, code spans, emphasis `* _`, strikethrough `~`, table cells `|`, maths `$`) and the
# escape character itself. Escaped where they would start a link GitHub or a linkifier makes from
# bare text: `@` (e-mail), the `:` of `://`, a `.` before a letter (`www.x`, `evil.com`). Escaped
# at the start of a value, which may start a line: heading `#`, quote `>`, list and rule `- + *`,
# setext underline `=`, ordered list `1.` / `1)`. A line break cannot get through: `safe()` has
# already shown it as `\n`. The rest of the punctuation is left as it is, so ids stay readable.
_MD_ALWAYS = re.compile(r"([\\`*_~\[\]<>&|$@])|(:)(?=//)|(\.)(?=[A-Za-z])")
_MD_LINE_START = re.compile(r"^(\s*)(?:([#>+\-=])|(\d{1,9})([.)]))")


def md_text(value: Any) -> str:
    """A value as literal Markdown text, on one line, in a table cell or in prose."""
    text = _MD_ALWAYS.sub(lambda m: "\\" + m.group(0), safe(value))
    return _MD_LINE_START.sub(lambda m: m.group(1) + ("\\" + m.group(2) if m.group(2) else m.group(3) + "\\" + m.group(4)),
                              text, count=1)


def md_code(value: Any) -> str:
    """A value as one Markdown code span: its content is never interpreted, so only the fence
    (longer than any run of backticks inside) and a table's `|` need care."""
    text = "" if value is None else safe(value)
    if not text:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or (text.startswith(" ") and text.endswith(" ")) else ""
    # GitHub's and markdown-it's tables split cells on `|` before reading code spans; `\|` is a
    # literal pipe to both, inside a code span too
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def html_text(value: Any) -> str:
    """A value as HTML text: markup escaped, and what a terminal would act on shown escaped too
    (an HTML report is as often piped to a terminal or a pager as opened in a browser)."""
    return html.escape(safe(value, newlines=True), quote=True)


# --- reversible escape for the graph exports -------------------------------------------------------
_ESCAPED = re.compile(r"\\x([0-9a-fA-F]{2})|\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})")
_LOOKS_ESCAPED = re.compile(r"x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}")


def reversible(text: str, unsafe: Callable[[str], bool]) -> str:
    """Each character for which `unsafe(ch)` holds becomes `\\xNN` (`\\uNNNN`, `\\UNNNNNNNN`); a
    backslash becomes `\\x5c` only where it could be misread (before something shaped like an
    escape, before `"`, or at the end), so ordinary ids keep their backslashes as they are.
    `unreversible()` gives the text back exactly."""
    out: list[str] = []
    n = len(text)
    for i, ch in enumerate(text):
        if unsafe(ch):
            out.append(_hex_escape(ch))
        elif ch == "\\" and (i + 1 == n or text[i + 1] == '"' or _LOOKS_ESCAPED.match(text, i + 1)):
            out.append("\\x5c")
        else:
            out.append(ch)
    return "".join(out)


def _hex_escape(ch: str) -> str:
    n = ord(ch)
    return f"\\x{n:02x}" if n <= 0xFF else f"\\u{n:04x}" if n <= 0xFFFF else f"\\U{n:08x}"


def unreversible(text: str) -> str:
    """The inverse of `reversible()`."""
    return _ESCAPED.sub(lambda m: chr(int(m.group(1) or m.group(2) or m.group(3), 16)), text)
