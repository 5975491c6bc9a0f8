"""Pure transforms: Vault API payloads (as `connectors.vault.collect` reads them) to nodes and edges.

No function here calls Vault; each is tested on recorded payloads. Ids are in
`connectors.vault.ids`. Edges:
    token -[authenticates_as]-> policy            its policies
    token -[parent_of]-> token                    from raw storage or the audit log (attrs.source)
    secret -[stores]-> credential                 a credential recognised in the KV value
    gcp key -[authenticates_as]-> gcp:service_account:<email>   for a key file found in a value
    token -[can_read]-> secret                    capabilities on `<mount>/data/<path>`
    token -[can_mint]-> approle                   update/create on the role's secret-id path
    approle -[can_mint]-> token                   live login tokens of the role (meta.role_name)
    approle / secret_id -[authenticates_as]-> policy / approle
    x509:<ca|cert>:<sha256> -[derives]-> pki node (attrs.alias): the same certificate as a file
    pki_issuer -[issued]-> pki_issuer / pki_cert  decided by verifying signatures
Nothing returned carries a secret value: token values and KV data are only fingerprinted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors import pypi
from connectors.recognize import recognize
from connectors.vault.client import PROVIDER
from connectors.vault.ids import (
    cert_node_id,
    issuer_node_id,
    lease_node_id,
    norm_serial,
    policy_node_id,
    role_node_id,
    secret_id_node_id,
    secret_node_id,
    token_node_id,
    value_node_id,
)
from revoke.errors import InputError
from revoke.model import Edge, Node, NodeKind, Relation, fingerprint, parse_time

P = PROVIDER


def timestamp(value: Any) -> datetime | None:
    """Vault gives unix seconds in some places and RFC 3339 (or the zero time) in others."""
    if value in (None, "", 0) or (isinstance(value, str) and value.startswith("0001-")):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        return parse_time(value)
    except InputError:  # an unparseable timestamp is left out, not fatal
        return None


def mount_table(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`sys/mounts`, `sys/auth`, `sys/audit` bodies -> path (no trailing `/`) -> settings."""
    data = body.get("data") or {k: v for k, v in body.items() if k.endswith("/")}
    return {k.rstrip("/"): v for k, v in data.items() if isinstance(v, dict)}


