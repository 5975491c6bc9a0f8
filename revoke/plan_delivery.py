"""Where each replacement goes: the stores revoke writes, the escrow, or nowhere (contain only).

A rotation or reissue makes new material that someone must receive. The planner calls in here
for every one:
- a store revoke can write holds the old value: the replacement is written there, and every
  holder revoke cannot write to gets a manual task to copy it from there;
- the provider keeps the new secret itself (a Vault issuer's key): nothing to deliver;
- otherwise the replacement goes to the escrow (revoke.yaml `escrow:`), one item per replaced
  credential, named now so the manual tasks can say where to take it from: one task per place
  it must reach (a host to re-provision, a device to deliver to);
- with no escrow, nothing is created that nobody can receive: the old credential is contained
  with the playbook's retire verb and a manual task says to issue a new one when its holder is
  re-provisioned. A CA whose new key only revoke would hold is retired, and no new CA is made.

A manual task never sits on a compromised source (attesting it would end verify's residual walk
there): the task for a source is on the credential it must receive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from revoke.connector import escrow_item
from revoke.model import Node, NodeKind, Relation

if TYPE_CHECKING:
    from revoke.plan import Step, _Planner

CONTAINED = ("no store revoke can write may receive a replacement and no escrow is configured (revoke.yaml "
             "`escrow:`): contained only, no replacement is created")


def plan_rotation(p: _Planner, node: Node, conn: str | None, verb: str, reason: str) -> None:
    retire = p.pb.model.rotate_retire if verb == "rotate" else "revoke"
    stores = p.store_targets(node)
    received = (any(t["mode"] == "write" for t in stores) or p.escrow is not None
                or p.conns.keeps_secret(conn, node.id))
    if not received:
        contain = p.containing_verb(node, conn, retire)
        if contain is None:
            p.add(p.base(node, "manual", conn, f"connector {conn} cannot {retire} a {node.kind.value} and nothing "
                         "may receive a replacement: act by hand, then attest"))
        else:
            _contain_only(p, node, conn, contain, stores, reason)
        return
    step = p.add(p.base(node, verb, conn, reason))
    step.retire, step.stores = retire, stores
    _deliver(p, node, step)


def plan_new_ca(p: _Planner, node: Node, conn: str | None, reason: str) -> None:
    """A new CA, then the old one's retirement (which covers the CA's aliases). A new CA whose key
    only revoke would hold needs the escrow; without one the old CA is retired and no new CA is made."""
    keeps = p.conns.keeps_secret(conn, node.id)
    if keeps or p.escrow is not None:
        new = p.add(p.base(node, "create_ca", conn, reason, sid=f"create_ca:{node.id}"))
        if not keeps:
            new.escrow = escrow_target(p, node.id)
    else:
        why = "no escrow is configured to keep a new CA's private key: the CA is retired, no new CA is made"
        reason = f"{reason}; {why}" if reason else why
    p.step_for_node[node.id] = p.add(p.base(node, "retire_ca", conn, reason, sid=f"retire_ca:{node.id}"))


# members per escrow item for a fleet's certificates (a Secrets Manager value holds at most 64 KiB)
ESCROW_BATCH = {"aws": 10}
ESCROW_BATCH_DEFAULT = 25


def escrow_target(p: _Planner, node_id: str) -> dict[str, Any]:
    assert p.escrow is not None
    item = escrow_item(node_id)
    group = _escrow_group(p, node_id)
    if group is None:
        return {**p.escrow.to_json(), "item": item, "where": p.escrow.where(item)}
    # a fleet: the certificates a CA issued share items, consecutive in id order (the order the
    # executor reissues them in), so a few writes escrow them all; each is a member of its item
    return {**p.escrow.to_json(), "item": group, "member": item, "where": f"{p.escrow.where(group)}#{item}"}


def _escrow_group(p: _Planner, node_id: str) -> str | None:
    from revoke.connector import batches_escrow

    assert p.escrow is not None
    cls = p.conns.by_name.get(p.escrow.connector)
    if p.node(node_id).kind is not NodeKind.CERTIFICATE or cls is None or not batches_escrow(cls):
        return None
    cas = p.preds(node_id, Relation.ISSUED)
    if not cas:
        return None
    cache: dict[str, dict[str, int]] = p.__dict__.setdefault("_escrow_fleets", {})
    if cas[0] not in cache:
        cache[cas[0]] = {c: i for i, c in enumerate(sorted(p.succs(cas[0], Relation.ISSUED)))}
    size = ESCROW_BATCH.get(p.escrow.type, ESCROW_BATCH_DEFAULT)
    return f"{escrow_item(cas[0])}-certificates-{cache[cas[0]][node_id] // size:04d}"


def _recipients(p: _Planner, node: Node, stores: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(manual task node, what must receive the replacement): every store revoke does not write,
    or else the devices and workloads the credential authenticates as."""
    out = [(t["store"] if t["mode"] == "manual" else node.id, t["store"])
           for t in stores if t["mode"] in ("manual", "skip")]
    if not stores:
        for holder in p.succs(node.id, Relation.AUTHENTICATES_AS):
            if p.node(holder).kind in (NodeKind.WORKLOAD, NodeKind.HOST):
                out.append((holder, holder))
    return out


def _task(p: _Planner, sid: str, task_node: str, reason: str, after: Step) -> None:
    m = p.base(p.node(task_node), "manual", None, reason, sid=sid)
    m.depends_on.append(after.id)
    p.deliveries.append(m)


def _deliver(p: _Planner, node: Node, step: Step) -> None:
    """Manual tasks for the places no connector writes, and the escrow when nothing else receives it."""
    written = [t["store"] for t in step.stores if t["mode"] == "write"]
    if not written and not p.conns.keeps_secret(step.connector, node.id):
        step.escrow = escrow_target(p, node.id)
    source = ", ".join(written) if written else (f"the escrow {step.escrow['where']}" if step.escrow else "")
    what = "the new certificate and key" if node.kind is NodeKind.CERTIFICATE else "the replacement"
    for task_node, target in _recipients(p, node, step.stores):
        if target in p.sources:
            if not step.escrow:
                continue  # a compromised source gets nothing back: the stores revoke writes hold it
            why = f"re-provision {target} (compromised) with {what} of {node.id}"
        elif not step.stores:
            why = f"deliver {what} of {node.id} to {target}"
        else:
            why = f"re-provision {target} with {what} of {node.id} (no connector can write to it)"
        _task(p, f"distribute:{node.id}->{target}", task_node, why + (f"; take it from {source}" if source else ""), step)


def _contain_only(p: _Planner, node: Node, conn: str | None, verb: str, stores: list[dict[str, Any]],
                  reason: str) -> None:
    step = p.add(p.base(node, verb, conn, f"{reason}; {CONTAINED}" if reason else CONTAINED))
    for task_node, target in _recipients(p, node, stores) or [(node.id, "")]:
        where = f"when you re-provision {target}" if target else "for whoever used it"
        _task(p, f"reprovision:{node.id}->{target or node.id}", task_node,
              f"{node.id} was contained, not replaced: issue a new one {where}", step)
