"""AWS collection: `get_*` call the API (one account each), `transform_*` are pure.

IAM comes from `get_account_authorization_details` (users with their groups, inline and
attached policies, roles with trust policies, managed policy documents: one paginated call
instead of several per principal), plus `list_access_keys` per user. Last use comes from
the credential report when it can be matched to the key, else `get_access_key_last_used`
per key. Secret values are read, fingerprinted and recognised inside `get_secrets` and
dropped there: nothing downstream ever sees one.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.recognize import recognize
from revoke.connector import CollectFinding, ConnectorError
from revoke.model import Node, NodeKind, fingerprint, parse_time

PROVIDER = "aws"

# AWS-managed policies that matter for the edges collected, for when their documents are not
# returned (moto without MOTO_IAM_LOAD_MANAGED_POLICIES, or a filtered call).
KNOWN_MANAGED = {
    "arn:aws:iam::aws:policy/AdministratorAccess": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    "arn:aws:iam::aws:policy/IAMFullAccess": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}],
    "arn:aws:iam::aws:policy/SecretsManagerReadWrite": [
        {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}
    ],
}


@dataclass
class AccountData:
    """What one account's fetch returned; no secret values."""

    account_id: str
    region: str
    users: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    roles: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # user name -> keys
    secrets: list[dict[str, Any]] = field(default_factory=list)
    iot: dict[str, Any] = field(default_factory=dict)
    findings: list[CollectFinding] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


Call = Callable[..., Any]


def paginate(client: Any, operation: str, key: str, call: Call, **kwargs: Any) -> list[Any]:
    """Every item of a paginated list operation, through the connector's error wrapper."""
    paginator = client.get_paginator(operation)

    def pages() -> list[Any]:
        out: list[Any] = []
        for page in paginator.paginate(**kwargs):
            out.extend(page.get(key, []))
        return out

    return call(pages, operation)


def get_authorization_details(iam: Any, call: Call) -> dict[str, list[dict[str, Any]]]:
    paginator = iam.get_paginator("get_account_authorization_details")

    def pages() -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {"users": [], "groups": [], "roles": [], "policies": []}
        for page in paginator.paginate():
            out["users"].extend(page.get("UserDetailList", []))
            out["groups"].extend(page.get("GroupDetailList", []))
            out["roles"].extend(page.get("RoleDetailList", []))
            out["policies"].extend(page.get("Policies", []))
        return out

    return call(pages, "get_account_authorization_details")


