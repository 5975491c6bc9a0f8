"""Outputs that cannot be turned against their reader: terminal escapes and TSV (Markdown:
test_hostile_markdown.py).

A workspace whose inventory, certificate subjects, file names and attestation notes carry every
payload of each class, driven through the real CLI: every text a person reads (tables, lines, the
error line, console logs) shows control and bidi characters escaped and Rich markup verbatim.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from examples.lab import pki

# --- the terminal class: one payload per way a text can act on a terminal or mislead its reader --
TERMINAL = {
    "erase-screen": "\x1b[2J\x1b[H",
    "osc8-link": "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "c1-csi": "\x9b1;31m",
    "title-bell": "\x1b]0;pwned\x07",
    "backspace": "abc\x08\x08\x08xyz",
    "del": "a\x7fb",
    "bidi-override": "\u202egpj.exe",
    "bidi-isolate": "\u2067x\u2069",
    "zero-width": "a\u200bb\u200dc\ufeff",
    "tag-characters": "\U000e0061\U000e0062",
    "rich-markup": "[bold]b[/bold][link=https://evil.example]l[/link]",
}
# these hold whitespace, which a node id cannot: they go in names, notes and messages
LINE_BREAKING = {
    "newline": "a\nCLEAN",
    "carriage-return": "real\rfake",
    "line-separator": "a\u2028b",
    "vertical-tab": "a\x0bb",
}
ALL = {**TERMINAL, **LINE_BREAKING}
SHOWN = {  # how some payloads read once shown safely
    "erase-screen": "\\x1b[2J\\x1b[H",
    "bidi-override": "\\u202egpj.exe",
    "c1-csi": "\\x9b1;31m",
    "rich-markup": "[bold]b[/bold][link=https://evil.example]l[/link]",
    "tag-characters": "\\U000e0061\\U000e0062",
}
HOST = "host:ci-runner-7"
PLAYBOOK = str(Path(__file__).resolve().parents[2] / "playbooks" / "compromised-host.yaml")


def key_id(i: int, payload: str) -> str:
    return f"aws:access_key:AKIAHOSTILE{i:02d}{payload}"


def user_id(i: int, payload: str) -> str:
    return f"aws:user:u{i:02d}{payload}"


KEYS = [key_id(i, p) for i, p in enumerate(TERMINAL.values())]
USERS = [user_id(i, p) for i, p in enumerate(TERMINAL.values())]
NOTE = "done " + " ".join(ALL.values())
SUBJECT = "CA \x1b[2J\u202eAcme\n\x1b]8;;h\x07[b]x\x9b"  # a certificate subject (64 bytes at most)


def unsafe(text: str, *, newlines: bool = False) -> list[str]:
    """Characters a terminal acts on or hides: Unicode Cc, Cf, Cs, Zl, Zp (a newline allowed in
    multi-line output)."""
    return [ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")
            and not (newlines and ch == "\n")]


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An inventory of hostile ids and names, a certificate whose subject is hostile, a PEM file
    whose name is hostile (a finding), collected; an incident run with a hostile attestation note."""
    from tests.conftest import run_revoke

    root = tmp_path_factory.mktemp("hostile")
    old = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    nodes: list[dict[str, Any]] = [{"id": HOST, "kind": "host"}]
    edges: list[dict[str, str]] = []
    for i, payload in enumerate(TERMINAL.values()):
        nodes.append({"id": key_id(i, payload), "kind": "access_key", "provider": "aws", "created": old,
                      "name": f"key {payload} {list(LINE_BREAKING.values())[i % len(LINE_BREAKING)]}"})
        nodes.append({"id": user_id(i, payload), "kind": "user", "provider": "aws"})
        edges.append({"from": HOST, "to": key_id(i, payload), "rel": "stores"})
        edges.append({"from": key_id(i, payload), "to": user_id(i, payload), "rel": "authenticates_as"})
    (root / "inventory.json").write_text(json.dumps({"nodes": nodes, "edges": edges}))
    (root / "pki").mkdir()
    ca, _ = pki.make_ca(SUBJECT)
    (root / "pki" / "ca.pem").write_text(pki.pem(ca))
    (root / "pki" / "bad\x1b[2J\u202e.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    (root / "revoke.yaml").write_text("connectors:\n  - type: inventory\n    path: inventory.json\n"
                                      f"  - type: x509\n    paths: [pki]\n    holder: {HOST}\n")
    store = root / "s.db"

    def cli(*args: str, **kw: Any) -> Any:
        kw.setdefault("in_process", True)
        return run_revoke(*args, cwd=root, store=store, config=root / "revoke.yaml", **kw)

    collected = cli("collect")
    assert collected.returncode == 0, collected
    executed = cli("run", PLAYBOOK, "--node", HOST, "--incident", "inc-1", "--execute")
    assert executed.returncode == 0, executed
    attested = cli("attest", "--incident", "inc-1", KEYS[0], "--note", NOTE)
    assert attested.returncode == 0, attested
    return {"root": root, "store": store, "cli": cli, "collect": collected, "execute": executed}


