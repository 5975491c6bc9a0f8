"""Plan steps as jobs: `revoke run --execute --workers` on a Postgres store.

The running `revoke run` stays the coordinator: it declares the incident, holds its run lock, and
walks the DAG exactly as in-process (revoke/execute.py), but a ready step becomes one `step` job
(`QueuedSteps`) instead of a thread; it waits for the job's result and goes on. At most the
playbook's concurrency of a provider is in the queue at once, whoever runs it.

A `revoke worker` (any machine sharing the store) claims the job and runs that one step
(`handle`): it opens the incident's journal, reads the recorded plan, loads the playbook and the
connectors the payload names (a playbook path with its digest, the connectors' options as written
in revoke.yaml: credentials by reference only, resolved on the worker's machine) and runs the step
through `Executor.run_step`, with its intent before and its outcome after. Every append it makes
checks, in the append's own transaction, that the coordinator still holds the lock with the token
it passed and that this worker still holds the job: a worker never acts for a run whose lock was
taken over, nor for a job another worker took over. A worker killed mid-step leaves an intent
without outcome; the job's lease runs out, another worker claims it again and the executor's
resume path re-probes before acting. A provider's refusal is a result (the step failed), not a
crash of the job.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import structlog

from revoke import jobs
from revoke.errors import InputError, RevokeError
from revoke.run_lock import LockLostError
from revoke.step_runners import StepFailed

if TYPE_CHECKING:
    from revoke.config import Config
    from revoke.connector import ActionResult, Replacement
    from revoke.execute import Executor
    from revoke.plan import Step
    from revoke.playbook import Playbook
    from revoke.store import Store

KIND = "step"
log = structlog.get_logger()
# session advisory locks around a shared escrow item's read-merge-write: (ESCROW_SPACE, hashtext(item))
ESCROW_SPACE = 0x7265


def payload(incident: str, lock: str, playbook: Playbook, config: Config, emergency: bool) -> dict[str, Any]:
    """What every step job of one run carries, by reference: no value of any credential."""
    return {"incident": incident, "lock": lock, "emergency": emergency,
            "playbook": {"source": str(Path(playbook.source).resolve()), "digest": playbook.digest},
            "connectors": [{"name": c.name, "type": c.type, "options": c.options} for c in config.connectors]}


class QueuedSteps:
    """The coordinator's StepRunner: one job per ready step; a thread polls the jobs and settles
    each step's future with its result."""

    def __init__(self, executor: Executor, steps: list[Step], *, store_url: str, common: dict[str, Any],
                 on_progress: Callable[[dict[str, int]], None] | None = None, poll: float = 0.2,
                 idle_warning: float = 15.0) -> None:
        self.executor, self.store_url, self.common = executor, store_url, common
        self.on_progress, self.poll, self.idle_warning = on_progress, poll, idle_warning
        self.batch = f"run-{executor.journal.incident}-{uuid.uuid4().hex[:12]}"
        self._lock = threading.Lock()
        self._waiting: list[tuple[Step, Future[None]]] = []  # ready, not enqueued (provider at its bound)
        self._in_flight: dict[int, tuple[Step, Future[None]]] = {}
        self._per_provider: dict[str, int] = {}
        self._by_id = {s.id: s for s in steps}
        self._ran_by: dict[str, str] = {}  # create_ca step -> the worker holding the new CA's key
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="revoke-step-jobs", daemon=True)

    def __enter__(self) -> QueuedSteps:
        from revoke.store import Store

        self.store: Store = Store(self.store_url, create=False)
        jobs.require_queue(self.store)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            # interrupted (Ctrl-C, a lost lock): what no worker has claimed yet is withdrawn; a step
            # a worker is running stops at its next append, once this run's lock is released
            self.store.db.execute("UPDATE jobs SET state='cancelled', done_at=now() WHERE batch=? AND state='queued'",
                                  (self.batch,))
        finally:
            self.store.close()

    def submit(self, step: Step) -> Future[None]:
        fut: Future[None] = Future()
        fut.set_running_or_notify_cancel()
        with self._lock:
            self._waiting.append((step, fut))
        return fut

    def _loop(self) -> None:
        last: dict[str, int] = {}
        idle_since, warned = time.monotonic(), 0.0
        while not self._stop.is_set():
            try:
                self._enqueue()
                settled = self._settle()
                counts = jobs.progress(self.store, self.batch)
                if counts != last and self.on_progress is not None:
                    self.on_progress(counts)
            except Exception as exc:  # the store failed under us: every waiting step ends with it
                self._fail_all(exc)
                return
            last = counts
            if settled or counts.get("running") or not counts.get("queued"):
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > self.idle_warning and time.monotonic() - warned > 60:
                warned = time.monotonic()
                log.warning("run.waiting_for_workers", batch=self.batch, queued=counts.get("queued", 0),
                            effect="no `revoke worker` has claimed a step; start one against this store "
                                   "(Ctrl-C leaves the incident resumable)")
            self._stop.wait(self.poll)

    def _enqueue(self) -> None:
        """Enqueue the waiting steps whose provider is below the playbook's concurrency."""
        pb = self.executor.pb
        with self._lock:
            chosen, kept = [], []
            for step, fut in self._waiting:
                n = self._per_provider.get(step.provider, 0)
                if n < pb.concurrency(step.provider):
                    self._per_provider[step.provider] = n + 1
                    chosen.append((step, fut))
                else:
                    kept.append((step, fut))
            self._waiting = kept
        if not chosen:
            return
        ids = jobs.enqueue(self.store, self.batch, KIND, [self._payload(s) for s, _ in chosen])
        with self._lock:
            self._in_flight.update(zip(ids, chosen, strict=True))

    def _payload(self, step: Step) -> dict[str, Any]:
        """A step that needs a new CA this run created (a certificate it signs) goes to the worker
        holding that CA's key in memory, as in one process; another worker would have the provider
        make the certificate instead (as after a restart; its result says so)."""
        out = {**self.common, "step": step.id}
        for dep in step.depends_on:
            parent = self._by_id.get(dep)
            if parent is not None and parent.verb == "create_ca" and dep in self._ran_by:
                out["with"] = self._ran_by[dep]
        return out

    def _settle(self) -> int:
        with self._lock:
            ids = list(self._in_flight)
        if not ids:
            return 0
        rows = self.store.db.execute(
            "SELECT id, state, result, error FROM jobs WHERE batch=? AND state IN ('done', 'failed') AND id IN ("
            + ",".join("?" * len(ids)) + ")", (self.batch, *ids)).fetchall()
        for job_id, state, result, error in rows:
            with self._lock:
                step, fut = self._in_flight.pop(int(job_id))
                self._per_provider[step.provider] -= 1
            outcome = json.loads(result) if state == "done" and result else {"crashed": error or state}
            with self.executor._stats_lock:
                self.executor.stats.retries += int(outcome.get("retries") or 0)
            if outcome.get("ok"):
                if outcome.get("worker"):
                    self._ran_by[step.id] = str(outcome["worker"])
                fut.set_result(None)
            elif "lock_lost" in outcome:
                fut.set_exception(LockLostError(str(outcome["lock_lost"])))
            elif "crashed" in outcome:
                fut.set_exception(StepFailed(f"the worker's job failed {jobs.MAX_ATTEMPTS} times: {outcome['crashed']}"))
            else:
                fut.set_exception(StepFailed(str(outcome.get("error"))))
        return len(rows)

    def _fail_all(self, exc: BaseException) -> None:
        with self._lock:
            pending = [f for _, f in self._waiting] + [f for _, f in self._in_flight.values()]
            self._waiting, self._in_flight = [], {}
        for fut in pending:
            fut.set_exception(exc)


