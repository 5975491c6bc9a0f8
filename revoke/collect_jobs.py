"""Collection as jobs: one job per configured connector, run by `revoke worker` processes on any
machine, its outcome (a snapshot, or the error) returned through the store. `revoke collect
--workers` enqueues, waits, and then does exactly what an in-process collection does with the
outcomes (reference checks, snapshot swaps, the compile), so both paths give the same store.

A job carries the connector's configuration as written in revoke.yaml: credentials by reference
only (an environment variable, a profile), resolved by the worker on its own machine."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from revoke.config import ConnectorConfig
from revoke.connector import Collected, CollectFinding, ConnectorError
from revoke.errors import InputError, RevokeError
from revoke.jobs import Job, enqueue, wait
from revoke.model import Edge, Node
from revoke.store import Store, row_text

KIND = "collect"


class RemoteFailure(RevokeError):
    """A connector's failure on a worker, as its diagnostic line."""


def encode(outcome: Collected | BaseException) -> dict[str, Any]:
    if isinstance(outcome, BaseException):
        kind = "input" if isinstance(outcome, InputError) else "error"
        message = outcome.diagnostic() if isinstance(outcome, RevokeError | ConnectorError) else \
            f"{type(outcome).__name__}: {outcome}"
        return {"error": {"kind": kind, "message": message}}
    return {"nodes": [row_text(n.to_dict()) for n in outcome.nodes], "edges": [row_text(e.to_dict()) for e in outcome.edges],
            "findings": [asdict(f) for f in outcome.findings], "meta": outcome.meta}


def decode(result: dict[str, Any]) -> Collected | BaseException:
    import orjson

    error = result.get("error")
    if error is not None:
        if isinstance(error, dict) and error.get("kind") == "input":
            return InputError(str(error.get("message")))
        return RemoteFailure(str(error.get("message") if isinstance(error, dict) else error))
    return Collected(nodes=[Node.from_dict(orjson.loads(n)) for n in result["nodes"]],
                     edges=[Edge.from_dict(orjson.loads(e)) for e in result["edges"]],
                     findings=[CollectFinding(**f) for f in result["findings"]], meta=dict(result["meta"]))


def handle(job: Job) -> dict[str, Any]:
    """Run one connector's collection (a worker's handler for `collect` jobs). A retry needs no
    re-probe: collecting only reads."""
    from revoke.collect import run_one

    spec = job.payload["connector"]
    cfg = ConnectorConfig(spec["name"], spec["type"], dict(spec.get("options") or {}))
    try:
        outcome: Collected | BaseException = run_one(cfg, set(job.payload.get("created") or []),
                                                     bool(job.payload.get("observations")))
    except Exception as exc:  # returned to the collecting process, which classifies it
        outcome = exc
    return encode(outcome)


def run_remotely(store: Store, chosen: list[ConnectorConfig], created: set[str], *, timeout: float | None = None,
                 on_progress: Callable[[dict[str, int]], None] | None = None,
                 observations: bool = False) -> dict[str, Collected | BaseException]:
    batch = f"collect-{uuid.uuid4().hex[:12]}"
    payloads = [{"connector": {"name": c.name, "type": c.type, "options": c.options}, "created": sorted(created),
                 "observations": observations} for c in chosen]
    ids = enqueue(store, batch, KIND, payloads)
    results = wait(store, batch, timeout=timeout, on_progress=on_progress)
    return {cfg.name: decode(results[job_id]) for cfg, job_id in zip(chosen, ids, strict=True)}
