"""Trust removal: a compromised CA must leave every trust store that accepts it.

Holding a CA's key is a compromise; trusting a CA (its certificate in a bundle file, a directory
of certificates, an mTLS client-CA file, a provider's CA registry) is not, and the walk never
follows `trusts`. But a CA whose key was stolen can mint new certificates no revocation list
knows, and every holder that still trusts it accepts them. So when the plan retires or replaces
a CA, every holder trusting it gets a step: remove the CA from that trust store and install its
replacement, after the reissued certificates are made (a holder that drops the old CA before its
peers hold new certificates breaks) and before the old CA is retired: the retirement depends on
every untrust step, and the executor holds it until each is done (an executable one) or attested
(a manual one).

Where the holder's connector declares `untrust` for it (a Vault PKI mount deleting an imported
issuer) the step is that action on the holder, with the CA named in `attrs["untrust"]`
(`acting_node`). Where the connector that read the trust store can rewrite it (the x509
connector, for a bundle file or a directory it may write: the edge's `writable`), the step is an
executable `untrust` on the CA's node, for that holder (`trust.holder`). Elsewhere it is a manual task on the holder,
naming the file(s) and the CA's SHA-256 fingerprint, attested by the person who did it. A trust
the CA's own retirement removes (an IoT CA registry trusting the CA it deregisters) is covered by
that step. Verify is NOT CLEAN while a re-read trust store holds the CA, whatever was attested.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from revoke.model import Node, NodeKind, Relation
from revoke.store import Store

if TYPE_CHECKING:
    from revoke.plan import Step, _Planner


def trust_edges(store: Store) -> dict[tuple[str, str], list[str]]:
    """(holder, CA) -> the trust store files (or registry) holding it, over every snapshot."""
    out: dict[tuple[str, str], set[str]] = {}
    for (data,) in store.db.execute("SELECT data FROM edges WHERE data LIKE '%\"trusts\"%'"):
        e = json.loads(data)
        if e.get("rel") != Relation.TRUSTS.value:
            continue
        attrs = e.get("attrs") or {}
        found = out.setdefault((e["from"], e["to"]), set())
        found.update(str(p) for p in attrs.get("paths") or ([attrs["path"]] if attrs.get("path") else []))
    return {k: sorted(v) for k, v in out.items()}


def refused_trusts(store: Store) -> dict[tuple[str, str], str]:
    """(holder, CA) -> why the holder's connector leaves this trust to a person (`manual` on the
    edge: a Vault mount's default issuer), though it can act on the holder's other trusts."""
    out: dict[tuple[str, str], str] = {}
    for (data,) in store.db.execute("SELECT data FROM edges WHERE data LIKE '%\"trusts\"%'"):
        e = json.loads(data)
        why = (e.get("attrs") or {}).get("manual")
        if e.get("rel") == Relation.TRUSTS.value and why:
            out[(e["from"], e["to"])] = str(why)
    return out


def trust_recorders(store: Store) -> dict[tuple[str, str], dict[str, bool]]:
    """(holder, CA) -> {snapshot (connector) that recorded the trust: whether it may rewrite the store}."""
    out: dict[tuple[str, str], dict[str, bool]] = {}
    for snapshot, data in store.db.execute("SELECT snapshot, data FROM edges WHERE data LIKE '%\"trusts\"%'"):
        e = json.loads(data)
        if e.get("rel") == Relation.TRUSTS.value:
            out.setdefault((e["from"], e["to"]), {})[str(snapshot)] = bool((e.get("attrs") or {}).get("writable"))
    return out


def _untrusting_connector(planner: _Planner, recorded: dict[str, bool]) -> str | None:
    """The connector that read this trust store, when it declares `untrust` and may write it."""
    for name, writable in sorted(recorded.items()):
        cls = planner.conns.by_name.get(name)
        if writable and cls is not None and "untrust" in cls.actions.get(NodeKind.CA, frozenset()):
            return name
    return None


def ca_fingerprint(node_id: str, fingerprint: str | None) -> str:
    """The CA certificate's SHA-256 (of its DER): x509 and IoT ids carry it when no fingerprint does."""
    if fingerprint:
        return fingerprint
    tail = node_id.rsplit(":", 1)[-1]
    return f"sha256:{tail}" if len(tail) == 64 else ""