def queued(store_url: str, common: dict[str, Any], on_progress: Callable[[dict[str, int]], None] | None = None
           ) -> Callable[[Executor, list[Step]], QueuedSteps]:
    """The runner factory `Executor(runner=...)` takes, for a run whose steps go to workers."""
    return lambda executor, steps: QueuedSteps(executor, steps, store_url=store_url, common=common,
                                               on_progress=on_progress)


# -- the worker's side -------------------------------------------------------------------------------

def handle(store_url: str, job: jobs.Job) -> dict[str, Any]:
    """Run one plan step for the coordinator that enqueued it (a worker's handler for `step` jobs)."""
    return {**_handle(store_url, job), "worker": jobs.worker_id()}


def _handle(store_url: str, job: jobs.Job) -> dict[str, Any]:
    from revoke.escrow_writes import EscrowWrites
    from revoke.execute import Executor
    from revoke.incident_state import IncidentState
    from revoke.journal import Journal

    p = job.payload
    run = _RunContext.of(store_url, p)
    journal = Journal(run.store, p["incident"])
    journal.act_for(p["lock"], fence=partial(_fence, job, jobs.worker_id(), p["incident"]))
    state = IncidentState.read(journal)
    if state.done(p["step"]):  # its outcome was recorded before an earlier claim died
        return {"ok": True, "already": True}
    plan = state.require_plan()
    step = next((s for s in plan.executable() if s.id == p["step"]), None)
    if step is None:
        raise RevokeError(f"incident {p['incident']!r} has no executable step {p['step']!r}")
    ex = Executor(plan, run.playbook, journal, run.runtime, run.view, emergency=bool(p.get("emergency")))
    # a shared escrow item may be written by several workers at once: one at a time, whoever they are
    ex.escrow_writes = EscrowWrites(partial(_one_writer, run.store, ex._escrow_many))
    try:
        ex.run_step(step)
    except StepFailed as exc:
        return {"ok": False, "error": str(exc), "retries": ex.stats.retries}
    except LockLostError as exc:
        log.error("worker.step_refused", incident=p["incident"], step=p["step"], reason=exc.diagnostic())
        return {"lock_lost": exc.diagnostic()}
    return {"ok": True, "retries": ex.stats.retries}


