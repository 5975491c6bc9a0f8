"""Playbooks: what to do with each kind of reachable credential, validated on load.

A playbook is YAML in the habit of Cloud Custodian policies:

    name: compromised-host
    description: Everything on or reachable from a host.
    applies_to: {kinds: [host, workload]}        # which --node values it accepts
    scope: reachable                              # `owned`: every node --node owns; `self`: only --node
    window: 2026-03-31T10:00Z/2026-03-31T13:00Z   # optional exposure window
    actions:                                      # per credential kind
      access_key: rotate
      token: revoke
      secret: {action: skip, reason: its contents are rotated one by one}
    holders: {role: revoke_sessions}              # optional actions on exposed identities
    rotate_retire: disable                        # what happens to the old credential after a rotate
    approval: {required_above: 50}                # more actions than this need --approve
    concurrency: {default: 4, aws: 8}
    retries: {max_attempts: 6, base_delay: 0.2, max_delay: 10}
    finalize: {grace_period: 24h}                 # irreversible clean-up only after verify + grace
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from revoke.errors import InputError
from revoke.input_rules import field_path, shown_key
from revoke.model import CREDENTIAL_KINDS, HOLDER_KINDS, NodeKind
from revoke.yamlio import line_for, load_file

CREDENTIAL_ACTIONS = ("revoke", "rotate", "disable", "reissue", "skip", "manual")
HOLDER_ACTIONS = ("revoke_sessions", "disable", "skip")
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")


def parse_duration(text: str) -> timedelta:
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError("invalid duration; expected e.g. 30m, 24h, 7d")
    n, unit = int(m.group(1)), m.group(2)
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: n})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActionSpec(_Strict):
    action: str
    reason: str = ""

    @model_validator(mode="after")
    def _skip_needs_reason(self) -> ActionSpec:
        if self.action == "skip" and not self.reason.strip():
            raise ValueError("`skip` needs a reason")
        return self


class AppliesTo(_Strict):
    kinds: list[str] = Field(default_factory=list)
    providers: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        for k in v:
            if k not in NodeKind.__members__.values():
                raise ValueError(f"unknown kind; expected some of: {', '.join(k.value for k in NodeKind)}")
        return v


class Approval(_Strict):
    required_above: int | None = Field(default=None, ge=0)


class Retries(_Strict):
    max_attempts: int = Field(default=6, ge=1, le=50)
    base_delay: float = Field(default=0.2, ge=0, le=60)
    max_delay: float = Field(default=10.0, ge=0, le=600)


class Finalize(_Strict):
    grace_period: str = "24h"

    @field_validator("grace_period")
    @classmethod
    def _duration(cls, v: str) -> str:
        parse_duration(v)
        return v


class PlaybookModel(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    applies_to: AppliesTo = Field(default_factory=AppliesTo)
    scope: Literal["reachable", "owned", "self"] = "reachable"
    window: str | None = None
    actions: dict[str, str | ActionSpec] = Field(default_factory=dict)
    default_action: str | ActionSpec = "manual"
    holders: dict[str, str | ActionSpec] = Field(default_factory=dict)
    rotate_retire: Literal["disable", "revoke"] = "disable"
    approval: Approval = Field(default_factory=Approval)
    concurrency: dict[str, int] = Field(default_factory=lambda: {"default": 4})
    retries: Retries = Field(default_factory=Retries)
    finalize: Finalize = Field(default_factory=Finalize)

    @field_validator("actions")
    @classmethod
    def _actions(cls, v: dict[str, Any]) -> dict[str, Any]:
        for kind, action in _check_table(v, CREDENTIAL_KINDS, CREDENTIAL_ACTIONS, "credential"):
            if action == "skip" and isinstance(v[kind], str):
                raise ValueError(f"{kind}: `skip` needs a reason: {{action: skip, reason: ...}}")
        return v

    @field_validator("holders")
    @classmethod
    def _holders(cls, v: dict[str, Any]) -> dict[str, Any]:
        list(_check_table(v, HOLDER_KINDS, HOLDER_ACTIONS, "holder"))
        return v

    @field_validator("concurrency")
    @classmethod
    def _concurrency(cls, v: dict[str, int]) -> dict[str, int]:
        for k, n in v.items():
            if n < 1 or n > 64:
                raise ValueError(f"concurrency for {k!r} must be between 1 and 64")
        return v


def _check_table(
    table: dict[str, Any], kinds: frozenset[NodeKind], actions: tuple[str, ...], noun: str
) -> Iterator[tuple[str, str]]:
    """(kind, action) for each entry of a per-kind action table, refusing unknown kinds and actions."""
    for kind, spec in table.items():
        if kind not in {k.value for k in kinds}:
            raise ValueError(f"unknown {noun} kind {shown_key(kind)}")
        action = spec if isinstance(spec, str) else spec.action
        if action not in actions:
            label = "action" if noun == "credential" else f"{noun} action"
            raise ValueError(f"{kind}: unknown {label}; expected one of {', '.join(actions)}")
        yield kind, action


@dataclass(frozen=True)
class Playbook:
    model: PlaybookModel
    source: str
    digest: str
    text: str = field(repr=False, default="")

    @property
    def name(self) -> str:
        return self.model.name

    def action_for(self, kind: NodeKind) -> ActionSpec:
        table = self.model.actions if kind in CREDENTIAL_KINDS else self.model.holders
        spec = table.get(kind.value)
        if spec is None:
            if kind not in CREDENTIAL_KINDS:
                return ActionSpec(action="none")
            spec = self.model.default_action
        return ActionSpec(action=spec) if isinstance(spec, str) else spec

    def concurrency(self, provider: str) -> int:
        return self.model.concurrency.get(provider, self.model.concurrency.get("default", 4))

    @property
    def grace(self) -> timedelta:
        return parse_duration(self.model.finalize.grace_period)


def load_playbook(path: str | Path) -> Playbook:
    path = Path(path)
    if not path.exists() and not path.suffix and (Path(__file__).parent.parent / "playbooks" / f"{path}.yaml").exists():
        path = Path(__file__).parent.parent / "playbooks" / f"{path}.yaml"
    data = load_file(path, what="playbook")
    if not isinstance(data, dict):
        raise InputError("a playbook is a mapping (name, actions, ...)", source=str(path))
    try:
        model = PlaybookModel.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in ("str", "ActionSpec")))
        field_name = field_path(loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        raise InputError(f"field {field_name}: {msg}", source=str(path), line=line_for(data, loc)) from None
    text = path.read_text(encoding="utf-8")
    return Playbook(model, str(path), hashlib.sha256(text.encode()).hexdigest(), text)
