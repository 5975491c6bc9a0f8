"""A plan's data: its steps, as planned (revoke/plan.py), journaled and read back
(revoke/incident_state.py), executed, verified and reported."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

EXECUTABLE = ("revoke", "disable", "revoke_sessions", "rotate", "reissue", "create_ca", "untrust", "retire_ca")


@dataclass
class Step:
    id: str
    verb: str
    node: str
    kind: str
    provider: str
    connector: str | None
    path: list[str]
    depends_on: list[str] = field(default_factory=list)
    reason: str = ""
    stores: list[dict[str, Any]] = field(default_factory=list)
    retire: str = ""
    depth: int = 0
    # the old credential can read a store its replacement goes to: retire it before writing
    retire_first: bool = False
    # false when the step destroys something that cannot come back; `irreversible` says what
    reversible: bool = True
    irreversible: str = ""
    # where the replacement goes when no store may receive it: {connector, type, location, item, where}
    escrow: dict[str, Any] | None = None
    # an `untrust:` task: the CA a holder must stop trusting, its fingerprint and trust store files
    trust: dict[str, Any] = field(default_factory=dict)
    # what this irreversible step destroys that another open incident retains: {node, incident,
    # step, why} (revoke/plan_retained.py); that incident's journal is told when it happens
    retained: list[dict[str, Any]] = field(default_factory=list)

    @property
    def executable(self) -> bool:
        return self.verb in EXECUTABLE


@dataclass
class Plan:
    playbook: str
    playbook_name: str
    sources: list[str]
    window: str | None
    emergency: bool
    steps: list[Step]

    def executable(self) -> list[Step]:
        return [s for s in self.steps if s.executable]

    def manual(self) -> list[Step]:
        return [s for s in self.steps if s.verb == "manual"]

    def by_id(self) -> dict[str, Step]:
        return {s.id: s for s in self.steps}

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for s in self.steps:
            counts[s.verb] = counts.get(s.verb, 0) + 1
        return {"playbook": self.playbook_name, "playbook_file": self.playbook, "sources": self.sources,
                "window": self.window, "emergency": self.emergency, "summary": counts,
                "steps": [asdict(s) for s in self.steps]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(data["playbook_file"], data["playbook"], data["sources"], data.get("window"),
                   data.get("emergency", False), [Step(**s) for s in data["steps"]])
