"""Small moto estates for the authorization tables: build one, collect it, check its edges.

A case names things briefly (`user:alice`, `role:ops`, `secret:db`, `account`); they resolve to
node ids once the estate exists (secret ARNs carry a random suffix moto picks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aws_testlib import ACCOUNT_ID, make_connector, policy

from examples.lab.aws_lab import MotoServer, lab_client
from revoke.connector import Collected

ROOT = f"arn:aws:iam::{ACCOUNT_ID}:root"


def arn(kind: str, name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_ID}:{kind}/{name}"


def allow(action: str, resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str, resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


@dataclass
class Case:
    """One estate and the edges it must, and must not, produce."""

    name: str
    users: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # name -> identity statements
    roles: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = field(default_factory=dict)  # trust, policy
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # "user:x" / "role:x" / "secret:x" -> tags
    keys: dict[str, list[dict[str, Any]] | None] = field(default_factory=dict)  # KMS key -> key policy
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"policy": [...], "key": name}
    expected: set[tuple[str, str, str]] = field(default_factory=set)
    absent: set[tuple[str, str, str]] = field(default_factory=set)
    possible: set[tuple[str, str, str]] = field(default_factory=set)  # expected, with conditions kept on the edge

    def __str__(self) -> str:
        return self.name


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def build(server: MotoServer, case: Case) -> dict[str, str]:
    """Create the case's estate on a reset server; short name -> node id."""
    server.reset()
    url = server.endpoint_url
    iam, sm, kms = (lab_client(s, url) for s in ("iam", "secretsmanager", "kms"))
    ids = {"account": f"aws:account:{ACCOUNT_ID}"}
    for name, statements in case.users.items():
        iam.create_user(UserName=name, Tags=_tags(case.tags.get(f"user:{name}", {})))
        if statements:
            iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy(statements))
        ids[f"user:{name}"] = f"aws:user:{arn('user', name)}"
    for name, (trust, statements) in case.roles.items():
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=policy(trust),
                        Tags=_tags(case.tags.get(f"role:{name}", {})))
        if statements:
            iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=policy(statements))
        ids[f"role:{name}"] = f"aws:role:{arn('role', name)}"
    key_ids: dict[str, str] = {}
    for name, key_policy in case.keys.items():
        given = {"Policy": policy(key_policy)} if key_policy is not None else {}
        key_ids[name] = kms.create_key(Description=name, **given)["KeyMetadata"]["KeyId"]
    for name, spec in case.secrets.items():
        extra: dict[str, Any] = {"KmsKeyId": key_ids[spec["key"]]} if spec.get("key") else {}
        if f"secret:{name}" in case.tags:
            extra["Tags"] = _tags(case.tags[f"secret:{name}"])
        secret_arn = sm.create_secret(Name=name, SecretString=json.dumps({"v": name}), **extra)["ARN"]
        if spec.get("policy"):
            sm.put_resource_policy(SecretId=secret_arn, ResourcePolicy=policy(spec["policy"]))
        ids[f"secret:{name}"] = f"aws:secret:{secret_arn}"
    return ids


def check(server: MotoServer, case: Case, **options: Any) -> Collected:
    """Build, collect, and assert: every expected edge is there, no absent one is."""
    ids = build(server, case)
    got = make_connector(server, **options).collect()
    edges = {e.key for e in got.edges}

    def resolve(triples: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        return {(ids.get(a, a), rel, ids.get(b, b)) for a, rel, b in triples}

    missing = resolve(case.expected | case.possible) - edges
    wrong = resolve(case.absent) & edges
    assert not missing and not wrong, f"{case.name}: missing {sorted(missing)}, wrong {sorted(wrong)}"
    conditional = {e.key for e in got.edges if e.attrs.get("conditions")}
    # an expected edge is certain (its conditions decided), a possible one carries them
    assert not resolve(case.expected) & conditional, f"{case.name}: undecided {resolve(case.expected) & conditional}"
    assert resolve(case.possible) <= conditional, f"{case.name}: decided {resolve(case.possible) - conditional}"
    return got