def plan_untrust(planner: _Planner) -> None:
    """One step per holder that trusts a CA the plan retires or replaces."""
    from revoke.plan_model import Step

    trusts = trust_edges(planner.store)
    refused = refused_trusts(planner.store)
    recorders = trust_recorders(planner.store)
    by_ca: dict[str, list[tuple[str, list[str]]]] = {}
    for (trusting, trusted), found in sorted(trusts.items()):
        by_ca.setdefault(trusted, []).append((trusting, found))
    for ca_id in planner.reached_ids:
        ca = planner.nodes[ca_id]
        if ca.kind is not NodeKind.CA or ca_id not in by_ca:
            continue
        acting = planner.step_for_node.get(ca_id)
        if acting is None or acting.verb == "skip":
            continue
        # the same CA seen by another provider (an x509 file CA registered in AWS IoT): the new CA,
        # the reissues and the retirement are that provider's steps
        real = ca_id
        if acting.verb == "covered" and acting.depends_on and acting.depends_on[0] in planner.steps:
            real = planner.steps[acting.depends_on[0]].node
        create = planner.steps.get(f"create_ca:{real}")
        retire = planner.steps.get(f"retire_ca:{real}")
        delivered = sorted(s.id for c in planner.succs(real, Relation.ISSUED)
                           for s in [planner.steps.get(f"reissue:{c}")] if s is not None)
        fp = ca_fingerprint(ca_id, ca.fingerprint)
        for holder_id, found in by_ca[ca_id]:
            i = planner.g.lookup(holder_id)
            if i is None or not planner.g.live[i]:
                continue
            holder = planner.node(holder_id)
            where = ", ".join(found) or "its trust store"
            repl = f"its replacement from {create.id}" if create else "its replacement CA"
            ca_path, ca_length = planner.path(ca_id)
            step = Step(f"untrust:{ca_id}->{holder_id}", "manual", holder_id, holder.kind.value, holder.provider,
                        None, [*ca_path, holder_id], depth=ca_length)
            step.trust = {"ca": ca_id, "ca_name": ca.name, "fingerprint": fp, "paths": found, "holder": holder_id,
                          "replacement": create.node if create else "", "before": retire.id if retire else ""}
            if acting.executable and holder.provider and holder.provider == ca.provider:
                # the provider's own CA registry: retiring the CA there removes the trust
                step.verb, step.connector = "covered", acting.connector
                step.reason = f"the trust goes with the CA: {acting.id}"
                step.depends_on = [acting.id]
                planner.add(step)
                continue
            step.depends_on = [*([create.id] if create else []), *delivered]
            order = f"after the reissued certificates are made ({len(delivered)} reissue step(s))"
            if retire and planner.emergency:
                order += f"; --emergency retires the old CA first ({retire.id})"
            elif retire:
                order += f", before {retire.id} retires the old CA (which waits for this step)"
                retire.depends_on.append(step.id)
            conn = planner.conns.owner(holder)
            refusal = refused.get((holder_id, ca_id), "")
            file_conn = _untrusting_connector(planner, recorders.get((holder_id, ca_id), {}))
            if conn and planner.conns.supports(conn, holder.kind, "untrust", holder_id) and not refusal:
                # the holder's own connector drops the CA (a Vault PKI mount deleting an imported issuer)
                step.verb, step.connector = "untrust", conn
                step.reason = f"remove CA {ca.name} ({fp}) from {holder_id} ({where}); {order}"
            elif file_conn is not None and not refusal:
                # on the CA's node, not the holder's: a holder may be a compromised source, and a
                # probe that answers "dead" must never block the residual walk there
                step.verb, step.node, step.kind, step.provider, step.connector = (
                    "untrust", ca_id, ca.kind.value, ca.provider, file_conn)
                step.reason = (f"remove CA {ca.name} ({fp}) from {holder_id}'s trust store {where}; {order}; "
                               f"install {repl} there when it is delivered")
            else:
                step.reason = (f"remove CA {ca.name} ({fp}) from {holder_id}'s trust store {where} and install "
                               f"{repl}; {order}; then attest" + (f" ({refusal})" if refusal else ""))
                if holder_id in planner.sources:
                    # never a task on a compromised source: attesting it would end verify's walk there
                    step.node, step.kind, step.provider = ca_id, ca.kind.value, ca.provider
            planner.add(step)