class _RunContext:
    """What a worker keeps between the jobs of one run (one incident, one lock token, the same
    connectors and playbook), as the process of a run without workers keeps it between its steps:
    the store connection, the connectors (a new CA's key lives in its connector's memory, for the
    certificates it signs next), the compiled graph. A job of another run replaces it."""

    current: _RunContext | None = None

    def __init__(self, key: str, store_url: str, p: dict[str, Any]) -> None:
        from revoke.config import Config, ConnectorConfig
        from revoke.connections import Runtime
        from revoke.graph import GraphView
        from revoke.playbook import load_playbook
        from revoke.store import Store

        self.key = key
        pb = load_playbook(p["playbook"]["source"])
        if pb.digest != p["playbook"]["digest"]:
            raise InputError(f"playbook {p['playbook']['source']} on this worker differs from the coordinator's "
                             "(digest); give every worker the same file")
        self.playbook = pb
        self.store = Store(store_url, create=False)
        config = Config("(from the coordinator)", [ConnectorConfig(c["name"], c["type"], dict(c.get("options") or {}))
                                                   for c in p["connectors"]])
        self.runtime = Runtime(config, self.store)
        self.view = GraphView(self.store.load_compiled())

    @classmethod
    def of(cls, store_url: str, p: dict[str, Any]) -> _RunContext:
        key = json.dumps([store_url, p["incident"], p["lock"], p["connectors"], p["playbook"]], sort_keys=True)
        if cls.current is not None and cls.current.key == key:
            return cls.current
        cls.close()
        cls.current = cls(key, store_url, p)
        return cls.current

    @classmethod
    def close(cls) -> None:
        if cls.current is not None:
            cls.current.runtime.close()
            cls.current.store.close()
            cls.current = None


def close() -> None:
    """Let go of the kept run (a worker that stops)."""
    _RunContext.close()


def _fence(job: jobs.Job, me: str, incident: str, db: Any) -> str | None:
    """The worker's conditions on each append, besides the run's lock token (revoke/journal.py):
    its claim of the job still stands (FOR SHARE: no other claim can take the job over before this
    append commits), and the coordinating run is alive (a session holds the incident's runner lock,
    which dies with the coordinator's connection: a killed run's steps wait for its resume)."""
    from revoke.store_postgres import RUNNER_SPACE

    row = db.execute("SELECT 1 FROM jobs WHERE id=? AND state='running' AND claimed_by=? AND attempts=? FOR SHARE",
                     (job.id, me, job.attempts)).fetchone()
    if row is None:
        return f"job {job.id} was taken over by another worker (its lease ran out); this one stops"
    alive = db.execute(
        "SELECT 1 FROM pg_locks WHERE locktype='advisory' AND granted AND objsubid=2 AND "
        "database=(SELECT oid FROM pg_database WHERE datname=current_database()) AND "
        "classid=?::bigint::oid AND objid=(hashtext(?)::bigint & 4294967295)::oid",
        (RUNNER_SPACE, incident)).fetchone()
    if alive is None:
        return "the run that enqueued this step is gone (its runner lock was released); re-run it to resume"
    return None


def _one_writer(store: Store, write: Callable[[dict[str, Any], dict[str, Replacement]], ActionResult],
                escrow: dict[str, Any], members: dict[str, Replacement]) -> ActionResult:
    with _escrow_item_lock(store, json.dumps([escrow["connector"], escrow["location"], escrow["item"]])):
        return write(escrow, members)


@contextmanager
def _escrow_item_lock(store: Store, key: str) -> Iterator[None]:
    """A read-merge-write of a shared escrow item, one process at a time (Secrets Manager has no
    check-and-set): a session advisory lock, released with the connection if the worker dies."""
    store.db.execute("SELECT pg_advisory_lock(?, hashtext(?))", (ESCROW_SPACE, key))
    try:
        yield
    finally:
        store.db.execute("SELECT pg_advisory_unlock(?, hashtext(?))", (ESCROW_SPACE, key))
