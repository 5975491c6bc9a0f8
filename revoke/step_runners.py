"""How the executor's DAG walk gets each ready step run, and what a run counts.

`Executor._run` (revoke/execute.py) walks the plan's DAG: dependency counting, blocked
descendants, steps held for an attestation, steps already done. Running a ready step is a
`StepRunner`'s job: `LocalSteps` runs it on a thread pool in this process; `QueuedSteps`
(revoke/step_jobs.py) enqueues it as a job that a `revoke worker` runs. Either way the step
itself is `Executor.run_step` (journaled intent, progress, outcome), so the walk, the journal
and the statistics are the same.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from revoke.execute import Executor
    from revoke.plan import Step


@dataclass
class RunStats:
    done: int = 0
    skipped_done: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    blocked: dict[str, str] = field(default_factory=dict)
    # held until a person attests a manual task it depends on (a CA's retirement waits for the
    # untrust tasks), with the reason; a re-run after `revoke attest` resumes them
    waiting: dict[str, str] = field(default_factory=dict)
    retries: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.blocked and not self.waiting


class StepFailed(Exception):
    """A step's action failed (a provider's refusal, an error after retries): a result, not a crash."""


class StepRunner(Protocol):
    """`submit` returns a future that ends when the step has run (StepFailed: it failed; any other
    exception ends the whole run, e.g. LockLostError)."""

    def __enter__(self) -> StepRunner: ...

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def submit(self, step: Step) -> Future[None]: ...


class LocalSteps:
    """Each step in this process, on a thread pool as wide as the playbook's concurrency of the
    providers involved (each provider's own bound is a semaphore in `Executor.run_step`)."""

    def __init__(self, executor: Executor, steps: list[Step]) -> None:
        pb = executor.pb
        self.executor = executor
        self.width = min(64, max(1, sum(pb.concurrency(p) for p in {s.provider for s in steps})))

    def __enter__(self) -> LocalSteps:
        self.pool = ThreadPoolExecutor(max_workers=self.width)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.pool.shutdown(wait=True)

    def submit(self, step: Step) -> Future[None]:
        return self.pool.submit(self.executor.run_step, step)
