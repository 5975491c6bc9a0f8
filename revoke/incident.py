"""Incident operations shared by the CLI and the lab: declare, run, finalize, rollback, attest."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from revoke.config import Config, load_config
from revoke.connections import Runtime
from revoke.connector import ConnectorError, Unsupported
from revoke.errors import InputError, RevokeError
from revoke.execute import Executor, RunStats, journal_state
from revoke.graph import GraphView
from revoke.journal import IncidentError, Journal, actor
from revoke.plan import Plan, Step, build_plan
from revoke.playbook import Playbook, load_playbook
from revoke.store import Store
from revoke.verify import load_plan

log = structlog.get_logger()
UNDOABLE = ("revoke", "disable", "revoke_sessions", "rotate", "reissue", "retire_ca")


def optional_config(path: str) -> Config | None:
    if not Path(path).exists():
        log.warning("config.missing", path=path, effect="no connector can act: every credential becomes a manual task")
        return None
    return load_config(path)


def require_config(path: str) -> Config:
    if not Path(path).exists():
        raise InputError(f"config {path} not found: connectors are needed to act and to probe (--config)")
    return load_config(path)


@dataclass
class RunOutcome:
    plan: Plan
    declared: bool
    stats: RunStats | None = None
    notes: list[str] = field(default_factory=list)


def prepare(store: Store, journal: Journal, playbook: Playbook, nodes: list[str], config: Config | None,
            *, window: str | None, emergency: bool) -> tuple[Plan, bool]:
    """The recorded plan of an existing incident, or a fresh one. A resumed incident never
    re-plans: the graph may already hold its own replacements."""
    info = journal.info()
    if info is not None:
        if nodes and sorted(nodes) != sorted(info["options"].get("nodes", [])):
            raise IncidentError(f"incident {journal.incident!r} was declared for {', '.join(info['options']['nodes'])}; "
                                "use a new --incident ID for other nodes")
        if playbook.digest != info["playbook_digest"]:
            log.warning("playbook.changed", incident=journal.incident, effect="the recorded plan is used")
        return load_plan(journal), False
    graph = store.load_compiled()
    plan = build_plan(playbook, store, graph, config, nodes, window=window, emergency=emergency)
    return plan, True


def graph_gaps(store: Store, config: Config | None) -> list[str]:
    """Configured connectors whose snapshot is missing or older than their last failure: a plan
    made now would miss whatever they hold."""
    if config is None:
        return []
    snaps = {s.name: s for s in store.snapshots()}
    gaps = []
    for cfg in config.connectors:
        snap = snaps.get(cfg.name)
        if snap is None or snap.taken_at == "never":
            gaps.append(f"{cfg.name}: never collected")
        elif snap.last_error:
            gaps.append(f"{cfg.name}: last collection failed ({snap.last_error}); the snapshot is from {snap.taken_at}")
    return gaps


def check_complete(store: Store, config: Config | None, *, allow_partial: bool) -> list[str]:
    gaps = graph_gaps(store, config)
    if gaps and not allow_partial:
        raise InputError("the graph is incomplete, so the plan would miss credentials: " + "; ".join(gaps)
                         + ". Run `revoke collect` again, or pass --allow-partial to act on what is known")
    return gaps


def check_approval(playbook: Playbook, plan: Plan, approve: bool) -> None:
    limit = playbook.model.approval.required_above
    n = len(plan.executable())
    if limit is not None and n > limit and not approve:
        raise InputError(f"approval required: the plan has {n} actions, above the playbook's limit of {limit}; "
                         "review `revoke plan` and re-run with --approve")


def declare(journal: Journal, playbook: Playbook, plan: Plan, nodes: list[str], *, emergency: bool) -> None:
    declared = {"by": actor(), "sources": plan.sources, "playbook": playbook.name,
                "playbook_digest": playbook.digest, "window": plan.window}
    journal.declare(playbook.source, playbook.name, playbook.digest, plan.sources,
                    {"nodes": nodes, "window": plan.window, "emergency": emergency},
                    records=[("declared", declared), ("plan", plan.to_json())])


def execute(store: Store, journal: Journal, playbook: Playbook, plan: Plan, config: Config,
            *, emergency: bool = False, progress: Any = None) -> RunStats:
    token = journal.acquire()
    rt = Runtime(config, store)
    try:
        journal.append("run.start", data={"by": actor()})
        view = GraphView(store.load_compiled())
        stats = Executor(plan, playbook, journal, rt, view, emergency=emergency, progress=progress).run()
        journal.append("run.end", data={"done": stats.done, "already_done": stats.skipped_done,
                                        "failed": stats.failed, "blocked": stats.blocked, "retries": stats.retries,
                                        "seconds": round(stats.seconds, 3)})
        return stats
    finally:
        rt.close()
        journal.release(token)


def attest(journal: Journal, node: str, note: str) -> dict[str, Any]:
    journal.require()
    plan = load_plan(journal)
    manual = {s.node for s in plan.manual()}
    if node not in manual:
        raise InputError(f"{node} is not a manual task of incident {journal.incident!r}; manual tasks: "
                         + (", ".join(sorted(manual)) or "none"))
    if not note.strip():
        raise InputError("--note must say what was done")
    rec = journal.append("attest", node=node, data={"by": actor(), "note": note})
    return {"node": node, "by": rec.data["by"], "at": rec.ts}


def _last_verify(journal: Journal) -> tuple[bool, datetime] | None:
    for r in reversed(journal.records()):
        if r.type == "verify":
            return bool(r.data.get("clean")), datetime.fromisoformat(r.ts)
    return None


def finalize(
    store: Store, journal: Journal, playbook: Playbook, config: Config, *, now: datetime | None = None
) -> dict[str, Any]:
    """Irreversible clean-up (delete deactivated keys, destroy old secret versions, deregister CAs),
    only after a clean verify and the playbook's grace period."""
    now = now or datetime.now(UTC)
    last = _last_verify(journal)
    if last is None or not last[0]:
        raise IncidentError("finalize needs a clean `revoke verify` first: irreversible steps wait for proof")
    if now < last[1] + playbook.grace:
        raise IncidentError(f"finalize is allowed from {(last[1] + playbook.grace).isoformat()} "
                            f"(grace period {playbook.model.finalize.grace_period} after the clean verify)")
    plan = load_plan(journal)
    state = journal_state(journal)
    rt = Runtime(config, store)
    token = journal.acquire()
    out: dict[str, Any] = {"done": [], "not_supported": [], "failed": {}}
    try:
        targets: list[tuple[str, str, str | None]] = []
        for step in plan.executable():
            st = state.get(step.id)
            if st is None or not st.done or step.verb in ("create_ca", "revoke_sessions"):
                continue
            targets.append((f"finalize:{step.id}", step.node, step.connector))
            targets += [(f"finalize:{step.id}:{t['store']}", t["store"], t["connector"])
                        for t in step.stores if t["mode"] == "write"]
        for action_id, node_id, conn_name in targets:
            if state.get(action_id) and state[action_id].done:
                continue
            # nothing irreversible to do for this kind counts as done
            error = _journaled_act(journal, rt, action_id, node_id, conn_name, "finalize", (ConnectorError,),
                                   done_if=lambda exc: isinstance(exc, Unsupported))
            if error is None:
                out["done"].append(node_id)
            elif isinstance(error, Unsupported):
                out["not_supported"].append(node_id)
            else:
                out["failed"][node_id] = error.diagnostic()
    finally:
        rt.close()
        journal.release(token)
    return out


