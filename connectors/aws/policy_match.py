"""IAM policy documents, parsed and matched: pure, no SDK, no I/O.

- actions match case-insensitively, resources case-sensitively; `*` matches any run
  (also empty), `?` exactly one character; NotAction / NotResource invert the match;
- `${aws:username}`-style variables expand to the requesting principal's values, never act as
  wildcards; a statement whose variable cannot be resolved does not apply.

How matched statements combine into a decision is `policy.py` (identity and trust policies) and
`policy_resource.py` (resource and key policies); the `Decision` they return is defined here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

_VAR_RE = re.compile(r"\$\{([^}]+)\}")
# `${*}`, `${?}` and `${$}` are the documented escapes for literal characters.
_LITERAL_VARS = {"*": "*", "?": "?", "$": "$"}


ALLOW = "allow"
DENY = "deny"
IMPLICIT = "implicit"


@dataclass
class Decision:
    effect: str  # ALLOW | DENY | IMPLICIT
    conditions: list[dict[str, Any]] = field(default_factory=list)  # of the Allow(s) that matched

    @property
    def allowed(self) -> bool:
        return self.effect == ALLOW


def account_of_trust(value: str) -> str | None:
    """Account id when a trust principal names an account (`123456789012` or `...:root`)."""
    if re.fullmatch(r"\d{12}", value):
        return value
    match = re.fullmatch(r"arn:aws[a-zA-Z-]*:iam::(\d{12}):root", value)
    return match.group(1) if match else None


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


