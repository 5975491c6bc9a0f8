"""Journal tamper evidence: the declaration is in the chain (an edited incidents row is caught), a
journal key signs the head at every verify, attestation and finalize (a rewrite with recomputed
hashes is caught), the head of each such record is logged (a truncation shows against that copy),
and the report says plainly what an unsigned chain cannot prove.

Each case damages a copy of a small inventory-only workspace (one incident: run, two attestations,
a clean verify) the way someone with write access to the store would, recomputing every hash."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.reliability.reliability_testlib import INVENTORY, Workspace

PLAYBOOK = "compromised-ci-supply-chain"
MANUAL = ["aws:access_key:AKIAEXAMPLE", "vault:password:secret/ci/db#password"]
UNSIGNED = "unsigned chain: detects edits, not a rewrite by someone with write access to the store"
REPO = Path(__file__).resolve().parents[2]


def _key(path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path


def _workspace(revoke_cli, root: Path, *, signed: bool) -> dict[str, Any]:
    """The incident, and the `journal.head` events its verify and attestations logged (a SIEM's copy)."""
    (root / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY))
    config: dict[str, Any] = {"connectors": [{"type": "inventory", "path": "inventory.yaml"}]}
    if signed:
        _key(root / "journal-key.pem")
        config["journal"] = {"signing_key": "journal-key.pem"}
    (root / "revoke.yaml").write_text(yaml.safe_dump(config))
    ws = Workspace(root, root / ".revoke" / "revoke.db", root / "revoke.yaml")
    assert revoke_cli("collect", **ws.cli).returncode == 0
    assert revoke_cli("run", PLAYBOOK, "--node", "host:ci-runner-7", "--incident", "i1", "--execute",
                      **ws.cli).returncode == 0
    heads = []
    for node in MANUAL:
        res = revoke_cli("--log-format", "json", "attest", "--incident", "i1", node, "--note", "by hand", **ws.cli)
        heads += _heads(res.stderr)
    res = revoke_cli("--log-format", "json", "verify", "--incident", "i1", **ws.cli)
    assert res.returncode == 0, res.stdout + res.stderr
    heads += _heads(res.stderr)
    ws.snapshot()
    return {"heads": heads}


def _heads(stderr: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [e for e in events if e.get("event") == "journal.head"]


@pytest.fixture(autouse=True)
def _no_key_left_behind() -> Iterator[None]:
    yield
    from revoke import journal_key

    journal_key.configure(None, None)  # in-process runs: the next test's library calls start unconfigured


@pytest.fixture(scope="module")
def pristine(revoke_cli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, Any]]:
    out: dict[bool, Any] = {}
    for signed in (True, False):
        root = tmp_path_factory.mktemp("signed" if signed else "unsigned")
        out[signed] = {"root": root, **_workspace(revoke_cli, root, signed=signed)}
    yield out


def _copy(pristine: dict[bool, Any], tmp_path: Path, *, signed: bool) -> tuple[Workspace, list[dict[str, Any]]]:
    root = tmp_path / "ws"
    shutil.copytree(pristine[signed]["root"], root)
    return Workspace(root, root / ".revoke" / "revoke.db", root / "revoke.yaml"), pristine[signed]["heads"]


