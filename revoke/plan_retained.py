"""Incidents do not undo each other: what one incident keeps, another destroys only when its plan
says so, and the keeper's journal is told.

An open incident retains credentials until it is finalized (revoke/journal_index.py: the old key
a rotation retired, a contained credential, a replacement). A step of a new plan that cannot be
undone may destroy one of them: AWS's two-key limit makes a rotation delete the user's Inactive
key (an earlier incident's retired key) or the compromised key itself (an earlier incident's
replacement). The plan names each such credential on the step (`retained`: which incident keeps it
and why) and in its `irreversible` text, so `run --execute` wants `--approve` for it. After the
run, every credential the run actually deleted that another open incident retained gets a
`retained.deleted` record in that incident's journal (by whom, which step, why it was kept):
that incident's verify and report say what happened to it. The record is written once, also when
a resumed run finds the deletion in its own journal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from revoke import journal_index
from revoke.connector import DELETED
from revoke.model import Relation

if TYPE_CHECKING:
    from revoke.incident_state import IncidentState
    from revoke.journal import Journal
    from revoke.plan import Step, _Planner
    from revoke.store import Store

log = structlog.get_logger()


def destroyed(p: _Planner, step: Step) -> list[str]:
    """The credentials an irreversible step destroys: another credential of the same principal
    when its connector's reason names it (AWS's two-key limit deletes the Inactive key), else
    the step's own."""
    named = []
    for principal in p.succs(step.node, Relation.AUTHENTICATES_AS):
        for sibling in p.preds(principal, Relation.AUTHENTICATES_AS):
            native = sibling.rsplit(":", 1)[-1]
            if sibling != step.node and native and (sibling in step.irreversible or native in step.irreversible):
                named.append(sibling)
    return sorted(set(named)) or [step.node]


def mark_retained(p: _Planner) -> None:
    """Name, on every irreversible step, what it destroys that an open incident retains."""
    final = [s for s in p.steps.values() if s.executable and not s.reversible]
    if not final:
        return
    kept = journal_index.retained(p.store)
    for step in final:
        for nid in destroyed(p, step):
            r = kept.get(nid)
            if r is None:
                continue
            step.retained.append(r.to_json())
            step.irreversible += f"; {nid} is retained by open incident {r.incident} ({r.why})"


def record_deletions(store: Store, journal: Journal, state: IncidentState) -> list[dict[str, Any]]:
    """Tell every other open incident whose retained credential this incident's run deleted (a
    `retained.deleted` record in its journal, once); return what was recorded."""
    from revoke.journal import Journal

    deleted: dict[str, str] = {}  # node -> the step that deleted it
    for sid, st in state.steps.items():
        for rec in st.events("created"):
            if rec.data.get(DELETED):
                deleted.setdefault(str(rec.data[DELETED]), sid)
    if not deleted:
        return []
    kept = journal_index.retained(store, besides=journal.incident)
    told = _already_told(store, journal.incident)
    out = []
    for nid, sid in sorted(deleted.items()):
        r = kept.get(nid)
        if r is None or (r.incident, nid) in told:
            continue
        data = {"by_incident": journal.incident, "by_step": sid, "step": r.step, "why": r.why}
        Journal(store, r.incident).append(journal_index.RETAINED_DELETED, node=nid, data=data)
        log.warning("incident.retained_deleted", incident=r.incident, node=nid, by_incident=journal.incident, step=sid)
        out.append({"incident": r.incident, "node": nid, **data})
    return out


def _already_told(store: Store, incident: str) -> set[tuple[str, str]]:
    rows = store.db.execute(
        "SELECT incident, node FROM journal WHERE type = ? AND CASE WHEN json_valid(data) "
        "THEN json_extract(data, '$.by_incident') END = ?", (journal_index.RETAINED_DELETED, incident))
    return {(str(a), str(b)) for a, b in rows}
