"""The plan's ordering edges: containment before redistribution, and a CA reissue's order.

A replacement is written to a store only after every live credential that can read that store is
contained, wherever that reader comes from: its own `can_read`/`stores` edge, the identity it
authenticates as, a role it can assume, a parent token (up to READER_DEPTH hops back from the
store), or the rotated credential itself (then the rotation retires it before writing:
`retire_first`). Two rotations that read each other's stores cannot both wait for the other: the
one that would close a loop retires first instead. A CA reissue creates the new CA before any new
certificate and retires the old CA after the last one (`--emergency`: retire first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from revoke.model import NodeKind, Relation

if TYPE_CHECKING:
    from revoke.plan import Step, _Planner

# verbs that cut a credential off (a rotation retires the old one)
CONTAINING = ("revoke", "disable", "rotate", "reissue", "retire_ca")
# how a reader reaches a store: its own edge, or the identity it acts as
READER_RELS = (Relation.CAN_READ, Relation.STORES, Relation.AUTHENTICATES_AS, Relation.CAN_ASSUME, Relation.PARENT_OF)
READER_DEPTH = 4


def _reaches(steps: dict[str, Step], start: str, goal: str) -> bool:
    """Whether `start` already (transitively) depends on `goal`: adding goal -> start would loop."""
    seen, stack = {start}, [start]
    while stack:
        sid = stack.pop()
        for d in steps[sid].depends_on if sid in steps else ():
            if d == goal:
                return True
            if d not in seen:
                seen.add(d)
                stack.append(d)
    return False


def readers(p: _Planner, store_id: str) -> set[str]:
    """Live credentials that can read a store: directly, or through the identities they act as
    (a key -> its user -> can_read; a user -> a role it can assume -> can_read)."""
    out: set[str] = set()
    seen = {store_id}
    frontier = [store_id]
    for _ in range(READER_DEPTH):
        nxt = []
        for nid in frontier:
            for rel in READER_RELS:
                for pred in p.preds(nid, rel):
                    if pred in seen:
                        continue
                    seen.add(pred)
                    i = p.g.lookup(pred)
                    if i is None or not p.g.live[i]:
                        continue
                    if p.g.is_credential(i):
                        out.add(pred)
                    else:
                        nxt.append(pred)
        frontier = nxt
    return out


def containment_step(p: _Planner, node_id: str) -> Step | None:
    """The step that contains a credential (through the step that covers it), if any."""
    r = p.step_for_node.get(node_id)
    if r is not None and r.verb == "covered":
        r = p.steps.get(r.depends_on[0])
    return r if r is not None and r.verb in CONTAINING else None


def wire(p: _Planner) -> None:
    steps = p.steps
    for step in steps.values():
        if step.verb in ("rotate", "reissue"):
            _contain_readers_first(p, step)
            if step.kind == NodeKind.CERTIFICATE.value:
                for ca in p.preds(step.node, Relation.ISSUED):
                    create, retire = steps.get(f"create_ca:{ca}"), steps.get(f"retire_ca:{ca}")
                    if create:
                        step.depends_on.append(create.id)
                    if retire and p.emergency:
                        step.depends_on.append(retire.id)
                    elif retire:
                        retire.depends_on.append(step.id)
        if step.verb == "create_ca" and p.emergency:
            step.depends_on.append(f"retire_ca:{step.node}")


def _contain_readers_first(p: _Planner, step: Step) -> None:
    """Every live credential that can read a store the replacement goes to is contained first,
    whichever way it reads it."""
    for target in step.stores:
        if target["mode"] != "write":
            continue
        for reader in sorted(readers(p, target["store"])):
            r = containment_step(p, reader)
            if r is None:
                continue
            if r.id == step.id:
                # the rotated credential reads its own store: retire it before writing
                step.retire_first = True
            elif r.id not in step.depends_on and not _reaches(p.steps, r.id, step.id):
                step.depends_on.append(r.id)
            elif r.id not in step.depends_on:
                # two rotations that read each other's stores: the later one retires first
                step.retire_first = True
