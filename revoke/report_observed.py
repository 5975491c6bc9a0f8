"""The report's observed-use sections, beside the potential blast radius (never instead of it).

"Observed during the window": what credentials of the recorded radius were seen read or used,
by which credential of the radius, when (the store's observed edges, from the window's start on:
the attacker keeps what it took until revoked). "After containment": uses and attempts of
contained credentials after their containment, as the last `verify` recorded them in the
journal (an attempt is evidence; a use made that verify not clean); the finalize and rollback
actions after containment are the report's own section. Ids, times, actions and
sources only: observed events never carry a secret value.
"""

from __future__ import annotations

from typing import Any

from revoke.incident_state import IncidentState
from revoke.model import parse_time
from revoke.observed import ObservedEdges, observed_for
from revoke.store import Store


def observed_sections(store: Store, state: IncidentState, radius: dict[str, Any], window: str | None
                      ) -> dict[str, Any]:
    sources = [s["id"] for s in radius["sources"]]
    actors = set(sources) | {x["id"] for x in (*radius["credentials"], *radius["holders"])}
    since = parse_time(window.partition("/")[0], field_name="window start") if window else None
    obs = ObservedEdges.load(store)
    during = [{"credential": cid, **ev}
              for cid in [*sources, *(x["id"] for x in radius["credentials"])]
              for ev in observed_for(obs, cid, actors, since)]
    during.sort(key=lambda r: r["at"])
    last = state.last_verify
    after = list(last.data.get("after_containment") or []) if last is not None else []
    return {"during": during, "after": after, "observed_credentials": len({r["credential"] for r in during})}


def render_md(section: dict[str, Any], cell: Any, code: Any, table: Any) -> list[str]:
    lines = ["## Observed during the window", "",
             "What was seen used (audit logs, last-used data, CloudTrail). The blast radius above is what "
             "could be reached and decided what was revoked; this is what was used.", ""]
    rows = [[cell(r["at"]), code(r["credential"]), code(r["by"]), cell(r["action"]), cell(r["source"])]
            for r in section["during"]]
    lines += table(["at", "credential", "by", "action", "source"], rows) if rows else ["Nothing observed.", ""]
    lines += ["## After containment: observed use and attempts", ""]
    rows = [[cell(a["at"]), cell(a["kind"]), code(a["node"]), cell(f"{a['action']} {a['target']}"), cell(a["source"])]
            for a in section["after"]]
    lines += (table(["at", "use or attempt", "credential", "action", "source"], rows) if rows
              else ["No use or attempt of a contained credential was observed after its containment.", ""])
    return lines


def render_html(section: dict[str, Any], e: Any, c: Any, table: Any) -> str:
    during = table(["at", "credential", "by", "action", "source"],
                   [[e(r["at"]), c(r["credential"]), c(r["by"]), e(r["action"]), e(r["source"])]
                    for r in section["during"]], empty="Nothing observed.", what="observed events")
    after = table(["at", "use or attempt", "credential", "action", "source"],
                  [[e(a["at"]), e(a["kind"]), c(a["node"]), e(f"{a['action']} {a['target']}"), e(a["source"])]
                   for a in section["after"]],
                  empty="No use or attempt of a contained credential was observed after its containment.")
    return (f"<h2>Observed during the window</h2>{during}"
            f"<h2>After containment: observed use and attempts</h2>{after}")
