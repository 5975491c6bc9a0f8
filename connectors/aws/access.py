"""AWS collection, the pure half for authorization: principals ready for evaluation, the secrets
with the policies guarding them, and the `can_mint` / `can_read` / `can_assume` edges, KMS grant
nodes and minted-session tokens of a set of accounts (`policy*`, `kms_grants`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connectors.aws.client import PROVIDER
from connectors.aws.kms_grants import KeyGrant, grant_edges, grant_nodes, key_grants
from connectors.aws.policy import access_edges, identity_decision
from connectors.aws.policy_conditions import Context
from connectors.aws.policy_match import Statement, parse_policy
from connectors.aws.policy_org import cap_by_rcps
from connectors.aws.policy_resource import Guarded
from connectors.aws.policy_sessions import MAX_HOURS, session_edges
from revoke.connector import CollectFinding
from revoke.model import Edge, Node, NodeKind, Relation

if TYPE_CHECKING:
    from connectors.aws.collect import AccountData

# AWS-managed policies that matter for the edges collected, for when their documents are not
# returned (moto without MOTO_IAM_LOAD_MANAGED_POLICIES, or a filtered call).
KNOWN_MANAGED = {
    "arn:aws:iam::aws:policy/AdministratorAccess": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    "arn:aws:iam::aws:policy/IAMFullAccess": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}],
    "arn:aws:iam::aws:policy/SecretsManagerReadWrite": [
        {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}
    ],
}


def user_id(arn: str) -> str:
    return f"aws:user:{arn}"


def role_id(arn: str) -> str:
    return f"aws:role:{arn}"


def trust(role: dict[str, Any]) -> tuple[Statement, ...]:
    return parse_policy(role.get("AssumeRolePolicyDocument"))


@dataclass
class Principal:
    node_id: str
    arn: str
    account: str
    kind: str  # "user" | "role"
    name: str
    statements: tuple[Statement, ...]
    boundary: tuple[Statement, ...] | None
    variables: dict[str, str]
    tags: dict[str, str] = field(default_factory=dict)
    context: Context | None = None  # what conditions may test of this caller
    scps: tuple[tuple[Statement, ...], ...] | None = None  # per level, root first; None: not capped


def _tag_map(entry: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in entry.get("Tags") or []}


def org_values(data: AccountData) -> dict[str, str]:
    """`aws:PrincipalOrgID` / `aws:PrincipalOrgPaths` of the account's principals, when its
    organization was collected (else unknown: the account may belong to an organization the
    collector cannot see)."""
    if not data.org_id:
        return {}
    return {"aws:principalorgid": data.org_id, "aws:principalorgpaths": data.org_path}


def caller_context(kind: str, arn: str, account: str, name: str, user_id_value: str,
                   tags: dict[str, str], org: dict[str, str] | None = None) -> Context:
    """Condition keys a request by this principal carries, as far as the collection knows them.

    A role session's tags may be replaced by session tags and its user id carries a session name
    the caller picks, so neither is decided for roles; roles have no `aws:username`.
    """
    values = {"aws:principalarn": arn, "aws:principalaccount": account,
              "aws:principaltype": "User" if kind == "user" else "AssumedRole", **(org or {})}
    if kind == "user":
        values |= {"aws:username": name, "aws:userid": user_id_value}
        return Context(values, frozenset(), principal_tags=tags)
    return Context(values, frozenset({"aws:username"}))


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
    managed = managed_documents(data.policies)
    missing: set[str] = set()
    groups = {g["GroupName"]: _docs(g, "GroupPolicyList", managed, missing) for g in data.groups}
    out: list[Principal] = []

    def statements(docs: list[Any]) -> tuple[Statement, ...]:
        return tuple(s for doc in docs if doc for s in parse_policy(doc))

    def boundary(entry: dict[str, Any]) -> tuple[Statement, ...] | None:
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
        tags = _tag_map(user)
        out.append(
            Principal(
                user_id(user["Arn"]), user["Arn"], data.account_id, "user", user["UserName"],
                statements(docs), boundary(user),
                {"aws:username": user["UserName"], "aws:userid": user.get("UserId", ""),
                 "aws:PrincipalType": "User", "aws:PrincipalAccount": data.account_id},
                tags, caller_context("user", user["Arn"], data.account_id, user["UserName"],
                                     user.get("UserId", ""), tags, org_values(data)),
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
                _tag_map(role), caller_context("role", role["Arn"], data.account_id, role["RoleName"], "", {},
                                                org_values(data)),
            )
        )
    if data.scps is not None and not data.management:
        levels = _levels(data.scps)
        for p in out:
            p.scps = levels
    for arn in sorted(missing):
        findings.append(
            CollectFinding(
                "aws.iam.policy_unavailable",
                f"managed policy {arn} is attached but its document was not returned: its grants are not evaluated",
                source=PROVIDER,
            )
        )
    return out


def _grants(secrets: list[Guarded]) -> list[tuple[str, tuple[KeyGrant, ...]]]:
    """(key's account, grants) once per customer managed key."""
    seen: dict[str, tuple[str, tuple[KeyGrant, ...]]] = {}
    for s in secrets:
        if s.grants:
            seen.setdefault(s.key_arn, (s.key_arn.split(":")[4], s.grants))
    return list(seen.values())


def _levels(documents: list[list[str]]) -> tuple[tuple[Statement, ...], ...]:
    """SCP or RCP documents per level, parsed."""
    return tuple(tuple(s for doc in docs for s in parse_policy(doc)) for docs in documents)


def guarded(account: str, item: dict[str, Any]) -> Guarded:
    """A collected secret with its resource policy and, for a customer managed key, its key policy."""
    key = item.get("kms") or {}
    customer = bool(key) and key.get("manager") != "AWS"
    return Guarded(
        f"aws:secret:{item['arn']}", item["arn"], account,
        policy=parse_policy(item.get("policy") or None),
        key_arn=key.get("arn", "") if customer else "",
        key_policy=parse_policy(key["policy"]) if customer and "policy" in key else None,
        grants=key_grants(key["arn"], key.get("grants") or []) if customer else (),
        tags=dict(item.get("tags") or {}),
    )


def known_session_policies(datas: list[AccountData], declared: Mapping[str, Mapping[str, Any]],
                           findings: list[CollectFinding]) -> dict[str, tuple[Statement, ...]]:
    """User ARN -> the statements of its declared session policies; a user whose managed session
    policy was not collected keeps the upper bound (a finding says so)."""
    out: dict[str, tuple[Statement, ...]] = {}
    for data in datas:
        managed = managed_documents(data.policies)
        for user in data.users:
            spec = declared.get(user["Arn"])
            if spec is None:
                continue
            missing = [a for a in spec.get("policy_arns") or [] if a not in managed]
            if missing:
                findings.append(CollectFinding(
                    "aws.sts.session_policy_unavailable", f"session policy {missing[0]} was not collected: "
                    "the federation sessions keep their user's whole reach", node=user_id(user["Arn"]), source=PROVIDER))
                continue
            docs = [spec.get("policy"), *(managed[a] for a in spec.get("policy_arns") or [])]
            out[user["Arn"]] = tuple(st for doc in docs if doc for st in parse_policy(doc))
    return out


def transform_access(
    datas: list[AccountData], found: list[Principal],
    session_policies: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[Node], list[Edge], list[CollectFinding]]:
    """`can_mint`, `can_read` and `can_assume` edges across all accounts, the session tokens users
    can mint (`policy_sessions`), and a finding for each role whose trust admits any AWS principal."""
    nodes: list[Node] = []
    findings: list[CollectFinding] = []
    roles = [(role_id(r["Arn"]), r["Arn"], trust(r)) for d in datas for r in d.roles]
    users = [(user_id(u["Arn"]), u["Arn"]) for d in datas for u in d.users]
    secrets = [guarded(d.account_id, s) for d in datas for s in d.secrets]
    tags = {e["Arn"]: _tag_map(e) for d in datas for e in (*d.users, *d.roles)}
    edges, notes = access_edges(found, roles, users, secrets, tags)
    known = {p.node_id for p in found} | {f"aws:account:{d.account_id}" for d in datas}
    for account, grants in _grants(secrets):
        nodes.extend(grant_nodes(account, grants))
        edges.extend(grant_edges(grants, known))
    rcps = {d.account_id: _levels(d.rcps) for d in datas if d.rcps is not None and not d.management}
    edges = cap_by_rcps(edges, {p.node_id: p for p in found}, rcps,
                        {**tags, **{s.arn: s.tags for s in secrets}}, {d.account_id: org_values(d) for d in datas})
    sessions, session_links = session_edges([p for p in found if p.kind == "user"], identity_decision, edges,
                                            known_session_policies(datas, session_policies or {}, findings))
    for sid, kind, owner, extra in sessions:
        nodes.append(Node(id=sid, kind=NodeKind.TOKEN, provider=PROVIDER, name=f"{kind} sessions of {owner}",
                          owner=owner, attrs={"minted_by": kind, "max_hours": MAX_HOURS, "session": True, **extra}))
    findings += [CollectFinding("aws.iam.trust_any", n, node=n.split(": ")[0], source=PROVIDER) for n in notes]
    return nodes, [Edge(s, d, Relation(r), attrs=a) for s, r, d, a in edges + session_links], findings