def get_access_keys(
    iam: Any, user_names: list[str], call: Call, pool: ThreadPoolExecutor, *, report_wait: float = 5.0
) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Keys per user with `LastUsedDate` filled in; also says where last use came from."""

    def one(name: str) -> tuple[str, list[dict[str, Any]]]:
        return name, paginate(iam, "list_access_keys", "AccessKeyMetadata", call, UserName=name)

    keys = dict(pool.map(one, user_names))
    report = _credential_report(iam, call, report_wait)
    unmatched: list[dict[str, Any]] = []
    for name, items in keys.items():
        slots = report.get(name, []) if report is not None else []
        for key in items:
            used = _slot_last_used(key, slots)
            if used is None:
                unmatched.append(key)
            else:
                key["LastUsedDate"] = used or None

    def last_used(key: dict[str, Any]) -> None:
        resp = call(lambda: iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"]), "get_access_key_last_used")
        key["LastUsedDate"] = resp.get("AccessKeyLastUsed", {}).get("LastUsedDate")

    list(pool.map(last_used, unmatched))
    source = "get_access_key_last_used" if report is None else "credential_report"
    if report is not None and unmatched:
        source += f" (+{len(unmatched)} by get_access_key_last_used)"
    return keys, source


def _credential_report(iam: Any, call: Call, wait: float) -> dict[str, list[dict[str, str]]] | None:
    """user name -> [{active, last_rotated, last_used}] per key slot; None when unavailable."""
    from botocore.exceptions import ClientError

    deadline = time.monotonic() + wait
    try:
        while call(iam.generate_credential_report, "generate_credential_report").get("State") != "COMPLETE":
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)
        content = call(iam.get_credential_report, "get_credential_report")["Content"]
    except ConnectorError as exc:
        if isinstance(exc.__cause__, ClientError) and not exc.retryable:
            return None  # no permission for the report: fall back to one call per key
        raise
    text = content.decode() if isinstance(content, bytes) else str(content)
    return parse_credential_report(text)


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


def _slot_last_used(key: dict[str, Any], slots: list[dict[str, str]]) -> datetime | str | None:
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


def summarize_secret_value(value: str | bytes) -> dict[str, Any]:
    """Fingerprint and recognised references of a secret value; the value is not kept."""
    found = recognize(value)
    return {
        "fingerprint": fingerprint(value),
        "found": [
            {"kind": f.kind.value, "ref": f.ref, "fields": list(f.fields), "fingerprint": f.fingerprint}
            for f in found
        ],
    }


def get_secrets(sm: Any, call: Call, pool: ThreadPoolExecutor) -> tuple[list[dict[str, Any]], list[CollectFinding]]:
    from botocore.exceptions import ClientError

    listed = paginate(sm, "list_secrets", "SecretList", call)
    findings: list[CollectFinding] = []

    def one(entry: dict[str, Any]) -> dict[str, Any]:
        arn = entry["ARN"]
        item = {
            "arn": arn,
            "name": entry.get("Name", ""),
            "created": entry.get("CreatedDate"),
            "last_changed": entry.get("LastChangedDate"),
            "kms_key": entry.get("KmsKeyId", ""),
        }
        try:
            resp = call(lambda: sm.get_secret_value(SecretId=arn), "get_secret_value", f"aws:secret:{arn}")
        except ConnectorError as exc:
            if exc.retryable or not isinstance(exc.__cause__, ClientError):
                raise
            item["unreadable"] = exc.__cause__.response.get("Error", {}).get("Code", "error")
            return item
        value = resp.get("SecretString")
        if value is None:
            value = resp.get("SecretBinary", b"")
        item.update(summarize_secret_value(value))
        item["version_id"] = resp.get("VersionId", "")
        return item

    secrets = list(pool.map(one, listed))
    for item in secrets:
        if "unreadable" in item:
            findings.append(
                CollectFinding(
                    "aws.secret.unreadable",
                    f"secret value could not be read ({item['unreadable']}): what it stores is unknown",
                    node=f"aws:secret:{item['arn']}",
                    source=PROVIDER,
                )
            )
    return secrets, findings


# ---------------------------------------------------------------------------------------------
# pure transforms


def _dt(value: Any) -> datetime | None:
    if value in (None, "", "N/A"):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_time(value)


def _iso(value: Any) -> str:
    dt = _dt(value)
    return dt.isoformat() if dt else ""


def user_id(arn: str) -> str:
    return f"aws:user:{arn}"


def role_id(arn: str) -> str:
    return f"aws:role:{arn}"


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
            edges.append((sid, "stores", ref, attrs))
    return nodes, edges


@dataclass
class Principal:
    node_id: str
    arn: str
    account: str
    kind: str  # "user" | "role"
    name: str
    statements: tuple[Any, ...]
    boundary: tuple[Any, ...] | None
    variables: dict[str, str]


def _docs(
    entry: dict[str, Any], inline_key: str, managed: dict[str, Any], missing: set[str]
) -> list[Any]:
    docs = [p.get("PolicyDocument") for p in entry.get(inline_key, [])]
    for attached in entry.get("AttachedManagedPolicies", []):
        arn = attached.get("PolicyArn", "")
        if arn in managed:
            docs.append(managed[arn])
        else:
            missing.add(arn)
    return docs


def managed_documents(policies: list[dict[str, Any]]) -> dict[str, Any]:
    """Managed policy ARN -> default version document (plus the known AWS-managed ones)."""
    out: dict[str, Any] = {arn: {"Statement": stmts} for arn, stmts in KNOWN_MANAGED.items()}
    for policy in policies:
        for version in policy.get("PolicyVersionList", []):
            if version.get("IsDefaultVersion"):
                out[policy["Arn"]] = version.get("Document")
    return out


def principals(data: AccountData, findings: list[CollectFinding]) -> list[Principal]:
    """Users (with their groups' policies folded in) and roles, ready for evaluation."""
    from connectors.aws_policy import parse_policy

    managed = managed_documents(data.policies)
    missing: set[str] = set()
    groups = {g["GroupName"]: _docs(g, "GroupPolicyList", managed, missing) for g in data.groups}
    out: list[Principal] = []

    def statements(docs: list[Any]) -> tuple[Any, ...]:
        return tuple(s for doc in docs if doc for s in parse_policy(doc))

    def boundary(entry: dict[str, Any]) -> tuple[Any, ...] | None:
        arn = (entry.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        if not arn:
            return None
        if arn not in managed:
            missing.add(arn)
            return None  # unknown boundary: do not cap (over-report rather than under-report)
        return statements([managed[arn]])

    for user in data.users:
        docs = _docs(user, "UserPolicyList", managed, missing)
        for group in user.get("GroupList", []):
            docs.extend(groups.get(group, []))
        out.append(
            Principal(
                user_id(user["Arn"]), user["Arn"], data.account_id, "user", user["UserName"],
                statements(docs), boundary(user),
                {"aws:username": user["UserName"], "aws:userid": user.get("UserId", ""),
                 "aws:PrincipalType": "User", "aws:PrincipalAccount": data.account_id},
            )
        )
    for role in data.roles:
        docs = _docs(role, "RolePolicyList", managed, missing)
        out.append(
            Principal(
                role_id(role["Arn"]), role["Arn"], data.account_id, "role", role["RoleName"],
                statements(docs), boundary(role),
                {"aws:userid": role.get("RoleId", "") + ":*", "aws:PrincipalType": "AssumedRole",
                 "aws:PrincipalAccount": data.account_id},
            )
        )
    for arn in sorted(missing):
        findings.append(
            CollectFinding(
                "aws.iam.policy_unavailable",
                f"managed policy {arn} is attached but its document was not returned: its grants are not evaluated",
                source=PROVIDER,
            )
        )
    return out
