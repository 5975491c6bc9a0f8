"""IAM policy evaluation, pure: no SDK, no I/O.

moto implements no policy simulator, and the real simulator costs one call per
(principal, action, resource), so the collector decides itself what a principal may do.
Rules follow AWS "Policy evaluation logic" for identity policies, permissions boundaries
and role trust policies:

- an unconditional explicit Deny beats every Allow; no Allow is an implicit deny;
- actions match case-insensitively, resources case-sensitively; `*` matches any run
  (also empty), `?` exactly one character; NotAction / NotResource invert the match;
- `${aws:username}`-style variables expand to the requesting principal's values, never act as
  wildcards; a statement whose variable cannot be resolved does not apply;
- a permissions boundary caps identity policies (both must allow);
- conditions are kept, not decided: an Allow under conditions is "possible" (the attacker may
  meet them) and carries them; a Deny under conditions may not apply, so it does not block.

Not evaluated: resource policies (secret, KMS), SCPs and RCPs, session policies, condition
operators themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

ALLOW = "allow"
DENY = "deny"
IMPLICIT = "implicit"

_VAR_RE = re.compile(r"\$\{([^}]+)\}")
# `${*}`, `${?}` and `${$}` are the documented escapes for literal characters.
_LITERAL_VARS = {"*": "*", "?": "?", "$": "$"}


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    principals: tuple[tuple[str, str], ...] = ()  # (type, value), e.g. ("AWS", "arn:...")
    not_principals: tuple[tuple[str, str], ...] = ()
    condition: str = ""  # canonical JSON of the Condition block ("" = none)
    sid: str = ""

    @property
    def conditions(self) -> dict[str, Any]:
        return json.loads(self.condition) if self.condition else {}


@dataclass
class Decision:
    effect: str  # ALLOW | DENY | IMPLICIT
    conditions: list[dict[str, Any]] = field(default_factory=list)  # of the Allow(s) that matched

    @property
    def allowed(self) -> bool:
        return self.effect == ALLOW


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _principal_pairs(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if value == "*":
        return (("AWS", "*"),)
    if isinstance(value, Mapping):
        return tuple((str(k), str(v)) for k, vals in value.items() for v in _as_list(vals))
    return tuple(("AWS", str(v)) for v in _as_list(value))


def parse_policy(document: str | Mapping[str, Any] | None) -> tuple[Statement, ...]:
    """Statements of a policy document (JSON text, URL-decoded, or a mapping)."""
    if document is None or document == "":
        return ()
    if isinstance(document, str):
        text = document
        if text.lstrip().startswith("%7B") or text.lstrip().startswith("%7b"):
            from urllib.parse import unquote

            text = unquote(text)
        return _parse_text(text)
    return _parse_text(json.dumps(document, sort_keys=True))


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> tuple[Statement, ...]:
    doc = json.loads(text)
    out: list[Statement] = []
    for raw in _as_list(doc.get("Statement")):
        if not isinstance(raw, Mapping):
            continue
        cond = raw.get("Condition")
        out.append(
            Statement(
                effect=str(raw.get("Effect", "")),
                actions=tuple(str(a) for a in _as_list(raw.get("Action"))),
                not_actions=tuple(str(a) for a in _as_list(raw.get("NotAction"))),
                resources=tuple(str(r) for r in _as_list(raw.get("Resource"))),
                not_resources=tuple(str(r) for r in _as_list(raw.get("NotResource"))),
                principals=_principal_pairs(raw.get("Principal")),
                not_principals=_principal_pairs(raw.get("NotPrincipal")),
                condition=json.dumps(cond, sort_keys=True) if cond else "",
                sid=str(raw.get("Sid", "")),
            )
        )
    return tuple(out)


def _glob_text(pattern: str) -> str:
    return "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)


@lru_cache(maxsize=8192)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(_glob_text(pattern), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def pattern_regex(pattern: str, variables: Mapping[str, str]) -> str | None:
    """Regex for a policy pattern with `${...}` variables expanded to literal values.

    A variable's value never widens the match (a user named `a*` matches only `a*`); None
    when a variable has no value and no default, in which case the statement does not apply.
    """
    lowered = {k.lower(): v for k, v in variables.items()}
    out: list[str] = []
    pos = 0
    for match in _VAR_RE.finditer(pattern):
        out.append(_glob_text(pattern[pos : match.start()]))
        name = match.group(1)
        if name in _LITERAL_VARS:
            out.append(re.escape(_LITERAL_VARS[name]))
        else:
            key, _, default = name.partition(",")
            value = lowered.get(key.strip().lower())
            if value is None:
                if not default:
                    return None
                value = default.strip().strip("'")
            out.append(re.escape(value))
        pos = match.end()
    out.append(_glob_text(pattern[pos:]))
    return "".join(out)


def _match(pattern: str, value: str, *, ignore_case: bool, variables: Mapping[str, str]) -> bool:
    if "${" not in pattern:
        return _glob(pattern, ignore_case).fullmatch(value) is not None
    regex = pattern_regex(pattern, variables)
    if regex is None:
        return False
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def action_matches(stmt: Statement, action: str, variables: Mapping[str, str] | None = None) -> bool:
    variables = variables or {}
    if stmt.not_actions:
        return not any(_match(p, action, ignore_case=True, variables=variables) for p in stmt.not_actions)
    return any(_match(p, action, ignore_case=True, variables=variables) for p in stmt.actions)


def resource_matches(stmt: Statement, resource: str, variables: Mapping[str, str] | None = None) -> bool:
    variables = variables or {}
    if stmt.not_resources:
        return not any(
            _match(p, resource, ignore_case=False, variables=variables) for p in stmt.not_resources
        )
    if not stmt.resources:
        # trust policies carry no Resource: the role itself is the resource
        return True
    return any(_match(p, resource, ignore_case=False, variables=variables) for p in stmt.resources)


def evaluate(
    statements: Iterable[Statement],
    action: str,
    resource: str,
    variables: Mapping[str, str] | None = None,
) -> Decision:
    """Decide one action on one resource from a principal's identity statements."""
    variables = variables or {}
    unconditional_allow = False
    allow_conditions: list[dict[str, Any]] = []
    for stmt in statements:
        if not action_matches(stmt, action, variables) or not resource_matches(stmt, resource, variables):
            continue
        if stmt.effect == "Deny":
            if not stmt.condition:
                return Decision(DENY)
            # a conditional Deny may not apply: it cannot rule the access out
        elif stmt.effect == "Allow":
            if stmt.condition:
                allow_conditions.append(stmt.conditions)
            else:
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
) -> Decision:
    """Identity policies intersected with a permissions boundary (None = no boundary)."""
    statements = tuple(statements)
    identity = evaluate(statements, action, resource, variables)
    if boundary is None or identity.effect != ALLOW:
        return identity
    capped = evaluate(tuple(boundary), action, resource, variables)
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


