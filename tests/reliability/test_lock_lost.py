"""A run whose lock was taken over while it was suspended stops before its next provider action:
exit 2 with a clear line, and nothing more in the journal from it (the new holder's records end
it). Judged by the journal and, on the lab, by IAM's own key list."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from examples.lab.demo import RUNNER
from tests.conftest import NOT_INHERITED
from tests.incident.provider_state import aws_keys
from tests.reliability.reliability_testlib import INVENTORY, Workspace

PLAYBOOK = "compromised-ci-supply-chain"


def _age_heartbeat(db_path: Path, incident: str) -> None:
    """What a holder suspended past the bound looks like to everyone else."""
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE incidents SET lock_at=? WHERE id=?",
                   ((datetime.now(UTC) - timedelta(minutes=10)).isoformat(), incident))


def _suspend_between_writes(pid: int, db_path: Path) -> None:
    """SIGSTOP the process outside a SQLite write transaction: one stopped inside it keeps the file
    lock, and then nobody can write (a limit of a file store, not of the run lock under test)."""
    for _ in range(200):
        os.kill(pid, signal.SIGSTOP)
        try:
            with sqlite3.connect(db_path, timeout=0.05) as db:
                db.execute("BEGIN IMMEDIATE")
                db.rollback()
            return
        except sqlite3.OperationalError:
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.002)
    raise AssertionError("the run held the store's write lock at every attempt to suspend it")


def _records(db_path: Path, incident: str) -> list[tuple[int, str, str | None]]:
    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT seq, type, action FROM journal WHERE incident=? ORDER BY seq", (incident,)).fetchall()


@pytest.mark.parametrize("then", ["held", "released"])
def test_a_journal_whose_lock_was_taken_over_writes_nothing_more(revoke_cli, tmp_path: Path, then: str) -> None:
    from revoke.journal import Journal
    from revoke.run_lock import LockLostError
    from revoke.store import Store

    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY))
    (tmp_path / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [{"type": "inventory", "path": "inventory.yaml"}]}))
    ws = Workspace(tmp_path, tmp_path / ".revoke" / "revoke.db", tmp_path / "revoke.yaml")
    assert revoke_cli("collect", **ws.cli).returncode == 0
    assert revoke_cli("run", PLAYBOOK, "--node", "host:ci-runner-7", "--incident", "i1", "--execute",
                      **ws.cli).returncode == 0
    store = Store(f"sqlite:///{ws.store}", create=False)
    journal = Journal(store, "i1")
    token = journal.acquire()
    try:
        journal.append("run.start", data={"by": "suspended holder"})
        _age_heartbeat(ws.store, "i1")
        # another process takes the lock over (and holds it, or finishes and releases it)
        other = "4242@elsewhere.example"
        if then == "held":
            with sqlite3.connect(ws.store) as db:
                db.execute("UPDATE incidents SET lock_owner=? WHERE id='i1'", (other,))
        else:
            res = revoke_cli("run", PLAYBOOK, "--incident", "i1", "--execute", **ws.cli)
            assert res.returncode == 0, res.stdout + res.stderr
        before = _records(ws.store, "i1")
        with pytest.raises(LockLostError) as caught:
            journal.append("intent", action="revoke:x", data={"verb": "revoke"})
        assert _records(ws.store, "i1") == before
        message = caught.value.diagnostic()
        assert "taken over" in message and "stopped before its next provider action" in message
        assert (other in message) if then == "held" else ("cleared" in message)
        assert journal.check_chain()[0]
    finally:
        journal.release(token)
        store.close()


def test_a_suspended_run_stops_after_a_takeover_and_the_new_holder_finishes(demo_lab) -> None:
    lb = demo_lab
    db_path = lb.directory / ".revoke" / "revoke.db"
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}

    def revoke(*args: str, **kw) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "revoke", *args], cwd=lb.directory, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)

    assert revoke("collect").wait(120) == 0
    before = aws_keys(lb)
    first = revoke("run", PLAYBOOK, "--node", RUNNER, "--incident", "s1", "--execute", "--approve")
    # suspend it as soon as it has started acting (a VM paused mid-run)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(t == "intent" for _, t, _ in _records(db_path, "s1")) if db_path.exists() else False:
            break
        time.sleep(0.005)
    _suspend_between_writes(first.pid, db_path)
    try:
        assert first.poll() is None
        stopped_at = _records(db_path, "s1")
        assert ("run.end" not in [t for _, t, _ in stopped_at]), "the run finished before it could be suspended"
        _age_heartbeat(db_path, "s1")
        second = revoke("run", PLAYBOOK, "--incident", "s1", "--execute", "--approve")
        out, err = second.communicate(timeout=300)
        assert second.returncode == 0, out + err
    finally:
        os.kill(first.pid, signal.SIGCONT)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 2, out + err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert "lock was taken over" in line and "stopped before its next provider action" in line, err
    records = _records(db_path, "s1")
    # nothing from the suspended run after the new holder's end of run
    assert records[-1][1] == "run.end", records[-5:]
    assert [t for _, t, _ in records].count("lock.takeover") == 1
    # the crash contract holds: one replacement per rotated user, none left behind
    after = aws_keys(lb)
    for user, old in before.items():
        made = [k for k in after[user] if k not in old]
        assert len(made) == 1, (user, before[user], after[user])
