"""AWS collection, the pure half: raw API payloads (an `AccountData` per account) to nodes and edges.

No SDK, no I/O: every function here is unit-tested on recorded payloads. The ids and edges are
listed in the package docstring (`connectors/aws/__init__.py`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connectors import pypi
from connectors.aws.access import Principal, principals, role_id, transform_access, trust, user_id
from connectors.aws.client import PROVIDER
from connectors.aws.iot import transform_iot
from revoke.connector import Collected
from revoke.model import Edge, Node, NodeKind, Relation, parse_time

if TYPE_CHECKING:
    from connectors.aws.collect import AccountData

__all__ = ["Principal", "collected", "parse_credential_report", "role_id", "slot_last_used", "trust", "user_id"]


def collected(datas: list[AccountData], session_policies: Mapping[str, Mapping[str, Any]] | None = None) -> Collected:
    """The whole snapshot of the configured accounts (`session_policies`: user ARN -> the
    `policy` / `policy_arns` its federation sessions are minted with, where known)."""
    out = Collected(meta={"accounts": [d.account_id for d in datas]})
    found: list[Principal] = []
    for data in datas:
        out.findings.extend(data.findings)
        found.extend(principals(data, out.findings))
        out.meta[data.account_id] = data.meta
        out.nodes.extend(transform_identities(data))
        key_nodes, key_edges = transform_keys(data)
        out.nodes.extend(key_nodes)
        out.edges.extend(Edge(s, d, Relation(r)) for s, r, d in key_edges)
        secret_nodes, secret_edges = transform_secrets(data)
        out.nodes.extend(secret_nodes)
        out.edges.extend(Edge(s, d, Relation(r), attrs=a) for s, r, d, a in secret_edges)
        if data.iot:
            iot_nodes, iot_edges, iot_findings = transform_iot(data.iot, data.account_id, data.region)
            out.nodes.extend(iot_nodes)
            out.edges.extend(Edge(s, d, Relation(r), attrs=a) for s, r, d, a in iot_edges)
            out.findings.extend(iot_findings)
    session_nodes, edges, findings = transform_access(datas, found, session_policies)
    out.nodes.extend(session_nodes)
    out.edges.extend(edges)
    out.findings.extend(findings)
    return out


# -- ids and times --------------------------------------------------------------------------------


def _dt(value: Any) -> datetime | None:
    if value in (None, "", "N/A"):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_time(value)


def _iso(value: Any) -> str:
    dt = _dt(value)
    return dt.isoformat() if dt else ""


# -- credential report ----------------------------------------------------------------------------


def parse_credential_report(text: str) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        out[row.get("user", "")] = [
            {
                "active": row.get(f"access_key_{i}_active", ""),
                "last_rotated": row.get(f"access_key_{i}_last_rotated", ""),
                "last_used": row.get(f"access_key_{i}_last_used_date", ""),
            }
            for i in (1, 2)
        ]
    return out


def slot_last_used(key: dict[str, Any], slots: list[dict[str, str]]) -> datetime | str | None:
    """The report slot's last use for this key, "" for never used, None when it cannot be told.

    The report names slots, not key ids: a slot belongs to a key when its last_rotated is
    the key's creation time. Two slots with the same time are told apart only when they
    agree on last use (then it does not matter which is which).
    """
    created = _second(key.get("CreateDate"))
    matches = [s for s in slots if s["last_rotated"] not in ("", "N/A") and _second(s["last_rotated"]) == created]
    values = {s["last_used"] for s in matches}
    if not matches or len(values) != 1:
        return None
    value = values.pop()
    if value in ("", "N/A", "no_information"):
        return ""
    return parse_time(value)


def _second(value: Any) -> str:
    dt = parse_time(value) if value else None
    return dt.replace(microsecond=0).isoformat() if dt else ""


# -- nodes and edges ------------------------------------------------------------------------------


def transform_identities(data: AccountData) -> list[Node]:
    """The account root, its IAM users and its roles (with the services their trust admits)."""
    nodes = [Node(id=f"aws:account:{data.account_id}", kind=NodeKind.USER, provider=PROVIDER,
                  name="root", attrs={"account": data.account_id, "root": True})]
    for user in data.users:
        nodes.append(Node(id=user_id(user["Arn"]), kind=NodeKind.USER, provider=PROVIDER,
                          name=user["UserName"], created=_dt(user.get("CreateDate")),
                          attrs={"account": data.account_id, "groups": list(user.get("GroupList", []))}))
    for role in data.roles:
        trusted = sorted({v for s in trust(role) for t, v in s.principals if t != "AWS"})
        nodes.append(Node(id=role_id(role["Arn"]), kind=NodeKind.ROLE, provider=PROVIDER,
                          name=role["RoleName"], created=_dt(role.get("CreateDate")),
                          attrs={"account": data.account_id,
                                 **({"trusted_services": trusted} if trusted else {})}))
    return nodes


def transform_keys(data: AccountData) -> tuple[list[Node], list[tuple[str, str, str]]]:
    """Access key nodes and `authenticates_as` edges (as tuples; the caller makes Edges)."""
    arns = {u["UserName"]: u["Arn"] for u in data.users}
    nodes: list[Node] = []
    edges: list[tuple[str, str, str]] = []
    for user, keys in sorted(data.keys.items()):
        arn = arns.get(user, f"arn:aws:iam::{data.account_id}:user/{user}")
        for key in keys:
            key_id = key["AccessKeyId"]
            nodes.append(
                Node(
                    id=f"aws:access_key:{key_id}",
                    kind=NodeKind.ACCESS_KEY,
                    provider=PROVIDER,
                    name=key_id,
                    created=_dt(key.get("CreateDate")),
                    last_used=_dt(key.get("LastUsedDate")),
                    status=str(key.get("Status", "Active")).lower(),
                    owner=user_id(arn),
                    attrs={"user": user, "account": data.account_id},
                )
            )
            edges.append((f"aws:access_key:{key_id}", "authenticates_as", user_id(arn)))
    return nodes, edges


def transform_secrets(data: AccountData) -> tuple[list[Node], list[tuple[str, str, str, dict[str, Any]]]]:
    nodes: list[Node] = []
    edges: list[tuple[str, str, str, dict[str, Any]]] = []
    for item in data.secrets:
        sid = f"aws:secret:{item['arn']}"
        nodes.append(
            Node(
                id=sid,
                kind=NodeKind.SECRET,
                provider=PROVIDER,
                name=item["name"],
                created=_dt(item.get("created")),
                fingerprint=item.get("fingerprint", ""),
                status="unreadable" if "unreadable" in item else "active",
                attrs={
                    "account": data.account_id,
                    "region": data.region,
                    "last_changed": _iso(item.get("last_changed")),
                    **({"kms_key": item["kms_key"]} if item.get("kms_key") else {}),
                },
            )
        )
        for found in item.get("found", []):
            ref = found["ref"]
            attrs = {"fields": found["fields"]}
            if not ref:
                kind = NodeKind(found["kind"])
                field_name = ",".join(found["fields"])
                ref = f"aws:{kind.value}:{item['arn']}#{field_name}"
                nodes.append(
                    Node(
                        id=ref,
                        kind=kind,
                        provider=PROVIDER,
                        name=f"{item['name']}#{field_name}",
                        fingerprint=found.get("fingerprint", ""),
                        owner=sid,
                        attrs={"unmanaged": True, "store": sid},
                    )
                )
            # a certificate without its key is public material (never walked)
            public = found["kind"] in (NodeKind.CERTIFICATE.value, NodeKind.CA.value)
            edges.append((sid, "holds_public" if public else "stores", ref, attrs))
            if found.get("authenticates_as"):  # a database password names its role (recognize)
                edges.append((ref, "authenticates_as", found["authenticates_as"], {}))
            token, publishes = pypi.links(ref, found.get("pypi", {}), found.get("fingerprint", ""))  # as Vault KV does
            nodes += [token] if token else []
            edges += [(e.src, e.rel.value, e.dst, {}) for e in publishes]
    return nodes, edges