def assert_shown_safely(text: str, *, newlines: bool = True) -> None:
    assert text, "nothing printed"
    bad = unsafe(text, newlines=newlines)
    assert not bad, f"raw {sorted(set(map(repr, bad)))} in:\n{text[:2000]!r}"


def terminal_outputs(ws: dict[str, Any]) -> dict[str, tuple[str, str]]:
    cli: Callable[..., Any] = ws["cli"]
    runs = {
        "collect": ws["collect"],
        "blast-radius": cli("blast-radius", HOST),
        "explain": cli("explain", HOST, USERS[0]),
        "plan": cli("plan", PLAYBOOK, "--node", HOST),
        "run (dry run)": cli("run", PLAYBOOK, "--node", HOST, "--incident", "inc-dry"),
        "run --execute": ws["execute"],
        "verify": cli("verify", "--incident", "inc-1", "--no-collect"),
        "sweep": cli("sweep", "--fail-on", "none"),
        "did you mean": cli("blast-radius", "aws:access_key:AKIAHOSTILE0"),
    }
    return {name: (r.stdout, r.stderr) for name, r in runs.items()}


def test_every_terminal_output_shows_payloads_escaped(ws: dict[str, Any]) -> None:
    outputs = terminal_outputs(ws)
    for name, (stdout, stderr) in outputs.items():
        for stream in (stdout, stderr):
            if stream:
                assert_shown_safely(stream), name
    # shown, not dropped: the escaped forms are there, and Rich markup in an id is printed verbatim
    for name in ("blast-radius", "plan", "run (dry run)", "sweep"):
        for payload in ("erase-screen", "bidi-override", "rich-markup", "c1-csi", "tag-characters"):
            assert SHOWN[payload] in outputs[name][0], (name, payload)
    # the "did you mean" suggestions of an error line quote hostile ids on one line
    err = outputs["did you mean"][1]
    assert err.startswith("error: unknown node") and "did you mean" in err and err.count("\n") == 1
    # a finding about a file whose name is hostile (x509), printed by collect
    assert "bad\\x1b[2J\\u202e.pem" in outputs["collect"][0]


def test_html_outputs_piped_to_a_terminal_show_payloads_escaped(ws: dict[str, Any]) -> None:
    """The HTML report and sweep are often paged in a terminal before a browser opens them: no raw
    control, bidi or zero-width character reaches the bytes, and the payloads are shown escaped."""
    cli = ws["cli"]
    for args in (("report", "--incident", "inc-1", "--format", "html"), ("sweep", "--format", "html", "--fail-on", "none")):
        res = cli(*args)
        assert res.returncode in (0, 1), res
        assert_shown_safely(res.stdout)
        assert "\\x1b[2J" in res.stdout and "\\u202egpj.exe" in res.stdout, args


