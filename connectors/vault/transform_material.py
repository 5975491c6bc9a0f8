"""Pure transforms, what is stored and issued: KV v2 secrets (and the credentials recognised in
their values) and PKI issuers and certificates, from the payloads `connectors.vault.collect`
reads. Who can read or mint them is `connectors.vault.transform`.

Edges:
    secret -[stores]-> credential                 a credential recognised in the KV value
    gcp key -[authenticates_as]-> gcp:service_account:<email>   for a key file found in a value
    x509:<ca|cert>:<sha256> -[derives]-> pki node (attrs.alias): the same certificate as a file
    pki_issuer -[issued]-> pki_issuer / pki_cert  decided by verifying signatures
Nothing returned carries a secret value: KV data are only fingerprinted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from connectors import pypi
from connectors.recognize import recognize
from connectors.vault.client import PROVIDER
from connectors.vault.ids import (
    cert_node_id,
    issuer_node_id,
    mount_node_id,
    norm_serial,
    secret_node_id,
    token_node_id,
    value_node_id,
)
from revoke.model import Edge, Node, NodeKind, Relation, fingerprint

P = PROVIDER


# ---------------------------------------------------------------------------------------------
# KV v2


@dataclass
class KvSecret:
    mount: str
    path: str
    data: dict[str, Any] | None  # None when the current version is deleted or destroyed
    version: int = 0
    updated: str = ""
    live_versions: list[int] = field(default_factory=list)


@dataclass
class RefEdge:
    src: str
    rel: Relation
    dst: str
    node: Node | None = None


def value_refs(mount: str, path: str, data: dict[str, Any], token_fps: dict[str, str]) -> list[RefEdge]:
    """Edges (and the password/api_key nodes they need) for each credential recognised in a KV value."""
    sid = secret_node_id(mount, path)
    by_fp = {fp: acc for acc, fp in token_fps.items()}
    out: list[RefEdge] = []
    for item in recognize(data):
        if item.kind in (NodeKind.PASSWORD, NodeKind.API_KEY) and not item.ref:
            kind_name = "password" if item.kind is NodeKind.PASSWORD else "api_key"
            fld = item.fields[0]
            ref = value_node_id(kind_name, mount, path, fld)
            node = Node(ref, item.kind, P, name=f"{path}#{fld}", fingerprint=item.fingerprint,
                        attrs={"mount": mount, "path": path, "field": fld, "managed": False})
            out.append(RefEdge(sid, Relation.STORES, ref, node))
        elif item.ref.startswith("fp:") and item.fingerprint in by_fp:
            # resolved here: the raw token store told us which accessor this value belongs to
            out.append(RefEdge(sid, Relation.STORES, token_node_id(by_fp[item.fingerprint])))
        elif item.ref:
            token, publishes = pypi.links(item.ref, item.attrs, item.fingerprint)  # a PyPI token: its node and what it publishes
            out.append(RefEdge(sid, item.rel, item.ref, token))
            if item.attrs.get("authenticates_as"):  # a database password names its role (recognize)
                out.append(RefEdge(item.ref, Relation.AUTHENTICATES_AS, str(item.attrs["authenticates_as"])))
            email = item.attrs.get("client_email")
            if item.kind is NodeKind.SERVICE_ACCOUNT_KEY and email:
                out.append(RefEdge(item.ref, Relation.AUTHENTICATES_AS, f"gcp:service_account:{email}"))
            out += [RefEdge(e.src, e.rel, e.dst) for e in publishes]
    return out


def transform_kv(secrets: list[KvSecret], token_fps: dict[str, str]) -> tuple[list[Node], list[Edge]]:
    nodes: list[Node] = []
    edges: list[Edge] = []
    for s in secrets:
        attrs: dict[str, Any] = {"mount": s.mount, "path": s.path, "version": s.version,
                                 "live_versions": s.live_versions}
        if s.data is not None:
            attrs["fields"] = sorted(s.data)
        nodes.append(Node(
            secret_node_id(s.mount, s.path), NodeKind.SECRET, P, name=f"{s.mount}/{s.path}",
            status="active" if s.data is not None else "deleted",
            fingerprint=fingerprint(json.dumps(s.data, sort_keys=True)) if s.data else "",
            attrs=attrs,
        ))
        for ref in value_refs(s.mount, s.path, s.data or {}, token_fps):
            if ref.node is not None:
                nodes.append(ref.node)
            edges.append(Edge(ref.src, ref.dst, ref.rel, attrs={"found_in": secret_node_id(s.mount, s.path)}))
    return nodes, edges


# ---------------------------------------------------------------------------------------------
# PKI


@dataclass
class PkiPayload:
    mount: str
    issuers: dict[str, dict[str, Any]]  # issuer id -> `issuer/<id>` data
    certs: dict[str, dict[str, Any]]  # serial -> `cert/<serial>` data
    default: str = ""  # the mount's default issuer id (`config/issuers`)


def transform_pki(payload: PkiPayload) -> tuple[list[Node], list[Edge]]:
    """`pki/cert/<serial>` does not say which issuer signed a certificate, so `issued` edges are
    decided by verifying each certificate's signature against every issuer of the mount."""
    from connectors import pki  # imports cryptography: on use only

    nodes: list[Node] = []
    edges: list[Edge] = []
    m = payload.mount
    issuer_certs: dict[str, Any] = {}
    issuer_shas: set[str] = set()
    for iid, data in sorted(payload.issuers.items()):
        cert = pki.load_pem(data["certificate"])
        sha = pki.cert_sha256(cert)
        issuer_certs[iid] = cert
        issuer_shas.add(sha)
        nid = issuer_node_id(m, iid)
        revoked = bool(data.get("revoked"))
        keyless = not data.get("key_id")
        nodes.append(Node(nid, NodeKind.CA, P, name=data.get("issuer_name") or pki.common_name(cert),
                          created=cert.not_valid_before_utc, expires=cert.not_valid_after_utc,
                          status="revoked" if revoked else "active",
                          attrs={"mount": m, "issuer_id": iid, "subject": cert.subject.rfc4514_string(),
                                 "key_id": data.get("key_id") or "", "sha256": sha,
                                 "self_signed": cert.issuer == cert.subject,
                                 **({"imported": "certificate only: the mount trusts it"} if keyless else {})}))
        if not keyless:  # an imported certificate without its key is trusted, not held: no alias
            edges.append(Edge(f"x509:ca:{sha}", nid, Relation.DERIVES, attrs={"alias": True}))
    for iid, cert in issuer_certs.items():  # a root issuer that signed an intermediate one
        for pid, parent in issuer_certs.items():
            if pid != iid and pki.issued_by(cert, parent):
                edges.append(Edge(issuer_node_id(m, pid), issuer_node_id(m, iid), Relation.ISSUED))
    trust_nodes, trust_edges = mount_trusts(payload)
    nodes += trust_nodes
    edges += trust_edges
    for serial, data in sorted(payload.certs.items()):
        if not data.get("certificate"):
            continue
        cert = pki.load_pem(data["certificate"])
        sha = pki.cert_sha256(cert)
        if sha in issuer_shas:
            continue  # `LIST pki/certs` includes the issuers' own serials
        nid = cert_node_id(m, serial)
        revoked = int(data.get("revocation_time") or 0) > 0
        signers = [iid for iid, ic in issuer_certs.items() if pki.issued_by(cert, ic)]
        nodes.append(Node(nid, NodeKind.CERTIFICATE, P, name=pki.common_name(cert),
                          created=cert.not_valid_before_utc, expires=cert.not_valid_after_utc,
                          status="revoked" if revoked else "active",
                          attrs={"mount": m, "serial": norm_serial(serial), "subject": cert.subject.rfc4514_string(),
                                 "issuer_id": signers[0] if signers else "", "sha256": sha}))
        edges.append(Edge(pki.cert_node_id(cert), nid, Relation.DERIVES, attrs={"alias": True}))
        for iid in signers:
            edges.append(Edge(issuer_node_id(m, iid), nid, Relation.ISSUED))
    return nodes, edges