def _rewrite(ws: Workspace, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    """What someone with write access to the store can do: change the records, then recompute
    every `prev` and hash so the chain checks again."""
    from revoke.journal import GENESIS, digest

    cols = ("seq", "ts", "type", "action", "node", "data", "prev", "hash")
    with sqlite3.connect(ws.store) as db:
        rows = [dict(zip(cols, r, strict=True)) for r in db.execute(
            f"SELECT {', '.join(cols)} FROM journal WHERE incident='i1' ORDER BY seq")]
        rows = edit(rows)
        prev = GENESIS
        for r in rows:
            r["prev"] = prev
            r["hash"] = prev = digest("i1", r["seq"], r["ts"], r["type"], r["action"], r["node"], r["data"], prev)
        db.execute("DELETE FROM journal WHERE incident='i1'")
        db.executemany("INSERT INTO journal VALUES ('i1',?,?,?,?,?,?,?,?)", [tuple(r[c] for c in cols) for r in rows])


def _edit_data(type_: str, change: Callable[[dict[str, Any]], None], *, last: bool = False):
    def edit(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        target = [r for r in rows if r["type"] == type_][-1 if last else 0]
        data = json.loads(target["data"])
        change(data)
        target["data"] = json.dumps(data, sort_keys=True)
        return rows
    return edit


def _strip(types: tuple[str, ...]):
    def edit(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for r in rows:
            if r["type"] in types:
                data = json.loads(r["data"])
                data.pop("head_signature", None)
                if r["type"] == "declared" and "declared" in types:
                    data["journal_key"] = None
                r["data"] = json.dumps(data, sort_keys=True)
        return rows
    return edit


REWRITES = {
    "attestation's author": _edit_data("attest", lambda d: d.update(by="someone-else@elsewhere")),
    "verify made clean": _edit_data("verify", lambda d: d.update(survivors=[], note="edited"), last=True),
    "run.end before the signed records": _edit_data("run.end", lambda d: d.update(done=99)),
    "plan": _edit_data("plan", lambda d: d.update(sources=["host:someone-else"])),
    "signatures stripped from verify and attestations": _strip(("verify", "attest")),
}


@pytest.mark.parametrize("rewrite", sorted(REWRITES))
def test_rewrite_with_recomputed_hashes_is_caught_with_a_key(revoke_cli, pristine, tmp_path: Path,
                                                              rewrite: str) -> None:
    ws, _ = _copy(pristine, tmp_path, signed=True)
    _rewrite(ws, REWRITES[rewrite])
    res = revoke_cli("verify", "--incident", "i1", "--no-collect", **ws.cli)
    assert res.returncode == 1 and "TAMPERED" in res.stdout, res.stdout + res.stderr
    journal_line = res.stdout.splitlines()[0]
    assert "head signature does not match" in journal_line or "signatures were stripped" in journal_line, journal_line
    rep = revoke_cli("report", "--incident", "i1", "--format", "json", **ws.cli)
    assert rep.returncode == 1 and not rep.json()["journal"]["intact"], rep.stderr


@pytest.mark.parametrize("rewrite", sorted(REWRITES))
def test_without_a_key_a_rewrite_passes_and_the_report_says_so(revoke_cli, pristine, tmp_path: Path,
                                                                 rewrite: str) -> None:
    ws, _ = _copy(pristine, tmp_path, signed=False)
    _rewrite(ws, REWRITES[rewrite])
    rep = revoke_cli("report", "--incident", "i1", "--format", "json", **ws.cli)
    chain = rep.json()["journal"]
    assert chain["intact"] and chain["protection"] == UNSIGNED and UNSIGNED in chain["message"], chain["message"]
    for fmt in ("md", "html"):
        assert UNSIGNED in revoke_cli("report", "--incident", "i1", "--format", fmt, **ws.cli).stdout


def test_an_intact_signed_chain_checks(revoke_cli, pristine, tmp_path: Path) -> None:
    ws, heads = _copy(pristine, tmp_path, signed=True)
    res = revoke_cli("verify", "--incident", "i1", "--no-collect", **ws.cli)
    assert res.returncode == 0, res.stdout
    rep = revoke_cli("report", "--incident", "i1", "--format", "json", *_head_args(heads[-1]), **ws.cli)
    chain = rep.json()["journal"]
    assert rep.returncode == 0 and chain["intact"] and chain["signed"], chain["message"]
    # declared, two attestations, the verify in the fixture, and this verify
    assert chain["signatures_verified"] == 5 and chain["last_signed_record"] == chain["records"]
    assert f"holds the published head at record {heads[-1]['head']['seq']}" in chain["message"]
    assert [h["record"] for h in heads] == ["attest", "attest", "verify"] and all(h["signed"] for h in heads)


def _head_args(event: dict[str, Any]) -> list[str]:
    return ["--head", f"{event['head']['seq']}:{event['head']['hash']}"]


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_truncation_is_caught_against_the_logged_head(revoke_cli, pristine, tmp_path: Path, cut: int,
                                                      signed: bool) -> None:
    ws, heads = _copy(pristine, tmp_path, signed=signed)
    with sqlite3.connect(ws.store) as db:
        n = db.execute("SELECT max(seq) FROM journal WHERE incident='i1'").fetchone()[0]
        db.execute("DELETE FROM journal WHERE incident='i1' AND seq > ?", (n - cut,))
    # the store alone still reads as a chain: a prefix of a chain is a chain
    assert revoke_cli("report", "--incident", "i1", "--format", "json", **ws.cli).json()["journal"]["intact"]
    rep = revoke_cli("report", "--incident", "i1", "--format", "json", *_head_args(heads[-1]), **ws.cli)
    assert rep.returncode == 1, rep.stdout + rep.stderr
    chain = rep.json()["journal"]
    assert not chain["intact"] and chain["message"].startswith(
        f"truncated: the published head is record {n} "), chain["message"]
    assert "no live credential reachable" not in rep.json()["verification"]["statement"]


def test_a_rewritten_head_is_caught_against_the_logged_one(revoke_cli, pristine, tmp_path: Path) -> None:
    ws, heads = _copy(pristine, tmp_path, signed=False)
    _rewrite(ws, REWRITES["attestation's author"])
    rep = revoke_cli("report", "--incident", "i1", "--format", "json", *_head_args(heads[-1]), **ws.cli)
    assert rep.returncode == 1 and "differs from the published head" in rep.json()["journal"]["message"]


ROW_EDITS = {
    "sources": "UPDATE incidents SET sources='[\"host:somewhere-else\"]'",
    "playbook name": "UPDATE incidents SET playbook_name='quiet-playbook'",
    "playbook digest": "UPDATE incidents SET playbook_digest='" + "0" * 64 + "'",
    "options": "UPDATE incidents SET options='{\"nodes\": [\"host:somewhere-else\"], \"window\": null, \"emergency\": false}'",
    "created_at": "UPDATE incidents SET created_at='2020-01-01T00:00:00+00:00'",
}


@pytest.mark.parametrize("edit", sorted(ROW_EDITS))
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_an_edited_incidents_row_is_caught(revoke_cli, pristine, tmp_path: Path, edit: str, signed: bool) -> None:
    ws, _ = _copy(pristine, tmp_path, signed=signed)
    with sqlite3.connect(ws.store) as db:
        db.execute(ROW_EDITS[edit] + " WHERE id='i1'")
    res = revoke_cli("verify", "--incident", "i1", "--no-collect", **ws.cli)
    assert res.returncode == 1 and "TAMPERED" in res.stdout, res.stdout
    assert "the incidents row differs from the declaration in the chain (record 1)" in res.stdout


def test_a_store_written_before_the_declaration_moved_into_the_chain_still_reads(revoke_cli, tmp_path: Path) -> None:
    """A journal written by an earlier revoke (its `declared` record without the row's fields)."""
    root = tmp_path / "legacy"
    root.mkdir()
    (root / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY))
    (root / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [{"type": "inventory", "path": "inventory.yaml"}]}))
    ws = Workspace(root, root / ".revoke" / "revoke.db", root / "revoke.yaml")
    assert revoke_cli("collect", **ws.cli).returncode == 0
    assert revoke_cli("run", PLAYBOOK, "--node", "host:ci-runner-7", "--incident", "i1", "--execute",
                      **ws.cli).returncode == 0
    _rewrite(ws, lambda rows: [_legacy(r) for r in rows])
    for node in MANUAL:
        assert revoke_cli("attest", "--incident", "i1", node, "--note", "by hand", **ws.cli).returncode == 0
    res = revoke_cli("verify", "--incident", "i1", "--no-collect", **ws.cli)
    assert res.returncode == 0, res.stdout
    assert "chain intact; legacy: declaration outside the chain; " + UNSIGNED in res.stdout.splitlines()[0]


