"""A worker: claim a job, run its handler, record the result; repeat (`revoke worker`).

Any number of workers on any machines share one Postgres store. While a handler runs, a
heartbeat thread keeps the job's lease; a worker killed mid-job leaves a lease that runs out, and
the next claim retries the job (revoke/jobs.py). A handler's result is recorded only if this
claim still holds the job."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from revoke import jobs
from revoke.store import Store

log = structlog.get_logger()

Handler = Callable[[jobs.Job], dict[str, Any]]


def default_handlers(store_url: str) -> dict[str, Handler]:
    """Collections (`revoke collect --workers`) and plan steps (`revoke run --execute --workers`)."""
    from functools import partial

    from revoke import collect_jobs, step_jobs

    return {collect_jobs.KIND: collect_jobs.handle, step_jobs.KIND: partial(step_jobs.handle, store_url)}


@dataclass
class WorkerStats:
    done: int = 0
    lost: int = 0  # finished after the lease was taken over: result dropped
    failed: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


class _Lease(threading.Thread):
    """One per worker: extends the current job's lease every third of it (no thread per job)."""

    def __init__(self, store: Store, me: str, lease: float) -> None:
        super().__init__(name="revoke-lease", daemon=True)
        self.store, self.me, self.lease = store, me, lease
        self.job: jobs.Job | None = None
        self.closed = threading.Event()
        self._lock = threading.Lock()

    def hold(self, job: jobs.Job | None) -> None:
        with self._lock:
            self.job = job

    def run(self) -> None:
        while not self.closed.wait(self.lease / 3):
            with self._lock:
                job = self.job
                if job is None:
                    continue
                try:
                    if not jobs.extend(self.store, job, self.me, self.lease):
                        log.error("worker.lease_lost", job=job.id, effect="another worker took this job over")
                        self.job = None
                except Exception as exc:  # a busy store: the next beat tries again
                    log.warning("worker.lease_failed", job=job.id, error=str(exc))


def run(store_url: str, handlers: dict[str, Handler], *, lease: float = jobs.LEASE_SECONDS, once: bool = False,
        idle_exit: float | None = None, poll: float = 0.2, stop: threading.Event | None = None) -> WorkerStats:
    """Work until stopped, after one job with `once`, or after `idle_exit` seconds with nothing to
    claim. The heartbeat has its own connection: a long statement of the handler never delays it."""
    from revoke.errors import StoreError
    from revoke.store import is_postgres

    if not is_postgres(store_url):
        raise StoreError("workers need a shared store: pass --store postgresql://... (a SQLite file is one machine's)")
    me = jobs.worker_id()
    store, beat_store = Store(store_url, create=False), Store(store_url, create=False)
    jobs.require_queue(store)
    stats = WorkerStats()
    keeper = _Lease(beat_store, me, lease)
    keeper.start()
    idle_since = time.monotonic()
    try:
        while stop is None or not stop.is_set():
            job = jobs.claim(store, me, sorted(handlers), lease)
            if job is None:
                if once or (idle_exit is not None and time.monotonic() - idle_since > idle_exit):
                    break
                time.sleep(poll)
                continue
            log.info("worker.claimed", job=job.id, kind=job.kind, attempt=job.attempts, retry=job.retried)
            keeper.hold(job)
            try:
                result = handlers[job.kind](job)
            except Exception as exc:
                keeper.hold(None)
                jobs.fail(store, job, me, f"{type(exc).__name__}: {exc}")
                stats.failed += 1
                log.error("worker.failed", job=job.id, error=str(exc))
            else:
                _fault_point()
                keeper.hold(None)
                if jobs.finish(store, job, me, result):
                    stats.done += 1
                    stats.kinds[job.kind] = stats.kinds.get(job.kind, 0) + 1
                else:
                    stats.lost += 1
                    log.warning("worker.result_dropped", job=job.id, reason="lease taken over by another worker")
            idle_since = time.monotonic()
            if once:
                break
    finally:
        keeper.closed.set()
        keeper.join(timeout=5)
        from revoke import step_jobs

        step_jobs.close()  # the connectors and store connection kept for a run's steps
        store.close()
        beat_store.close()
    return stats


_handled = 0


def _fault_point() -> None:
    """Crash-test hook: REVOKE_FAULT_KILL_WORKER_AFTER=N SIGKILLs this worker once its N-th handler
    has returned and before the result is recorded (mid-job, as seen from the queue). Unset in
    normal use."""
    import os

    global _handled
    limit = os.environ.get("REVOKE_FAULT_KILL_WORKER_AFTER")
    if not limit:
        return
    _handled += 1
    if _handled >= int(limit):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
