"""Vault collection: `get_*` call the API, `transform_*` are pure and turn payloads into nodes/edges.

Secret values are read here (raw token entries, KV data) only to fingerprint them and to
recognise credentials inside; nothing returned carries a value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.recognize import recognize
from connectors.vault.client import VaultApi, status_of
from revoke.connector import ConnectorError
from revoke.errors import InputError
from revoke.model import Edge, Node, NodeKind, Relation, fingerprint, parse_time

P = "vault"


def token_id(accessor: str) -> str:
    return f"vault:token:{accessor}"


def secret_id(mount: str, path: str) -> str:
    return f"vault:secret:{mount}/{path}"


def _ts(value: Any) -> datetime | None:
    """Vault gives unix seconds in some places and RFC 3339 (or the zero time) in others."""
    if value in (None, "", 0) or (isinstance(value, str) and value.startswith("0001-")):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        return parse_time(value)
    except InputError:  # an unparseable timestamp is left out, not fatal
        return None


# ---------------------------------------------------------------------------------------------
# Tokens


def get_token_lookups(api: VaultApi) -> dict[str, dict[str, Any]]:
    """accessor -> lookup-accessor data, for every token with an accessor."""
    out: dict[str, dict[str, Any]] = {}
    for acc in api.list_keys("auth/token/accessors"):
        try:
            body = api.post("auth/token/lookup-accessor", {"accessor": acc}, node=token_id(acc))
        except ConnectorError as exc:
            if status_of(exc) == 400:  # revoked or expired between the list and the lookup
                continue
            raise
        out[acc] = (body or {}).get("data") or {}
    return out


def transform_tokens(
    lookups: dict[str, dict[str, Any]], fingerprints: dict[str, str], collector_accessor: str = ""
) -> tuple[list[Node], list[Edge]]:
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
                id=token_id(acc),
                kind=NodeKind.TOKEN,
                provider=P,
                name=data.get("display_name") or "",
                created=_ts(data.get("creation_time")),
                expires=_ts(data.get("expire_time")),
                fingerprint=fingerprints.get(acc, ""),
                attrs=attrs,
            )
        )
        for pol in attrs["policies"]:
            edges.append(Edge(token_id(acc), f"vault:policy:{pol}", Relation.AUTHENTICATES_AS))
    return nodes, edges


# ---------------------------------------------------------------------------------------------
# Token parents: raw storage or the file audit log


def get_raw_token_entries(api: VaultApi) -> list[dict[str, Any]]:
    """Token store entries from `sys/raw` (they hold token values: transform at once, keep none)."""
    entries = []
    for key in api.list_keys("sys/raw/sys/token/id/"):
        body = api.get(f"sys/raw/sys/token/id/{key}") or {}
        value = (body.get("data") or {}).get("value")
        if value:
            entries.append(json.loads(value))
    return entries


def transform_raw_tokens(entries: Iterable[dict[str, Any]]) -> tuple[set[tuple[str, str]], dict[str, str]]:
    """(parent accessor, child accessor) pairs and accessor -> fingerprint of the token value."""
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


def get_audit_hashes(api: VaultApi, device: str, accessors: Iterable[str]) -> dict[str, str]:
    """HMAC (as the audit device writes it) -> accessor."""
    out = {}
    for acc in accessors:
        body = api.post(f"sys/audit-hash/{device}", {"input": acc}, node=token_id(acc)) or {}
        digest = (body.get("data") or {}).get("hash") or body.get("hash")
        if digest:
            out[digest] = acc
    return out


def transform_audit_parents(lines: Iterable[str], hmac_to_accessor: dict[str, str]) -> set[tuple[str, str]]:
    """Token-creation responses link the requester's accessor to the new token's accessor."""
    pairs = set()
    for line in lines:
        if '"auth/token/create' not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
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
        Edge(token_id(p), token_id(c), Relation.PARENT_OF, attrs={"source": source})
        for p, c in sorted(pairs)
        if p in lookups and c in lookups and not lookups[c].get("orphan")
    ]


# ---------------------------------------------------------------------------------------------
# Policies

POLICY_PATH_RE = re.compile(r'path\s+"([^"]+)"')


def get_policies(api: VaultApi) -> dict[str, str]:
    out = {}
    for name in api.list_keys("sys/policies/acl"):
        body = api.get(f"sys/policies/acl/{name}") or {}
        out[name] = str((body.get("data") or {}).get("policy") or "")
    return out


def transform_policies(policies: dict[str, str]) -> list[Node]:
    return [
        Node(
            id=f"vault:policy:{name}",
            kind=NodeKind.POLICY,
            provider=P,
            name=name,
            attrs={"paths": POLICY_PATH_RE.findall(text), "rules_sha256": fingerprint(text)},
        )
        for name, text in sorted(policies.items())
    ]


# ---------------------------------------------------------------------------------------------
# KV v2


def get_mounts(api: VaultApi) -> dict[str, dict[str, Any]]:
    body = api.get("sys/mounts") or {}
    data = body.get("data") or {k: v for k, v in body.items() if k.endswith("/")}
    return {k.rstrip("/"): v for k, v in data.items() if isinstance(v, dict)}


def kv2_mounts(mounts: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(
        m for m, v in mounts.items() if v.get("type") == "kv" and str((v.get("options") or {}).get("version")) == "2"
    )


def get_kv_paths(api: VaultApi, mount: str, page: int) -> list[str]:
    """Every secret path under a KV v2 mount, listing folders recursively, page by page."""
    out: list[str] = []
    todo = [""]
    while todo:
        prefix = todo.pop()
        for key in api.list_keys(f"{mount}/metadata/{prefix}", page=page):
            (todo if key.endswith("/") else out).append(prefix + key)
    return sorted(out)


@dataclass
class KvSecret:
    mount: str
    path: str
    data: dict[str, Any] | None  # None when the current version is deleted or destroyed
    version: int = 0
    updated: str = ""
    live_versions: list[int] = field(default_factory=list)


def get_kv_secret(api: VaultApi, mount: str, path: str) -> KvSecret:
    node = secret_id(mount, path)
    meta = (api.get(f"{mount}/metadata/{path}", node=node) or {}).get("data") or {}
    versions = meta.get("versions") or {}
    live = sorted(int(v) for v, info in versions.items() if not info.get("destroyed") and not info.get("deletion_time"))
    current = int(meta.get("current_version") or 0)
    data = None
    if current in live:
        body = api.get(f"{mount}/data/{path}", node=node) or {}
        data = ((body.get("data") or {}).get("data")) or {}
    return KvSecret(mount, path, data, current, str(meta.get("updated_time") or ""), live)


def value_refs(mount: str, path: str, data: dict[str, Any], token_fps: dict[str, str]) -> list[RefEdge]:
    """Edges (and the password/api_key nodes they need) for each credential recognised in a KV value."""
    sid = secret_id(mount, path)
    by_fp = {fp: acc for acc, fp in token_fps.items()}
    out: list[RefEdge] = []
    for item in recognize(data):
        if item.kind in (NodeKind.PASSWORD, NodeKind.API_KEY) and not item.ref:
            kind_name = "password" if item.kind is NodeKind.PASSWORD else "api_key"
            fld = item.fields[0]
            ref = f"vault:{kind_name}:{mount}/{path}#{fld}"
            node = Node(ref, item.kind, P, name=f"{path}#{fld}", fingerprint=item.fingerprint,
                        attrs={"mount": mount, "path": path, "field": fld, "managed": False})
            out.append(RefEdge(sid, Relation.STORES, ref, node))
        elif item.ref.startswith("fp:") and item.fingerprint in by_fp:
            # resolved here: the raw token store told us which accessor this value belongs to
            out.append(RefEdge(sid, Relation.STORES, token_id(by_fp[item.fingerprint])))
        elif item.ref:
            out.append(RefEdge(sid, Relation.STORES, item.ref))
            email = item.attrs.get("client_email")
            if item.kind is NodeKind.SERVICE_ACCOUNT_KEY and email:
                out.append(RefEdge(item.ref, Relation.AUTHENTICATES_AS, f"gcp:service_account:{email}"))
    return out


def get_stored_token_fps(api: VaultApi, secrets: list[KvSecret], known: dict[str, str]) -> dict[str, str]:
    """accessor -> fingerprint for live tokens found by value in KV secrets, looked up by value
    (`auth/token/lookup` takes it in the body), so the secret links to the accessor node
    whatever the parent source. Dead tokens (403/400) keep their `fp:` reference."""
    seen = set(known.values())
    out: dict[str, str] = {}
    for s in secrets:
        for item in recognize(s.data or {}):
            if item.kind is not NodeKind.TOKEN or item.fingerprint in seen:
                continue
            seen.add(item.fingerprint)
            value = _field(s.data or {}, item.fields[0])
            try:
                body = api.post("auth/token/lookup", {"token": value}, node=secret_id(s.mount, s.path)) or {}
            except ConnectorError as exc:
                if status_of(exc) in (400, 403):
                    continue
                raise
            acc = (body.get("data") or {}).get("accessor")
            if acc:
                out[acc] = item.fingerprint
    return out


def _field(data: dict[str, Any], dotted: str) -> str:
    cursor: Any = data
    for part in dotted.split(".") if dotted else []:
        cursor = cursor[part]
    return str(cursor).strip()


@dataclass
class RefEdge:
    src: str
    rel: Relation
    dst: str
    node: Node | None = None


def transform_kv(secrets: list[KvSecret], token_fps: dict[str, str]) -> tuple[list[Node], list[Edge]]:
    nodes: list[Node] = []
    edges: list[Edge] = []
    for s in secrets:
        attrs: dict[str, Any] = {"mount": s.mount, "path": s.path, "version": s.version,
                                 "live_versions": s.live_versions}
        if s.data is not None:
            attrs["fields"] = sorted(s.data)
        nodes.append(Node(
            secret_id(s.mount, s.path), NodeKind.SECRET, P, name=f"{s.mount}/{s.path}",
            status="active" if s.data is not None else "deleted",
            fingerprint=fingerprint(json.dumps(s.data, sort_keys=True)) if s.data else "",
            attrs=attrs,
        ))
        for ref in value_refs(s.mount, s.path, s.data or {}, token_fps):
            if ref.node is not None:
                nodes.append(ref.node)
            edges.append(Edge(ref.src, ref.dst, ref.rel, attrs={"found_in": secret_id(s.mount, s.path)}))
    return nodes, edges


# ---------------------------------------------------------------------------------------------
# Capabilities


def get_capabilities(api: VaultApi, lookups: dict[str, dict[str, Any]], paths: list[str]
                     ) -> dict[str, dict[str, list[str]]]:
    """accessor -> path -> capabilities. Raises ConnectorError (403 for a non-root collector).

    Capabilities depend only on a token's policies, entity (identity policies), inline policy
    and namespace, so one representative per distinct combination is asked: 200 CI tokens with
    the same policy cost one call, not 200 (each call over ~100 paths takes ~25 ms).
    """
    out: dict[str, dict[str, list[str]]] = {}
    if not paths:
        return out
    groups: dict[tuple[Any, ...], list[str]] = {}
    for acc, data in sorted(lookups.items()):
        key = (tuple(sorted(data.get("policies") or [])), data.get("entity_id") or "",
               fingerprint(str(data.get("inline_policy") or "")), data.get("namespace_path") or "")
        groups.setdefault(key, []).append(acc)
    for members in groups.values():
        rep = members[0]
        body = api.post("sys/capabilities-accessor", {"accessor": rep, "paths": paths}, node=token_id(rep)) or {}
        data = body.get("data") or body
        caps = {p: list(data.get(p) or []) for p in paths}
        for acc in members:
            out[acc] = caps
    return out


def can(caps: list[str], *wanted: str) -> bool:
    return "root" in caps or (any(w in caps for w in wanted) and "deny" not in caps)


def transform_can_read(caps: dict[str, dict[str, list[str]]], data_paths: dict[str, str]) -> list[Edge]:
    """`data_paths`: API path (`secret/data/ci/db`) -> secret node id."""
    return [
        Edge(token_id(acc), node_id, Relation.CAN_READ)
        for acc, by_path in sorted(caps.items())
        for path, node_id in sorted(data_paths.items())
        if can(by_path.get(path, []), "read")
    ]
