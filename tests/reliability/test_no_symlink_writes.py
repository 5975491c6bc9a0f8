"""No write follows a symbolic link: every file revoke writes (report, signed statement, export,
sweep output, the store) refuses a target that is a link (exit 2, one line) and leaves the file
the link points at unchanged; what it does write is 0600.

Each case plants a link to a victim file (or a dangling link, or a linked folder) where revoke
is asked to write, in a small inventory-only workspace with one verified incident."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.reliability.reliability_testlib import INVENTORY, Workspace

PLAYBOOK = "compromised-ci-supply-chain"
MANUAL = ["aws:access_key:AKIAEXAMPLE", "vault:password:secret/ci/db#password"]
VICTIM = b"victim content: must never change\n"


@pytest.fixture(scope="module")
def pristine(revoke_cli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("links")
    (root / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY))
    (root / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [{"type": "inventory", "path": "inventory.yaml"}]}))
    ws = Workspace(root, root / ".revoke" / "revoke.db", root / "revoke.yaml")
    assert revoke_cli("collect", **ws.cli).returncode == 0
    assert revoke_cli("run", PLAYBOOK, "--node", "host:ci-runner-7", "--incident", "i1", "--execute",
                      **ws.cli).returncode == 0
    for node in MANUAL:
        assert revoke_cli("attest", "--incident", "i1", node, "--note", "by hand", **ws.cli).returncode == 0
    ws.snapshot()
    yield root


@pytest.fixture
def ws(pristine: Path, tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    shutil.copytree(pristine, root, symlinks=True)
    return Workspace(root, root / ".revoke" / "revoke.db", root / "revoke.yaml")


@pytest.fixture
def key(tmp_path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = tmp_path / "signing.pem"
    path.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    victim.chmod(0o644)
    return victim


WRITERS = {
    "report --out": (["report", "--incident", "i1", "--out", "{target}"], "report.md"),
    "report --format html --out": (["report", "--incident", "i1", "--format", "html", "--out", "{target}"], "r.html"),
    "export --out": (["export", "--out", "{target}"], "graph.graphml"),
    "export --format json --out": (["export", "--format", "json", "--out", "{target}"], "graph.json"),
    "sweep --out": (["sweep", "--fail-on", "none", "--out", "{target}"], "sweep.txt"),
    "sweep --format json --out": (["sweep", "--format", "json", "--fail-on", "none", "--out", "{target}"], "s.json"),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("link", ["to a victim", "dangling"])
def test_output_through_a_link_is_refused(revoke_cli, ws: Workspace, tmp_path: Path, writer: str, link: str) -> None:
    args, name = WRITERS[writer]
    victim = _victim(tmp_path) if link == "to a victim" else tmp_path / "not-yet-there"
    target = ws.root / "out" / name
    target.parent.mkdir()
    target.symlink_to(victim)
    res = revoke_cli(*[a.replace("{target}", str(target)) for a in args], **ws.cli)
    line = res.error_line()
    assert "symbolic link" in line and str(target) in line, line
    assert target.is_symlink()
    if link == "to a victim":
        assert victim.read_bytes() == VICTIM and stat.S_IMODE(victim.stat().st_mode) == 0o644
    else:
        assert not victim.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == [name], "a temporary file was left behind"


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_outputs_are_private_and_replace_the_old_file(revoke_cli, ws: Workspace, writer: str) -> None:
    args, name = WRITERS[writer]
    target = ws.root / "out" / name
    target.parent.mkdir()
    target.write_bytes(b"old")
    target.chmod(0o644)
    other = ws.root / "out" / "hardlink"
    other.hardlink_to(target)
    res = revoke_cli(*[a.replace("{target}", str(target)) for a in args], **ws.cli)
    assert res.returncode == 0, res.stdout + res.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes() not in (b"", b"old")
    assert other.read_bytes() == b"old", "the write went through the old file's inode"


def test_signed_statement_through_a_link_is_refused_before_anything_is_written(
        revoke_cli, ws: Workspace, tmp_path: Path, key: Path) -> None:
    victim = _victim(tmp_path)
    report = ws.root / "report.md"
    Path(f"{report}.sig.json").symlink_to(victim)
    res = revoke_cli("report", "--incident", "i1", "--out", str(report), "--sign", str(key), **ws.cli)
    line = res.error_line()
    assert "signed statement" in line and "symbolic link" in line, line
    assert victim.read_bytes() == VICTIM
    assert not report.exists(), "the report was written although its statement could not be"


def test_store_file_through_a_link_is_refused(revoke_cli, ws: Workspace, tmp_path: Path) -> None:
    # another program's SQLite database, reached through a link where the store should be
    victim_db = tmp_path / "other-app.db"
    shutil.copy(ws.store, victim_db)
    before = victim_db.read_bytes()
    link = ws.root / "linked.db"
    link.symlink_to(victim_db)
    for cmd in (["collect"], ["blast-radius", "host:ci-runner-7"], ["verify", "--incident", "i1", "--no-collect"]):
        res = revoke_cli(*cmd, **{**ws.cli, "store": link})
        assert "symbolic link" in res.error_line()
        assert victim_db.read_bytes() == before


def test_new_store_through_a_dangling_link_is_refused(revoke_cli, ws: Workspace, tmp_path: Path) -> None:
    planted = tmp_path / "elsewhere" / "created-by-revoke.db"
    planted.parent.mkdir()
    link = ws.root / "new.db"
    link.symlink_to(planted)
    res = revoke_cli("collect", **{**ws.cli, "store": link})
    assert "symbolic link" in res.error_line()
    assert not planted.exists()


@pytest.mark.parametrize("side", ["-wal", "-shm"])
def test_store_side_file_through_a_link_is_refused(revoke_cli, ws: Workspace, tmp_path: Path, side: str) -> None:
    victim = _victim(tmp_path)
    Path(f"{ws.store}{side}").unlink(missing_ok=True)
    Path(f"{ws.store}{side}").symlink_to(victim)
    res = revoke_cli("collect", **ws.cli)
    assert "symbolic link" in res.error_line()
    assert victim.read_bytes() == VICTIM and stat.S_IMODE(victim.stat().st_mode) == 0o644


def test_new_store_in_a_linked_folder_is_refused(revoke_cli, ws: Workspace, tmp_path: Path) -> None:
    elsewhere = tmp_path / "victim-dir"
    elsewhere.mkdir()
    (ws.root / "state").symlink_to(elsewhere)
    res = revoke_cli("collect", **{**ws.cli, "store": ws.root / "state" / "revoke.db"})
    assert "symbolic link" in res.error_line()
    assert list(elsewhere.iterdir()) == []
