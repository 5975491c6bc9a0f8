"""A collection in parts: one worker job per AWS account or GCP project, not per connector block.

A connector whose block covers several accounts or projects can say so (`CollectsInParts`):
- `collect_parts(config)` (a classmethod: the collecting process needs no credentials) gives one
  `CollectPart` per account or project, each a complete configuration of the connector for that
  part (credentials by reference, as in revoke.yaml); none when the block is one part anyway;
- `collect_part(task)` runs on a worker, on a connector built from a part's options, and returns
  what that part read as plain JSON (no secret values: what `collect()` reads, before transform);
- `assemble(config, done)` (a classmethod) turns every part's result into the block's one snapshot,
  exactly the one `collect()` gives, or asks for more parts first (AWS reads the organization
  once the accounts' ids are known).
`revoke collect --workers` enqueues the parts, waits, assembles, and goes on as with any snapshot;
in-process collection keeps calling `collect()`.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import orjson

from revoke.connector_results import Collected, CollectFinding
from revoke.model import Edge, Node
from revoke.store import row_text


@dataclass(frozen=True)
class CollectPart:
    label: str  # "account 2", "project p": said in progress and errors
    options: dict[str, Any]  # the connector's configuration for this part alone
    task: dict[str, Any] = field(default_factory=dict)  # what to read with it, when not the default


@runtime_checkable
class CollectsInParts(Protocol):
    @classmethod
    def collect_parts(cls, config: dict[str, Any]) -> list[CollectPart]: ...

    def collect_part(self, task: dict[str, Any]) -> dict[str, Any]: ...

    @classmethod
    def assemble(cls, config: dict[str, Any],
                 done: list[tuple[CollectPart, dict[str, Any]]]) -> Collected | list[CollectPart]: ...


def parts_of(cls: type, config: dict[str, Any]) -> list[CollectPart]:
    """The parts of a block (none: one job for the whole block)."""
    return list(cls.collect_parts(config)) if issubclass(cls, CollectsInParts) else []


# -- plain JSON for what a part read: provider responses hold datetimes (boto3) and bytes ---------

_WHEN, _BYTES = "$datetime", "$bytes"


def plain(value: Any) -> Any:
    """`value` as JSON-able data, datetimes and bytes tagged so `unplain` gives them back."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return {_WHEN: value.isoformat()}
    if isinstance(value, bytes | bytearray):
        return {_BYTES: base64.b64encode(value).decode()}
    return value


def unplain(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and _WHEN in value:
            return datetime.fromisoformat(value[_WHEN])
        if len(value) == 1 and _BYTES in value:
            return base64.b64decode(value[_BYTES])
        return {k: unplain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unplain(v) for v in value]
    return value


def findings_to_wire(findings: list[CollectFinding]) -> list[dict[str, Any]]:
    return [asdict(f) for f in findings]


def findings_from_wire(items: list[dict[str, Any]]) -> list[CollectFinding]:
    return [CollectFinding(**f) for f in items]


def edges_to_wire(edges: list[Edge]) -> list[str]:
    return [row_text(e.to_dict()) for e in edges]


def edges_from_wire(items: list[str]) -> list[Edge]:
    return [Edge.from_dict(orjson.loads(e)) for e in items]


def collected_to_wire(outcome: Collected) -> dict[str, Any]:
    return {"nodes": [row_text(n.to_dict()) for n in outcome.nodes], "edges": edges_to_wire(outcome.edges),
            "findings": findings_to_wire(outcome.findings), "meta": outcome.meta}


def collected_from_wire(result: dict[str, Any]) -> Collected:
    return Collected(nodes=[Node.from_dict(orjson.loads(n)) for n in result["nodes"]],
                     edges=edges_from_wire(result["edges"]), findings=findings_from_wire(result["findings"]),
                     meta=dict(result["meta"]))
