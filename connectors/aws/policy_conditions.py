"""Condition blocks decided from collected state where they can be: pure, no I/O.

A condition is decided only when every key it tests is known from the collection: the caller's
ARN, account, type, user name and user id, its tags (`aws:PrincipalTag/*`), the resource's tags
(`aws:ResourceTag/*`), `sts:ExternalId` presence (the caller chooses to send one or not), and,
when Organizations was collected and the caller's account is in it, `aws:PrincipalOrgID` and
`aws:PrincipalOrgPaths` (an account outside the collected organization may be in another: its
keys stay unknown).
Anything else (source IP, MFA, time, request tags, an external id's value) stays undecided, and
the statement keeps its conditions on the edge as "possible", as AWS cannot be asked in advance.

Operators: String*, Arn* (with IfExists) and Null, also under ForAnyValue/ForAllValues; Numeric,
Date, Bool and IpAddress leave the block undecided. Keys are case-insensitive, values as the operator says.
AWS semantics for a missing key: a positive operator is false, a negated one or IfExists true.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.aws.policy_match import pattern_regex

_STRING_OPS = {
    # operator: (negated, case-insensitive, wildcards)
    "stringequals": (False, False, False),
    "stringnotequals": (True, False, False),
    "stringequalsignorecase": (False, True, False),
    "stringnotequalsignorecase": (True, True, False),
    "stringlike": (False, False, True),
    "stringnotlike": (True, False, True),
    "arnequals": (False, False, True),
    "arnlike": (False, False, True),
    "arnnotequals": (True, False, True),
    "arnnotlike": (True, False, True),
}
CALLER_CHOSEN = frozenset({"sts:externalid"})  # present or absent as the caller likes


@dataclass(frozen=True)
class Context:
    """What is known of one request: the caller's keys and the resource's tags."""

    values: Mapping[str, str] = field(default_factory=dict)  # lower-case key -> value
    absent: frozenset[str] = frozenset()  # lower-case keys known to be missing
    principal_tags: Mapping[str, str] | None = None  # None: not collected
    resource_tags: Mapping[str, str] | None = None

    def lookup(self, key: str) -> tuple[bool, str | None]:
        """(known, value): value None when the key is known to be missing."""
        k = key.lower()
        if k in self.values:
            return True, self.values[k]
        if k in self.absent:
            return True, None
        for prefix, tags in (("aws:principaltag/", self.principal_tags), ("aws:resourcetag/", self.resource_tags)):
            if k.startswith(prefix) and tags is not None:
                wanted = k[len(prefix):]
                # tag keys are matched case-insensitively in condition keys
                return True, next((v for t, v in tags.items() if t.lower() == wanted), None)
        return False, None

    def with_resource_tags(self, tags: Mapping[str, str] | None) -> Context:
        return Context(self.values, self.absent, self.principal_tags, tags)


def _as_list(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else [value]
    return [str(v).lower() if isinstance(v, bool) else str(v) for v in items]


def _string_match(pattern: str, value: str, ignore_case: bool, wildcards: bool, variables: Mapping[str, str]) -> bool | None:
    if wildcards or "${" in pattern:
        regex = pattern_regex(pattern if wildcards else pattern.replace("*", "${*}").replace("?", "${?}"), variables)
        if regex is None:
            return None
        return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None
    return pattern.lower() == value.lower() if ignore_case else pattern == value


def _one(op: str, key: str, expected: list[str], ctx: Context, effect: str, variables: Mapping[str, str]) -> bool | None:
    if_exists = op.endswith("ifexists")
    base = op[: -len("ifexists")] if if_exists else op
    if key.lower() in CALLER_CHOSEN:
        if base == "null":
            # the caller sends an external id or not, whichever gets it in
            return effect == "Allow"
        return None
    known, value = ctx.lookup(key)
    if base == "null":
        if not known:
            return None
        want_absent = expected[0].lower() == "true" if expected else True
        return (value is None) == want_absent
    if base not in _STRING_OPS or not known:
        return None
    negated, ignore_case, wildcards = _STRING_OPS[base]
    if value is None:
        return bool(if_exists or negated)
    results = [_string_match(p, value, ignore_case, wildcards, variables) for p in expected]
    if any(r is None for r in results):
        return None
    hit = any(results)
    return not hit if negated else hit


def _set_one(qualifier: str, op: str, key: str, expected: list[str], ctx: Context, effect: str,
             variables: Mapping[str, str]) -> bool | None:
    """ForAnyValue / ForAllValues on a key the collection knows. Every such key holds one value
    for a principal (`aws:PrincipalOrgPaths`: one account, one path), so the set is that value;
    a missing key makes ForAllValues true and ForAnyValue false, as AWS says."""
    known, value = ctx.lookup(key)
    if not known or key.lower() in CALLER_CHOSEN or op.endswith("ifexists") or op == "null":
        return None
    if value is None:
        return qualifier == "forallvalues"
    return _one(op, key, expected, ctx, effect, variables)


def decide(conditions: Mapping[str, Any], ctx: Context | None, effect: str,
           variables: Mapping[str, str] | None = None) -> bool | None:
    """True or False when the whole block is decided, None when some key cannot be known.

    The block is an AND of its operators and of their keys: one decided False settles it.
    """
    if ctx is None:
        return None
    variables = variables or {}
    outcome: bool | None = True
    for op, keys in conditions.items():
        qualifier, _, base = op.lower().rpartition(":")
        if qualifier not in ("", "foranyvalue", "forallvalues") or not isinstance(keys, Mapping):
            outcome = None
            continue
        for key, expected in keys.items():
            if qualifier:
                result = _set_one(qualifier, base, str(key), _as_list(expected), ctx, effect, variables)
            else:
                result = _one(base, str(key), _as_list(expected), ctx, effect, variables)
            if result is False:
                return False
            if result is None:
                outcome = None
    return outcome
