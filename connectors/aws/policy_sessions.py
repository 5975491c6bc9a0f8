"""Sessions an IAM user can mint with its own keys, and what they reach: pure, no I/O.

AWS "Permissions for GetSessionToken" and "GetFederationToken":

- every IAM user can call `sts:GetSessionToken` with its access keys, and no policy can stop
  it. The session has the user's permissions, except IAM calls (they need MFA, which a stolen
  key does not bring) and STS calls other than AssumeRole: it reads what the user reads and
  assumes what the user assumes;
- `sts:GetFederationToken` needs an identity Allow (capped by a permissions boundary, blocked by
  a Deny). The session has at most the user's permissions (a session policy can only narrow
  them, and it is chosen by the caller), no IAM and no STS but GetCallerIdentity: it reads what
  the user reads.

Both last up to 36 hours and survive the rotation of the key that minted them, which is why
they are nodes of their own (tokens) with `can_mint` user -> session. Roles cannot mint either.

Session policies (GetFederationToken's `Policy` and `PolicyArns`) are chosen at minting and
cannot be listed afterwards. Where they are known (`session_policies` in the configuration: what
a federation broker always passes), a federation session reads only what both the user's
policies and the session policies allow (a read under a customer managed key needs `kms:Decrypt`
from them too); elsewhere the node keeps the upper bound, its user's reach, and says so in
attrs `session_policy`. Narrowing the node loses no reach: a stolen key mints sessions with a
policy of its holder's choosing, but those never exceed the user's own edges, which stay.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connectors.aws.policy import evaluate
from connectors.aws.policy_match import ALLOW, Decision, Statement

SESSION = "sts:GetSessionToken"
FEDERATION = "sts:GetFederationToken"
# what each kind of session may still do of the user's edges
REACH = {SESSION: ("can_read", "can_assume"), FEDERATION: ("can_read",)}
MAX_HOURS = 36


def session_id(kind: str, user_arn: str) -> str:
    return f"aws:{'session_token' if kind == SESSION else 'federation_token'}:{user_arn}"


UPPER_BOUND = "unknown: the user's whole reach (an upper bound)"


def session_policy_allows(statements: tuple[Statement, ...], attrs: dict[str, Any],
                          resource: str) -> Decision:
    """What the session policies allow of one read edge: the read, and the key's Decrypt."""
    checks = [("secretsmanager:GetSecretValue", resource)]
    if attrs.get("kms_key"):
        checks.append(("kms:Decrypt", str(attrs["kms_key"])))
    conditions: list[dict[str, Any]] = []
    for action, arn in checks:
        decision = evaluate(statements, action, arn)
        if decision.effect != ALLOW:
            return decision
        conditions += decision.conditions
    return Decision(ALLOW, conditions)


def session_edges(
    users: list[Any], decide: Callable[[Any, str, str], Decision], edges: list[tuple[str, str, str, dict[str, Any]]],
    session_policies: Mapping[str, tuple[Statement, ...]] | None = None,
) -> tuple[list[tuple[str, str, str, dict[str, Any]]], list[tuple[str, str, str, dict[str, Any]]]]:
    """Session nodes (id, kind of session, user node id, attrs) and their edges.

    `users`: principals of kind user; `decide(p, action, resource)` the identity decision;
    `edges`: the access edges already computed, whose can_read / can_assume a session inherits;
    `session_policies`: user ARN -> the statements of the session policies its federation
    sessions are minted with, where known.
    """
    session_policies = session_policies or {}
    by_source: dict[str, list[tuple[str, str, str, dict[str, Any]]]] = {}
    for edge in edges:
        by_source.setdefault(edge[0], []).append(edge)
    nodes: list[tuple[str, str, str, dict[str, Any]]] = []
    out: list[tuple[str, str, str, dict[str, Any]]] = []
    for p in users:
        kinds = [(SESSION, Decision("allow"))]
        # the caller names the federated user; its own name is the usual choice
        federation = decide(p, FEDERATION, f"arn:aws:sts::{p.account}:federated-user/{p.name}")
        if federation.allowed:
            kinds.append((FEDERATION, federation))
        for kind, decision in kinds:
            sid = session_id(kind, p.arn)
            policy = session_policies.get(p.arn) if kind == FEDERATION else None
            nodes.append((sid, kind, p.node_id, {} if kind == SESSION else
                          {"session_policy": UPPER_BOUND if policy is None else "known: intersected"}))
            attrs: dict[str, Any] = {"actions": [kind], "max_hours": MAX_HOURS}
            if decision.conditions:
                attrs["conditions"] = decision.conditions
            out.append((p.node_id, "can_mint", sid, attrs))
            for _src, rel, dst, a in by_source.get(p.node_id, []):
                if rel not in REACH[kind]:
                    continue
                if kind == FEDERATION and "kms_grant" in a:
                    continue  # a grant names the IAM user; a federated user is another principal
                if policy is not None:
                    allowed = session_policy_allows(policy, a, dst.split(":", 2)[2])
                    if not allowed.allowed:
                        continue
                    if allowed.conditions:
                        a = {**a, "conditions": [*a.get("conditions", []), *allowed.conditions]}
                out.append((sid, rel, dst, {**a, "via": kind}))
    return nodes, out
