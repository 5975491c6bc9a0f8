"""KMS grants on the customer managed keys of secrets: nodes, and the decrypt they allow: pure.

AWS "Grants in AWS KMS": a grant lets its grantee principal use the key for the operations it
lists, whatever the key policy and IAM say (an explicit Deny in either still wins). A grantee
with `Decrypt` can therefore read a secret under that key when Secrets Manager lets it call
`GetSecretValue`: an edge the key policy alone does not show. A grantee named by an account's
root delegates to that account's IAM (its identity policies must allow `kms:Decrypt`).

Secrets Manager decrypts with the encryption context `{SecretARN, SecretVersionId}`: a grant
constrained to another secret's ARN (or to other keys) allows nothing here; one constrained to
a version keeps the constraint on the edge (a version the attacker may or may not read).

A grant is a node of its own (`aws:kms_grant:<key ARN>/<grant id>`, token), with `can_assume`
grantee -> grant, so revoking it (`RevokeGrant`, which cannot be undone: a new grant gets a new
id) is an action when its grantee is reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.aws.client import PROVIDER
from connectors.aws.policy_match import ALLOW, DENY, Decision, account_of_trust
from revoke.model import Node, NodeKind

CONTEXT_KEYS = frozenset({"SecretARN", "SecretVersionId"})  # Secrets Manager's encryption context


def grant_node_id(key_arn: str, grant_id: str) -> str:
    return f"aws:kms_grant:{key_arn}/{grant_id}"


def split_grant_id(node_id: str) -> tuple[str, str]:
    """(key ARN, grant id) of a grant node."""
    key_arn, _, grant_id = node_id.split(":", 2)[2].rpartition("/")
    return key_arn, grant_id


@dataclass(frozen=True)
class KeyGrant:
    node_id: str
    key_arn: str
    grantee: str  # a principal ARN (an account root delegates to the account)
    operations: tuple[str, ...]
    constraints: dict[str, Any] = field(default_factory=dict, hash=False)


def key_grants(key_arn: str, listed: list[dict[str, Any]]) -> tuple[KeyGrant, ...]:
    return tuple(KeyGrant(grant_node_id(key_arn, g["GrantId"]), key_arn, str(g.get("GranteePrincipal") or ""),
                          tuple(g.get("Operations") or ()), dict(g.get("Constraints") or {})) for g in listed)


def _constraint(grant: KeyGrant, secret_arn: str) -> bool | None:
    """Whether Secrets Manager's encryption context for this secret meets the grant's
    constraints: True, False, or None (it depends on the version read)."""
    holds: bool | None = True
    for kind in ("EncryptionContextEquals", "EncryptionContextSubset"):
        wanted = grant.constraints.get(kind)
        if not wanted:
            continue
        if not set(wanted) <= CONTEXT_KEYS or wanted.get("SecretARN", secret_arn) != secret_arn:
            return False
        if kind == "EncryptionContextEquals" and set(wanted) != CONTEXT_KEYS:
            return False
        if "SecretVersionId" in wanted:
            holds = None
    return holds


def grant_decrypt(p: Any, grants: tuple[KeyGrant, ...], secret_arn: str, identity: Decision) -> tuple[Decision, str]:
    """`kms:Decrypt` for principal `p` through one of the key's grants: (decision, grant node id).

    `identity` is p's own IAM decision for `kms:Decrypt` on the key (needed for an account grantee).
    """
    if identity.effect == DENY:
        return Decision(DENY), ""
    for grant in grants:
        if "Decrypt" not in grant.operations:
            continue
        direct = grant.grantee == p.arn
        if not direct and not (account_of_trust(grant.grantee) == p.account and identity.allowed):
            continue
        holds = _constraint(grant, secret_arn)
        if holds is False:
            continue
        conditions = [] if holds else [{"kms:EncryptionContext": grant.constraints}]
        if not direct:
            conditions += identity.conditions
        return Decision(ALLOW, conditions), grant.node_id
    return Decision("implicit"), ""


def grant_nodes(account: str, grants: tuple[KeyGrant, ...]) -> list[Node]:
    return [Node(id=g.node_id, kind=NodeKind.TOKEN, provider=PROVIDER, name=g.node_id.rsplit("/", 1)[1][:12],
                 attrs={"account": account, "key": g.key_arn, "grantee": g.grantee,
                        "operations": list(g.operations), "kms_grant": True})
            for g in grants]


def grantee_node(grantee: str) -> str | None:
    """The node a grant's grantee is: a user, a role, or an account root."""
    if account := account_of_trust(grantee):
        return f"aws:account:{account}"
    if ":user/" in grantee:
        return f"aws:user:{grantee}"
    if ":role/" in grantee:
        return f"aws:role:{grantee}"
    return None


def grant_edges(grants: tuple[KeyGrant, ...], known: set[str]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """`can_assume` grantee -> grant (attrs uncollected when nobody collected the grantee)."""
    out = []
    for g in grants:
        src = grantee_node(g.grantee)
        if src is None:
            continue  # a service principal: not an identity an attacker holds
        attrs: dict[str, Any] = {"actions": [f"kms:{op}" for op in g.operations], "basis": "kms grant names grantee"}
        if src not in known:
            attrs["uncollected"] = True
        out.append((src, "can_assume", g.node_id, attrs))
    return out
