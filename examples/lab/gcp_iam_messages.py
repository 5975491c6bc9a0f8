"""Proto messages of the GCP IAM double: state objects -> responses, requests -> state objects.

What each response shows follows the IAM reference; `gcp_iam_handlers.py` calls these, so
the RPC handlers read as the rules they enforce.
"""

from __future__ import annotations

from typing import Any

from google.cloud.iam_admin_v1.types import iam
from google.iam.v1 import policy_pb2

from examples.lab.gcp_iam_state import Binding, Key, Policy


def key_message(key: Key) -> iam.ServiceAccountKey:
    """Public view of a key: never the private key (`privateKeyData` is only in create responses,
    https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts.keys#ServiceAccountKey)."""
    user = iam.ListServiceAccountKeysRequest.KeyType
    return iam.ServiceAccountKey(
        name=key.name,
        key_algorithm=iam.ServiceAccountKeyAlgorithm.KEY_ALG_RSA_2048,
        valid_after_time=key.valid_after,
        valid_before_time=key.valid_before,
        key_origin=iam.ServiceAccountKeyOrigin.GOOGLE_PROVIDED,
        key_type=user.USER_MANAGED if key.user_managed else user.SYSTEM_MANAGED,
        disabled=key.disabled,
    )


def policy_message(policy: Policy) -> policy_pb2.Policy:
    out = policy_pb2.Policy(version=3 if any(b.condition for b in policy.bindings) else 1, etag=policy.etag)
    for b in policy.bindings:
        pb = out.bindings.add(role=b.role, members=b.members)
        if b.condition:
            pb.condition.expression = b.condition.get("expression", "")
            pb.condition.title = b.condition.get("title", "")
    return out


def account_message(a: Any) -> iam.ServiceAccount:
    return iam.ServiceAccount(
        name=f"projects/{a.project}/serviceAccounts/{a.email}", project_id=a.project,
        unique_id=a.unique_id, email=a.email, display_name=a.display_name,
        oauth2_client_id=a.unique_id, disabled=a.disabled)


def bindings_of(policy: policy_pb2.Policy) -> list[Binding]:
    """A SetIamPolicy request's bindings, conditions included."""
    return [
        Binding(b.role, list(b.members),
                {"expression": b.condition.expression, "title": b.condition.title}
                if b.HasField("condition") else None)
        for b in policy.bindings
    ]
