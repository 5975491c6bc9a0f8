"""The job queue of a Postgres store: rows in `jobs`, claimed with `FOR UPDATE SKIP LOCKED`.

A claim is a lease: `claimed_until` is pushed forward by the worker's heartbeat while it works.
A worker that dies (SIGKILL, a lost machine) stops beating; once its lease has passed, the next
claim takes the job again with `attempts` + 1, so the handler knows it is a retry and re-probes
before acting (a collection simply runs again: it only reads). A result is accepted only from
the claim that still holds the job: a worker whose lease was taken over cannot finish it, so
nothing is recorded twice.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from revoke.errors import StoreError
from revoke.store import Store

LEASE_SECONDS = 30.0
MAX_ATTEMPTS = 3
# how long a job meant for one worker waits for it when that worker holds no live claim (idle, or dead)
AFFINITY_GRACE = 2.0


@dataclass(frozen=True)
class Job:
    id: int
    batch: str
    kind: str
    payload: dict[str, Any]
    attempts: int  # 1 on the first claim; more means an earlier claim expired or failed

    @property
    def retried(self) -> bool:
        return self.attempts > 1


def worker_id() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


QUEUE_NEEDED = ("workers need a shared store: pass --store postgresql://... (a SQLite file is one machine's; "
                "without --workers, everything runs in this process)")


def require_queue(store: Store) -> None:
    if store.pg is None:
        raise StoreError(QUEUE_NEEDED)


def enqueue(store: Store, batch: str, kind: str, payloads: list[dict[str, Any]]) -> list[int]:
    require_queue(store)
    ids = []
    with store.transaction() as db:
        for payload in payloads:
            row = db.execute("INSERT INTO jobs (batch, kind, payload) VALUES (?,?,?) RETURNING id",
                             (batch, kind, json.dumps(payload, sort_keys=True))).fetchone()
            ids.append(int(row[0]))
    return ids


def claim(store: Store, me: str, kinds: list[str], lease: float = LEASE_SECONDS) -> Job | None:
    """The oldest queued job of these kinds, or one whose lease expired; None when there is none.
    One statement: the row is locked, skipped by every concurrent claim, and leased to `me`.

    A job whose payload names a worker (`"with"`: it needs what that worker holds in memory, e.g.
    a new CA's key for the certificates it signs) is that worker's while the worker is alive
    (holds a live claim) or the job is younger than AFFINITY_GRACE; after that anyone takes it."""
    require_queue(store)
    marks = ",".join("?" * len(kinds))
    row = store.db.execute(
        "UPDATE jobs SET state='running', attempts=attempts+1, claimed_by=?, "
        "claimed_until=now() + make_interval(secs => ?) "
        "WHERE id = (SELECT j.id FROM jobs j WHERE j.kind IN (" + marks + ") AND "
        "(j.state='queued' OR (j.state='running' AND j.claimed_until < now())) AND "
        "(j.payload::jsonb->>'with' IS NULL OR j.payload::jsonb->>'with' = ? OR "
        " (j.created_at < now() - make_interval(secs => ?) AND NOT EXISTS (SELECT 1 FROM jobs w WHERE "
        "  w.claimed_by = j.payload::jsonb->>'with' AND w.state='running' AND w.claimed_until >= now()))) "
        "ORDER BY j.id FOR UPDATE OF j SKIP LOCKED LIMIT 1) "
        "RETURNING id, batch, kind, payload, attempts", (me, lease, *kinds, me, AFFINITY_GRACE)).fetchone()
    if row is None:
        return None
    return Job(int(row[0]), row[1], row[2], json.loads(row[3]), int(row[4]))


def extend(store: Store, job: Job, me: str, lease: float = LEASE_SECONDS) -> bool:
    """Push the lease forward; False when the job is no longer this claim's (taken over)."""
    cur = store.db.execute("UPDATE jobs SET claimed_until=now() + make_interval(secs => ?) "
                           "WHERE id=? AND state='running' AND claimed_by=? AND attempts=?",
                           (lease, job.id, me, job.attempts))
    return bool(cur.rowcount)


def finish(store: Store, job: Job, me: str, result: dict[str, Any]) -> bool:
    """Record the result, once: only the claim that still holds the job may."""
    cur = store.db.execute("UPDATE jobs SET state='done', result=?, done_at=now(), claimed_until=NULL "
                           "WHERE id=? AND state='running' AND claimed_by=? AND attempts=?",
                           (json.dumps(result), job.id, me, job.attempts))
    return bool(cur.rowcount)


def fail(store: Store, job: Job, me: str, error: str, *, max_attempts: int = MAX_ATTEMPTS) -> None:
    """A handler's crash (not a provider's refusal, which is a result): queued again until
    `max_attempts`, then failed for good with the error."""
    final = job.attempts >= max_attempts
    store.db.execute("UPDATE jobs SET state=?, error=?, claimed_until=NULL, done_at=CASE WHEN ? THEN now() END "
                     "WHERE id=? AND claimed_by=? AND attempts=?",
                     ("failed" if final else "queued", error, final, job.id, me, job.attempts))


def progress(store: Store, batch: str) -> dict[str, int]:
    return {state: int(n) for state, n in store.db.execute(
        "SELECT state, count(*) FROM jobs WHERE batch=? GROUP BY state", (batch,))}


def wait(store: Store, batch: str, *, timeout: float | None = None, poll: float = 0.2,
         on_progress: Callable[[dict[str, int]], None] | None = None) -> dict[int, dict[str, Any]]:
    """Block until every job of the batch is done or failed; {job id: result or {"error": ...}}."""
    start = time.monotonic()
    last: dict[str, int] = {}
    while True:
        counts = progress(store, batch)
        if counts != last and on_progress is not None:
            on_progress(counts)
        last = counts
        if not counts.get("queued") and not counts.get("running"):
            break
        if timeout is not None and time.monotonic() - start > timeout:
            raise StoreError(f"jobs of batch {batch} not finished after {timeout:.0f}s ({counts}); is a "
                             "`revoke worker` running against this store?")
        time.sleep(poll)
    out: dict[int, dict[str, Any]] = {}
    for job_id, state, result, error in store.db.execute(
            "SELECT id, state, result, error FROM jobs WHERE batch=? ORDER BY id", (batch,)):
        out[int(job_id)] = json.loads(result) if state == "done" else {"error": error or state}
    return out
