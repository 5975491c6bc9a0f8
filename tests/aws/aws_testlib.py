"""Helpers shared by the AWS connector tests."""

from __future__ import annotations

import json
from typing import Any

from examples.lab.aws_lab import ACCOUNT_ID, MotoServer, lab_client
from revoke.connector import ActionContext, Collected, connector_class

CANARY_PASSWORD = "canary-db-Pw-93f1c0d7e2"  # planted in a secret; must never leave it


def make_connector(server: MotoServer, **extra: Any) -> Any:
    return connector_class("aws")({"endpoint_url": server.endpoint_url, **extra})


def ctx(incident: str = "inc-1", **kw: Any) -> ActionContext:
    return ActionContext(incident=incident, dry_run=False, **kw)


def edge_set(got: Collected, *, rels: set[str] | None = None) -> set[tuple[str, str, str]]:
    return {e.key for e in got.edges if rels is None or e.rel.value in rels}


def dump(got: Collected) -> str:
    return json.dumps(
        {
            "nodes": [n.to_dict() for n in got.nodes],
            "edges": [e.to_dict() for e in got.edges],
            "findings": [f.__dict__ for f in got.findings],
            "meta": got.meta,
        },
        default=str,
    )


def policy(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def iam(server: MotoServer) -> Any:
    return lab_client("iam", server.endpoint_url)


__all__ = ["ACCOUNT_ID", "CANARY_PASSWORD", "ctx", "dump", "edge_set", "iam", "make_connector", "policy"]