def mount_trusts(payload: PkiPayload) -> tuple[list[Node], list[Edge]]:
    """`trusts` mount -> every CA certificate the mount holds without generating it: an issuer
    imported without its key (`issuers/import/cert`, `config/ca`), and the parents in the chain of
    an intermediate whose key the mount holds but an outside CA signed. The CA's id is the x509
    connector's (`connectors.pki`), so a CA key found on a host reaches the mount's untrust step.
    A CA whose key the mount holds is held, not trusted: its issuer node is an alias instead."""
    from connectors import pki

    m = payload.mount
    keyed = {pki.pem_sha256(d["certificate"]) for d in payload.issuers.values() if d.get("key_id")}
    found: dict[str, dict[str, Any]] = {}  # x509 id -> edge attrs
    for iid, data in sorted(payload.issuers.items()):
        cert = pki.load_pem(data["certificate"])
        if not data.get("key_id"):
            attrs: dict[str, Any] = {"path": f"{m}/issuer/{iid}", "issuer_id": iid,
                                     "default": iid == payload.default, "basis": "imported"}
            if iid == payload.default:  # deleting it would leave the mount issuing with nothing: a person's call
                attrs["manual"] = (f"issuer {iid} is {m}'s default issuer: set another default ({m}/config/issuers) "
                                   f"and delete {m}/issuer/{iid} by hand")
            found.setdefault(pki.cert_node_id(cert), attrs)
            continue
        if cert.issuer == cert.subject:
            continue
        for parent_pem in data.get("ca_chain") or []:
            parent = pki.load_pem(parent_pem)
            if pki.cert_sha256(parent) in keyed or parent == cert:
                continue
            found.setdefault(pki.cert_node_id(parent), {"path": f"{m}/issuer/{iid} (chain)", "issuer_id": "",
                                                        "default": False, "basis": "chain"})
    if not found:
        return [], []
    holder = mount_node_id(m)
    nodes = [Node(holder, NodeKind.WORKLOAD, P, name=f"PKI mount {m}", attrs={"mount": m})]
    return nodes, [Edge(holder, ca, Relation.TRUSTS, attrs=attrs) for ca, attrs in sorted(found.items())]
