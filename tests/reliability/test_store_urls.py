"""A store URL that cannot keep anything is refused before anything runs, by every command, and
leaves no file behind; `revoke demo --keep DIR` never overwrites what DIR already holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.hostile_testlib import make_workspace, one_error_line
from tests.reliability.reliability_testlib import Workspace, record_figures

# URLs naming no file that can persist: in-memory, URI query strings, no path, a device, a directory
NOT_PERSISTENT = ["sqlite:///:memory:", "sqlite:///file::memory:?cache=shared", "sqlite:///x.db?mode=memory",
                  "sqlite:///x.db?mode=ro", "sqlite:///", "sqlite:////dev/null", "sqlite:///a-directory"]
COMMANDS = [["collect"], ["blast-radius", "host:ci-runner-7"], ["explain", "host:ci-runner-7", "host:ci-runner-7"],
            ["plan", "compromised-ci-supply-chain", "--node", "host:ci-runner-7"],
            ["run", "compromised-ci-supply-chain", "--node", "host:ci-runner-7", "--incident", "i1", "--execute"],
            ["verify", "--incident", "i1"], ["sweep"], ["export"], ["report", "--incident", "i1"]]


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    w = make_workspace(tmp_path / "site")
    (w.root / "a-directory").mkdir()
    yield w


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_store_urls_that_cannot_persist_are_refused_by_every_command(revoke_cli, ws: Workspace) -> None:
    failures = []
    before = _listing(ws.root)
    for url in NOT_PERSISTENT:
        for argv in COMMANDS:
            res = revoke_cli(*argv, cwd=ws.root, store=url, config=ws.config, in_process=True)
            try:
                line = one_error_line(res.returncode, res.stderr)
                assert "store" in line, line
                assert _listing(ws.root) == before, f"left behind: {_listing(ws.root) - before}"
            except AssertionError as exc:
                failures.append(f"{url} {argv[0]}: {str(exc)[:300]}")
    # a store file that does not exist: a command that only reads must not create it (nor its folder)
    absent = ws.root / "absent" / "revoke.db"
    for argv in COMMANDS[1:]:
        res = revoke_cli(*argv, cwd=ws.root, store=absent, config=ws.config, in_process=True)
        try:
            assert "no store at" in one_error_line(res.returncode, res.stderr)
            assert _listing(ws.root) == before, f"left behind: {_listing(ws.root) - before}"
        except AssertionError as exc:
            failures.append(f"absent store {argv[0]}: {str(exc)[:300]}")
    record_figures("store_urls", {"urls": len(NOT_PERSISTENT) + 1, "commands": len(COMMANDS)})
    assert not failures, "\n".join(failures)


def test_memory_store_is_refused_with_a_reason(revoke_cli, ws: Workspace) -> None:
    res = revoke_cli("collect", cwd=ws.root, store="sqlite:///:memory:", config=ws.config, in_process=True)
    assert "cannot persist" in one_error_line(res.returncode, res.stderr)
    assert not (ws.root / ":memory:").exists()


# what a directory may already hold that the lab would write
EXISTING = {"revoke.yaml": "connectors: []\n", "inventory.yaml": "nodes: []\n", ".revoke/revoke.db": "mine",
            "pki/ca.pem": "mine", "demo-incident-report.md": "# mine\n"}


def test_demo_keep_never_overwrites(revoke_cli, tmp_path: Path) -> None:
    failures = []
    for name, content in EXISTING.items():
        keep = tmp_path / name.replace("/", "_")
        (keep / name).parent.mkdir(parents=True, exist_ok=True)
        (keep / name).write_text(content)
        res = revoke_cli("demo", "--keep", str(keep), "--devices", "1", cwd=tmp_path, timeout=300)
        try:
            line = one_error_line(res.returncode, res.stderr)
            assert "already exists" in line and name.split("/")[0] in line, line
            assert (keep / name).read_text() == content
            assert _listing(keep) == {name, *([name.split("/")[0]] if "/" in name else [])}, _listing(keep)
        except AssertionError as exc:
            failures.append(f"{name}: {str(exc)[:300]}")
    # a file where the directory should be
    plain = tmp_path / "plain-file"
    plain.write_text("mine")
    res = revoke_cli("demo", "--keep", str(plain), "--devices", "1", cwd=tmp_path, timeout=300)
    if res.returncode != 2 or "not a directory" not in res.stderr or plain.read_text() != "mine":
        failures.append(f"plain file: {res.returncode} {res.stderr[-300:]}")
    assert not failures, "\n".join(failures)
