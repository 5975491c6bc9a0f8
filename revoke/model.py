"""The trust-graph model: plain dataclasses, no provider SDKs.

An edge `A -> B` always means *whoever controls A can obtain or use B*.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from revoke.errors import InputError


class NodeKind(StrEnum):
    # credentials: things to act on
    ACCESS_KEY = "access_key"
    TOKEN = "token"
    CERTIFICATE = "certificate"
    CA = "ca"
    PRIVATE_KEY = "private_key"
    SSH_KEY = "ssh_key"
    SERVICE_ACCOUNT_KEY = "service_account_key"
    SECRET = "secret"
    PASSWORD = "password"
    API_KEY = "api_key"
    # holders and identities: exposed, not revoked themselves
    HOST = "host"
    WORKLOAD = "workload"
    REPO = "repo"
    PACKAGE = "package"
    USER = "user"
    ROLE = "role"
    SERVICE_ACCOUNT = "service_account"
    SECRET_PATH = "secret_path"
    POLICY = "policy"


CREDENTIAL_KINDS = frozenset(
    {
        NodeKind.ACCESS_KEY,
        NodeKind.TOKEN,
        NodeKind.CERTIFICATE,
        NodeKind.CA,
        NodeKind.PRIVATE_KEY,
        NodeKind.SSH_KEY,
        NodeKind.SERVICE_ACCOUNT_KEY,
        NodeKind.SECRET,
        NodeKind.PASSWORD,
        NodeKind.API_KEY,
    }
)
HOLDER_KINDS = frozenset(set(NodeKind) - CREDENTIAL_KINDS)


class Relation(StrEnum):
    STORES = "stores"
    AUTHENTICATES_AS = "authenticates_as"
    CAN_READ = "can_read"
    CAN_ASSUME = "can_assume"
    CAN_MINT = "can_mint"
    ISSUED = "issued"
    PARENT_OF = "parent_of"
    DERIVES = "derives"
    # facts the walk never follows: trusting a CA, or holding a certificate without its key,
    # gives no access (kept for sweeps, reports and trust-store removal)
    TRUSTS = "trusts"
    HOLDS_PUBLIC = "holds_public"


NOT_WALKED = frozenset({Relation.TRUSTS, Relation.HOLDS_PUBLIC})


# Node ids are `<provider>:<type>:<native id>` or, for holders no provider owns, `<kind>:<name>`.
NODE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*:[^\s]+$")

# Statuses under which a credential no longer works; residual reachability stops at them.
DEAD_STATUSES = frozenset({"inactive", "revoked", "disabled", "deleted", "destroyed", "expired"})


def parse_kind(value: Any, *, where: str = "kind") -> NodeKind:
    try:
        return NodeKind(str(value))
    except ValueError:
        raise InputError(
            f"unknown {where} {value!r}; expected one of: {', '.join(k.value for k in NodeKind)}"
        ) from None


def parse_rel(value: Any) -> Relation:
    try:
        return Relation(str(value))
    except ValueError:
        raise InputError(
            f"unknown rel {value!r}; expected one of: {', '.join(r.value for r in Relation)}"
        ) from None


def check_node_id(node_id: Any) -> str:
    if not isinstance(node_id, str) or not NODE_ID_RE.match(node_id):
        raise InputError(f"invalid node id {node_id!r}; expected '<provider>:<type>:<id>' or '<kind>:<name>'")
    return node_id


def parse_time(value: Any, *, field_name: str = "time") -> datetime | None:
    """ISO-8601 to an aware UTC datetime; naive values are taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise InputError(f"invalid {field_name} {value!r}; expected ISO-8601 like 2026-03-31T10:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def fingerprint(material: str | bytes) -> str:
    """SHA-256 of secret material, the only form in which it may be kept."""
    if isinstance(material, str):
        material = material.encode()
    return "sha256:" + hashlib.sha256(material).hexdigest()


@dataclass
class Node:
    id: str
    kind: NodeKind
    provider: str = ""
    name: str = ""
    created: datetime | None = None
    expires: datetime | None = None
    last_used: datetime | None = None
    status: str = "active"
    owner: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    # Non-secret provider attributes (serial, subject, policies, account...). Never secret values.
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_credential(self) -> bool:
        return self.kind in CREDENTIAL_KINDS

    @property
    def is_live(self) -> bool:
        if self.status.lower() in DEAD_STATUSES:
            return False
        return not (self.expires is not None and self.expires <= datetime.now(UTC))

    @property
    def died_at(self) -> datetime | None:
        """When this node stopped working: the provider's time, else the first collection that saw
        it dead (`attrs.died_at`), else its expiry; None while live."""
        if self.is_live:
            return None
        recorded = self.attrs.get("died_at")
        if recorded:
            try:
                return parse_time(recorded, field_name="died_at")
            except InputError:
                pass
        if self.expires is not None and self.expires <= datetime.now(UTC):
            return self.expires
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind.value}
        for name in ("provider", "name", "status", "owner", "fingerprint"):
            value = getattr(self, name)
            if value:
                out[name] = value
        for name in ("created", "expires", "last_used"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.isoformat()
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.attrs:
            out["attrs"] = dict(self.attrs)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Node:
        node_id = check_node_id(data.get("id"))
        labels = data.get("labels") or {}
        attrs = data.get("attrs") or {}
        if not isinstance(labels, dict) or not isinstance(attrs, dict):
            raise InputError(f"node {node_id!r}: labels and attrs must be mappings")
        return cls(
            id=node_id,
            kind=parse_kind(data.get("kind")),
            provider=str(data.get("provider") or provider_of(node_id)),
            name=str(data.get("name") or ""),
            created=parse_time(data.get("created"), field_name="created"),
            expires=parse_time(data.get("expires"), field_name="expires"),
            last_used=parse_time(data.get("last_used"), field_name="last_used"),
            status=str(data.get("status") or "active"),
            owner=str(data.get("owner") or ""),
            labels={str(k): str(v) for k, v in labels.items()},
            fingerprint=str(data.get("fingerprint") or ""),
            attrs=dict(attrs),
        )


@dataclass
class Edge:
    src: str
    dst: str
    rel: Relation
    since: datetime | None = None
    until: datetime | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.src, self.rel.value, self.dst)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"from": self.src, "to": self.dst, "rel": self.rel.value}
        if self.since is not None:
            out["since"] = self.since.isoformat()
        if self.until is not None:
            out["until"] = self.until.isoformat()
        if self.attrs:
            out["attrs"] = dict(self.attrs)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Edge:
        attrs = data.get("attrs") or {}
        if not isinstance(attrs, dict):
            raise InputError("edge attrs must be a mapping")
        return cls(
            src=check_node_id(data.get("from")),
            dst=check_node_id(data.get("to")),
            rel=parse_rel(data.get("rel")),
            since=parse_time(data.get("since"), field_name="since"),
            until=parse_time(data.get("until"), field_name="until"),
            attrs=dict(attrs),
        )


