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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.aws.policy_match import Decision

SESSION = "sts:GetSessionToken"
FEDERATION = "sts:GetFederationToken"
# what each kind of session may still do of the user's edges
REACH = {SESSION: ("can_read", "can_assume"), FEDERATION: ("can_read",)}
MAX_HOURS = 36


def session_id(kind: str, user_arn: str) -> str:
    return f"aws:{'session_token' if kind == SESSION else 'federation_token'}:{user_arn}"


def session_edges(
    users: list[Any], decide: Callable[[Any, str, str], Decision], edges: list[tuple[str, str, str, dict[str, Any]]]
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str, dict[str, Any]]]]:
    """Session nodes (id, kind of session, user node id) and their edges.

    `users`: principals of kind user; `decide(p, action, resource)` the identity decision;
    `edges`: the access edges already computed, whose can_read / can_assume a session inherits.
    """
    by_source: dict[str, list[tuple[str, str, str, dict[str, Any]]]] = {}
    for edge in edges:
        by_source.setdefault(edge[0], []).append(edge)
    nodes: list[tuple[str, str, str]] = []
    out: list[tuple[str, str, str, dict[str, Any]]] = []
    for p in users:
        kinds = [(SESSION, Decision("allow"))]
        # the caller names the federated user; its own name is the usual choice
        federation = decide(p, FEDERATION, f"arn:aws:sts::{p.account}:federated-user/{p.name}")
        if federation.allowed:
            kinds.append((FEDERATION, federation))
        for kind, decision in kinds:
            sid = session_id(kind, p.arn)
            nodes.append((sid, kind, p.node_id))
            attrs: dict[str, Any] = {"actions": [kind], "max_hours": MAX_HOURS}
            if decision.conditions:
                attrs["conditions"] = decision.conditions
            out.append((p.node_id, "can_mint", sid, attrs))
            for _src, rel, dst, a in by_source.get(p.node_id, []):
                if rel in REACH[kind]:
                    out.append((sid, rel, dst, {**a, "via": kind}))
    return nodes, out
