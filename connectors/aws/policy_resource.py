"""Resource policies on a secret and its KMS key, combined with the reader's identity: pure.

AWS "Policy evaluation logic" and "Cross-account policy evaluation logic", for
`secretsmanager:GetSecretValue`:

- an unconditional Deny in the identity policies, the secret's resource policy or the key
  policy names the caller: no read;
- same account: the identity policies or the resource policy may grant (a resource policy
  naming the caller's ARN grants by itself; one naming the account only delegates to IAM). A
  permissions boundary still caps a role named by ARN; it does not cap a user named by ARN;
- another account: both the identity policies and the resource policy must allow;
- a customer managed KMS key must also let the caller `kms:Decrypt`: its key policy names the
  caller, or delegates to the caller's account and the identity policies allow. A key policy
  that does not delegate to the account makes IAM grants useless. AWS managed keys are not
  usable across accounts, and within the account they follow the secret's decision.

A KMS grant whose grantee is the caller lets it decrypt where the key policy and IAM are
silent (`kms_grants`); an explicit Deny still blocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from connectors.aws.kms_grants import KeyGrant, grant_decrypt
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

READ = "secretsmanager:GetSecretValue"
DECRYPT = "kms:Decrypt"


@dataclass
class Guarded:
    """A secret with the policies that guard it, as collected."""

    node_id: str
    arn: str
    account: str
    policy: tuple[Statement, ...] = ()  # the secret's resource policy (empty: none)
    key_arn: str = ""  # its customer managed KMS key ("": an AWS managed key)
    key_policy: tuple[Statement, ...] | None = None  # None: a customer key whose policy was not read
    grants: tuple[KeyGrant, ...] = ()  # the key's grants (`kms_grants`)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Named:
    """What a resource policy says of one caller for one action."""

    deny: bool = False
    direct: Decision | None = None  # an Allow naming the caller's ARN or `*`
    account: Decision | None = None  # an Allow naming the caller's account (delegation to IAM)

    def names(self) -> bool:
        return self.direct is not None or self.account is not None


def _principal_kind(pairs: Iterable[tuple[str, str]], arn: str, account: str) -> str:
    """"direct" when a Principal block names the caller's ARN or `*`, "account" its account."""
    kind = ""
    for ptype, value in pairs:
        if ptype != "AWS" and value != "*":
            continue
        if value in ("*", arn):
            return "direct"
        if account_of_trust(value) == account:
            kind = "account"
    return kind


def read_resource_policy(statements: Iterable[Statement], action: str, resource: str, caller_arn: str,
                         caller_account: str, context: Context | None = None) -> Named:
    """Which statements of a resource policy apply to this caller, and how."""
    out = Named()
    for stmt in statements:
        if not action_matches(stmt, action) or not resource_matches(stmt, resource):
            continue
        if stmt.principals:
            kind = _principal_kind(stmt.principals, caller_arn, caller_account)
        elif stmt.not_principals:
            # NotPrincipal: everyone but the ARNs it names (an account there exempts only its root)
            kind = "" if any(v == caller_arn for _t, v in stmt.not_principals) else "direct"
        else:
            kind = ""
        if not kind:
            continue
        holds = decide(stmt.conditions, context, stmt.effect) if stmt.condition else True
        if stmt.effect == "Deny":
            out.deny = out.deny or holds is True
            continue
        if stmt.effect != "Allow" or holds is False:
            continue
        decision = Decision(ALLOW, [stmt.conditions] if holds is None else [])
        current = out.direct if kind == "direct" else out.account
        merged = _stronger(current, decision)
        if kind == "direct":
            out.direct = merged
        else:
            out.account = merged
    return out


def _stronger(a: Decision | None, b: Decision) -> Decision:
    """An unconditional Allow wins over conditional ones; conditional ones accumulate."""
    if a is None:
        return b
    if not a.conditions or not b.conditions:
        return Decision(ALLOW)
    return Decision(ALLOW, a.conditions + b.conditions)


