"""Collection as jobs: one job per configured connector, or per account or project of a block
that covers several (`revoke/collect_parts.py`), run by `revoke worker` processes on any machine,
its outcome (a snapshot, a part's reading, or the error) returned through the store. `revoke
collect --workers` enqueues, waits, assembles the parts of each block, and then does exactly what
an in-process collection does with the outcomes (reference checks, snapshot swaps, the compile),
so both paths give the same store.

A job carries the connector's configuration as written in revoke.yaml: credentials by reference
only (an environment variable, a profile), resolved by the worker on its own machine."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, cast

from revoke.collect import instantiate, options_for, run_one
from revoke.collect_parts import CollectPart, CollectsInParts, collected_from_wire, collected_to_wire, parts_of
from revoke.config import ConnectorConfig
from revoke.connector import Collected, ConnectorError, connector_class
from revoke.errors import InputError, RevokeError
from revoke.jobs import Job, enqueue, wait
from revoke.store import Store

KIND = "collect"


class RemoteFailure(RevokeError):
    """A connector's failure on a worker, as its diagnostic line."""


def encode(outcome: Collected | BaseException) -> dict[str, Any]:
    if isinstance(outcome, BaseException):
        kind = "input" if isinstance(outcome, InputError) else "error"
        message = outcome.diagnostic() if isinstance(outcome, RevokeError | ConnectorError) else \
            f"{type(outcome).__name__}: {outcome}"
        return {"error": {"kind": kind, "message": message}}
    return collected_to_wire(outcome)


def failure(result: dict[str, Any]) -> BaseException | None:
    error = result.get("error")
    if error is None:
        return None
    if isinstance(error, dict) and error.get("kind") == "input":
        return InputError(str(error.get("message")))
    return RemoteFailure(str(error.get("message") if isinstance(error, dict) else error))


def decode(result: dict[str, Any]) -> Collected | BaseException:
    return failure(result) or collected_from_wire(result)


def handle(job: Job) -> dict[str, Any]:
    """Run one connector's collection, or one part of it (a worker's handler for `collect` jobs).
    A retry needs no re-probe: collecting only reads."""
    spec = job.payload["connector"]
    cfg = ConnectorConfig(spec["name"], spec["type"], dict(spec.get("options") or {}))
    created = set(job.payload.get("created") or [])
    try:
        if "part" not in job.payload:
            return encode(run_one(cfg, created, bool(job.payload.get("observations"))))
        connector = instantiate(cfg)  # a part's options are complete (`--observations` included)
        try:
            connector.remember_created(created)
            return {"part": cast(CollectsInParts, connector).collect_part(dict(job.payload["part"]))}
        finally:
            connector.close()
    except Exception as exc:  # returned to the collecting process, which classifies it
        return encode(exc)


def run_remotely(store: Store, chosen: list[ConnectorConfig], created: set[str], *, timeout: float | None = None,
                 on_progress: Callable[[dict[str, int]], None] | None = None,
                 observations: bool = False) -> dict[str, Collected | BaseException]:
    """Each block's outcome: a block of several accounts or projects is collected as one job per
    part and assembled here; any other block is one job. A part that fails fails its block (its
    previous snapshot stays, as for any failed connector)."""
    shared = {"created": sorted(created), "observations": observations}
    outcomes: dict[str, Collected | BaseException] = {}
    pending: dict[str, list[CollectPart]] = {}
    done: dict[str, list[tuple[CollectPart, dict[str, Any]]]] = {}
    whole: list[dict[str, Any]] = []
    for cfg in chosen:
        options = options_for(cfg, observations=observations)
        try:
            pending[cfg.name] = parts_of(connector_class(cfg.type), options)
        except Exception as exc:  # a block its connector refuses: that connector's failure
            outcomes[cfg.name] = exc
            continue
        if not pending[cfg.name]:
            del pending[cfg.name]
            whole.append({"connector": {"name": cfg.name, "type": cfg.type, "options": cfg.options}, **shared})
    by_name = {c.name: c for c in chosen}
    while whole or pending:
        batch = f"collect-{uuid.uuid4().hex[:12]}"
        payloads = whole + [{"connector": {"name": name, "type": by_name[name].type, "options": part.options},
                             "part": part.task, **shared} for name, parts in pending.items() for part in parts]
        enqueue(store, batch, KIND, payloads)
        results = [r for _, r in sorted(wait(store, batch, timeout=timeout, on_progress=on_progress).items())]
        for payload, result in zip(whole, results, strict=False):
            outcomes[payload["connector"]["name"]] = decode(result)
        rest = iter(results[len(whole):])
        whole = []
        for name, parts in list(pending.items()):
            done.setdefault(name, []).extend((part, next(rest)) for part in parts)
            del pending[name]
            outcome = _assemble(by_name[name], options_for(by_name[name], observations=observations), done[name])
            if isinstance(outcome, list):
                pending[name] = outcome  # more to read first (AWS: the organization)
            else:
                outcomes[name] = outcome
    return {c.name: outcomes[c.name] for c in chosen}


def _assemble(cfg: ConnectorConfig, options: dict[str, Any],
              done: list[tuple[CollectPart, dict[str, Any]]]) -> Collected | BaseException | list[CollectPart]:
    for part, result in done:
        if (error := failure(result)) is not None:
            message = error.diagnostic() if isinstance(error, RevokeError) else str(error)
            return type(error)(f"{part.label}: {message}")
        if "part" not in result:  # a worker of an older revoke collected the whole block instead
            return RemoteFailure(f"{part.label}: the worker did not return a part; run the same revoke "
                                 "version on every worker")
    cls = cast(type[CollectsInParts], connector_class(cfg.type))
    try:
        return cls.assemble(options, [(part, result["part"]) for part, result in done])
    except Exception as exc:  # classified by the caller, as a whole block's failure is
        return exc
