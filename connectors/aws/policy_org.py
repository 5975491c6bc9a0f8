"""Resource control policies (RCPs): the Organizations ceiling on access to a member account's
resources, applied to the access edges already evaluated: pure, no I/O.

AWS "Resource control policies (RCPs)": whoever the caller is (of the same account, of another
one, of no organization), every level from the root down to the resource's account must allow
the action on the resource and no level may deny it; the management account's resources are
exempt, as are AWS service principals. Only some services honour RCPs (S3, STS, SQS, KMS,
Secrets Manager, ...): of the edges collected, reading a secret (`GetSecretValue`, and
`kms:Decrypt` on its customer managed key, in the key's account) and assuming a role
(`sts:AssumeRole`) are capped; minting IAM access keys is not (IAM ignores RCPs).

A level with no RCP attached does not restrict: AWS attaches `RCPFullAWSAccess` to every root,
OU and account when RCPs are enabled and it cannot be detached, so an empty level means RCPs are
off there. An RCP Deny whose conditions cannot be decided does not block, as for any Deny.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.aws.policy import evaluate
from connectors.aws.policy_conditions import Context
from connectors.aws.policy_match import ALLOW, Decision, Statement

RcpLevels = tuple[tuple[Statement, ...], ...]
AccessEdge = tuple[str, str, str, dict[str, Any]]
# (edge relation, destination node type) -> the action it stands for on its destination
CAPPED = {("can_read", "secret"): "secretsmanager:GetSecretValue", ("can_assume", "role"): "sts:AssumeRole"}
DECRYPT = "kms:Decrypt"


def rcp_decision(levels: RcpLevels | None, action: str, resource: str, context: Context | None,
                 variables: Mapping[str, str] | None = None) -> Decision:
    """What the RCPs of a resource's account decide for one action (None: not capped)."""
    if levels is None:
        return Decision(ALLOW)
    conditions: list[dict[str, Any]] = []
    for level in levels:
        if not level:
            continue
        decision = evaluate(level, action, resource, variables, context)
        if decision.effect != ALLOW:
            return Decision(decision.effect)
        conditions.extend(decision.conditions)
    return Decision(ALLOW, conditions)


def _account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


def root_context(account: str, org: Mapping[str, str] | None) -> Context:
    """What a request by an account's root user carries."""
    return Context({"aws:principalarn": f"arn:aws:iam::{account}:root", "aws:principalaccount": account,
                    "aws:principaltype": "Account", **(org or {})}, frozenset({"aws:username"}))


def cap_by_rcps(edges: list[AccessEdge], principals: Mapping[str, Any], rcps: Mapping[str, RcpLevels],
                resource_tags: Mapping[str, Mapping[str, str]],
                orgs: Mapping[str, Mapping[str, str]]) -> list[AccessEdge]:
    """The edges the RCPs of each resource's account let through (conditions they leave
    undecided are added to the edge).

    `principals`: node id -> principal (context, variables); `rcps`: account -> levels (member
    accounts only); `resource_tags`: resource ARN -> tags; `orgs`: account -> its organization
    keys, for the account roots' own edges.
    """
    if not rcps:
        return edges
    out: list[AccessEdge] = []
    for edge in edges:
        src, rel, dst, attrs = edge
        action = CAPPED.get((rel, dst.split(":", 2)[1]))
        if action is None:
            out.append(edge)
            continue
        resource = dst.split(":", 2)[2]
        p = principals.get(src)
        if p is not None:
            ctx, variables = p.context, p.variables
        elif src.startswith("aws:account:"):
            account = src.split(":", 2)[2]
            ctx, variables = root_context(account, orgs.get(account)), {}
        else:
            ctx, variables = None, {}  # a principal nobody collected: its keys are unknown
        checks = [(action, resource, resource_tags.get(resource))]
        if rel == "can_read" and attrs.get("kms_key"):
            checks.append((DECRYPT, attrs["kms_key"], None))
        conditions: list[dict[str, Any]] = []
        for act, arn, tags in checks:
            decision = rcp_decision(rcps.get(_account(arn)), act, arn,
                                    ctx.with_resource_tags(tags) if ctx else None, variables)
            if decision.effect != ALLOW:
                break
            conditions.extend(decision.conditions)
        else:
            if conditions:
                attrs = {**attrs, "conditions": [*attrs.get("conditions", []), *conditions]}
            out.append((src, rel, dst, attrs))
    return out
