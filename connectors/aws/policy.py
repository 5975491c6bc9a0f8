"""IAM policy evaluation and the access edges built from it, pure: no SDK, no I/O.

moto implements no policy simulator, and the real simulator costs one call per
(principal, action, resource), so the collector decides itself what a principal may do.
Rules follow AWS "Policy evaluation logic" for identity policies, permissions boundaries
and role trust policies (resource and key policies on secrets: `policy_resource.py`):

- an unconditional explicit Deny beats every Allow; no Allow is an implicit deny;
- statements match actions, resources and variables as `policy_match.py` says;
- a permissions boundary caps identity policies (both must allow);
- a trust policy's unconditional Deny blocks the caller it names (ARN, account, `*`,
  or everyone but a NotPrincipal), whatever its Allow statements admit;
- conditions are decided where the collection knows every key they test
  (`policy_conditions.py`): decided false, the statement does not apply; decided true, it applies
  as if unconditional. Otherwise an Allow under conditions is "possible" (the attacker may meet
  them) and carries them, and a Deny under conditions may not apply, so it does not block.

- SCPs (with the `organizations` option) cap every grant to a member account's principals.

Not evaluated: RCPs, session policies, conditions on keys the collection cannot know.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.aws.policy_conditions import Context, decide
from connectors.aws.policy_match import (
    ALLOW,
    DENY,
    IMPLICIT,
    Decision,
    Statement,
    account_of_trust,
    action_matches,
    resource_matches,
)
from connectors.aws.policy_resource import Guarded, read_statements, secret_read, worth_evaluating

__all__ = [
    "ALLOW",
    "DENY",
    "IMPLICIT",
    "Decision",
    "access_edges",
    "account_of_trust",
    "can_assume",
    "evaluate",
    "evaluate_with_boundary",
    "trust_denies",
    "trust_grants",
]

def applies(stmt: Statement, context: Context | None, variables: Mapping[str, str] | None = None) -> bool | None:
    """Whether a matched statement's conditions hold: True (or none), False, None (undecided)."""
    if not stmt.condition:
        return True
    return decide(stmt.conditions, context, stmt.effect, variables)


def evaluate(
    statements: Iterable[Statement],
    action: str,
    resource: str,
    variables: Mapping[str, str] | None = None,
    context: Context | None = None,
) -> Decision:
    """Decide one action on one resource from a principal's identity statements."""
    variables = variables or {}
    unconditional_allow = False
    allow_conditions: list[dict[str, Any]] = []
    for stmt in statements:
        if not action_matches(stmt, action, variables) or not resource_matches(stmt, resource, variables):
            continue
        holds = applies(stmt, context, variables)
        if stmt.effect == "Deny":
            if holds:
                return Decision(DENY)
            # a Deny whose conditions may not hold cannot rule the access out
        elif stmt.effect == "Allow":
            if holds is None:
                allow_conditions.append(stmt.conditions)
            elif holds:
                unconditional_allow = True
    if unconditional_allow:
        return Decision(ALLOW)
    if allow_conditions:
        return Decision(ALLOW, allow_conditions)
    return Decision(IMPLICIT)


def evaluate_with_boundary(
    statements: Iterable[Statement],
    boundary: Iterable[Statement] | None,
    action: str,
    resource: str,
    variables: Mapping[str, str] | None = None,
    context: Context | None = None,
) -> Decision:
    """Identity policies intersected with a permissions boundary (None = no boundary)."""
    statements = tuple(statements)
    identity = evaluate(statements, action, resource, variables, context)
    if boundary is None or identity.effect != ALLOW:
        return identity
    capped = evaluate(tuple(boundary), action, resource, variables, context)
    if capped.effect != ALLOW:
        return Decision(DENY if capped.effect == DENY else IMPLICIT)
    return Decision(ALLOW, identity.conditions + capped.conditions)


def may_grant(statements: Iterable[Statement], action: str) -> bool:
    """Cheap pre-filter: can any Allow statement match `action` at all, whatever the resource?"""
    return any(s.effect == "Allow" and action_matches(s, action) for s in statements)


# ---------------------------------------------------------------------------------------------
# Trust policies


@dataclass
class TrustGrant:
    """One principal a role's trust policy admits."""

    principal: str  # an ARN, an account id, "*", a service or a federated provider
    kind: str  # "arn" | "account" | "any" | "service" | "federated" | "canonical"
    conditions: list[dict[str, Any]] = field(default_factory=list)


def _names_caller(pairs: Iterable[tuple[str, str]], arn: str, account: str, *, exact: bool = False) -> bool:
    """Whether a Principal block names the caller: its ARN, `*`, or (unless `exact`) its account.

    A NotPrincipal naming an account exempts only that account's root user, hence `exact`.
    """
    for ptype, value in pairs:
        if ptype != "AWS":
            continue
        if value in ("*", arn) or (not exact and account_of_trust(value) == account):
            return True
    return False


