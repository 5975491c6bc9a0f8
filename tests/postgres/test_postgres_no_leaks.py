"""No password reaches anything revoke writes or prints, nor the database server's own log: the
old password (a canary), the new one and the new verifier are searched in the store and its
journal, every command's output and debug log, the reports, and the server log written with
`log_statement = 'all'` (the rotation sends a verifier, never the password)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.postgres.pg_incident import HOST, make
from tests.postgres.pg_testlib import can_login

DEBUG = ("--log-format", "json", "--log-level", "debug")


@pytest.fixture
def statement_log(postgres_lab: Any) -> Iterator[Path]:
    """The server logs every statement while the test runs; the log file as it grows."""
    with postgres_lab.admin() as conn:
        conn.execute("ALTER SYSTEM SET log_statement = 'all'")
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield postgres_lab.datadir / "log"
    finally:
        with postgres_lab.admin() as conn:
            conn.execute("ALTER SYSTEM RESET log_statement")
            conn.execute("SELECT pg_reload_conf()")


def _forms(value: str) -> list[str]:
    return [value, base64.b64encode(value.encode()).decode(), value.encode().hex()]


def test_no_password_anywhere(tmp_path: Path, postgres_lab: Any, bao: Any, revoke_cli: Any,
                              statement_log: Path) -> None:
    canary = "canary-pg-" + secrets.token_hex(10)
    lab = make(tmp_path, postgres_lab, bao, canary=canary)
    cli = {"cwd": lab.directory, "env": lab.env}
    log_start = statement_log.stat().st_size if statement_log.exists() else 0
    texts: dict[str, str] = {}

    def run(*args: str, ok: tuple[int, ...] = (0,)) -> None:
        res = revoke_cli(*DEBUG, *args, **cli)
        assert res.returncode in ok, res.stdout + res.stderr
        texts[f"stdout of {args[0]}"] = res.stdout
        texts[f"stderr of {args[0]} {len(texts)}"] = res.stderr

    run("collect")
    run("blast-radius", HOST, "--format", "json")
    run("plan", "playbook.yaml", "--node", HOST, "--format", "json")
    run("run", "playbook.yaml", "--node", HOST, "--incident", "leak", "--execute")
    run("verify", "--incident", "leak", "--format", "json")
    for fmt in ("md", "json", "html"):
        run("report", "--incident", "leak", "--format", fmt)
    run("export", "--format", "json")

    new = lab.kv()["password"]
    assert new != canary and can_login(postgres_lab, lab.role, new)
    with postgres_lab.admin() as conn:
        verifier = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (lab.role,)).fetchone()[0]
    stored_key = verifier.split("$")[2].split(":")[0]
    for path in sorted((lab.directory / ".revoke").iterdir()):
        texts[f"store file {path.name}"] = path.read_bytes().decode("latin-1")
    leaks = [(where, what) for where, text in texts.items()
             for what, value in (("old password", canary), ("new password", new), ("verifier", stored_key))
             for form in _forms(value) if form in text]
    assert leaks == []

    server_log = statement_log.read_bytes()[log_start:].decode("utf-8", "replace")
    assert "ALTER ROLE" in server_log and "SCRAM-SHA-256$" in server_log  # the statement was logged...
    assert new not in server_log and canary not in server_log  # ...with a verifier, never a password