def acting_node(node: Node, step: Step) -> Node:
    """The holder an untrust step acts on or reads back, with the CA to drop in `attrs["untrust"]`."""
    if not step.trust:
        return node
    return dataclasses.replace(node, attrs={**node.attrs, "untrust": dict(step.trust)})


def untrust_steps(steps: list[Step]) -> list[Step]:
    return [s for s in steps if s.id.startswith("untrust:")]


def incident_cas(plan_steps: list[Step]) -> set[str]:
    """The CAs an incident retires, replaces or found compromised (every CA step but a skip)."""
    return {s.node for s in plan_steps if s.kind == NodeKind.CA.value and s.verb != "skip"}


def trust_survivors(store: Store, plan_steps: list[Step]) -> list[tuple[str, str, list[str]]]:
    """Live holders that still trust a CA of the incident in the re-collected graph: (holder, CA,
    trust store files). An attestation does not hide a trust store read back still holding the CA."""
    cas = incident_cas(plan_steps)
    graph = store.load_compiled()
    out = []
    for (holder, ca), found in sorted(trust_edges(store).items()):
        i = graph.lookup(holder)
        if ca in cas and (i is None or graph.live[i]):
            out.append((holder, ca, found))
    return out


def retired_cas(store: Store) -> dict[str, str]:
    """CA -> the incident that retired it: its retirement done, or its manual task attested."""
    from revoke.incident_state import IncidentState
    from revoke.journal import Journal

    out: dict[str, str] = {}
    for (incident,) in store.db.execute("SELECT id FROM incidents ORDER BY created_at"):
        state = IncidentState.read(Journal(store, incident))
        plan = state.plan
        if plan is None:
            continue
        for s in plan.steps:
            if s.kind != NodeKind.CA.value or s.verb == "skip":
                continue
            acted = s.verb == "retire_ca" and state.done(s.id)
            acted = acted or (s.verb in ("manual", "already_dead") and s.node in state.attestations)
            acted = acted or (s.verb == "covered" and bool(s.depends_on) and state.done(s.depends_on[0]))
            if acted:
                out.setdefault(s.node, incident)
    return out


def trust_removed(steps: list[Step], attested: dict[str, dict[str, Any]], store: Store) -> list[dict[str, Any]]:
    """The report's "Trust removed": each holder, the CA it dropped, what it trusts now (as last
    collected), and how that was established."""
    now = trust_edges(store)
    out = []
    for s in untrust_steps(steps):
        ca = s.trust.get("ca", "")
        holder = s.trust.get("holder") or s.node
        still = (holder, ca) in now
        if still:
            how = "still trusted at the last collection"
        elif s.verb == "covered":
            how = f"gone from the re-read registry; removed by {s.depends_on[0] if s.depends_on else 'the CA step'}"
        elif s.verb == "untrust":
            how = f"gone from the re-read trust store; removed by {s.connector} ({s.id})"
        elif s.node in attested:
            how = f"gone from the re-read trust store; attested by {attested[s.node]['by']}"
        else:
            how = "gone from the re-read trust store; task not attested"
        out.append({"holder": holder, "dropped": ca, "dropped_name": s.trust.get("ca_name", ""),
                    "fingerprint": s.trust.get("fingerprint", ""), "paths": s.trust.get("paths", []),
                    "trusts_now": sorted(c for (h, c) in now if h == holder and c != ca),
                    "removed": not still, "verified": how})
    return out