def trust_denies(statements: Iterable[Statement], caller_arn: str, caller_account: str,
                 action: str = "sts:AssumeRole", context: Context | None = None) -> bool:
    """Whether a Deny of the trust policy (unconditional, or its conditions decided true) blocks this caller.

    A Deny naming the caller's ARN, its account (root ARN or bare id) or `*` blocks it, and so
    does a Deny with a NotPrincipal that does not name it, whatever the Allow statements admit.
    """
    for stmt in statements:
        if stmt.effect != "Deny" or not action_matches(stmt, action) or not applies(stmt, context):
            continue
        if stmt.principals and _names_caller(stmt.principals, caller_arn, caller_account):
            return True
        if stmt.not_principals and not _names_caller(stmt.not_principals, caller_arn, caller_account, exact=True):
            return True
    return False


def trust_grants(statements: Iterable[Statement], action: str = "sts:AssumeRole") -> list[TrustGrant]:
    """Principals an Allow statement of the trust policy admits for `action`.

    A named principal the trust's own Deny blocks is left out; an account or `*` grant stays
    (a Deny may spare some of its callers) and `can_assume` applies the Deny to each caller.
    """
    grants: list[TrustGrant] = []
    statements = tuple(statements)
    for stmt in statements:
        if stmt.effect != "Allow" or not action_matches(stmt, action):
            continue
        conds = [stmt.conditions] if stmt.condition else []
        for ptype, value in stmt.principals:
            if ptype == "Service":
                grants.append(TrustGrant(value, "service", conds))
            elif ptype == "Federated":
                grants.append(TrustGrant(value, "federated", conds))
            elif ptype == "CanonicalUser":
                grants.append(TrustGrant(value, "canonical", conds))
            elif value == "*":
                grants.append(TrustGrant("*", "any", conds))
            elif account := account_of_trust(value):
                grants.append(TrustGrant(account, "account", conds))
            elif not trust_denies(statements, value, _arn_account(value), action):
                grants.append(TrustGrant(value, "arn", conds))
    return grants


def can_assume(
    trust: Iterable[Statement],
    role_arn: str,
    principal_arn: str,
    principal_account: str,
    identity: Decision,
    context: Context | None = None,
) -> tuple[bool, list[dict[str, Any]], str]:
    """Whether a principal may assume a role: (possible, conditions, basis).

    A trust naming the principal's ARN (or `*`) grants by itself, unless an identity Deny
    blocks it; a trust of the principal's account delegates, so an identity Allow is needed.
    A grant whose conditions are decided false for this caller is skipped; decided true, dropped.
    """
    role_account = _arn_account(role_arn)
    if identity.effect == DENY:
        return False, [], "identity deny"
    trust = tuple(trust)
    if trust_denies(trust, principal_arn, principal_account, context=context):
        return False, [], "trust deny"
    for grant in trust_grants(trust):
        if grant.conditions:
            holds = decide(grant.conditions[0], context, "Allow")
            if holds is False:
                continue
            if holds:
                grant = TrustGrant(grant.principal, grant.kind)
        if grant.kind in ("arn", "any") and (grant.principal in (principal_arn, "*")):
            same_account = principal_account == role_account
            if same_account or identity.allowed:
                basis = "trust names principal" if grant.kind == "arn" else "trust admits any principal"
                return True, grant.conditions + identity.conditions, basis
        if grant.kind == "account" and grant.principal == principal_account and identity.allowed:
            return True, grant.conditions + identity.conditions, "trust delegates to account; identity allows"
    return False, [], "not admitted"