def combine(identity: Decision, named: Named, *, same_account: bool, boundary_allows: bool,
            is_role: bool) -> tuple[Decision, str]:
    """One action's decision from the identity side and the resource policy side, with its basis."""
    if identity.effect == DENY or named.deny:
        return Decision(DENY), "explicit deny"
    if same_account:
        if identity.allowed:
            return identity, "identity allows"
        if named.direct is not None and (boundary_allows or not is_role):
            return named.direct, "resource policy names principal"
        return Decision("implicit"), "not allowed"
    granted = named.direct or named.account
    if identity.allowed and granted is not None:
        return Decision(ALLOW, identity.conditions + granted.conditions), "identity allows; resource policy admits"
    return Decision("implicit"), "not allowed"


def read_statements(secret: Guarded) -> tuple[Statement, ...]:
    """The resource policy's statements that can bear on reading this secret."""
    return tuple(st for st in secret.policy if action_matches(st, READ) and resource_matches(st, secret.arn))


def worth_evaluating(p: Any, relevant: tuple[Statement, ...], may_read: bool) -> bool:
    """Cheap pre-filter: the identity may allow the read, or the resource policy may name `p`."""
    if may_read:
        return True
    return any(st.not_principals or any(v in ("*", p.arn) for _t, v in st.principals) for st in relevant)


def secret_read(p: Any, secret: Guarded, relevant: tuple[Statement, ...], identity: Any,
                boundary_allows: bool, context: Context | None = None) -> tuple[Decision, dict[str, Any]]:
    """Whether principal `p` may read `secret`: (decision, edge attributes).

    `identity(p, action, resource, tags)` is the identity side (permissions boundary included);
    `boundary_allows` says whether p's boundary (if any) allows the read by itself.
    """
    same = p.account == secret.account
    named = read_resource_policy(relevant, READ, secret.arn, p.arn, p.account, context)
    if not same and not named.names():
        return Decision("implicit"), {}
    read, basis = combine(identity(p, READ, secret.arn, secret.tags), named, same_account=same,
                          boundary_allows=boundary_allows, is_role=getattr(p, "kind", "user") == "role")
    if read.effect != ALLOW:
        return read, {}
    attrs: dict[str, Any] = {"basis": basis}
    if not secret.key_arn:
        if not same:
            return Decision("implicit"), {}  # an AWS managed key cannot be used from another account
        return read, attrs
    attrs["kms_key"] = secret.key_arn
    if secret.key_policy is None:
        attrs["key_policy"] = "not read"  # kept: over-report rather than miss a read
        return read, attrs
    decrypt = key_decrypt(p, secret, identity, context.with_resource_tags(None) if context else None)
    if decrypt.effect == IMPLICIT and secret.grants:
        decrypt, grant = grant_decrypt(p, secret.grants, secret.arn, identity(p, DECRYPT, secret.key_arn, None))
        if grant:
            attrs["kms_grant"] = grant
    if decrypt.effect != ALLOW:
        return decrypt, {}
    return Decision(ALLOW, read.conditions + decrypt.conditions), attrs


def key_decrypt(p: Any, secret: Guarded, decide: Any, context: Context | None) -> Decision:
    """`kms:Decrypt` on the secret's customer managed key: the key policy decides first.

    The key's own tags are not collected, so `aws:ResourceTag/*` stays undecided here.
    """
    key = read_resource_policy(secret.key_policy or (), DECRYPT, secret.key_arn, p.arn, p.account, context)
    identity = decide(p, DECRYPT, secret.key_arn, None)
    if key.deny or identity.effect == DENY:
        return Decision(DENY)
    same = p.account == secret.key_arn.split(":")[4]
    if key.direct is not None and same:
        return key.direct
    granted = key.direct or key.account
    if granted is not None and identity.allowed:
        return Decision(ALLOW, granted.conditions + identity.conditions)
    return Decision("implicit")
