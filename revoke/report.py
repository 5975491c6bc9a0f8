"""The incident report: one dict built from the store and the journal, rendered as Markdown, HTML or JSON.

Everything comes from the recorded plan and the journal (plus node kinds and relations from the
store), never from a live provider: a report can be written long after the lab or the cloud
account is gone. The journal and the plan hold ids and fingerprints only, and only chosen fields
of them are copied here (node attributes and outcome payloads are not dumped), so a report never
carries a secret value.

This module assembles it (the incident, the steps and what happened to each, the summary) and
dispatches the rendering; the blast radius, the timeline and the verification statement are
built in report_radius.py, report_timeline.py and report_verification.py, all from the journal
as revoke/incident_state.py reads it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from revoke.connector import DELETED
from revoke.errors import InputError
from revoke.incident_state import IncidentState, StepState
from revoke.journal import Journal
from revoke.plan_model import EXECUTABLE, Plan, Step
from revoke.report_observed import observed_sections
from revoke.report_radius import Relations, blast_radius
from revoke.report_timeline import after_containment, timeline
from revoke.report_verification import journal_chain, verification
from revoke.store import Store
from revoke.trust import trust_removed

FORMAT = "revoke-incident-report/1"
FORMATS = ("md", "html", "json")
RETIRE_VERBS = ("revoke", "disable", "revoke_sessions", "retire_ca")
REISSUE_VERBS = ("reissue", "create_ca")
# outcome classes used by every renderer (and the picture's colours)
RESULTS = ("done", "covered", "manual-attested", "manual-open", "skipped", "failed", "pending")
# copied from an outcome record; any other key a connector adds stays in the journal only
OUTCOME_KEYS = ("ok", "changed", "detail", "new", "error", "retryable", "not_supported")


def _result(step: Step, st: StepState, attested: dict[str, dict[str, Any]]) -> str:
    if step.verb == "manual":
        return "manual-attested" if step.node in attested else "manual-open"
    if step.verb == "skip":
        return "skipped"
    if step.verb == "covered":
        return "covered"
    status = st.status
    if status == "done":
        return "done"
    return "failed" if status in ("failed", "blocked") else "pending"


def _status(step: Step, st: StepState) -> str:
    if step.verb not in EXECUTABLE:
        return step.verb
    return st.status


def _outcome(st: StepState) -> dict[str, Any] | None:
    if st.outcome is None:
        return None
    return {k: st.outcome[k] for k in OUTCOME_KEYS if k in st.outcome}


def build_report(store: Store, journal: Journal) -> dict[str, Any]:
    """The whole incident report as plain JSON-able data. Raises IncidentError for an unknown incident."""
    info = journal.require()
    state = IncidentState.read(journal)
    plan = state.plan
    if plan is None:
        raise InputError(f"incident {journal.incident!r} has no recorded plan: nothing was executed, nothing to report")
    attested = state.attestations
    declared = state.declared
    rels = Relations(store)

    path_ids = {n for s in plan.steps for n in s.path} | {s.node for s in plan.steps} | set(plan.sources)
    kinds = {nid: (n.kind.value, n.provider or "") for nid, n in store.load_nodes(sorted(path_ids)).items()}

    steps = [_step_entry(s, state.step(s.id), attested, rels) for s in plan.steps]
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
        "timeline": timeline(state, plan, store),
        "blast_radius": blast_radius(plan, steps, by_node, kinds, rels),
        "steps": steps,
        "revoked": [e for e in steps if e["verb"] in RETIRE_VERBS],
        "rotated": [e for e in steps if e["verb"] == "rotate"],
        "reissued": [e for e in steps if e["verb"] in REISSUE_VERBS],
        "skipped": [e for e in steps if e["verb"] == "skip"],
        "covered": [e for e in steps if e["verb"] == "covered"],
        "manual": [e for e in steps if e["verb"] == "manual"],
        "escrowed": escrowed(plan, state),
        "trust_removed": trust_removed(plan.steps, attested, store),
        "failed": [e for e in steps if e["status"] in ("failed", "blocked", "interrupted")],
        "pending": [e for e in steps if e["status"] == "pending"],
        "after": after_containment(state),
        "journal": journal_chain(journal, state),
    }
    report["observed"] = observed_sections(store, state, report["blast_radius"], plan.window)
    report["verification"] = verification(state, plan, report["journal"])
    report["summary"] = _summary(report)
    return report


def _step_entry(s: Step, st: StepState, attested: dict[str, dict[str, Any]], rels: Relations) -> dict[str, Any]:
    e: dict[str, Any] = {
        "step": s.id, "verb": s.verb, "node": s.node, "kind": s.kind, "provider": s.provider,
        "connector": s.connector, "depth": s.depth, "path": s.path, "rels": rels.along(s.path),
        "reason": s.reason, "depends_on": s.depends_on, "status": _status(s, st),
        "result": _result(s, st, attested),
        "intent_at": st.intent_at, "outcome_at": st.outcome_at, "tries": st.tries, "outcome": _outcome(st),
        "blocked": st.blocked,
    }
    if s.verb == "manual":
        a = attested.get(s.node)
        e["attestation"] = ({"by": a["by"], "at": a["at"], "note": a["note"], "label": "attested, not probed"}
                            if a else None)
    if s.verb == "covered":
        e["covered_by"] = s.depends_on[0] if s.depends_on else None
    if s.verb in ("rotate", "reissue", "create_ca"):
        new = st.live_replacement
        e["new"], e["created_at"], e["discarded"] = new, st.live_replacement_at, st.discarded
        e["retire"] = s.retire
        retired = st.retired
        e["retired"] = {"verb": retired.data.get("verb"), "at": retired.ts} if retired else None
        # what was deleted to make room (journaled with the replacement): the old one itself at
        # AWS's two-key limit, or another key
        e["deleted"] = next((r.data[DELETED] for r in st.events("created") if r.data.get(DELETED)), None)
        e["stores"] = _stores(s, st, new)
        e["escrow"] = s.escrow["where"] if s.escrow else None
    if s.executable:
        e["reversible"], e["irreversible"] = s.reversible, s.irreversible
    return e


def escrowed(plan: Plan, state: IncidentState) -> list[dict[str, Any]]:
    """One entry per replacement kept in the escrow: where (item, never the value), its
    fingerprint, and the manual tasks that deliver it."""
    deliveries: dict[str, list[Step]] = {}
    for m in plan.manual():
        for dep in m.depends_on:
            deliveries.setdefault(dep, []).append(m)
    out = []
    for s in plan.steps:
        if not s.escrow:
            continue
        st = state.step(s.id)
        new = st.live_replacement
        rec = next((r for r in reversed(list(st.events("escrowed"))) if r.data.get("new") == new), None) if new else None
        out.append({"step": s.id, "replaces": s.node, "kind": s.kind, "new": new, "escrow": s.escrow["where"],
                    "item": s.escrow["item"], "escrowed": rec is not None, "at": rec.ts if rec else None,
                    "fingerprint": (rec.data.get("fingerprint") if rec else None),
                    "deliver_to": [{"task": m.id, "node": m.node, "attested": m.node in state.attestations}
                                   for m in deliveries.get(s.id, [])]})
    return out


def _stores(s: Step, st: StepState, new: str | None) -> list[dict[str, Any]]:
    written = st.stored(new)
    out = []
    for t in s.stores:
        row: dict[str, Any] = {"store": t["store"], "mode": t["mode"], "connector": t.get("connector"),
                               "reason": t.get("reason", "")}
        if t["mode"] == "write":
            hit = written.get(t["store"])
            row["written"] = hit is not None
            row["at"] = hit.ts if hit else None
            row["changed"] = hit.data.get("changed") if hit else None
        out.append(row)
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
        "escrowed": sum(1 for e in report["escrowed"] if e["escrowed"]),
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
