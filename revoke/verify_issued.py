"""Every certificate a CA that revoke created has issued must be accounted for.

A CA reissue creates a new CA (its key held by revoke and the escrow) and signs a new certificate
for every device. A certificate signed by that CA that no journal records, as a replacement
created and not discarded, is a stray: made before a crash and never recorded (the provider
registered it, the `created` record was not yet written, and nothing attached it anywhere the
resume could find it), or signed by someone else holding the escrowed key. Verify lists every
live certificate the re-collected graph says each new CA issued (`issued` edges: the provider's
own link or a verified signature, connectors/aws/iot.py) and names each one it cannot account
for: NOT CLEAN until it is revoked or explained. A new CA missing from the graph cannot be
checked, which is not clean either (fail closed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from revoke.graph import GraphView
from revoke.model import Relation

if TYPE_CHECKING:
    from revoke.graph import CompiledGraph
    from revoke.incident_state import IncidentState
    from revoke.plan_model import Plan


def new_cas(plan: Plan, state: IncidentState) -> list[str]:
    """The CAs this incident created (and did not discard)."""
    out = []
    for step in plan.steps:
        if step.verb == "create_ca":
            new = state.step(step.id).live_replacement
            if new:
                out.append(new)
    return out


def unaccounted(graph: CompiledGraph, plan: Plan, state: IncidentState, lineage: dict[str, str]) -> list[str]:
    """One reason per live certificate a new CA of this incident issued that no journal records."""
    cas = new_cas(plan, state)
    if not cas:
        return []
    discarded = {d for st in state.steps.values() for d in st.discarded}
    # this incident's surviving replacements, and every replacement any incident recorded since
    accounted = {new for st in state.steps.values() if (new := st.live_replacement)}
    accounted |= set(lineage.values()) - discarded
    view = GraphView(graph)
    out = []
    for ca in cas:
        if graph.lookup(ca) is None:
            out.append(f"{ca}: the new CA is not in the collected graph: the certificates it issued cannot be "
                       "accounted for (collect, then verify again)")
            continue
        for cert in sorted(view.succs(ca, Relation.ISSUED)):
            i = graph.lookup(cert)
            if i is None or not graph.live[i] or cert in accounted:
                continue
            out.append(f"{cert}: live, issued by the new CA {ca}, and in no journal (created before a crash and "
                       "never recorded, or signed outside revoke): revoke it or account for it")
    return out
