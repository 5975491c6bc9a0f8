"""Two `revoke run --execute` on the same incident at once: one runs, the other refuses with a
clear message (the run lock in the store), and nothing is done twice (judged by provider state)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from examples.lab.demo import RUNNER
from examples.lab.faulty_lab import lab_with_faults
from tests.reliability.reliability_testlib import INVENTORY, check_one_replacement_each, demo_incident_state, record_figures

PLAYBOOK = "compromised-ci-supply-chain"


def _spawn(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "revoke", *args], cwd=cwd, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _records(store: Path, incident: str, type_: str) -> int:
    if not store.exists():
        return 0
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT count(*) FROM journal WHERE incident=? AND type=?", (incident, type_)).fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # tables not created yet
    finally:
        db.close()


def test_second_run_refuses_while_the_first_holds_the_lock(revoke_cli, tmp_path: Path) -> None:
    with lab_with_faults(tmp_path / "lab", devices=5, rate=0.0) as fl:
        lb = fl.lab
        store = lb.directory / ".revoke" / "revoke.db"
        assert revoke_cli("collect", cwd=lb.directory).returncode == 0
        # every AWS call answered 0.15 s late: the first run holds the lock for several seconds
        fl.aws.plan.weights = {"slow": 1.0}
        fl.aws.plan.slow_seconds = (0.15, 0.15)
        fl.aws.set_rate(1.0)
        args = ("run", PLAYBOOK, "--node", RUNNER, "--incident", "race", "--execute", "--approve")
        first = _spawn(lb.directory, *args)
        deadline = time.monotonic() + 60
        while _records(store, "race", "run.start") == 0:
            assert first.poll() is None and time.monotonic() < deadline, "the first run never started"
            time.sleep(0.05)
        second = _spawn(lb.directory, *args)
        _out2, err2 = second.communicate(timeout=120)
        still_running = first.poll() is None
        out1, err1 = first.communicate(timeout=300)
        fl.aws.set_rate(0.0)
        assert still_running, "the first run finished before the second was refused: no overlap tested"
        assert first.returncode == 0, out1 + err1
        lines = [ln for ln in err2.splitlines() if ln.strip()]
        assert second.returncode == 2 and len(lines) == 1, err2
        assert "is being run by" in lines[0] and "race" in lines[0], lines[0]
        # run again once the first is done: everything is already done
        third = revoke_cli(*args, cwd=lb.directory)
        assert third.returncode == 0 and " 0 actions done" in third.stdout, third.stdout + third.stderr
        assert _records(store, "race", "run.start") == 2  # the refused run never started
        check_one_replacement_each(demo_incident_state(lb))
        record_figures("concurrency_lock", {"refusal": lines[0], "first": out1.strip().splitlines()[0]})


def test_simultaneous_fresh_runs_declare_once(revoke_cli, tmp_path: Path) -> None:
    """Both processes start before either has declared the incident: exactly one declares it."""
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY))
    (tmp_path / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [{"type": "inventory", "path": "inventory.yaml"}]}))
    assert revoke_cli("collect", cwd=tmp_path).returncode == 0
    outcomes: list[tuple[int, str]] = []
    rounds = 4
    for i in range(rounds):
        args = ("run", PLAYBOOK, "--node", "host:ci-runner-7", "--incident", f"twin-{i}", "--execute", "--approve")
        procs = [_spawn(tmp_path, *args) for _ in range(2)]
        for p in procs:
            _out, err = p.communicate(timeout=120)
            outcomes.append((p.returncode, err.strip()))
        assert _records(tmp_path / ".revoke" / "revoke.db", f"twin-{i}", "declared") == 1
    record_figures("concurrency_declare", {"rounds": rounds, "outcomes": outcomes})
    for rc, err in outcomes:
        assert "internal error" not in err and "Traceback" not in err, err
        # the loser either ran after the winner (nothing left to do) or refused with one clear line
        assert rc == 0 or (rc == 2 and len(err.splitlines()) == 1 and err.startswith("error: incident")), (rc, err)