def kv2_mounts(mounts: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(
        m for m, v in mounts.items() if v.get("type") == "kv" and str((v.get("options") or {}).get("version")) == "2"
    )


def pki_mounts(mounts: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(m for m, v in mounts.items() if v.get("type") == "pki")


def approle_mounts(auth_mounts: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(m for m, v in auth_mounts.items() if v.get("type") == "approle")


# ---------------------------------------------------------------------------------------------
# Tokens and their parents


def transform_tokens(
    lookups: dict[str, dict[str, Any]], fingerprints: dict[str, str], collector_accessor: str = ""
) -> tuple[list[Node], list[Edge]]:
    """`lookups`: accessor -> lookup-accessor data; `fingerprints`: accessor -> fingerprint of the value."""
    nodes: list[Node] = []
    edges: list[Edge] = []
    for acc, data in sorted(lookups.items()):
        meta = data.get("meta") or {}
        attrs: dict[str, Any] = {
            "policies": sorted(data.get("policies") or []),
            "orphan": bool(data.get("orphan")),
            "path": data.get("path") or "",
            "type": data.get("type") or "service",
            "ttl": data.get("ttl") or 0,
            "meta": dict(meta),
        }
        if data.get("entity_id"):
            attrs["entity_id"] = data["entity_id"]
        if acc == collector_accessor:
            attrs["collector"] = True
        nodes.append(
            Node(
                id=token_node_id(acc),
                kind=NodeKind.TOKEN,
                provider=P,
                name=data.get("display_name") or "",
                created=timestamp(data.get("creation_time")),
                expires=timestamp(data.get("expire_time")),
                fingerprint=fingerprints.get(acc, ""),
                attrs=attrs,
            )
        )
        for pol in attrs["policies"]:
            edges.append(Edge(token_node_id(acc), policy_node_id(pol), Relation.AUTHENTICATES_AS))
    return nodes, edges


def transform_raw_tokens(entries: Iterable[dict[str, Any]]) -> tuple[set[tuple[str, str]], dict[str, str]]:
    """Raw token store entries -> (parent accessor, child accessor) pairs and accessor -> fingerprint
    of the token value. The entries hold token values: nothing else of them is kept."""
    by_value: dict[str, str] = {}
    parents: list[tuple[str, str]] = []
    fps: dict[str, str] = {}
    for entry in entries:
        acc, value = entry.get("accessor") or "", entry.get("id") or ""
        if not acc or not value:
            continue
        by_value[value] = acc
        fps[acc] = fingerprint(value)
        if entry.get("parent"):
            parents.append((entry["parent"], acc))
    pairs = {(by_value[p], c) for p, c in parents if p in by_value}
    return pairs, fps


def transform_audit_parents(lines: Iterable[str], hmac_to_accessor: dict[str, str]) -> set[tuple[str, str]]:
    """Token-creation responses link the requester's accessor to the new token's accessor."""
    pairs = set()
    for line in lines:
        if '"auth/token/create' not in line:
            continue
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):  # a line nested past the parser's limit is no record either
            continue
        req = rec.get("request") or {}
        path = req.get("path") or ""
        if rec.get("type") != "response" or not path.startswith("auth/token/create"):
            continue
        if path.startswith("auth/token/create-orphan") or (req.get("data") or {}).get("no_parent") is True:
            continue
        child = ((rec.get("response") or {}).get("auth") or {}).get("accessor")
        parent = req.get("client_token_accessor")
        if child in hmac_to_accessor and parent in hmac_to_accessor:
            pairs.add((hmac_to_accessor[parent], hmac_to_accessor[child]))
    return pairs


def transform_parents(pairs: set[tuple[str, str]], lookups: dict[str, dict[str, Any]], source: str) -> list[Edge]:
    """Edges for live tokens only; orphans never have a parent whatever a log says."""
    return [
        Edge(token_node_id(p), token_node_id(c), Relation.PARENT_OF, attrs={"source": source})
        for p, c in sorted(pairs)
        if p in lookups and c in lookups and not lookups[c].get("orphan")
    ]


# ---------------------------------------------------------------------------------------------
# Policies

POLICY_PATH_RE = re.compile(r'path\s+"([^"]+)"')


def transform_policies(policies: dict[str, str]) -> list[Node]:
    """name -> policy text; the text itself is kept only as a fingerprint."""
    return [
        Node(
            id=policy_node_id(name),
            kind=NodeKind.POLICY,
            provider=P,
            name=name,
            attrs={"paths": POLICY_PATH_RE.findall(text), "rules_sha256": fingerprint(text)},
        )
        for name, text in sorted(policies.items())
    ]


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
# Capabilities


def can(caps: list[str], *wanted: str) -> bool:
    return "root" in caps or (any(w in caps for w in wanted) and "deny" not in caps)


def transform_can_read(caps: dict[str, dict[str, list[str]]], data_paths: dict[str, str]) -> list[Edge]:
    """`caps`: accessor -> path -> capabilities; `data_paths`: API path (`secret/data/ci/db`) -> secret node id."""
    return [
        Edge(token_node_id(acc), node_id, Relation.CAN_READ)
        for acc, by_path in sorted(caps.items())
        for path, node_id in sorted(data_paths.items())
        if can(by_path.get(path, []), "read")
    ]


def transform_can_mint(caps: dict[str, dict[str, list[str]]], mint_paths: dict[str, str]) -> list[Edge]:
    """`mint_paths`: the API path that mints a role's secret-ids -> role node id."""
    return [
        Edge(token_node_id(acc), role_id, Relation.CAN_MINT)
        for acc, by_path in sorted(caps.items())
        for path, role_id in sorted(mint_paths.items())
        if can(by_path.get(path, []), "update", "create")
    ]


# ---------------------------------------------------------------------------------------------
# AppRole and leases


@dataclass
class AppRolePayload:
    mount: str
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    secret_ids: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # role -> accessor -> data


def role_tokens(lookups: dict[str, dict[str, Any]], mount: str, role: str) -> list[str]:
    """Accessors of live tokens this role's logins minted: AppRole login tokens are orphans that
    carry `meta.role_name`, the only link from a role to them."""
    return sorted(
        acc for acc, data in lookups.items()
        if (data.get("meta") or {}).get("role_name") == role and str(data.get("path") or "").startswith(
            f"auth/{mount}/login")
    )


def transform_approle(payload: AppRolePayload, token_lookups: dict[str, dict[str, Any]]) -> tuple[list[Node], list[Edge]]:
    nodes: list[Node] = []
    edges: list[Edge] = []
    m = payload.mount
    for role, data in sorted(payload.roles.items()):
        rid = role_node_id(m, role)
        nodes.append(Node(rid, NodeKind.ROLE, P, name=role,
                          attrs={"mount": m, "token_policies": sorted(data.get("token_policies") or []),
                                 "token_ttl": data.get("token_ttl") or 0}))
        for pol in sorted(data.get("token_policies") or []):
            edges.append(Edge(rid, policy_node_id(pol), Relation.AUTHENTICATES_AS))
        for acc, sid in sorted(payload.secret_ids.get(role, {}).items()):
            nid = secret_id_node_id(m, role, acc)
            nodes.append(Node(nid, NodeKind.TOKEN, P, name=f"{role} secret-id",
                              created=timestamp(sid.get("creation_time")), expires=timestamp(sid.get("expiration_time")),
                              attrs={"mount": m, "role": role, "accessor": acc,
                                     "num_uses": sid.get("secret_id_num_uses") or 0,
                                     "metadata_keys": sorted((sid.get("metadata") or {}).keys())}))
            edges.append(Edge(nid, rid, Relation.AUTHENTICATES_AS))
        for acc in role_tokens(token_lookups, m, role):
            edges.append(Edge(rid, token_node_id(acc), Relation.CAN_MINT, attrs={"role_name": role}))
    return nodes, edges


def secret_id_paths(payloads: list[AppRolePayload]) -> dict[str, str]:
    """API path that mints secret-ids -> role node id (for `can_mint` token -> role)."""
    return {f"auth/{p.mount}/role/{r}/secret-id": role_node_id(p.mount, r) for p in payloads for r in p.roles}


def transform_leases(leases: dict[str, dict[str, Any]]) -> list[Node]:
    """lease id -> `sys/leases/lookup` data."""
    return [
        Node(lease_node_id(lid), NodeKind.TOKEN, P, name=lid.rsplit("/", 1)[0],
             created=timestamp(data.get("issue_time")), expires=timestamp(data.get("expire_time")),
             attrs={"renewable": bool(data.get("renewable")), "prefix": lid.rsplit("/", 1)[0]})
        for lid, data in sorted(leases.items())
    ]


# ---------------------------------------------------------------------------------------------
# PKI


@dataclass
class PkiPayload:
    mount: str
    issuers: dict[str, dict[str, Any]]  # issuer id -> `issuer/<id>` data
    certs: dict[str, dict[str, Any]]  # serial -> `cert/<serial>` data


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
        nodes.append(Node(nid, NodeKind.CA, P, name=data.get("issuer_name") or pki.common_name(cert),
                          created=cert.not_valid_before_utc, expires=cert.not_valid_after_utc,
                          status="revoked" if revoked else "active",
                          attrs={"mount": m, "issuer_id": iid, "subject": cert.subject.rfc4514_string(),
                                 "key_id": data.get("key_id") or "", "sha256": sha,
                                 "self_signed": cert.issuer == cert.subject}))
        edges.append(Edge(f"x509:ca:{sha}", nid, Relation.DERIVES, attrs={"alias": True}))
    for iid, cert in issuer_certs.items():  # a root issuer that signed an intermediate one
        for pid, parent in issuer_certs.items():
            if pid != iid and pki.issued_by(cert, parent):
                edges.append(Edge(issuer_node_id(m, pid), issuer_node_id(m, iid), Relation.ISSUED))
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