def test_free_text_cannot_forge_a_line(ws: dict[str, Any]) -> None:
    """A note or a name holding a line break stays on its own line: `verify` cannot be made to
    print a line reading CLEAN for an incident that is not."""
    res = ws["cli"]("verify", "--incident", "inc-1", "--no-collect")
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert "CLEAN" not in lines and any(ln.startswith("NOT CLEAN") for ln in lines)
    assert not any(ln.startswith(("CLEAN", "fake")) for ln in lines)
    [attested] = [ln for ln in lines if "attested, not probed" in ln]
    assert "a\\nCLEAN" in attested and "real\\rfake" in attested and "a\\u2028b" in attested


def test_tsv_outputs(ws: dict[str, Any]) -> None:
    cli = ws["cli"]
    outputs = {
        "blast-radius": (cli("blast-radius", HOST, "--format", "tsv"), 8),
        "plan": (cli("plan", PLAYBOOK, "--node", HOST, "--format", "tsv"), 10),
        "verify": (cli("verify", "--incident", "inc-1", "--no-collect", "--format", "tsv"), 4),
        "sweep": (cli("sweep", "--fail-on", "none", "--format", "tsv"), 4),
    }
    for name, (res, columns) in outputs.items():
        assert res.returncode in (0, 1), (name, res)
        assert_shown_safely(res.stdout.replace("\t", " "))  # tabs separate fields, and only they
        rows = [line.split("\t") for line in res.stdout.splitlines()]
        assert len(rows) > 1 and all(len(r) == columns for r in rows), (name, [r for r in rows if len(r) != columns])
        assert SHOWN["erase-screen"] in res.stdout, name
    blast = [r.split("\t") for r in outputs["blast-radius"][0].stdout.splitlines()]
    assert blast[0] == ["role", "id", "kind", "provider", "depth", "live", "status", "via"]
    ids = {r[1] for r in blast[1:]}
    assert SHOWN["rich-markup"] in "".join(ids) and f"aws:access_key:AKIAHOSTILE00{SHOWN['erase-screen']}" in ids
    verify = outputs["verify"][0].stdout
    # a tab or newline inside a value is escaped, never a field or row of its own
    assert "a\\nCLEAN" in verify and "real\\rfake" in verify
    assert verify.splitlines()[-1] == "verdict\t\tnot clean\t"


def test_tsv_field_escapes_separators() -> None:
    from revoke.textsafe import tsv

    text = tsv(["a", "b"], [["x\ty", "line\nbreak\\"], [None, True]])
    assert text == "a\tb\nx\\ty\tline\\nbreak\\\\\n\ttrue\n"


def test_console_logs_show_payloads_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    import structlog

    from revoke import logs
    from revoke.textsafe import safe

    logs.configure("console", "info")
    log = structlog.get_logger()
    for name, payload in ALL.items():
        log.warning("collect.failed", connector=f"c-{name}", error=f"provider said {payload}", node=KEYS[0])
    secret_local = "AKIAIOSFODNN7EXAMPLE/wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # noqa: F841 (a frame's local)
    try:
        raise ValueError("boom " + TERMINAL["erase-screen"])
    except ValueError:
        log.exception("action.crashed", node=KEYS[1])
    err = capsys.readouterr().err
    assert_shown_safely(err)
    lines = err.splitlines()
    # one line per event (the traceback adds its own lines, safely), never a forged one
    assert sum(1 for ln in lines if ln.endswith(f"node={safe(KEYS[0])}")) == len(ALL)
    assert "wJalrXUtnFEMI" not in err  # a traceback never prints a frame's locals
    assert not any(ln.startswith("CLEAN") or ln == "fake" for ln in lines)
    assert "\\x1b[2J" in err and "\\u202egpj.exe" in err and "boom \\x1b[2J" in err


