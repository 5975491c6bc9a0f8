"""The report's timeline (collections, journal events, one row per action) and the finalize and
rollback actions recorded after containment, each with a one-line detail."""

from __future__ import annotations

from typing import Any

from revoke.incident_state import IncidentState, StepState
from revoke.journal import Record
from revoke.plan_model import Plan
from revoke.store import Store


def timeline(state: IncidentState, plan: Plan, store: Store) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for snap in store.snapshots():
        if snap.taken_at != "never":
            out.append({"at": snap.taken_at, "seq": None, "event": "collect", "node": None, "action": None,
                        "detail": f"latest collection of {snap.name} ({snap.type}): {snap.nodes} nodes, {snap.edges} edges"
                                  + (" (last attempt failed)" if snap.last_error else "")})
    verbs = {s.id: s.verb for s in plan.steps}
    seen: set[str] = set()
    for r in state.records:
        if r.action is not None:
            if r.action in seen:
                continue
            seen.add(r.action)
            a = state.steps[r.action]
            out.append({"at": a.intent_at or a.blocked_at or r.ts, "seq": r.seq, "event": "action", "action": r.action,
                        "node": r.node, "verb": verbs.get(r.action) or r.action.split(":", 1)[0],
                        "intent_at": a.intent_at, "outcome_at": a.outcome_at, "status": a.status, "tries": a.tries,
                        "detail": action_detail(a)})
            continue
        out.append({"at": r.ts, "seq": r.seq, "event": r.type, "action": None, "node": r.node,
                    "detail": _event_detail(r)})
    out.sort(key=lambda e: (e["at"] or "", e["seq"] or 0))
    return out


def action_detail(a: StepState) -> str:
    if a.outcome is None:
        return a.blocked or ("intent recorded, no outcome (interrupted)" if a.intent_at else "")
    if not a.outcome.get("ok"):
        return f"failed: {a.outcome.get('error', '')}"
    parts = [str(a.outcome.get("detail") or ("changed" if a.outcome.get("changed") else "no change needed"))]
    if a.outcome.get("new"):
        parts.append(f"new {a.outcome['new']}")
    return "; ".join(p for p in parts if p)


def _event_detail(r: Record) -> str:
    d = r.data
    if r.type == "declared":
        return f"declared by {d.get('by')} from {', '.join(d.get('sources') or [])} with playbook {d.get('playbook')}"
    if r.type == "plan":
        counts = d.get("summary") or {}
        return "plan recorded: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    if r.type == "run.start":
        return f"run started by {d.get('by')}"
    if r.type == "run.end":
        return (f"run ended: {d.get('done', 0)} done, {d.get('already_done', 0)} already done, "
                f"{len(d.get('failed') or {})} failed, {len(d.get('blocked') or {})} blocked, {d.get('retries', 0)} retries")
    if r.type == "verify":
        if d.get("clean"):
            return "verify: CLEAN"
        if d.get("reasons"):
            return "verify: NOT clean: " + "; ".join(d["reasons"])
        return (f"verify: NOT clean ({len(d.get('survivors') or [])} live reachable, "
                f"{len(d.get('open_manual') or [])} open manual, {len(d.get('failed_steps') or [])} not done)")
    if r.type == "attest":
        return f"attested by {d.get('by')}: {d.get('note')}"
    if r.type == "retained.deleted":
        return (f"deleted by incident {d.get('by_incident')} (its step {d.get('by_step')}) while this incident "
                f"retained it: {d.get('why')}")
    return r.type


def after_containment(state: IncidentState) -> list[dict[str, Any]]:
    """Finalize and rollback actions recorded after containment."""
    out = []
    for aid, a in state.after_containment().items():
        out.append({"action": aid, "what": aid.split(":", 1)[0], "status": a.status, "at": a.outcome_at or a.intent_at,
                    "detail": action_detail(a)})
    return sorted(out, key=lambda e: e["at"] or "")