def _arn_account(arn: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 else ""


# ---------------------------------------------------------------------------------------------
# Access edges of a set of accounts


MINT_ACTIONS = ("iam:CreateAccessKey", "iam:UpdateAccessKey")
READ_ACTIONS = ("secretsmanager:GetSecretValue",)
AccessEdge = tuple[str, str, str, dict[str, Any]]  # (from, rel, to, attrs)


def _attrs(actions: list[str], conditions: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"actions": actions, **extra}
    if conditions:
        out["conditions"] = conditions
    return out


def _context(p: Any, tags: Mapping[str, str] | None = None) -> Context | None:
    """What the collection knows of a request by `p` on a resource with these tags."""
    ctx: Context | None = getattr(p, "context", None)
    return ctx.with_resource_tags(tags) if ctx is not None else None


def identity_decision(p: Any, action: str, resource: str, tags: Mapping[str, str] | None = None) -> Decision:
    """What `p`'s identity policies and boundary decide for one action on one resource, capped by
    the SCPs of its account."""
    decision = evaluate_with_boundary(p.statements, p.boundary, action, resource, p.variables, _context(p, tags))
    if decision.allowed and not scp_allows(p, action, resource, tags):
        return Decision(IMPLICIT)
    return decision


def scp_allows(p: Any, action: str, resource: str, tags: Mapping[str, str] | None = None) -> bool:
    """SCPs: every level from the root to the account must allow the action, none deny it. They
    cap every grant to the account's principals (a resource policy's too); the management account
    has none (`scps` None)."""
    levels = getattr(p, "scps", None)
    if levels is None:
        return True
    ctx = _context(p, tags)
    return all(evaluate(level, action, resource, p.variables, ctx).effect == ALLOW for level in levels)


def access_edges(
    principals: list[Any],
    roles: list[tuple[str, str, tuple[Statement, ...]]],
    users: list[tuple[str, str]],
    secrets: Sequence[Guarded | tuple[str, str]],
    tags: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[list[AccessEdge], list[str]]:
    """`can_mint`, `can_assume` and `can_read` edges, plus notes for findings.

    `principals`: objects with node_id, arn, account, statements, boundary, variables;
    `roles`: (node id, arn, trust statements); `users`: (node id, arn); `secrets`: `Guarded`
    (resource and key policies) or (node id, arn) for a secret with neither.
    `tags`: user and role ARN -> tags, for `aws:ResourceTag/*` conditions.
    Minting keys is same-account only; secret reads follow `policy_resource`.
    """
    tags = tags or {}
    edges: list[AccessEdge] = []
    notes: list[str] = []
    by_arn = {p.arn: p for p in principals}
    for p in principals:
        mint = [a for a in MINT_ACTIONS if may_grant(p.statements, a)]
        for uid, uarn in users if mint else ():
            if uarn == p.arn or _arn_account(uarn) != p.account:
                continue
            granted = [(a, identity_decision(p, a, uarn, tags.get(uarn, {}))) for a in mint]
            allowed = [(a, d) for a, d in granted if d.allowed]
            if allowed:
                conds = [c for _a, d in allowed for c in d.conditions]
                edges.append((p.node_id, "can_mint", uid, _attrs([a for a, _d in allowed], conds)))
    _read_edges(edges, principals, [g if isinstance(g, Guarded) else Guarded(g[0], g[1], _arn_account(g[1]))
                                     for g in secrets])
    # only principals some Allow could let call sts:AssumeRole need evaluating for delegated trusts
    assumers = [p for p in principals if may_grant(p.statements, "sts:AssumeRole")]
    for rid, rarn, trust in roles:
        for grant in trust_grants(trust):
            conds = grant.conditions
            if grant.kind == "account":
                # the root user is a caller like any other: a Deny of the account blocks it too
                if not trust_denies(trust, f"arn:aws:iam::{grant.principal}:root", grant.principal):
                    edges.append(
                        (f"aws:account:{grant.principal}", "can_assume", rid,
                         _attrs(["sts:AssumeRole"], conds, basis="trust names the account root"))
                    )
                candidates = [p for p in assumers if p.account == grant.principal and p.arn != rarn]
            elif grant.kind == "arn":
                known = by_arn.get(grant.principal)
                if known is None:
                    src = _principal_node(grant.principal)
                    if src:
                        edges.append((src, "can_assume", rid, _attrs(
                            ["sts:AssumeRole"], conds, basis="trust names principal", uncollected=True)))
                    continue
                candidates = [known]
            elif grant.kind == "any":
                notes.append(f"{rid}: trust policy admits any AWS principal")
                candidates = [p for p in principals if p.arn != rarn]
            else:
                continue
            _assume_each(edges, candidates, trust, rid, rarn, tags.get(rarn, {}))
    return _dedupe(edges), notes


def _assume_each(edges: list[AccessEdge], candidates: list[Any], trust: tuple[Statement, ...], rid: str,
                 rarn: str, role_tags: Mapping[str, str]) -> None:
    for p in candidates:
        if not scp_allows(p, "sts:AssumeRole", rarn, role_tags):
            continue
        identity = identity_decision(p, "sts:AssumeRole", rarn, role_tags)
        ok, all_conds, basis = can_assume(trust, rarn, p.arn, p.account, identity, _context(p, role_tags))
        if ok:
            edges.append((p.node_id, "can_assume", rid, _attrs(["sts:AssumeRole"], all_conds, basis=basis)))


def _read_edges(edges: list[AccessEdge], principals: list[Any], secrets: list[Guarded]) -> None:
    may_read = {p.arn: may_grant(p.statements, READ_ACTIONS[0]) for p in principals}
    for secret in secrets:
        relevant = read_statements(secret)
        for p in principals:
            if not worth_evaluating(p, relevant, may_read[p.arn]):
                continue
            if not scp_allows(p, READ_ACTIONS[0], secret.arn, secret.tags):
                continue
            ctx = _context(p, secret.tags)
            boundary_ok = p.boundary is None or evaluate(p.boundary, READ_ACTIONS[0], secret.arn,
                                                         p.variables, ctx).effect == ALLOW
            decision, attrs = secret_read(p, secret, relevant, identity_decision, boundary_ok, ctx)
            if decision.allowed:
                edges.append((p.node_id, "can_read", secret.node_id,
                              _attrs(list(READ_ACTIONS), decision.conditions, **attrs)))


def _principal_node(arn: str) -> str | None:
    if ":user/" in arn:
        return f"aws:user:{arn}"
    if ":role/" in arn:
        return f"aws:role:{arn}"
    return None


def _dedupe(edges: list[AccessEdge]) -> list[AccessEdge]:
    seen: dict[tuple[str, str, str], AccessEdge] = {}
    for edge in edges:
        seen.setdefault(edge[:3], edge)
    return list(seen.values())
