"""The incident report: one dict built from the store and the journal, rendered as Markdown, HTML or JSON.

Everything comes from the recorded plan and the journal (plus node kinds and relations from the
store), never from a live provider: a report can be written long after the lab or the cloud
account is gone. The journal and the plan hold ids and fingerprints only, and only chosen fields
of them are copied here (node attributes and outcome payloads are not dumped), so a report never
carries a secret value.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from revoke.errors import InputError, StoreError
from revoke.journal import Journal, Record
from revoke.plan import EXECUTABLE, Plan, Step
from revoke.store import Store

FORMAT = "revoke-incident-report/1"
FORMATS = ("md", "html", "json")
RETIRE_VERBS = ("revoke", "disable", "revoke_sessions", "retire_ca")
REISSUE_VERBS = ("reissue", "create_ca")
# outcome classes used by every renderer (and the picture's colours)
RESULTS = ("done", "covered", "manual-attested", "manual-open", "skipped", "failed", "pending")
# copied from an outcome record; any other key a connector adds stays in the journal only
OUTCOME_KEYS = ("ok", "changed", "detail", "new", "error", "retryable", "not_supported")


@dataclass
class _Action:
    """What the journal says about one action id."""

    first_seq: int
    intent_at: str | None = None
    outcome_at: str | None = None
    outcome: dict[str, Any] | None = None
    tries: int = 0
    progress: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    blocked: str | None = None
    blocked_at: str | None = None

    @property
    def status(self) -> str:
        if self.outcome is not None:
            return "done" if self.outcome.get("ok") else "failed"
        if self.intent_at is not None:
            return "interrupted"
        return "blocked" if self.blocked else "pending"


def _actions(records: list[Record]) -> dict[str, _Action]:
    out: dict[str, _Action] = {}
    for r in records:
        if r.action is None:
            continue
        a = out.setdefault(r.action, _Action(r.seq))
        if r.type == "intent":
            # as in execute.journal_state: a new intent starts a new try
            a.intent_at, a.outcome, a.outcome_at = r.ts, None, None
            a.tries += 1
        elif r.type == "progress":
            a.progress.append((r.ts, r.data))
        elif r.type == "outcome":
            a.outcome, a.outcome_at = r.data, r.ts
        elif r.type == "blocked":
            a.blocked, a.blocked_at = str(r.data.get("reason", "")), r.ts
    return out


def _result(step: Step, act: _Action | None, attested: dict[str, dict[str, Any]]) -> str:
    if step.verb == "manual":
        return "manual-attested" if step.node in attested else "manual-open"
    if step.verb == "skip":
        return "skipped"
    if step.verb == "covered":
        return "covered"
    status = act.status if act else "pending"
    if status == "done":
        return "done"
    return "failed" if status in ("failed", "blocked") else "pending"


def _status(step: Step, act: _Action | None) -> str:
    if step.verb not in EXECUTABLE:
        return step.verb
    return act.status if act else "pending"


def _outcome(act: _Action | None) -> dict[str, Any] | None:
    if act is None or act.outcome is None:
        return None
    return {k: act.outcome[k] for k in OUTCOME_KEYS if k in act.outcome}


def _replacement(act: _Action | None) -> tuple[str | None, str | None, list[str]]:
    """(live replacement id, when it was created, replacements discarded on the way)."""
    live, at, discarded = None, None, []
    for ts, p in act.progress if act else []:
        if p.get("event") == "created":
            live, at = p.get("new"), ts
        elif p.get("event") == "discarded":
            discarded.append(str(p.get("new")))
            if p.get("new") == live:
                live, at = None, None
    return live, at, discarded


def _chain(journal: Journal, records: list[Record]) -> dict[str, Any]:
    intact, message, verified_through = journal.check_chain()
    broken = None
    if not intact:
        m = re.search(r"record (\d+)", message)
        broken = int(m.group(1)) if m else None
    return {
        "intact": intact,
        "message": message,
        "broken_at": broken,
        "records": len(records),
        "final_hash": records[-1].hash if records else None,
        "verified_through": verified_through,
        "chain": [{"seq": r.seq, "ts": r.ts, "type": r.type, "action": r.action, "node": r.node,
                   "hash": r.hash, "prev": r.prev} for r in records],
    }


class _Rels:
    """Relations along explanation paths, looked up in the store's compiled graph when it still has
    both ends (a re-collection may have dropped a revoked token: the hop is then shown without one)."""

    def __init__(self, store: Store) -> None:
        from revoke.graph import RELS

        self.rels = RELS
        try:
            self.graph: Any = store.load_compiled()
        except StoreError:
            self.graph = None
        self.cache: dict[tuple[str, str], str | None] = {}

    def __call__(self, a: str, b: str) -> str | None:
        if self.graph is None:
            return None
        key = (a, b)
        if key not in self.cache:
            i, j = self.graph.lookup(a), self.graph.lookup(b)
            e = self.graph.edge_between(i, j) if i is not None and j is not None else None
            self.cache[key] = self.rels[self.graph.rel[e]].value if e is not None else None
        return self.cache[key]

    def along(self, path: list[str]) -> list[str | None]:
        return [self(a, b) for a, b in itertools.pairwise(path)]


def build_report(store: Store, journal: Journal) -> dict[str, Any]:
    """The whole incident report as plain JSON-able data. Raises IncidentError for an unknown incident."""
    from revoke.verify import attestations

    info = journal.require()
    records = journal.records()
    plan = next((Plan.from_json(r.data) for r in records if r.type == "plan"), None)
    if plan is None:
        raise InputError(f"incident {journal.incident!r} has no recorded plan: nothing was executed, nothing to report")
    acts = _actions(records)
    attested = attestations(journal)
    declared = next((r for r in records if r.type == "declared"), None)
    rels = _Rels(store)

    path_ids = {n for s in plan.steps for n in s.path} | {s.node for s in plan.steps} | set(plan.sources)
    kinds = {nid: (n.kind.value, n.provider or "") for nid, n in store.load_nodes(sorted(path_ids)).items()}

    steps = [_step_entry(s, acts.get(s.id), attested, rels) for s in plan.steps]
    by_node: dict[str, list[dict[str, Any]]] = {}
    for e in steps:
        by_node.setdefault(e["node"], []).append(e)

    report: dict[str, Any] = {
        "format": FORMAT,
        "generated_at": datetime.now(UTC).isoformat(),
        "incident": {
            "id": info["id"], "playbook": info["playbook_name"], "playbook_file": info["playbook"],
            "playbook_digest": info["playbook_digest"], "sources": info["sources"],
            "window": plan.window, "emergency": plan.emergency, "created_at": info["created_at"],
            "declared_by": declared.data.get("by") if declared else None,
            "declared_at": declared.ts if declared else info["created_at"],
        },
        "timeline": _timeline(records, acts, plan, store),
        "blast_radius": _radius(plan, steps, by_node, kinds, rels),
        "steps": steps,
        "revoked": [e for e in steps if e["verb"] in RETIRE_VERBS],
        "rotated": [e for e in steps if e["verb"] == "rotate"],
        "reissued": [e for e in steps if e["verb"] in REISSUE_VERBS],
        "skipped": [e for e in steps if e["verb"] == "skip"],
        "covered": [e for e in steps if e["verb"] == "covered"],
        "manual": [e for e in steps if e["verb"] == "manual"],
        "failed": [e for e in steps if e["status"] in ("failed", "blocked", "interrupted")],
        "pending": [e for e in steps if e["status"] == "pending"],
        "after": _after(acts, plan),
        "journal": _chain(journal, records),
    }
    report["verification"] = _verification(records, plan, report)
    report["summary"] = _summary(report)
    return report


def _step_entry(s: Step, act: _Action | None, attested: dict[str, dict[str, Any]], rels: _Rels) -> dict[str, Any]:
    e: dict[str, Any] = {
        "step": s.id, "verb": s.verb, "node": s.node, "kind": s.kind, "provider": s.provider,
        "connector": s.connector, "depth": s.depth, "path": s.path, "rels": rels.along(s.path),
        "reason": s.reason, "depends_on": s.depends_on, "status": _status(s, act),
        "result": _result(s, act, attested),
        "intent_at": act.intent_at if act else None, "outcome_at": act.outcome_at if act else None,
        "tries": act.tries if act else 0, "outcome": _outcome(act),
        "blocked": act.blocked if act else None,
    }
    if s.verb == "manual":
        a = attested.get(s.node)
        e["attestation"] = ({"by": a["by"], "at": a["at"], "note": a["note"], "label": "attested, not probed"}
                            if a else None)
    if s.verb == "covered":
        e["covered_by"] = s.depends_on[0] if s.depends_on else None
    if s.verb in ("rotate", "reissue", "create_ca"):
        new, created_at, discarded = _replacement(act)
        e["new"], e["created_at"], e["discarded"] = new, created_at, discarded
        e["retire"] = s.retire
        e["retired"] = next(({"verb": p.get("verb"), "at": ts} for ts, p in (act.progress if act else [])
                             if p.get("event") == "retired"), None)
        e["stores"] = _stores(s, act, new)
    return e


def _stores(s: Step, act: _Action | None, new: str | None) -> list[dict[str, Any]]:
    written = {p.get("store"): (ts, p) for ts, p in (act.progress if act else [])
               if p.get("event") == "stored" and p.get("new") == new}
    out = []
    for t in s.stores:
        row: dict[str, Any] = {"store": t["store"], "mode": t["mode"], "connector": t.get("connector"),
                               "reason": t.get("reason", "")}
        if t["mode"] == "write":
            hit = written.get(t["store"])
            row["written"] = hit is not None
            row["at"] = hit[0] if hit else None
            row["changed"] = hit[1].get("changed") if hit else None
        out.append(row)
    return out


def _radius(plan: Plan, steps: list[dict[str, Any]], by_node: dict[str, list[dict[str, Any]]],
            kinds: dict[str, tuple[str, str]], rels: _Rels) -> dict[str, Any]:
    """Sources, credentials and holders of the recorded plan: every step's node, and every node on
    an explanation path (holders with no action appear only there)."""
    from revoke.model import CREDENTIAL_KINDS, NodeKind

    cred_kinds = {k.value for k in CREDENTIAL_KINDS}
    depth: dict[str, int] = {s: 0 for s in plan.sources}
    path_of: dict[str, list[str]] = {s: [s] for s in plan.sources}
    for e in steps:
        for i, nid in enumerate(e["path"]):
            if i < depth.get(nid, 1 << 30):
                depth[nid], path_of[nid] = i, e["path"][: i + 1]
        if e["node"] not in depth:
            depth[e["node"]], path_of[e["node"]] = e["depth"], e["path"]
    creds, holders = [], []
    for nid in sorted(depth, key=lambda n: (depth[n], n)):
        if nid in plan.sources:
            continue
        node_steps = by_node.get(nid, [])
        kind, provider = kinds.get(nid, (node_steps[0]["kind"] if node_steps else NodeKind.HOST.value, ""))
        entry = {"id": nid, "kind": kind, "provider": provider or (node_steps[0]["provider"] if node_steps else ""),
                 "depth": depth[nid], "path": path_of[nid], "rels": rels.along(path_of[nid]),
                 "verbs": [s["verb"] for s in node_steps], "statuses": [s["status"] for s in node_steps],
                 "result": _combine([s["result"] for s in node_steps])}
        (creds if kind in cred_kinds else holders).append(entry)
    return {"sources": [{"id": s, "kind": kinds.get(s, ("host", ""))[0]} for s in plan.sources],
            "credentials": creds, "holders": holders,
            "edges": sorted({(p[i], p[i + 1]) for e in [*creds, *holders] for p in [e["path"]] for i in range(len(p) - 1)})}


def _combine(results: list[str]) -> str | None:
    """One colour for a node with several steps (a CA's create + retire, a store's distribute task)."""
    if not results:
        return None
    for worst in ("failed", "manual-open", "pending", "skipped", "manual-attested", "covered", "done"):
        if worst in results:
            return worst
    return results[0]


def _timeline(records: list[Record], acts: dict[str, _Action], plan: Plan, store: Store) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for snap in store.snapshots():
        if snap.taken_at != "never":
            out.append({"at": snap.taken_at, "seq": None, "event": "collect", "node": None, "action": None,
                        "detail": f"latest collection of {snap.name} ({snap.type}): {snap.nodes} nodes, {snap.edges} edges"
                                  + (" (last attempt failed)" if snap.last_error else "")})
    verbs = {s.id: s.verb for s in plan.steps}
    seen: set[str] = set()
    for r in records:
        if r.action is not None:
            if r.action in seen:
                continue
            seen.add(r.action)
            a = acts[r.action]
            out.append({"at": a.intent_at or a.blocked_at or r.ts, "seq": r.seq, "event": "action", "action": r.action,
                        "node": r.node, "verb": verbs.get(r.action) or r.action.split(":", 1)[0],
                        "intent_at": a.intent_at, "outcome_at": a.outcome_at, "status": a.status, "tries": a.tries,
                        "detail": _action_detail(a)})
            continue
        out.append({"at": r.ts, "seq": r.seq, "event": r.type, "action": None, "node": r.node,
                    "detail": _event_detail(r)})
    out.sort(key=lambda e: (e["at"] or "", e["seq"] or 0))
    return out


def _action_detail(a: _Action) -> str:
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
        return ("verify: CLEAN" if d.get("clean") else
                f"verify: NOT clean ({len(d.get('survivors') or [])} live reachable, "
                f"{len(d.get('open_manual') or [])} open manual, {len(d.get('failed_steps') or [])} not done)")
    if r.type == "attest":
        return f"attested by {d.get('by')}: {d.get('note')}"
    return r.type


def _after(acts: dict[str, _Action], plan: Plan) -> list[dict[str, Any]]:
    """Finalize and rollback actions recorded after containment."""
    out = []
    for aid, a in acts.items():
        kind = aid.split(":", 1)[0]
        if kind in ("finalize", "rollback"):
            out.append({"action": aid, "what": kind, "status": a.status, "at": a.outcome_at or a.intent_at,
                        "detail": _action_detail(a)})
    return sorted(out, key=lambda e: e["at"] or "")


def _verification(records: list[Record], plan: Plan, report: dict[str, Any]) -> dict[str, Any]:
    runs = [r for r in records if r.type == "verify"]
    paths = {s.node: s.path for s in plan.steps}
    kinds = {s.node: s.kind for s in plan.steps}
    sources = ", ".join(plan.sources)
    out: dict[str, Any] = {"runs": [{"at": r.ts, "seq": r.seq, "clean": bool(r.data.get("clean"))} for r in runs],
                           "last": None}
    if not runs:
        out["statement"] = f"never verified: nothing can be said about live credentials reachable from {sources}"
        return out
    last = runs[-1]
    d = last.data
    after = [r for r in records if r.seq > last.seq and r.type in ("intent", "outcome", "attest", "progress")]
    out["last"] = {
        "at": last.ts, "seq": last.seq, "clean": bool(d.get("clean")), "chain_ok": d.get("chain_ok"),
        "probes": d.get("probes"),
        "survivors": [{"node": n, "kind": kinds.get(n, ""), "path": paths.get(n, [n])} for n in d.get("survivors") or []],
        "open_manual": list(d.get("open_manual") or []), "failed_steps": list(d.get("failed_steps") or []),
        "records_after": len(after),
    }
    chain_ok = report["journal"]["intact"]
    if d.get("clean") and chain_ok:
        out["statement"] = f"no live credential reachable from {sources} at {last.ts}"
    elif d.get("clean"):
        out["statement"] = (f"verify was clean at {last.ts}, but the journal's hash chain no longer checks "
                            f"({report['journal']['message']}): the record cannot be relied on")
    else:
        out["statement"] = (f"NOT clean at {last.ts}: {len(d.get('survivors') or [])} live credential(s) reachable "
                            f"from {sources}, {len(d.get('open_manual') or [])} open manual task(s), "
                            f"{len(d.get('failed_steps') or [])} action(s) not done")
    return out


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    counts = dict.fromkeys(RESULTS, 0)
    for e in report["steps"]:
        counts[e["result"]] += 1
    last = report["verification"]["last"]
    return {
        "results": counts,
        "credentials_reached": len(report["blast_radius"]["credentials"]),
        "holders_reached": len(report["blast_radius"]["holders"]),
        "revoked": sum(1 for e in report["revoked"] if e["status"] == "done"),
        "rotated": sum(1 for e in report["rotated"] if e["status"] == "done"),
        "reissued": sum(1 for e in report["reissued"] if e["status"] == "done"),
        "skipped": len(report["skipped"]), "covered": len(report["covered"]),
        "manual_open": counts["manual-open"], "manual_attested": counts["manual-attested"],
        "failed": len(report["failed"]), "pending": len(report["pending"]),
        "verdict": ("not verified" if last is None else "clean" if last["clean"] and report["journal"]["intact"]
                    else "not clean"),
        "chain_intact": report["journal"]["intact"],
    }


def render(report: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report, indent=2, default=str) + "\n"
    if fmt == "md":
        from revoke.report_md import render_md

        return render_md(report)
    if fmt == "html":
        from revoke.report_html import render_html

        return render_html(report)
    raise InputError(f"unknown report format {fmt!r}; one of {', '.join(FORMATS)}")
