"""Actions on KMS grants: plain functions over a `kms` client.

`RevokeGrant` is final (a grant cannot be restored; a new one gets a new id and token), so the
action is declared irreversible. The probe lists the key's grants by id: a grant that is no
longer listed (or a key that is gone) no longer lets its grantee decrypt.
"""

from __future__ import annotations

from typing import Any

from connectors.aws.client import call, pages
from connectors.aws.kms_grants import split_grant_id
from revoke.connector import ActionResult, ConnectorError, ProbeResult
from revoke.model import Node

GONE = ("NotFoundException", "KMSInvalidStateException")


def _listed(kms: Any, node: Node) -> bool | None:
    """Whether the grant is still listed; None when the key itself is gone."""
    key_arn, grant_id = split_grant_id(node.id)
    try:
        grants = pages(kms, "list_grants", "Grants", node.id, KeyId=key_arn)
    except ConnectorError as exc:
        if exc.code in GONE:
            return None
        raise
    return any(g.get("GrantId") == grant_id for g in grants)


def revoke(kms: Any, node: Node) -> ActionResult:
    key_arn, grant_id = split_grant_id(node.id)
    if not _listed(kms, node):
        return ActionResult(node.id, "revoke", changed=False, detail="grant already gone")
    call(lambda: kms.revoke_grant(KeyId=key_arn, GrantId=grant_id), "revoke_grant", node.id)
    return ActionResult(node.id, "revoke", changed=True, detail=f"revoked grant {grant_id} on {key_arn}")


def probe(kms: Any, node: Node) -> ProbeResult:
    listed = _listed(kms, node)
    if listed is None:
        return ProbeResult(node.id, False, "list_grants: key gone")
    return ProbeResult(node.id, listed, f"list_grants: {'listed' if listed else 'absent (revoked or retired)'}")
