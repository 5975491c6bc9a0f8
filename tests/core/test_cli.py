"""The `revoke` command as a user runs it: collect, blast-radius (JSON contract), explain."""

from __future__ import annotations

from pathlib import Path

from core_testlib import ROLE, USER, file_state

RUNNER = "host:ci-runner-7"
KEY = "aws:access_key:AKIACIDEPLOYER"
TOKEN = "vault:token:acc-ci"
KV = "vault:secret:secret/ci/db"
PASSWORD = "vault:password:secret/ci/db#password"
WINDOW = "2026-03-31T10:00Z/2026-03-31T13:00Z"


def _entry(id_: str, kind: str, provider: str, path: list[str], live: bool | None = None, status: str = "") -> dict:
    out = {"id": id_, "kind": kind, "provider": provider, "depth": len(path) - 1, "path": path}
    return {**out, "live": live, "status": status} if status else out


EXPECTED_CREDENTIALS = [
    _entry(KEY, "access_key", "aws", [RUNNER, KEY], True, "active"),
    _entry("aws:access_key:AKIALATER", "access_key", "aws", [RUNNER, "aws:access_key:AKIALATER"], True, "active"),
    _entry(TOKEN, "token", "vault", [RUNNER, TOKEN], True, "active"),
    _entry(KV, "secret", "vault", [RUNNER, TOKEN, KV], True, "active"),
    _entry("vault:token:acc-child", "token", "vault", [RUNNER, TOKEN, "vault:token:acc-child"], True, "active"),
    _entry(PASSWORD, "password", "vault", [RUNNER, TOKEN, KV, PASSWORD], True, "active"),
]
EXPECTED_HOLDERS = [
    _entry(RUNNER, "host", "", [RUNNER]),
    _entry(USER, "user", "aws", [RUNNER, KEY, USER]),
    _entry(ROLE, "role", "aws", [RUNNER, KEY, USER, ROLE]),
]


def test_blast_radius_json_contract(revoke_cli, lab: dict[str, Path]) -> None:
    res = revoke_cli("blast-radius", RUNNER, "--format", "json", cwd=lab["dir"], store=lab["store"])
    assert (res.returncode, res.stderr) == (0, "")
    data = res.json()
    assert list(data) == ["sources", "credentials", "holders"]
    assert data["sources"] == [RUNNER]
    assert data["credentials"] == EXPECTED_CREDENTIALS
    assert data["holders"] == EXPECTED_HOLDERS
    for entry in data["credentials"]:
        assert list(entry) == ["id", "kind", "provider", "depth", "path", "live", "status"]
    for entry in data["holders"]:
        assert list(entry) == ["id", "kind", "provider", "depth", "path"]


def test_blast_radius_with_a_window_and_several_sources(revoke_cli, lab: dict[str, Path]) -> None:
    res = revoke_cli("blast-radius", RUNNER, "host:unrelated", "--window", WINDOW, "--format", "json",
                     cwd=lab["dir"], store=lab["store"])
    assert res.returncode == 0, res.stderr
    data = res.json()
    assert data["sources"] == [RUNNER, "host:unrelated"]
    # the key stored on the runner only after the window is out; the other source's key is in
    assert {e["id"] for e in data["credentials"]} == (
        {e["id"] for e in EXPECTED_CREDENTIALS} - {"aws:access_key:AKIALATER"} | {"aws:access_key:AKIAUNRELATED"})
    assert {(e["id"], e["depth"]) for e in data["holders"]} == {(RUNNER, 0), ("host:unrelated", 0), (USER, 2), (ROLE, 3)}


def test_blast_radius_table(revoke_cli, lab: dict[str, Path]) -> None:
    res = revoke_cli("blast-radius", RUNNER, cwd=lab["dir"], store=lab["store"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == (
        f"Blast radius of {RUNNER}: 6 credentials to act on, 3 holders/identities exposed")
    assert PASSWORD in res.stdout


def test_explain_prints_each_hop_with_its_relation(revoke_cli, lab: dict[str, Path]) -> None:
    res = revoke_cli("explain", RUNNER, ROLE, cwd=lab["dir"], store=lab["store"])
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        RUNNER,
        f"  --stores--> {KEY}",
        f"  --authenticates_as--> {USER}",
        f"  --can_assume--> {ROLE}",
    ]
    res = revoke_cli("explain", RUNNER, "aws:access_key:AKIAUNRELATED", "--format", "json", cwd=lab["dir"], store=lab["store"])
    assert res.returncode == 1
    assert res.json() == {"node": RUNNER, "target": "aws:access_key:AKIAUNRELATED", "reachable": False, "hops": []}


def test_queries_leave_the_store_untouched(revoke_cli, lab: dict[str, Path]) -> None:
    before = file_state(lab["store"])
    assert revoke_cli("blast-radius", RUNNER, "--format", "json", cwd=lab["dir"], store=lab["store"]).returncode == 0
    assert file_state(lab["store"]) == before