def account_of_trust(value: str) -> str | None:
    """Account id when a trust principal names an account (`123456789012` or `...:root`)."""
    if re.fullmatch(r"\d{12}", value):
        return value
    match = re.fullmatch(r"arn:aws[a-zA-Z-]*:iam::(\d{12}):root", value)
    return match.group(1) if match else None


def trust_grants(statements: Iterable[Statement], action: str = "sts:AssumeRole") -> list[TrustGrant]:
    """Principals an Allow statement of the trust policy admits for `action`.

    Unconditional Deny statements remove principals they name (or everyone for `*`).
    """
    grants: list[TrustGrant] = []
    denied: set[str] = set()
    statements = tuple(statements)
    for stmt in statements:
        if stmt.effect == "Deny" and not stmt.condition and action_matches(stmt, action):
            denied.update(v for _t, v in stmt.principals)
    for stmt in statements:
        if stmt.effect != "Allow" or not action_matches(stmt, action):
            continue
        conds = [stmt.conditions] if stmt.condition else []
        for ptype, value in stmt.principals:
            if value in denied or "*" in denied:
                continue
            if ptype == "Service":
                grants.append(TrustGrant(value, "service", conds))
            elif ptype == "Federated":
                grants.append(TrustGrant(value, "federated", conds))
            elif ptype == "CanonicalUser":
                grants.append(TrustGrant(value, "canonical", conds))
            elif value == "*":
                grants.append(TrustGrant("*", "any", conds))
            elif account_of_trust(value):
                grants.append(TrustGrant(account_of_trust(value) or value, "account", conds))
            else:
                grants.append(TrustGrant(value, "arn", conds))
    return grants


