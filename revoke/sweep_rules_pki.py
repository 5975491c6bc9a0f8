"""Built-in hygiene rules: certificates (expiry, issuer, weak keys and signatures) and the top
credentials by blast radius. Attribute names are the x509 connector's (`key_type`, `key_size`,
`signature_hash`, `subject`, `issuer`); Vault PKI nodes add `self_signed` / `issuer_id`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

import numpy as np

from revoke.model import Edge, Node, Relation
from revoke.sweep import Hit, Severity, SweepContext, rule
from revoke.sweep_rules import _alias_components, span, when

CERT_KINDS = ["certificate", "ca"]
CERT_ATTRS = ("subject", "issuer", "serial", "path")


@rule("cert-expiring", Severity.MEDIUM, "certificates and CAs expiring within `days` days", days=30, kinds=CERT_KINDS)
def cert_expiring(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    for node in ctx.of_kind(*p["kinds"]):
        if node.expires is None or not ctx.is_live(node):
            continue
        left = ctx.days_until(node.expires)
        if left < p["days"]:
            in_ = span((node.expires - ctx.now).total_seconds())
            yield Hit(node.id, f"{node.kind.value} expires in {in_} ({node.expires.date().isoformat()})",
                      {**when(node, *CERT_ATTRS), "days_left": left})


@rule("cert-expired", Severity.LOW, "expired certificates still present (files, stores, providers)", kinds=CERT_KINDS)
def cert_expired(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    for node in ctx.of_kind(*p["kinds"]):
        if node.expires is not None and node.expires <= ctx.now and node.status.lower() not in ("revoked", "deleted"):
            ago = ctx.days_since(node.expires)
            since = span((ctx.now - node.expires).total_seconds())
            yield Hit(node.id, f"{node.kind.value} expired {since} ago and is still present",
                      {**when(node, *CERT_ATTRS), "days_expired": ago,
                       "holders": sorted(e.src for rel in (Relation.STORES, Relation.HOLDS_PUBLIC)
                                         for e in ctx.incoming(node.id, rel))})


def _issuers(ctx: SweepContext, node_id: str) -> list[Node]:
    return [ctx.nodes[e.src] for e in ctx.incoming(node_id, Relation.ISSUED) if e.src in ctx.nodes]


@rule("cert-bypasses-authorization", Severity.CRITICAL,
      "live certificates whose identity no authorization change can restrict (a Kubernetes client "
      "certificate in system:masters): only rotating their CA ends them", kinds=CERT_KINDS)
def cert_bypasses_authorization(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    for node in ctx.of_kind(*p["kinds"]):
        if node.attrs.get("bypasses_authorization") and ctx.is_live(node):
            groups = ", ".join(str(g) for g in node.attrs.get("groups") or [])
            yield Hit(node.id, f"client certificate of {node.owner or 'an unnamed user'} in {groups or 'a privileged group'}: "
                      "admitted before authorization, it cannot be revoked or restricted; rotate the CA",
                      {**when(node, "groups", "user", "csr"), "bypasses_authorization": True})


@rule("cert-ca-expired", Severity.HIGH, "live certificates whose every issuing CA is expired or revoked",
      kinds=CERT_KINDS)
def cert_ca_expired(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    for node in ctx.of_kind(*p["kinds"]):
        if not ctx.is_live(node):
            continue
        issuers = _issuers(ctx, node.id)
        # a cross-signed certificate with one live issuer still chains
        if issuers and not any(ctx.is_live(ca) for ca in issuers):
            ca = issuers[0]
            state = "expired" if ca.expires is not None and ca.expires <= ctx.now else ca.status
            yield Hit(node.id, f"issuing CA {ca.id} is {state}",
                      {**when(node, *CERT_ATTRS), "issuers": [{"id": c.id, **when(c)} for c in issuers]},
                      path=[ca.id, node.id])


def _self_signed(node: Node) -> bool | None:
    """True / False when the attributes tell, None when they cannot (no subject/issuer data)."""
    if "self_signed" in node.attrs:
        return bool(node.attrs["self_signed"])
    subject, issuer = node.attrs.get("subject"), node.attrs.get("issuer")
    if subject and issuer:
        return bool(subject == issuer)
    if "issuer_id" in node.attrs:  # a Vault PKI certificate: signed by an issuer, never by itself
        return False
    return None


@rule("cert-ca-unknown", Severity.MEDIUM,
      "certificates not self-signed whose issuing CA is not in the graph (issuer DNs containing any of "
      "`trusted_issuers` are accepted)",
      kinds=CERT_KINDS, trusted_issuers=[])
def cert_ca_unknown(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    alias = _alias_components(ctx)
    groups: dict[str, list[Node]] = {}
    for nid, rep in alias.items():
        if nid in ctx.nodes:
            groups.setdefault(rep, []).append(ctx.nodes[nid])
    for node in ctx.of_kind(*p["kinds"]):
        if not ctx.is_live(node):
            continue
        # judge the real certificate, whichever provider's id carries the issuer or the edge
        same = groups.get(alias.get(node.id, ""), [node])
        if any(_issuers(ctx, n.id) for n in same):
            continue
        verdicts = [_self_signed(n) for n in same if not n.attrs.get("stub")]
        if any(v is True for v in verdicts) or not any(v is False for v in verdicts):
            continue
        issuer = next((str(n.attrs["issuer"]) for n in same if n.attrs.get("issuer")), "")
        if issuer and any(t in issuer for t in p["trusted_issuers"]):
            continue
        if node.id != min(n.id for n in same if not n.attrs.get("stub")):
            continue  # one finding per real certificate
        yield Hit(node.id, f"issuing CA {issuer or '(unknown)'} is not in the graph",
                  {**when(node, *CERT_ATTRS), "aliases": sorted(n.id for n in same if n.id != node.id)})


@rule("weak-key", Severity.HIGH, "RSA keys under `min_rsa_bits`, EC keys under `min_ec_bits`, key types in `weak_types`",
      min_rsa_bits=2048, min_ec_bits=224, weak_types=["dsa"], kinds=[*CERT_KINDS, "private_key"])
def weak_key(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    for node in ctx.of_kind(*p["kinds"]):
        key_type = str(node.attrs.get("key_type") or "").lower()
        size = node.attrs.get("key_size")
        if not key_type or not ctx.is_live(node):
            continue
        reason = None
        if key_type in p["weak_types"]:
            reason = f"{key_type.upper()} key"
        elif key_type == "rsa" and isinstance(size, int) and size < p["min_rsa_bits"]:
            reason = f"RSA key of {size} bits (minimum {p['min_rsa_bits']})"
        elif key_type == "ec" and isinstance(size, int) and size < p["min_ec_bits"]:
            reason = f"EC key of {size} bits (minimum {p['min_ec_bits']})"
        if reason:
            yield Hit(node.id, f"weak {node.kind.value}: {reason}",
                      {**when(node, *CERT_ATTRS, "key_type", "key_size", "curve")})


@rule("weak-signature", Severity.HIGH, "certificates signed with a hash in `weak_hashes` (self-signed roots exempt "
      "when `ignore_self_signed`: nobody verifies a trust anchor's own signature)",
      weak_hashes=["sha1", "md5"], ignore_self_signed=True, kinds=CERT_KINDS)
def weak_signature(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    weak = {h.lower() for h in p["weak_hashes"]}
    for node in ctx.of_kind(*p["kinds"]):
        algo = str(node.attrs.get("signature_hash") or "").lower()
        if algo not in weak or not ctx.is_live(node):
            continue
        if p["ignore_self_signed"] and _self_signed(node):
            continue
        yield Hit(node.id, f"{node.kind.value} signed with {algo.upper()}",
                  {**when(node, *CERT_ATTRS, "signature_hash", "signature_algorithm")})


# ---------------------------------------------------------------------------------------------------
# Blast radius


@rule("blast-radius-top", Severity.INFO,
      "the `top` live credentials whose compromise would expose the most nodes (at least `min_reach`); "
      "at most `max_candidates` credentials are walked, the highest out-degree first",
      ordered=True, top=10, min_reach=2, max_candidates=20000)
def blast_radius_top(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    from revoke.blast import blast_radius
    from revoke.graph import CREDENTIAL_MASK, KINDS

    g = ctx.graph
    if g.n_nodes == 0 or p["top"] <= 0:
        return
    outdeg = np.diff(g.indptr)
    # a credential with no out-edge reaches nothing: most leaf certificates cost no walk at all
    cand = np.flatnonzero(CREDENTIAL_MASK[g.kind] & g.live & (outdeg > 0))
    sampled = cand.size > p["max_candidates"]
    if sampled:
        cand = cand[np.argsort(-outdeg[cand], kind="stable")[: p["max_candidates"]]]
    best: list[tuple[int, str, int, np.ndarray]] = []
    for i in cand.tolist():
        radius = blast_radius(g, [i])
        reached = radius.reached[1:]  # without the source itself
        size = int(reached.size)
        if size < p["min_reach"]:
            continue
        item = (size, g.ids[i], i, reached)
        if len(best) < p["top"]:
            heapq.heappush(best, item)
        elif item[:2] > best[0][:2]:
            heapq.heapreplace(best, item)
    for rank, (size, nid, _i, reached) in enumerate(sorted(best, key=lambda t: (-t[0], t[1])), start=1):
        counts = np.bincount(g.kind[reached], minlength=len(KINDS))
        by_kind = {KINDS[k].value: int(c) for k, c in enumerate(counts) if c}
        creds = int(CREDENTIAL_MASK[g.kind[reached]].sum())
        summary = ", ".join(f"{c} {k}" for k, c in sorted(by_kind.items(), key=lambda kv: (-kv[1], kv[0]))[:4])
        yield Hit(nid, f"#{rank} by blast radius: compromise exposes {size} nodes ({summary})",
                  {"rank": rank, "reach": size, "credentials": creds, "holders": size - creds, "by_kind": by_kind,
                   "candidates_walked": int(cand.size), "sampled": bool(sampled)},
                  targets=[])



# ---------------------------------------------------------------------------------------------------
# Trust stores


def _trusted(ctx: SweepContext) -> Iterator[tuple[Node, list[Edge]]]:
    """Every CA some holder trusts, with the `trusts` edges (holder, trust store files) into it."""
    for node in ctx.of_kind("ca", "certificate"):
        edges = ctx.incoming(node.id, Relation.TRUSTS)
        if edges:
            yield node, edges


def _stores(edges: list[Edge]) -> list[dict[str, Any]]:
    return [{"holder": e.src, "paths": e.attrs.get("paths") or [e.attrs.get("path", "")]} for e in edges]


@rule("trust-store-dead-ca", Severity.HIGH,
      "trust stores still holding a CA that is expired, revoked, or retired by an incident")
def trust_store_dead_ca(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    for node, edges in _trusted(ctx):
        if node.id in ctx.retired_cas:
            why = f"retired by incident {ctx.retired_cas[node.id]}"
        elif not ctx.is_live(node):
            expired = node.expires is not None and node.expires <= ctx.now
            why = f"expired {node.expires.date().isoformat()}" if expired and node.expires else node.status
        else:
            continue
        holders = ", ".join(sorted(e.src for e in edges))
        yield Hit(node.id, f"{node.kind.value} {node.name} is {why} and still trusted by {holders}",
                  {**when(node, *CERT_ATTRS), "trust_stores": _stores(edges)},
                  targets=[])


@rule("trust-store-unknown-ca", Severity.MEDIUM,
      "trust stores holding a CA the rest of the inventory does not know: it issued nothing in the graph, "
      "nobody holds it outside a trust store, no provider registers it (subjects containing any of "
      "`accepted_subjects` are accepted)", accepted_subjects=[])
def trust_store_unknown_ca(ctx: SweepContext, p: dict[str, Any]) -> Iterator[Hit]:
    alias = _alias_components(ctx)
    for node, edges in _trusted(ctx):
        if not ctx.is_live(node) or node.id in ctx.retired_cas:
            continue  # trust-store-dead-ca reports it
        subject = str(node.attrs.get("subject") or node.name)
        if any(s in subject for s in p["accepted_subjects"]):
            continue
        known = any(e.rel is not Relation.TRUSTS for e in ctx.in_edges.get(node.id, ()))
        known = known or bool(ctx.outgoing(node.id, Relation.ISSUED)) or node.id in alias or node.id in alias.values()
        if known:
            continue
        yield Hit(node.id, f"{node.kind.value} {node.name} is trusted by {', '.join(sorted(e.src for e in edges))} "
                  "but unknown to the inventory", {**when(node, *CERT_ATTRS), "trust_stores": _stores(edges)},
                  targets=[])
