"""Workers on a real Postgres store: `revoke collect --workers` gives the store an in-process
collection gives; a worker SIGKILLed mid-job loses nothing and records nothing twice; a claim
whose lease was taken over cannot record its result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from revoke import jobs
from revoke.store import Store
from tests.store_compare import same_graph

ROOT = Path(__file__).resolve().parents[2]


def _site(d: Path) -> Path:
    """Three inventories (one JSON) with edges between them, and a config naming all three."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "a.json").write_text(json.dumps({"nodes": [
        {"id": "host:ci", "kind": "host"}, {"id": "aws:access_key:AKIAA", "kind": "access_key", "status": "active"}],
        "edges": [{"from": "host:ci", "to": "aws:access_key:AKIAA", "rel": "stores"},
                  {"from": "host:ci", "to": "vault:token:t1", "rel": "stores"}]}))
    (d / "b.yaml").write_text("nodes:\n  - {id: vault:token:t1, kind: token, status: revoked}\n"
                              "  - {id: vault:secret:secret/db, kind: secret}\n"
                              "edges:\n  - {from: vault:token:t1, to: vault:secret:secret/db, rel: can_read}\n")
    (d / "c.yaml").write_text("nodes:\n  - {id: aws:user:u, kind: user}\n"
                              "edges:\n  - {from: aws:access_key:AKIAA, to: aws:user:u, rel: authenticates_as}\n")
    cfg = d / "revoke.yaml"
    cfg.write_text("connectors:\n" + "".join(f"  - {{type: inventory, name: inv-{n}, path: {n}.{ext}}}\n"
                                             for n, ext in (("a", "json"), ("b", "yaml"), ("c", "yaml"))))
    return cfg


def _revoke(url: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "revoke", "--store", url, *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def _jobs(store: Store) -> list[tuple[Any, ...]]:
    return store.db.execute("SELECT id, state, attempts, claimed_by, result IS NOT NULL FROM jobs ORDER BY id").fetchall()


@pytest.fixture
def pg_url(postgres_lab: Any) -> str:
    return str(postgres_lab.uri(postgres_lab.new_database("workers")))


def test_collect_with_workers_equals_collect_in_process(pg_url: str, tmp_path: Path) -> None:
    cfg = _site(tmp_path / "site")
    workers = [_revoke(pg_url, "worker", "--idle-exit", "15", cwd=cfg.parent) for _ in range(2)]
    try:
        collect = _revoke(pg_url, "--config", str(cfg), "collect", "--workers", cwd=cfg.parent)
        out, err = collect.communicate(timeout=120)
        assert collect.returncode == 0, err
        assert "graph: 5 nodes, 4 edges" in out and "3 done" in out
    finally:
        for w in workers:
            w.kill()
            w.wait()
    local = subprocess.run([sys.executable, "-m", "revoke", "--store", f"sqlite:///{tmp_path}/local.db", "--config",
                            str(cfg), "collect"], cwd=cfg.parent, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert local.returncode == 0, local.stderr
    pg, lite = Store(pg_url, create=False), Store(f"sqlite:///{tmp_path}/local.db", create=False)
    same_graph(pg, lite)
    assert [(s.name, s.nodes, s.edges) for s in pg.snapshots()] == [(s.name, s.nodes, s.edges) for s in lite.snapshots()]
    assert [row[1:3] for row in _jobs(pg)] == [("done", 1)] * 3
    pg.close()
    lite.close()


def test_a_worker_killed_mid_job_loses_nothing_and_does_nothing_twice(pg_url: str, tmp_path: Path) -> None:
    cfg = _site(tmp_path / "site")
    collect = _revoke(pg_url, "--config", str(cfg), "collect", "--workers", cwd=cfg.parent)
    # the first worker dies (SIGKILL) after collecting its first job, before recording the result
    doomed = _revoke(pg_url, "worker", "--lease", "2", cwd=cfg.parent, env={"REVOKE_FAULT_KILL_WORKER_AFTER": "1"})
    try:
        assert doomed.wait(timeout=60) == -9
        store = Store(pg_url, create=False)
        killed = [row for row in _jobs(store) if row[1] == "running"]
        assert len(killed) == 1 and not killed[0][4]  # claimed, nothing recorded
        survivor = _revoke(pg_url, "worker", "--idle-exit", "6", "--lease", "2", cwd=cfg.parent)
        out, err = collect.communicate(timeout=120)
        assert collect.returncode == 0, err
        assert "graph: 5 nodes, 4 edges" in out
        survivor.wait(timeout=60)
    finally:
        for p in (collect, doomed):
            if p.poll() is None:
                p.kill()
    rows = _jobs(store)
    assert all(state == "done" and has_result for _, state, _, _, has_result in rows)
    by_id = {row[0]: row for row in rows}
    assert by_id[killed[0][0]][2] == 2  # retried once, after the dead worker's lease ran out
    assert by_id[killed[0][0]][3] != killed[0][3]  # by the other worker
    assert sorted(row[2] for row in rows) == [1, 1, 2]
    store.close()


def test_a_claim_taken_over_cannot_record_its_result(pg_url: str) -> None:
    store = Store(pg_url)
    [job_id] = jobs.enqueue(store, "b1", "collect", [{"connector": {"name": "x", "type": "inventory"}}])
    first = jobs.claim(store, "w1@a", ["collect"], lease=1)
    assert first is not None and first.id == job_id and not first.retried
    assert jobs.claim(store, "w2@b", ["collect"], lease=1) is None  # held: skipped, not waited for
    time.sleep(1.5)
    second = jobs.claim(store, "w2@b", ["collect"], lease=30)
    assert second is not None and second.id == job_id and second.retried
    assert not jobs.extend(store, first, "w1@a") and not jobs.finish(store, first, "w1@a", {"late": True})
    assert jobs.finish(store, second, "w2@b", {"ok": True})
    assert jobs.wait(store, "b1") == {job_id: {"ok": True}}
    store.close()


def test_workers_refuse_a_sqlite_store(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "revoke", "--store", f"sqlite:///{tmp_path}/s.db", "worker", "--once"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 2 and "postgresql://" in res.stderr.strip().splitlines()[-1]
