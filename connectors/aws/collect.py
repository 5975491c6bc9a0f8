"""AWS collection, the fetch half: API calls and pagination, one account at a time.

IAM comes from `get_account_authorization_details` (users with their groups, inline and
attached policies, roles with trust policies, managed policy documents: one paginated call
instead of several per principal), plus `list_access_keys` per user. Last use comes from
the credential report when it can be matched to the key, else `get_access_key_last_used`
per key. Secret values are read, fingerprinted and recognised inside `get_secrets` and
dropped there: nothing downstream ever sees one. What comes back is raw API data in an
`AccountData`; `transform` turns it into nodes and edges.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from connectors.aws.client import PROVIDER, Account, call, pages
from connectors.aws.iot_collect import get_iot
from connectors.aws.transform import parse_credential_report, slot_last_used
from connectors.recognize import recognize
from revoke.connector import CollectFinding, ConnectorError
from revoke.model import fingerprint


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
    # SCP documents per level from the root down to the account (None: not collected); the
    # management account is exempt from SCPs
    scps: list[list[str]] | None = None
    # RCP documents per level, the same way; they cap access to this account's resources
    rcps: list[list[str]] | None = None
    management: bool = False
    org_id: str = ""  # "": the organization was not collected
    org_path: str = ""  # aws:PrincipalOrgPaths of the account: "o-.../r-.../ou-.../"
    findings: list[CollectFinding] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def collect_account(account: Account, max_workers: int, known_ca_ids: list[str],
                    created_ca_ids: list[str] | None = None) -> AccountData:
    """Everything one account holds that the graph needs, fetched concurrently."""
    data = AccountData(account_id=account.account_id(), region=account.region)
    iam = account.client("iam")
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        details = get_authorization_details(iam)
        data.users, data.groups = details["users"], details["groups"]
        data.roles, data.policies = details["roles"], details["policies"]
        secrets_future = pool.submit(get_secrets, account.client("secretsmanager"), account.client("kms"), pool)
        iot_future = pool.submit(get_iot, account.client("iot"), account.client("iot", attempts=1), pool,
                                 known_ca_ids, created_ca_ids or [])
        data.keys, source = get_access_keys(iam, [u["UserName"] for u in data.users], pool)
        data.meta["last_used_source"] = source
        data.secrets, findings = secrets_future.result()
        data.findings.extend(findings)
        data.iot, iot_findings = iot_future.result()
        data.findings.extend(iot_findings)
        data.meta["iot_ca_discovery"] = data.iot.get("ca_discovery", "")
    if not data.users and not data.roles:
        data.findings.append(CollectFinding("aws.empty", "no IAM users or roles returned: check credentials",
                                            severity="error", source=PROVIDER))
    return data


def get_authorization_details(iam: Any) -> dict[str, list[dict[str, Any]]]:
    paginator = iam.get_paginator("get_account_authorization_details")

    def run() -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {"users": [], "groups": [], "roles": [], "policies": []}
        for page in paginator.paginate():
            out["users"].extend(page.get("UserDetailList", []))
            out["groups"].extend(page.get("GroupDetailList", []))
            out["roles"].extend(page.get("RoleDetailList", []))
            out["policies"].extend(page.get("Policies", []))
        return out

    return call(run, "get_account_authorization_details")


def get_access_keys(
    iam: Any, user_names: list[str], pool: ThreadPoolExecutor, *, report_wait: float = 5.0
) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """Keys per user with `LastUsedDate` filled in; also says where last use came from."""

    def one(name: str) -> tuple[str, list[dict[str, Any]]]:
        return name, pages(iam, "list_access_keys", "AccessKeyMetadata", UserName=name)

    keys = dict(pool.map(one, user_names))
    report = _credential_report(iam, report_wait)
    unmatched: list[dict[str, Any]] = []
    for name, items in keys.items():
        slots = report.get(name, []) if report is not None else []
        for key in items:
            used = slot_last_used(key, slots)
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


def _credential_report(iam: Any, wait: float) -> dict[str, list[dict[str, str]]] | None:
    """user name -> [{active, last_rotated, last_used}] per key slot; None when unavailable."""
    deadline = time.monotonic() + wait
    try:
        while call(iam.generate_credential_report, "generate_credential_report").get("State") != "COMPLETE":
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)
        content = call(iam.get_credential_report, "get_credential_report")["Content"]
    except ConnectorError as exc:
        if exc.code is not None and not exc.retryable:
            return None  # AWS refused (no permission for the report): fall back to one call per key
        raise
    text = content.decode() if isinstance(content, bytes) else str(content)
    return parse_credential_report(text)


def summarize_secret_value(value: str | bytes) -> dict[str, Any]:
    """Fingerprint and recognised references of a secret value; the value is not kept."""
    found = recognize(value)
    return {
        "fingerprint": fingerprint(value),
        "found": [
            {"kind": f.kind.value, "ref": f.ref, "fields": list(f.fields), "fingerprint": f.fingerprint,
             **({"authenticates_as": f.attrs["authenticates_as"]} if f.attrs.get("authenticates_as") else {}),
             **({"pypi": f.attrs} if f.ref.startswith("pypi:") else {})}  # a PyPI token's caveats (no secret)
            for f in found
        ],
    }


def get_secrets(sm: Any, kms: Any, pool: ThreadPoolExecutor) -> tuple[list[dict[str, Any]], list[CollectFinding]]:
    """Secrets with their value's summary, resource policy and KMS key (with its key policy).

    The resource policy read rides in the same pool task as the value read, so it costs one
    more call per secret but no more waiting; each distinct customer key is read once.
    """
    listed = pages(sm, "list_secrets", "SecretList")
    findings: list[CollectFinding] = []

    def one(entry: dict[str, Any]) -> dict[str, Any]:
        arn = entry["ARN"]
        item = {
            "arn": arn,
            "name": entry.get("Name", ""),
            "created": entry.get("CreatedDate"),
            "last_changed": entry.get("LastChangedDate"),
            "kms_key": entry.get("KmsKeyId", ""),
            "tags": {t["Key"]: t.get("Value", "") for t in entry.get("Tags") or []},
        }
        item.update(_resource_policy(sm, arn))
        try:
            resp = call(lambda: sm.get_secret_value(SecretId=arn), "get_secret_value", f"aws:secret:{arn}")
        except ConnectorError as exc:
            if exc.retryable or exc.code is None:
                raise
            item["unreadable"] = exc.code  # AWS refused this one (AccessDenied, a KMS key): a finding
            return item
        value = resp.get("SecretString")
        if value is None:
            value = resp.get("SecretBinary", b"")
        item.update(summarize_secret_value(value))
        item["version_id"] = resp.get("VersionId", "")
        return item

    secrets = list(pool.map(one, listed))
    key_ids = sorted({s["kms_key"] for s in secrets if s["kms_key"] and not s["kms_key"].startswith("alias/aws/")})
    keys = dict(zip(key_ids, pool.map(lambda k: _key(kms, k), key_ids), strict=True))
    for item in secrets:
        key = keys.get(item["kms_key"])
        if key is not None:
            item["kms"] = key
        if "policy_unreadable" in item:
            findings.append(CollectFinding(
                "aws.secret.policy_unreadable",
                f"resource policy could not be read ({item['policy_unreadable']}): what it grants or denies "
                "is not evaluated", node=f"aws:secret:{item['arn']}", source=PROVIDER))
        if key is not None and key.get("grants_unreadable"):
            findings.append(CollectFinding(
                "aws.kms.grants_unreadable",
                f"grants of {key['arn']} could not be listed ({key['grants_unreadable']}): a read only a grant "
                "allows is missed", node=f"aws:secret:{item['arn']}", source=PROVIDER))
        if key is not None and key.get("policy_unreadable"):
            findings.append(CollectFinding(
                "aws.kms.policy_unreadable",
                f"key policy of {key['arn']} could not be read ({key['policy_unreadable']}): reads are kept "
                "as if it allowed them", node=f"aws:secret:{item['arn']}", source=PROVIDER))
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


def _refused(exc: ConnectorError) -> str:
    """The AWS error code when AWS refused a read for good; re-raise anything else."""
    if exc.retryable or exc.code is None:
        raise exc
    return exc.code


def _resource_policy(sm: Any, arn: str) -> dict[str, Any]:
    try:
        resp = call(lambda: sm.get_resource_policy(SecretId=arn), "get_resource_policy", f"aws:secret:{arn}")
    except ConnectorError as exc:
        return {"policy_unreadable": _refused(exc)}
    return {"policy": resp.get("ResourcePolicy") or ""}


def _key(kms: Any, key_id: str) -> dict[str, Any]:
    """A secret's KMS key: its ARN, who manages it, and (customer keys) its key policy and grants."""
    try:
        meta = call(lambda: kms.describe_key(KeyId=key_id), "describe_key")["KeyMetadata"]
    except ConnectorError as exc:
        return {"arn": key_id, "manager": "", "policy_unreadable": _refused(exc)}
    out: dict[str, Any] = {"arn": meta["Arn"], "manager": meta.get("KeyManager", "")}
    if out["manager"] == "AWS":
        return out
    try:
        out["policy"] = call(lambda: kms.get_key_policy(KeyId=meta["Arn"], PolicyName="default"),
                             "get_key_policy")["Policy"]
    except ConnectorError as exc:
        out["policy_unreadable"] = _refused(exc)
    try:
        # grants can let a principal decrypt where the key policy does not (`kms_grants`)
        out["grants"] = [{k: g.get(k) for k in ("GrantId", "GranteePrincipal", "Operations", "Constraints")}
                         for g in pages(kms, "list_grants", "Grants", KeyId=meta["Arn"])]
    except ConnectorError as exc:
        out["grants_unreadable"] = _refused(exc)
    return out


