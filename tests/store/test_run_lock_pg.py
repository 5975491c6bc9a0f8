"""The single-runner lock on a Postgres store is also a session advisory lock: a live holder on any
host keeps the incident, a dead one (SIGKILL, a lost machine) releases it with its connection, at
once, without waiting for the heartbeat bound."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from revoke.journal import Journal
from revoke.run_lock import LockedError
from revoke.store import Store

ROOT = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from revoke.journal import Journal
from revoke.store import Store
j = Journal(Store(sys.argv[1], create=False), "i1")
j.acquire()
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture
def declared(postgres_lab: Any) -> str:
    url = str(postgres_lab.uri(postgres_lab.new_database("lock")))
    Journal(Store(url), "i1").declare("pb.yaml", "pb", "sha256:00", ["host:h"], {})
    return url


def test_a_live_session_keeps_the_incident_and_release_frees_it(declared: str) -> None:
    first, second = Journal(Store(declared, create=False), "i1"), Journal(Store(declared, create=False), "i1")
    token = first.acquire()
    with pytest.raises(LockedError, match="being run by"):
        second.acquire()  # same process, same pid@host token: only the advisory lock tells them apart
    first.release(token)
    second.release(second.acquire())


def test_a_killed_holder_is_taken_over_at_once(declared: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, declared], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        j = Journal(Store(declared, create=False), "i1")
        with pytest.raises(LockedError):
            j.acquire()
        holder.kill()
        holder.wait()
        # pretend the dead holder ran on another machine with a fresh heartbeat: no pid to check,
        # no stale heartbeat, yet its session is gone
        j.store.db.execute("UPDATE incidents SET lock_owner=?, lock_at=? WHERE id='i1'",
                           (f"{holder.pid}@elsewhere", datetime.now(UTC).isoformat()))
        j.release(j.acquire())
    finally:
        if holder.poll() is None:
            holder.kill()
    takeover = [r for r in j.records() if r.type == "lock.takeover"]
    assert takeover and takeover[-1].data["holder"] == f"{holder.pid}@elsewhere"
    assert "advisory lock" in takeover[-1].data["reason"]