def rollback(store: Store, journal: Journal, config: Config, *, execute: bool) -> dict[str, Any]:
    """Undo containment for a false alarm, newest first, as far as each provider allows."""
    plan = load_plan(journal)
    state = journal_state(journal)
    done = [s for s in plan.executable() if s.verb in UNDOABLE and state.get(s.id) and state[s.id].done]
    out: dict[str, Any] = {"undone": [], "cannot_undo": {}, "planned": [s.node for s in reversed(done)]}
    if not execute:
        return out
    rt = Runtime(config, store)
    token = journal.acquire()
    try:
        for step in reversed(done):
            action_id = f"rollback:{step.id}"
            if state.get(action_id) and state[action_id].done:
                continue
            error = _journaled_act(journal, rt, action_id, step.node, step.connector, "rollback",
                                   (ConnectorError, RevokeError))
            if error is None:
                out["undone"].append(step.node)
            else:
                out["cannot_undo"][step.node] = error.diagnostic()
    finally:
        rt.close()
        journal.release(token)
    return out


def _journaled_act(journal: Journal, rt: Runtime, action_id: str, node_id: str, conn_name: str | None, verb: str,
                   catch: tuple[type[RevokeError], ...], *, done_if: Any = None) -> RevokeError | None:
    """One connector action between its `intent` and `outcome` records; returns the error, if any.
    `done_if(error)` marks an error that still counts as done (e.g. nothing to do for this kind)."""
    journal.append("intent", action=action_id, node=node_id, data={"verb": verb})
    try:
        res = rt.connector(conn_name).act(verb, rt.node(node_id), _ctx(journal, rt))
    except catch as exc:
        done = bool(done_if and done_if(exc))
        data = {"ok": done, "error": exc.diagnostic()}
        if done_if is not None:
            data["not_supported"] = done
        journal.append("outcome", action=action_id, node=node_id, data=data)
        return exc
    journal.append("outcome", action=action_id, node=node_id,
                   data={"ok": True, "changed": res.changed, "detail": res.detail})
    return None


def _ctx(journal: Journal, rt: Runtime) -> Any:
    from revoke.connector import ActionContext

    return ActionContext(incident=journal.incident, dry_run=False, get_node=rt.node)


def step_status(journal: Journal, plan: Plan) -> dict[str, str]:
    state = journal_state(journal)
    out = {}
    for s in plan.steps:
        st = state.get(s.id)
        if not s.executable:
            out[s.id] = s.verb
        elif st is None:
            out[s.id] = "pending"
        elif st.done:
            out[s.id] = "done"
        elif st.outcome is not None:
            out[s.id] = "failed"
        else:
            out[s.id] = "interrupted"
    return out


__all__ = ["Step", "attest", "check_approval", "declare", "execute", "finalize", "load_playbook", "prepare", "rollback"]
