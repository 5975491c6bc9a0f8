"""Usage errors (an unknown option or command, a bad value, an extra argument) echo what was typed:
each is one escaped line on stderr and exit 2, whatever the typed text holds."""

from __future__ import annotations

import pytest

from revoke.textsafe import is_safe

PAYLOADS = {
    "erase screen": "x\x1b[2J",
    "OSC 8 link": "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07",
    "bidi override": "a\u202eb",
    "newline": "a\nError: forged second line",
    "carriage return": "ok\rforged",
    "C1 CSI": "x\x9b2J",
}
SHAPES = {
    "unknown option": lambda p: ["collect", f"--{p}"],
    "unknown command": lambda p: [f"col{p}"],
    "bad integer": lambda p: ["demo", "--devices", p],
    "extra argument": lambda p: ["collect", p],
    "bad global value": lambda p: ["--log-format", p, "collect"],
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_a_usage_error_is_one_escaped_line(revoke_cli, tmp_path, shape: str, payload: str) -> None:
    res = revoke_cli(*SHAPES[shape](PAYLOADS[payload]), cwd=tmp_path, in_process=True)
    assert res.returncode == 2, (shape, payload, res.stderr)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (shape, payload, res.stderr)
    assert is_safe(lines[0]), (shape, payload, lines[0])
    assert res.stdout == "" and list(tmp_path.iterdir()) == []
