"""A trust policy's Deny blocks the caller it names (by ARN, by account or `*`), whatever the
Allow admits: each case is a small moto estate and the edges it must and must not give."""

from __future__ import annotations

from typing import Any

import pytest
from authz_estate import ROOT, Case, allow, arn, check

ASSUME = allow("sts:AssumeRole")


def trust(*statements: dict[str, Any]) -> list[dict[str, Any]]:
    return list(statements)


def admit(principal: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}


def refuse(principal: Any = None, not_principal: Any = None) -> dict[str, Any]:
    who = {"Principal": {"AWS": principal}} if principal is not None else {"NotPrincipal": {"AWS": not_principal}}
    return {"Effect": "Deny", "Action": "sts:AssumeRole", **who}


CASES = [
    Case(
        "deny of one user inside an admitted account",
        users={"x": [ASSUME], "y": [ASSUME]},
        roles={"target": (trust(admit(ROOT), refuse(arn("user", "x"))), [])},
        expected={("user:y", "can_assume", "role:target"), ("account", "can_assume", "role:target")},
        absent={("user:x", "can_assume", "role:target")},
    ),
    Case(
        "deny of the account (bare id) blocks a principal the Allow names",
        users={"x": [ASSUME]},
        roles={"target": (trust(admit(arn("user", "x")), refuse(ROOT.split(":")[4])), [])},
        absent={("user:x", "can_assume", "role:target"), ("account", "can_assume", "role:target")},
    ),
    Case(
        "deny of the account root ARN blocks its users and the root",
        users={"x": [ASSUME]},
        roles={"target": (trust(admit(ROOT), refuse(ROOT)), [])},
        absent={("user:x", "can_assume", "role:target"), ("account", "can_assume", "role:target")},
    ),
    Case(
        "deny of * blocks everyone",
        users={"x": [ASSUME]},
        roles={"target": (trust(admit("*"), refuse("*")), [])},
        absent={("user:x", "can_assume", "role:target"), ("account", "can_assume", "role:target")},
    ),
    Case(
        "deny with NotPrincipal spares only the principal it names",
        users={"x": [ASSUME], "y": [ASSUME]},
        roles={"target": (trust(admit(ROOT), refuse(not_principal=arn("user", "y"))), [])},
        expected={("user:y", "can_assume", "role:target")},
        absent={("user:x", "can_assume", "role:target"), ("account", "can_assume", "role:target")},
    ),
    Case(
        "deny of a role blocks that role, not its neighbours",
        users={"x": [ASSUME]},
        roles={"target": (trust(admit(ROOT), refuse(arn("role", "ci"))), []),
               "ci": (trust(admit(ROOT)), [ASSUME])},
        expected={("user:x", "can_assume", "role:target"), ("user:x", "can_assume", "role:ci")},
        absent={("role:ci", "can_assume", "role:target")},
    ),
    Case(
        "a deny of another action blocks nothing",
        users={"x": [ASSUME]},
        roles={"target": (trust(admit(ROOT), {**refuse("*"), "Action": "sts:TagSession"}), [])},
        expected={("user:x", "can_assume", "role:target"), ("account", "can_assume", "role:target")},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_trust_deny_blocks_the_caller(moto_server: Any, case: Case) -> None:
    check(moto_server, case)
