"""The run lock: a lock left by a process on another host is taken over once its heartbeat is older
than the bound (5 minutes), never before; a live holder keeps its heartbeat fresh; `revoke unlock`
clears a lock only with --force, and the journal says who cleared (or took over) whose lock."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.reliability.reliability_testlib import INVENTORY, Workspace

PLAYBOOK = "compromised-ci-supply-chain"
RESUME = ["run", PLAYBOOK, "--incident", "i1", "--execute"]
OTHER = "4242@build-host-elsewhere.example"


@pytest.fixture(scope="module")
def pristine(revoke_cli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("lock")
    (root / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY))
    (root / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [{"type": "inventory", "path": "inventory.yaml"}]}))
    ws = Workspace(root, root / ".revoke" / "revoke.db", root / "revoke.yaml")
    assert revoke_cli("collect", **ws.cli).returncode == 0
    assert revoke_cli("run", PLAYBOOK, "--node", "host:ci-runner-7", "--incident", "i1", "--execute",
                      **ws.cli).returncode == 0
    ws.snapshot()
    yield root


@pytest.fixture
def ws(pristine: Path, tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(pristine, root)
    return Workspace(root, root / ".revoke" / "revoke.db", root / "revoke.yaml")


def _lock(ws: Workspace, owner: str, heartbeat_age: timedelta | None) -> None:
    at = None if heartbeat_age is None else (datetime.now(UTC) - heartbeat_age).isoformat()
    with sqlite3.connect(ws.store) as db:
        db.execute("UPDATE incidents SET lock_owner=?, lock_at=? WHERE id='i1'", (owner, at))


def _lock_row(ws: Workspace) -> tuple[str | None, str | None]:
    with sqlite3.connect(ws.store) as db:
        row = db.execute("SELECT lock_owner, lock_at FROM incidents WHERE id='i1'").fetchone()
    return row[0], row[1]


def _records(ws: Workspace, type_: str) -> list[str]:
    with sqlite3.connect(ws.store) as db:
        return [r[0] for r in db.execute("SELECT data FROM journal WHERE incident='i1' AND type=? ORDER BY seq",
                                         (type_,))]


def _count(ws: Workspace) -> int:
    with sqlite3.connect(ws.store) as db:
        return int(db.execute("SELECT count(*) FROM journal WHERE incident='i1'").fetchone()[0])


@pytest.mark.parametrize("age", [timedelta(minutes=5, seconds=30), timedelta(hours=3), None])
def test_stale_lock_from_another_host_is_taken_over(revoke_cli, ws: Workspace, age: timedelta | None) -> None:
    _lock(ws, OTHER, age)
    res = revoke_cli(*RESUME, **ws.cli)
    assert res.returncode == 0, res.stdout + res.stderr
    takeovers = _records(ws, "lock.takeover")
    assert len(takeovers) == 1 and OTHER in takeovers[0] and '"by"' in takeovers[0], takeovers
    assert _lock_row(ws) == (None, None)  # released at the end of the run


@pytest.mark.parametrize("age", [timedelta(seconds=0), timedelta(seconds=20), timedelta(minutes=4, seconds=30)])
def test_fresh_lock_from_another_host_is_not_taken_over(revoke_cli, ws: Workspace, age: timedelta) -> None:
    _lock(ws, OTHER, age)
    before = _count(ws)
    for cmd in (RESUME, ["rollback", "--incident", "i1", "--execute"]):
        line = revoke_cli(*cmd, **ws.cli).error_line()
        assert f"is being run by {OTHER} (last heartbeat" in line and "revoke unlock --incident i1 --force" in line, line
    assert _count(ws) == before
    assert _lock_row(ws)[0] == OTHER


def test_unlock_requires_force(revoke_cli, ws: Workspace) -> None:
    _lock(ws, OTHER, timedelta(seconds=5))
    before = _count(ws)
    line = revoke_cli("unlock", "--incident", "i1", **ws.cli).error_line()
    assert "--force" in line and OTHER in line, line
    assert _lock_row(ws)[0] == OTHER and _count(ws) == before
    assert "unknown incident" in revoke_cli("unlock", "--incident", "nope", "--force", **ws.cli).error_line()


def test_forced_unlock_is_journaled_and_lets_a_run_resume(revoke_cli, ws: Workspace) -> None:
    _lock(ws, OTHER, timedelta(seconds=5))
    res = revoke_cli("unlock", "--incident", "i1", "--force", **ws.cli)
    assert res.returncode == 0 and OTHER in res.stdout, res.stdout + res.stderr
    unlocks = _records(ws, "unlock")
    assert len(unlocks) == 1 and OTHER in unlocks[0] and '"by"' in unlocks[0], unlocks
    assert _lock_row(ws) == (None, None)
    again = revoke_cli("unlock", "--incident", "i1", "--force", **ws.cli)
    assert again.returncode == 0 and "not locked" in again.stdout
    assert len(_records(ws, "unlock")) == 1
    assert revoke_cli(*RESUME, **ws.cli).returncode == 0


def test_a_live_holder_keeps_its_heartbeat_fresh(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from revoke import run_lock
    from revoke.journal import Journal
    from revoke.store import Store

    monkeypatch.setattr(run_lock, "HEARTBEAT_SECONDS", 0.05)
    store = Store(f"sqlite:///{ws.store}", create=False)
    journal = Journal(store, "i1")
    token = journal.acquire()
    try:
        first = _lock_row(ws)
        time.sleep(0.4)
        owner, later = _lock_row(ws)
        assert owner == token == first[0]
        assert later is not None and first[1] is not None and later > first[1]
    finally:
        journal.release(token)
        store.close()
    assert _lock_row(ws) == (None, None)
