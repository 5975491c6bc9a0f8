"""What every incident's journal says about credentials, read in one query each: the lineage of
replacements, and what an open incident still keeps.

`IncidentState` (revoke/incident_state.py) reads one incident. Verify and the planner also need
facts from all of them at once: a store may hold a later replacement of the same lineage (made by
another incident or a hygiene rotation), and an action of one incident must not destroy what
another incident keeps before it is finalized. Reading every journal record by record on every
verify grows with the whole history, so these read only the records they need (progress events
and outcomes) in one pass over the `journal` table, with the same meaning `IncidentState` gives
them.

A credential is *retained* by an incident until that incident's finalize (or rollback) of the
step has an ok outcome:
- the old credential a rotation retired (`retired`): evidence, and what a rollback re-enables;
- a credential a `disable` or `revoke` step contained;
- a replacement it created (`created`) and did not discard: the lineage its stores hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from revoke.store import Store

# a record's data, read by SQLite only when it is valid JSON (a corrupt record means nothing here,
# as in IncidentState)
_FIELD = "CASE WHEN json_valid(j.data) THEN json_extract(j.data, '$.{}') END"
CONTAINED_BY = ("disable", "revoke")
RETAINED_DELETED = "retained.deleted"  # the record type another incident appends (see `Retained`)


def lineage(store: Store) -> dict[str, str]:
    """old credential -> the replacement created for it last, over every incident in the store
    (incidents in creation order, records in journal order: a later rotation of the same
    credential wins, as IncidentState.lineage() of each incident in turn)."""
    rows = store.db.execute(
        f"SELECT {_FIELD.format('old')}, {_FIELD.format('new')} FROM journal j JOIN incidents i ON i.id = j.incident "
        f"WHERE j.type = 'progress' AND j.action IS NOT NULL AND {_FIELD.format('event')} = 'created' "
        "ORDER BY i.created_at, j.incident, j.seq")
    out: dict[str, str] = {}
    for old, new in rows:
        if old and new:
            out[str(old)] = str(new)
    return out


@dataclass(frozen=True)
class Retained:
    """A credential an open incident keeps: which incident, the step that made it so, and why."""

    node: str
    incident: str
    step: str
    why: str

    def to_json(self) -> dict[str, str]:
        return {"node": self.node, "incident": self.incident, "step": self.step, "why": self.why}


def retained(store: Store, *, besides: str | None = None) -> dict[str, Retained]:
    """node -> the open incident that retains it (the earliest one, when several do), over every
    incident but `besides`."""
    rows = store.db.execute(
        f"SELECT j.incident, j.type, j.action, j.node, {_FIELD.format('event')}, {_FIELD.format('old')}, "
        f"{_FIELD.format('new')}, {_FIELD.format('ok')} FROM journal j JOIN incidents i ON i.id = j.incident "
        "WHERE j.action IS NOT NULL AND (j.type = 'outcome' OR (j.type = 'progress' AND "
        f"{_FIELD.format('event')} IN ('created', 'retired', 'discarded'))) "
        "ORDER BY i.created_at, j.incident, j.seq")
    kept: dict[tuple[str, str], Retained] = {}  # (incident, node) -> why
    released: set[tuple[str, str]] = set()  # (incident, step id) finalized or rolled back
    for incident, type_, action, node, event, old, new, ok in rows:
        if incident == besides:
            continue
        verb, _, rest = str(action).partition(":")
        if type_ == "outcome":
            if not ok:
                continue
            if verb in ("finalize", "rollback"):
                released.add((incident, rest))
            elif verb in CONTAINED_BY and node:
                kept.setdefault((incident, node), Retained(node, incident, action, f"contained by its step {action} "
                                                           f"and kept until incident {incident} is finalized"))
        elif event == "retired" and old:
            kept.setdefault((incident, old), Retained(old, incident, action, f"the old credential its step {action} "
                                                      "retired: evidence, and what its rollback re-enables, until "
                                                      f"incident {incident} is finalized"))
        elif event == "created" and new:
            kept[(incident, new)] = Retained(new, incident, action, f"the replacement its step {action} created "
                                             "(its stores hold it)")
        elif event == "discarded" and new:
            kept.pop((incident, new), None)
    out: dict[str, Retained] = {}
    for (incident, node), r in kept.items():
        if (incident, r.step) not in released and node not in out:
            out[node] = r
    return out
