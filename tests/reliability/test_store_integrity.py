"""A damaged store is reported, never silently rebuilt; an edited journal fails `revoke verify`.

Each case runs the real CLI in-process against a small inventory-only workspace with one executed
incident (its credentials are manual tasks, attested), so verify is clean before the damage."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from tests.reliability.reliability_testlib import INVENTORY, Workspace, record_figures

if TYPE_CHECKING:
    from tests.conftest import CliRun

PLAYBOOK = "compromised-ci-supply-chain"
MANUAL = ["aws:access_key:AKIAEXAMPLE", "vault:password:secret/ci/db#password"]
FIGURES: dict[str, str] = {}


@pytest.fixture(scope="module")
def pristine(revoke_cli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("integrity")
    (root / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY))
    (root / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [{"type": "inventory", "path": "inventory.yaml"}]}))
    ws = Workspace(root, root / ".revoke" / "revoke.db", root / "revoke.yaml")
    assert revoke_cli("collect", **ws.cli).returncode == 0
    run = revoke_cli("run", PLAYBOOK, "--node", "host:ci-runner-7", "--incident", "i1", "--execute", **ws.cli)
    assert run.returncode == 0, run.stdout + run.stderr
    for node in MANUAL:
        assert revoke_cli("attest", "--incident", "i1", node, "--note", "done by hand", **ws.cli).returncode == 0
    res = revoke_cli("verify", "--incident", "i1", **ws.cli)
    assert res.returncode == 0, res.stdout + res.stderr
    ws.snapshot()  # checkpoint: the whole store is in the main file
    yield root
    record_figures("store_integrity", FIGURES)


@pytest.fixture
def ws(pristine: Path, tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(pristine, root)
    for side in ("-wal", "-shm"):
        (root / ".revoke" / f"revoke.db{side}").unlink(missing_ok=True)
    return Workspace(root, root / ".revoke" / "revoke.db", root / "revoke.yaml")


def _one_line_error(res: CliRun, what: str) -> str:
    FIGURES[what] = res.error_line()
    return FIGURES[what]


COMMANDS = {
    "blast-radius": ["blast-radius", "host:ci-runner-7"],
    "verify": ["verify", "--incident", "i1", "--no-collect"],
    "run": ["run", PLAYBOOK, "--incident", "i1", "--execute"],
    "collect": ["collect"],
}


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
@pytest.mark.parametrize("damage", ["truncated_half", "garbage_header", "truncated_to_header"])
def test_damaged_store_is_reported_not_rebuilt(revoke_cli, ws: Workspace, damage: str, cmd: str) -> None:
    data = ws.store.read_bytes()
    if damage == "truncated_half":
        data = data[: len(data) // 2]
    elif damage == "garbage_header":
        data = b"not a database, just bytes" + data[26:]
    else:
        data = data[:100]
    ws.store.write_bytes(data)
    res = revoke_cli(*COMMANDS[cmd], **ws.cli)
    line = _one_line_error(res, f"{damage} / {cmd}")
    assert "corrupt" in line or "unreadable" in line or "malformed" in line, line
    assert ws.store.read_bytes() == data, "the damaged store was modified"


def test_empty_store_file_is_not_silently_recreated(revoke_cli, ws: Workspace) -> None:
    """A store truncated to 0 bytes (disk full, a bad copy) must not become a fresh empty store
    that forgets every incident."""
    ws.store.write_bytes(b"")
    for cmd in ("verify", "collect", "run"):
        res = revoke_cli(*COMMANDS[cmd], **ws.cli)
        line = _one_line_error(res, f"empty store / {cmd}")
        assert "empty file" in line, line
        assert ws.store.read_bytes() == b"", "an empty store file was silently initialised"


@pytest.mark.parametrize("edit", ["data", "type", "delete", "reorder"])
def test_edited_journal_fails_verify_and_names_the_record(revoke_cli, ws: Workspace, edit: str) -> None:
    db = sqlite3.connect(ws.store)
    seq = db.execute("SELECT seq FROM journal WHERE incident='i1' AND type='attest' ORDER BY seq LIMIT 1").fetchone()[0]
    if edit == "data":
        db.execute("UPDATE journal SET data=? WHERE incident='i1' AND seq=?", ('{"by": "someone-else", "note": "x"}', seq))
    elif edit == "type":
        db.execute("UPDATE journal SET type='note' WHERE incident='i1' AND seq=?", (seq,))
    elif edit == "delete":
        db.execute("DELETE FROM journal WHERE incident='i1' AND seq=?", (seq,))
    else:
        db.execute("UPDATE journal SET seq=-1 WHERE incident='i1' AND seq=?", (seq,))
        db.execute("UPDATE journal SET seq=? WHERE incident='i1' AND seq=?", (seq, seq + 1))
        db.execute("UPDATE journal SET seq=? WHERE incident='i1' AND seq=-1", (seq + 1,))
    db.commit()
    db.close()
    res = revoke_cli("verify", "--incident", "i1", "--no-collect", **ws.cli)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "TAMPERED" in res.stdout and f"record {seq}" in res.stdout, res.stdout
    FIGURES[f"journal {edit}"] = next(ln for ln in res.stdout.splitlines() if "TAMPERED" in ln)