def test_sanitiser_covers_every_control_and_format_character() -> None:
    """The sanitiser's class is written out (no table built at start-up); it must hold every
    character this Python's Unicode tables put in Cc, Cf, Cs, Zl or Zp."""
    from revoke.textsafe import is_safe, safe

    noncharacter = set(range(0xFDD0, 0xFDF0)) | {p << 16 | low for p in range(17) for low in (0xFFFE, 0xFFFF)}
    missing = [f"U+{c:04X}" for c in range(sys.maxunicode + 1)
               if (unicodedata.category(chr(c)) in ("Cc", "Cf", "Cs", "Zl", "Zp") or c in noncharacter) and is_safe(chr(c))]
    assert not missing
    assert safe("a\nb") == "a\\nb" and safe("a\nb", newlines=True) == "a\nb"
    assert safe("é ü 漢字 🙂 ok") == "é ü 漢字 🙂 ok"  # printable text is left alone


# --- a real terminal: 80 columns, ids shortened in tables and printed whole after them -----------
def _on_a_terminal(args: list[str], cwd: Path, columns: int = 80) -> str:
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("REVOKE_STORE", "COLUMNS", "LINES")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([sys.executable, "-m", "revoke", *args], cwd=cwd, stdin=slave, stdout=slave,
                            stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(master)
    return b"".join(chunks).decode()


_RICH_STYLE = re.compile(r"\x1b\[[0-9;]*m")  # Rich's own colours, the only escapes revoke writes


def test_terminal_tables_fit_and_never_split_an_id(ws: dict[str, Any], tmp_path: Path) -> None:
    from revoke.store import Store

    root, store = ws["root"], ws["store"]
    ca_id = next(nid for nid in Store(f"sqlite:///{store}").load_compiled().ids if nid.startswith("x509:ca:"))
    text = _on_a_terminal(["--store", f"sqlite:///{store}", "--config", str(root / "revoke.yaml"),
                           "blast-radius", HOST, "x509:private_key:" + "0" * 4], root)
    assert "error: unknown node" in text  # a near miss: the "did you mean" line, on a terminal
    text = _on_a_terminal(["--store", f"sqlite:///{store}", "--config", str(root / "revoke.yaml"),
                           "blast-radius", HOST, ca_id], root)
    plain = _RICH_STYLE.sub("", text).replace("\r\n", "\n")
    assert_shown_safely(plain)
    for payload in ("\x1b[2J", "\x1b]8;;", "\u202e", "\x9b"):
        assert payload not in text
    lines = plain.splitlines()
    assert max(len(ln) for ln in lines if "│" in ln or "━" in ln) <= 80
    # the 64-hex CA id is shortened in the table, with the certificate's subject, and whole below it
    short = f"x509:ca:{ca_id[8:12]}\u2026{ca_id[-4:]}"
    assert any(short in ln and "│" in ln for ln in lines), plain
    assert any(ln.strip().startswith(short) and ln.strip().endswith(ca_id) for ln in lines), plain
    assert not any(ca_id[8:40] in ln for ln in lines if "│" in ln)  # no piece of a folded id in a cell


@pytest.mark.parametrize("args", [["plan", PLAYBOOK, "--node", HOST], ["sweep", "--fail-on", "none"]],
                         ids=["plan", "sweep"])
def test_terminal_plan_and_sweep_fit_80_columns(ws: dict[str, Any], args: list[str]) -> None:
    root, store = ws["root"], ws["store"]
    text = _on_a_terminal(["--store", f"sqlite:///{store}", "--config", str(root / "revoke.yaml"), *args], root)
    plain = _RICH_STYLE.sub("", text).replace("\r\n", "\n")
    assert_shown_safely(plain)
    lines = plain.splitlines()
    table = [ln for ln in lines if ln[:1] in "┃│┏┡└"]
    assert table and max(len(ln) for ln in table) <= 80, plain
    assert "full ids of the shortened ones above:" in plain  # the long hostile ids, whole


def test_piped_tables_are_never_folded(ws: dict[str, Any]) -> None:
    """Off a terminal, ids are whole on one line whatever COLUMNS says."""
    res = ws["cli"]("blast-radius", HOST, columns=40)
    for key in KEYS[:3]:
        shown = key.replace("\x1b", "\\x1b").replace("\x07", "\\x07").replace("\x9b", "\\x9b")
        assert any(shown in ln for ln in res.stdout.splitlines()), (shown, res.stdout)