def _legacy(row: dict[str, Any]) -> dict[str, Any]:
    if row["type"] == "declared":
        data = json.loads(row["data"])
        row["data"] = json.dumps({k: data[k] for k in ("by", "sources", "playbook", "playbook_digest", "window")},
                                 sort_keys=True)
    return row


KEY_ERRORS = {
    "missing file": (["--journal-key", "{dir}/nope.pem"], None, "cannot read the signing key"),
    "not a key": (["--journal-key", "{dir}/inventory.yaml"], None, "not a PEM private key"),
    "RSA key": (["--journal-key", "{dir}/rsa.pem"], None, "not Ed25519"),
    "journal section not a mapping": ([], "just-a-path.pem", "field journal: expected a mapping"),
    "unknown journal key": ([], {"signing_key": "k.pem", "public": "x"}, "field journal: unknown key(s)"),
    "empty signing_key": ([], {"signing_key": ""}, "field journal.signing_key"),
}


@pytest.mark.parametrize("case", sorted(KEY_ERRORS))
def test_a_bad_journal_key_is_an_input_error_before_anything_is_written(revoke_cli, pristine, tmp_path: Path,
                                                                          case: str) -> None:
    ws, _ = _copy(pristine, tmp_path, signed=False)
    args, section, said = KEY_ERRORS[case]
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    (ws.root / "rsa.pem").write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    if section is not None:
        config = yaml.safe_load(ws.config.read_text())
        config["journal"] = section
        ws.config.write_text(yaml.safe_dump(config))
    before = ws.snapshot()
    res = revoke_cli(*[a.replace("{dir}", str(ws.root)) for a in args], "attest", "--incident", "i1", MANUAL[0],
                     "--note", "again", **ws.cli)
    assert said in res.error_line()
    assert ws.snapshot() == before