def provider_of(node_id: str) -> str:
    """`aws:access_key:AKIA..` -> `aws`; holder ids like `host:ci-runner-7` have no provider."""
    parts = node_id.split(":", 2)
    if len(parts) == 3 and parts[0] not in {k.value for k in HOLDER_KINDS}:
        return parts[0]
    return ""


# The type segment of a provider id -> node kind, for nodes known only by reference
# (a Vault secret naming `aws:access_key:AKIA...` when the AWS connector did not run).
_TYPE_KINDS: dict[str, NodeKind] = {
    "access_key": NodeKind.ACCESS_KEY,
    "token": NodeKind.TOKEN,
    "secret_id": NodeKind.TOKEN,
    "lease": NodeKind.TOKEN,
    "cert": NodeKind.CERTIFICATE,
    "certificate": NodeKind.CERTIFICATE,
    "iot_certificate": NodeKind.CERTIFICATE,
    "pki_cert": NodeKind.CERTIFICATE,
    "ca": NodeKind.CA,
    "iot_ca": NodeKind.CA,
    "pki_issuer": NodeKind.CA,
    "private_key": NodeKind.PRIVATE_KEY,
    "ssh_key": NodeKind.SSH_KEY,
    "service_account_key": NodeKind.SERVICE_ACCOUNT_KEY,
    "secret": NodeKind.SECRET,
    "password": NodeKind.PASSWORD,
    "api_key": NodeKind.API_KEY,
    "user": NodeKind.USER,
    "account": NodeKind.USER,
    "role": NodeKind.ROLE,
    "approle": NodeKind.ROLE,
    "service_account": NodeKind.SERVICE_ACCOUNT,
    "policy": NodeKind.POLICY,
    "iot_policy": NodeKind.POLICY,
    "iot_thing": NodeKind.WORKLOAD,
    "workload": NodeKind.WORKLOAD,
}


def infer_kind(node_id: str, default: NodeKind = NodeKind.SECRET) -> NodeKind:
    parts = node_id.split(":")
    if len(parts) >= 3 and parts[1] in _TYPE_KINDS:
        return _TYPE_KINDS[parts[1]]
    if parts[0] in NodeKind.__members__.values():
        return NodeKind(parts[0])
    return default