def can_assume(
    trust: Iterable[Statement],
    role_arn: str,
    principal_arn: str,
    principal_account: str,
    identity: Decision,
) -> tuple[bool, list[dict[str, Any]], str]:
    """Whether a principal may assume a role: (possible, conditions, basis).

    A trust naming the principal's ARN (or `*`) grants by itself, unless an identity Deny
    blocks it; a trust of the principal's account delegates, so an identity Allow is needed.
    """
    role_account = _arn_account(role_arn)
    if identity.effect == DENY:
        return False, [], "identity deny"
    for grant in trust_grants(trust):
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


def _decide(p: Any, action: str, resource: str) -> Decision:
    return evaluate_with_boundary(p.statements, p.boundary, action, resource, p.variables)


def access_edges(
    principals: list[Any],
    roles: list[tuple[str, str, tuple[Statement, ...]]],
    users: list[tuple[str, str]],
    secrets: list[tuple[str, str]],
) -> tuple[list[AccessEdge], list[str]]:
    """`can_mint`, `can_assume` and `can_read` edges, plus notes for findings.

    `principals`: objects with node_id, arn, account, statements, boundary, variables;
    `roles`: (node id, arn, trust statements); `users` and `secrets`: (node id, arn).
    IAM and secret access is same-account only (resource policies are not evaluated).
    """
    edges: list[AccessEdge] = []
    notes: list[str] = []
    by_arn = {p.arn: p for p in principals}
    for p in principals:
        mint = [a for a in MINT_ACTIONS if may_grant(p.statements, a)]
        for uid, uarn in users if mint else ():
            if uarn == p.arn or _arn_account(uarn) != p.account:
                continue
            granted = [(a, _decide(p, a, uarn)) for a in mint]
            allowed = [(a, d) for a, d in granted if d.allowed]
            if allowed:
                conds = [c for _a, d in allowed for c in d.conditions]
                edges.append((p.node_id, "can_mint", uid, _attrs([a for a, _d in allowed], conds)))
        if may_grant(p.statements, READ_ACTIONS[0]):
            for sid, sarn in secrets:
                if _arn_account(sarn) != p.account:
                    continue
                decision = _decide(p, READ_ACTIONS[0], sarn)
                if decision.allowed:
                    edges.append((p.node_id, "can_read", sid, _attrs(list(READ_ACTIONS), decision.conditions)))
    # only principals some Allow could let call sts:AssumeRole need evaluating for delegated trusts
    assumers = [p for p in principals if may_grant(p.statements, "sts:AssumeRole")]
    for rid, rarn, trust in roles:
        for grant in trust_grants(trust):
            conds = grant.conditions
            if grant.kind == "account":
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
            for p in candidates:
                identity = _decide(p, "sts:AssumeRole", rarn)
                ok, all_conds, basis = can_assume(trust, rarn, p.arn, p.account, identity)
                if ok:
                    edges.append((p.node_id, "can_assume", rid, _attrs(["sts:AssumeRole"], all_conds, basis=basis)))
    return _dedupe(edges), notes


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