def test_head_option_is_checked(revoke_cli, pristine, tmp_path: Path) -> None:
    ws, _ = _copy(pristine, tmp_path, signed=False)
    for bad in ("12", "x:" + "a" * 64, "3:" + "a" * 63, "0:" + "a" * 64, "3:" + "G" * 64):
        assert "--head" in revoke_cli("report", "--incident", "i1", "--head", bad, **ws.cli).error_line()


def test_signing_runs_without_the_lab_as_a_child_process(tmp_path: Path) -> None:
    """The same check through a real child process: the key given on the command line."""
    root = tmp_path / "child"
    root.mkdir()
    (root / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY))
    (root / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [{"type": "inventory", "path": "inventory.yaml"}]}))
    key = _key(tmp_path / "k.pem")
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def revoke(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "revoke", "--journal-key", str(key), *args], cwd=root, env=env,
                              capture_output=True, text=True, timeout=120)

    assert revoke("collect").returncode == 0
    assert revoke("run", PLAYBOOK, "--node", "host:ci-runner-7", "--incident", "c1", "--execute").returncode == 0
    for node in MANUAL:
        assert revoke("attest", "--incident", "c1", node, "--note", "done").returncode == 0
    res = revoke("verify", "--incident", "c1", "--no-collect")
    assert res.returncode == 0 and "signed chain (key sha256:" in res.stdout, res.stdout + res.stderr


def test_a_chain_rewritten_without_any_signature_is_named(revoke_cli, pristine, tmp_path: Path) -> None:
    """The one rewrite a key cannot catch in the store alone: every signature and the declared key
    removed. With the key configured, the check says the chain carries no signature of it."""
    ws, heads = _copy(pristine, tmp_path, signed=True)
    _rewrite(ws, _strip(("declared", "verify", "attest", "finalize")))
    chain = revoke_cli("report", "--incident", "i1", "--format", "json", **ws.cli).json()["journal"]
    assert chain["protection"] == UNSIGNED
    assert "a journal key is configured but this chain carries no signature of it" in chain["message"]
    # and against the logged head, the rewrite shows
    rep = revoke_cli("report", "--incident", "i1", "--format", "json", *_head_args(heads[-1]), **ws.cli)
    assert rep.returncode == 1 and "differs from the published head" in rep.json()["journal"]["message"]