def get_organization(org: Any, datas: list[AccountData]) -> None:
    """Fill each account's organization id and path, and the SCP and RCP documents of every level
    on its path from the root (`policy_org`). RCPs a server cannot list leave `rcps` None, said in
    a finding: resource access is then not capped by them."""
    organization = call(org.describe_organization, "describe_organization")["Organization"]
    master, org_id = organization.get("MasterAccountId", ""), organization.get("Id", "")
    documents: dict[str, str] = {}
    rcp_refused = ""

    def level(target: str, kind: str) -> list[str]:
        listed = pages(org, "list_policies_for_target", "Policies", TargetId=target, Filter=kind)
        out = []
        for pid in (pol["Id"] for pol in listed):
            if pid not in documents:
                documents[pid] = describe(pid)
            out.append(documents[pid])
        return out

    def describe(pid: str) -> str:
        return str(call(lambda: org.describe_policy(PolicyId=pid), "describe_policy")["Policy"]["Content"])

    for data in datas:
        path = [data.account_id]
        try:
            first = pages(org, "list_parents", "Parents", ChildId=data.account_id)
        except ConnectorError as exc:
            data.findings.append(CollectFinding(
                "aws.org.outside", f"account {data.account_id} is not in the collected organization "
                f"({_refused(exc)}): no SCP or RCP caps it, its aws:PrincipalOrg* keys stay unknown", source=PROVIDER))
            continue
        while True:
            parents = first if len(path) == 1 else pages(org, "list_parents", "Parents", ChildId=path[-1])
            if not parents:
                break
            path.append(parents[0]["Id"])
            if parents[0].get("Type") == "ROOT":
                break
        data.management = data.account_id == master
        data.org_id = org_id
        data.org_path = "/".join([org_id, *reversed(path[1:])]) + "/"
        data.scps = [level(t, "SERVICE_CONTROL_POLICY") for t in reversed(path)]
        if rcp_refused:
            continue
        try:
            data.rcps = [level(t, "RESOURCE_CONTROL_POLICY") for t in reversed(path)]
        except ConnectorError as exc:
            rcp_refused = _refused(exc)
    if rcp_refused:
        for data in datas:
            data.rcps = None
        datas[0].findings.append(CollectFinding(
            "aws.org.rcp_unavailable", f"resource control policies could not be listed ({rcp_refused}): "
            "resource access is not capped by RCPs", source=PROVIDER))
