"""The trust-graph model: plain dataclasses, no provider SDKs.

An edge `A -> B` always means *whoever controls A can obtain or use B*.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from revoke.errors import InputError
from revoke.model_fields import NODE_ID_RE as NODE_ID_RE
from revoke.model_fields import FieldError as FieldError
from revoke.model_fields import check_node_id as check_node_id
from revoke.model_fields import labels_field as labels_field
from revoke.model_fields import mapping_field as mapping_field
from revoke.model_fields import node_ref as node_ref
from revoke.model_fields import parse_time as parse_time
from revoke.model_fields import text_field as text_field
from revoke.model_fields import time_field as time_field
from revoke.model_fields import type_name as type_name


class NodeKind(StrEnum):
    # hash as the text it equals (Enum hashes by name, in Python): `{NodeKind.HOST: ..}["host"]`
    # works, and a million dictionary lookups skip a Python-level __hash__
    __hash__ = str.__hash__

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
    __hash__ = str.__hash__

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
    # observed use (audit logs, last-used data): timestamped events that annotate, never grant
    OBSERVED_READ = "observed_read"
    OBSERVED_USE = "observed_use"
    # a registry token A can publish package B: whoever holds A controls what B's next release is
    # (walked; appended last so the relation codes of compiled graphs already stored keep their meaning)
    CAN_PUBLISH = "can_publish"


NOT_WALKED = frozenset({Relation.TRUSTS, Relation.HOLDS_PUBLIC, Relation.OBSERVED_READ, Relation.OBSERVED_USE})
OBSERVED = frozenset({Relation.OBSERVED_READ, Relation.OBSERVED_USE})


# Node ids are `<provider>:<type>:<native id>` or, for holders no provider owns, `<kind>:<name>`.
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


_BY_VALUE: dict[str, dict[str, Any]] = {
    "kind": {k.value: k for k in NodeKind}, "rel": {r.value: r for r in Relation}}


def _enum_field(data: dict[str, Any], name: str, parse: Any) -> Any:
    value = data.get(name)
    known = _BY_VALUE.get(name, {}).get(value) if type(value) is str else None
    if known is not None:
        return known
    if not isinstance(value, str):
        raise FieldError(name, f"expected text, got {type_name(value)}")
    try:
        return parse(value)
    except InputError as exc:
        # the expected values, without the one given
        raise FieldError(name, f"unknown {name}; " + str(exc).split("; ", 1)[-1]) from None


def fingerprint(material: str | bytes) -> str:
    """SHA-256 of secret material, the only form in which it may be kept."""
    if isinstance(material, str):
        material = material.encode()
    return "sha256:" + hashlib.sha256(material).hexdigest()


@dataclass(slots=True)
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
        out: dict[str, Any] = {"id": self.id, "kind": str(self.kind)}
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
        """A node from a mapping (an inventory entry, a stored row). Each field must have its own
        type: a list given as a name is an error (FieldError), not its `str()`."""
        node_id = node_ref(data, "id")
        return cls(
            id=node_id,
            kind=_enum_field(data, "kind", parse_kind),
            provider=text_field(data, "provider") or provider_of(node_id),
            name=text_field(data, "name"),
            created=time_field(data, "created"),
            expires=time_field(data, "expires"),
            last_used=time_field(data, "last_used"),
            status=text_field(data, "status", "active"),
            owner=text_field(data, "owner"),
            labels=labels_field(data),
            fingerprint=text_field(data, "fingerprint"),
            attrs=mapping_field(data, "attrs"),
        )


@dataclass(slots=True)
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
        out: dict[str, Any] = {"from": self.src, "to": self.dst, "rel": str(self.rel)}
        if self.since is not None:
            out["since"] = self.since.isoformat()
        if self.until is not None:
            out["until"] = self.until.isoformat()
        if self.attrs:
            out["attrs"] = dict(self.attrs)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Edge:
        if len(data) == 3:  # the common `{from, to, rel}` entry: no times, no attributes to check
            value = data.get("rel")
            rel = _BY_VALUE["rel"].get(value) if type(value) is str else None
            if rel is not None:
                return cls(node_ref(data, "from"), node_ref(data, "to"), rel)
        return cls(
            src=node_ref(data, "from"),
            dst=node_ref(data, "to"),
            rel=_enum_field(data, "rel", parse_rel),
            since=time_field(data, "since"),
            until=time_field(data, "until"),
            attrs=mapping_field(data, "attrs"),
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
    "api_token": NodeKind.TOKEN,
    "deploy_key": NodeKind.SSH_KEY,
    "pat": NodeKind.TOKEN,
    "repo": NodeKind.REPO,
    "package": NodeKind.PACKAGE,
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
