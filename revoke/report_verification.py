"""The report's proof: the journal's hash chain as checked now, and the last verification turned
into the one sentence the report and the signed statement (revoke/evidence.py) carry."""

from __future__ import annotations

import re
from typing import Any

from revoke.incident_state import IncidentState
from revoke.journal import Journal
from revoke.plan_model import Plan


def journal_chain(journal: Journal, state: IncidentState) -> dict[str, Any]:
    """The journal's checks (revoke/journal_check.py): `message` says in one line what failed, or
    that the chain is intact, where the declaration is, and what the chain's signing proves
    ("unsigned chain: detects edits, not a rewrite by someone with write access to the store")."""
    from revoke.journal_check import check

    records = state.records
    res = check(journal)
    intact, message = res.intact, res.message
    broken = None
    if not intact:
        m = re.search(r"record (\d+)", res.problems[0])
        broken = int(m.group(1)) if m else None
    return {
        "intact": intact,
        "message": message,
        "problems": res.problems,
        "declaration": res.declaration,
        "protection": res.protection,
        "signed": res.key is not None,
        "key": res.key,
        "signatures_verified": res.signatures,
        "last_signed_record": res.last_signed,
        "broken_at": broken,
        "records": len(records),
        "final_hash": records[-1].hash if records else None,
        "verified_through": res.verified_through,
        "chain": [{"seq": r.seq, "ts": r.ts, "type": r.type, "action": r.action, "node": r.node,
                   "hash": r.hash, "prev": r.prev} for r in records],
    }


def verification(state: IncidentState, plan: Plan, chain: dict[str, Any]) -> dict[str, Any]:
    """Every verify run, the last one in detail, and the statement: "no live credential reachable"
    only when the last verify was clean and the chain (`journal_chain()`) is intact."""
    runs = state.verify_runs
    paths = {s.node: s.path for s in plan.steps}
    kinds = {s.node: s.kind for s in plan.steps}
    sources = ", ".join(plan.sources)
    out: dict[str, Any] = {"runs": [{"at": r.at, "seq": r.seq, "clean": r.clean} for r in runs], "last": None}
    last = state.last_verify
    if last is None:
        out["statement"] = f"never verified: nothing can be said about live credentials reachable from {sources}"
        return out
    d = last.data
    out["last"] = {
        "at": last.at, "seq": last.seq, "clean": last.clean, "chain_ok": d.get("chain_ok"),
        "probes": d.get("probes"),
        "survivors": [{"node": n, "kind": kinds.get(n, ""), "path": paths.get(n, [n])} for n in d.get("survivors") or []],
        "open_manual": list(d.get("open_manual") or []), "failed_steps": list(d.get("failed_steps") or []),
        "reasons": list(d.get("reasons") or []),
        "notes": list(d.get("notes") or []),
        "records_after": len(state.changes_since(last.seq)),
    }
    if last.clean and chain["intact"]:
        out["statement"] = f"no live credential reachable from {sources} at {last.at}"
    elif last.clean:
        out["statement"] = (f"verify was clean at {last.at}, but the journal's hash chain no longer checks "
                            f"({chain['message']}): the record cannot be relied on")
    elif d.get("reasons"):
        # the same reasons `revoke verify` printed, every one of them
        out["statement"] = f"NOT clean at {last.at}, {len(d['reasons'])} reason(s): " + "; ".join(d["reasons"])
    else:  # a verify recorded before reasons were journaled
        out["statement"] = (f"NOT clean at {last.at}: {len(d.get('survivors') or [])} live credential(s) reachable "
                            f"from {sources}, {len(d.get('open_manual') or [])} open manual task(s), "
                            f"{len(d.get('failed_steps') or [])} action(s) not done")
    return out
