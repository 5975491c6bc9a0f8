"""`revoke collect --workers` on an AWS block of four accounts (an organization on moto with an RCP,
one account outside it, cross-account trust): one worker job per account, then one for the
organization, and the snapshot is the one in-process collection makes. A part that fails fails
its block, naming the account, and the previous snapshot stays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from authz_estate import allow
from org_estate import OrgCase, build

from revoke.store import Store
from tests.store_compare import rows, same_collection

ROOT = Path(__file__).resolve().parents[2]
CASE = OrgCase("RCP on the OU", rcps={"OU": [{"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:*",
                                               "Resource": "*"}]},
               secret_policies={"prod": [allow("secretsmanager:GetSecretValue",
                                               Principal={"AWS": "arn:aws:iam::acct:dev:root"})]})


def _revoke(url: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "revoke", "--store", url, *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _collect(url: str, cfg: Path, *extra: str, workers: int = 0) -> subprocess.CompletedProcess[str]:
    procs = [_revoke(url, "worker", "--idle-exit", "20", cwd=cfg.parent) for _ in range(workers)]
    try:
        run = _revoke(url, "--config", str(cfg), "collect", *extra, cwd=cfg.parent)
        out, err = run.communicate(timeout=180)
        return subprocess.CompletedProcess(run.args, run.returncode, out, err)
    finally:
        for p in procs:
            p.kill()
            p.wait()


@pytest.fixture
def pg_url(postgres_lab: Any) -> str:
    return str(postgres_lab.uri(postgres_lab.new_database("parts")))


def test_one_job_per_account_and_the_same_snapshot_as_one_process(moto_server: Any, postgres_lab: Any, pg_url: str,
                                                                  tmp_path: Path) -> None:
    org = build(moto_server, CASE)
    cfg = tmp_path / "revoke.yaml"
    cfg.write_text(yaml.safe_dump({"connectors": [{
        "type": "aws", "name": "org", "endpoint_url": moto_server.endpoint_url, "organizations": True,
        "observations": True, "accounts": org.accounts()}]}))
    local = _collect(f"sqlite:///{tmp_path}/local.db", cfg)
    assert local.returncode == 0, local.stderr
    remote = _collect(pg_url, cfg, "--workers", workers=2)
    assert remote.returncode == 0, remote.stderr
    assert "jobs: 4 done\n" in remote.stdout and "jobs: 1 done\n" in remote.stdout  # accounts, then the organization
    pg, lite = Store(pg_url, create=False), Store(f"sqlite:///{tmp_path}/local.db", create=False)
    try:
        jobs = [json.loads(p) for (p,) in pg.db.execute("SELECT payload FROM jobs ORDER BY id")]
        assert [len(j["connector"]["options"]["accounts"]) for j in jobs] == [1] * 5
        assert [j["part"] for j in jobs[:4]] == [{}] * 4
        assert sorted(jobs[4]["part"]["organization"]) == sorted(org.ids[f"acct:{n}"]
                                                                 for n in ("mgmt", "prod", "dev", "outside"))
        # the organization's findings (an account outside it) and its RCP's effect came through
        assert any(f["code"] == "aws.org.outside" for f in pg.snapshots()[0].findings)
        assert (org.nodes["dev:user"], "can_read", org.nodes["prod:secret"]) not in {
            (e["from"], e["rel"], e["to"]) for e in rows(pg, "edges")}
        same_collection(pg, lite)
    finally:
        pg.close()
        lite.close()


def test_a_failed_account_fails_its_block_and_keeps_the_previous_snapshot(moto_server: Any, pg_url: str,
                                                                          tmp_path: Path) -> None:
    org = build(moto_server, CASE)
    block = {"type": "aws", "name": "org", "endpoint_url": moto_server.endpoint_url, "accounts": org.accounts(),
             "max_attempts": 1}
    cfg = tmp_path / "revoke.yaml"
    cfg.write_text(yaml.safe_dump({"connectors": [block]}))
    first = _collect(pg_url, cfg, "--workers", workers=2)
    assert first.returncode == 0, first.stderr
    # the third account's collector role is gone: nobody can sign in there any more
    block["accounts"][2] = {"role_arn": "arn:aws:iam::999999999999:role/missing", "endpoint_url": "http://127.0.0.1:9"}
    cfg.write_text(yaml.safe_dump({"connectors": [block]}))
    again = _collect(pg_url, cfg, "--workers", workers=2)
    assert again.returncode != 0
    assert "account 3 of 4" in again.stdout + again.stderr
    store = Store(pg_url, create=False)
    try:
        snap = store.snapshots()[0]
        assert snap.last_error and "account 3 of 4" in snap.last_error
        assert snap.nodes > 0  # the earlier snapshot is kept
    finally:
        store.close()
