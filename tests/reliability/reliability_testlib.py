"""Helpers shared by the reliability suite: the figures file, a small inventory-only workspace for
the in-process CLI, and the provider-state check of the demo incident (one replacement each).

Figures measured here are printed and, when REVOKE_FIGURES=path is set, appended to that file as
JSON lines."""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from examples.lab.demo import Lab
from tests.incident.provider_state import aws_keys, gcp_keys, sm_secret, vault_kv

DEPLOYER = "deployer@lab-project.iam.gserviceaccount.com"

INVENTORY = {
    "nodes": [{"id": "host:ci-runner-7", "kind": "host"},
              {"id": "aws:access_key:AKIAEXAMPLE", "kind": "access_key", "provider": "aws"},
              {"id": "vault:password:secret/ci/db#password", "kind": "password", "provider": "vault"}],
    "edges": [{"from": "host:ci-runner-7", "to": "aws:access_key:AKIAEXAMPLE", "rel": "stores"},
              {"from": "host:ci-runner-7", "to": "vault:password:secret/ci/db#password", "rel": "stores"}],
}


def record_figures(name: str, data: dict[str, Any]) -> None:
    line = json.dumps({"test": name, **data}, sort_keys=True, default=str)
    print(f"FIGURES {line}")
    target = os.environ.get("REVOKE_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


@dataclass
class Workspace:
    """A folder with INVENTORY, a revoke.yaml naming it and a store: `revoke_cli(..., **ws.cli)`."""

    root: Path
    store: Path
    config: Path

    @property
    def cli(self) -> dict[str, Any]:
        return {"cwd": self.root, "store": self.store, "config": self.config, "in_process": True}

    def snapshot(self) -> bytes:
        # fold the WAL into the main file first, so equal bytes mean an equal store
        db = sqlite3.connect(self.store)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        return self.store.read_bytes()


def demo_incident_state(lb: Lab) -> dict[str, Any]:
    """What the demo incident touches, read from the providers: every lab user's AWS keys, the
    deployer's GCP keys, the AWS key in Vault's ci/aws-app and in Secrets Manager's prod/pipeline."""
    return {"aws": aws_keys(lb), "gcp": gcp_keys(lb, DEPLOYER), "kv_app": vault_kv(lb, "ci/aws-app"),
            "sm": sm_secret(lb, "prod/pipeline")["aws_access_key_id"]}


def check_one_replacement_each(state: dict[str, Any]) -> None:
    aws = state["aws"]
    # ci-deployer and app-backend: old key Inactive, one new Active key; data-pipeline: two Active
    # keys, the unreachable one kept and the reachable one replaced (deleted first: two-key limit)
    for user in ("ci-deployer", "app-backend"):
        statuses = sorted(aws[user].values())
        assert statuses == ["Active", "Inactive"], (user, aws)
    assert sorted(aws["data-pipeline"].values()) == ["Active", "Active"], aws
    new_app = next(k for k, s in aws["app-backend"].items() if s == "Active")
    assert state["kv_app"]["aws_access_key_id"] == new_app
    assert state["sm"] in aws["data-pipeline"]
    assert sorted(state["gcp"].values()) == [False, True], state["gcp"]
