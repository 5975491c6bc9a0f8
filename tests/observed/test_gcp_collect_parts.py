"""`revoke collect --workers` on a GCP block of three projects, observed use on: one worker job per
project, and the snapshot (nodes, edges, findings, compiled graph) is the one in-process
collection makes, including an account granted across projects and a project whose Policy
Analyzer is off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from examples.lab.gcp_iam_double import GcpIamDouble
from examples.lab.policy_analyzer_double import PolicyAnalyzerDouble
from revoke.store import Store
from tests.store_compare import rows, same_collection

ROOT = Path(__file__).resolve().parents[2]


def _revoke(url: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "revoke", "--store", url, *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_one_job_per_project_and_the_same_snapshot_as_one_process(postgres_lab: Any, tmp_path: Path) -> None:
    with GcpIamDouble() as iam, PolicyAnalyzerDouble(page_size=1) as pa:
        for project in ("alpha", "beta", "closed"):
            iam.add_project(project)
        deployer = iam.add_service_account("alpha", "deployer")
        runner = iam.add_service_account("beta", "runner")
        iam.add_service_account("closed", "idle")
        used = iam.add_key(deployer)
        iam.add_key(runner)
        pa.add("alpha", deployer, used["key_id"], datetime(2026, 11, 20, 7, 0, tzinfo=UTC))
        pa.deny("closed")
        # alpha's deployer may act as beta's runner: an edge across the projects' parts
        iam.add_binding(runner, "roles/iam.serviceAccountTokenCreator", f"serviceAccount:{deployer}")
        cfg = tmp_path / "revoke.yaml"
        cfg.write_text(f"connectors:\n  - type: gcp\n    name: gcp\n    projects: [alpha, beta, closed]\n"
                       f"    endpoint: {iam.endpoint}\n    observations: true\n    activity_endpoint: {pa.endpoint_url}\n")
        lite_url, pg_url = f"sqlite:///{tmp_path}/local.db", str(postgres_lab.uri(postgres_lab.new_database("gparts")))
        local = _revoke(lite_url, "--config", str(cfg), "collect", cwd=tmp_path)
        assert local.wait(timeout=120) == 0, local.communicate()[1]
        workers = [_revoke(pg_url, "worker", "--idle-exit", "20", cwd=tmp_path) for _ in range(2)]
        try:
            remote = _revoke(pg_url, "--config", str(cfg), "collect", "--workers", cwd=tmp_path)
            out, err = remote.communicate(timeout=120)
        finally:
            for w in workers:
                w.kill()
                w.wait()
    assert remote.returncode == 0, err
    assert "jobs: 3 done\n" in out
    pg, lite = Store(pg_url, create=False), Store(lite_url, create=False)
    try:
        jobs = [json.loads(p) for (p,) in pg.db.execute("SELECT payload FROM jobs ORDER BY id")]
        assert [j["connector"]["options"]["projects"] for j in jobs] == [["alpha"], ["beta"], ["closed"]]
        same_collection(pg, lite)
        assert {(e["from"], e["rel"]) for e in rows(pg, "edges")} >= {
            (f"gcp:service_account:{deployer}", "can_assume"),
            (f"gcp:service_account_key:{used['key_id']}", "observed_use")}
        assert any(f["code"] == "gcp.activity_unavailable" for f in pg.snapshots()[0].findings)
        meta = pg.snapshots()[0].meta
        assert meta["projects"] == ["alpha", "beta", "closed"] and meta["keys"] == 2
        assert meta["observations"] == lite.snapshots()[0].meta["observations"]
    finally:
        pg.close()
        lite.close()
