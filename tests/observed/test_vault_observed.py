"""Observed use from a real OpenBao audit log: the leaked token read two of three KV secrets
during the window; `blast-radius --observed` marks exactly those two, `explain` shows the hop,
and after the token is revoked its read attempt shows in `verify` as an attempt."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from vault_testlib import require_bao

from examples.lab.vault_lab import OpenBaoServer

POLICY = 'path "secret/data/obs/*" {\n  capabilities = ["read"]\n}\n'
VALUES = {"a": "alpha-canary-value-1", "b": "bravo-canary-value-2", "c": "charlie-canary-value-3"}


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_bao()
    with OpenBaoServer(audit=True, hmac_accessor=False) as bao:
        root = bao.client()
        root.sys.create_or_update_policy("obs-read", POLICY)
        for name, value in VALUES.items():
            root.secrets.kv.v2.create_or_update_secret(f"obs/{name}", secret={"note": value}, mount_point="secret")
        leaked = root.auth.token.create(policies=["obs-read"], ttl="1h", display_name="leaked")["auth"]
        app = root.auth.token.create(policies=["obs-read"], ttl="1h", display_name="app")["auth"]
        attacker, owner = bao.client(leaked["client_token"]), bao.client(app["client_token"])
        kv = attacker.secrets.kv.v2
        kv.read_secret_version("obs/c", mount_point="secret", raise_on_deleted_version=True)  # before the window
        time.sleep(1.1)
        start = datetime.now(UTC)
        kv.read_secret_version("obs/a", mount_point="secret", raise_on_deleted_version=True)
        kv.read_secret_version("obs/b", mount_point="secret", raise_on_deleted_version=True)
        kv.read_secret_version("obs/a", mount_point="secret", raise_on_deleted_version=True)
        # the application's own token reads the third secret: not the attacker's doing
        owner.secrets.kv.v2.read_secret_version("obs/c", mount_point="secret", raise_on_deleted_version=True)
        end = datetime.now(UTC) + timedelta(seconds=1)
        directory = tmp_path_factory.mktemp("observed-vault")
        (directory / "revoke.yaml").write_text(
            "connectors:\n  - type: vault\n"
            f"    url: {bao.url}\n    token_env: OBS_VAULT_TOKEN\n"
            f"    audit_log: {bao.audit_log}\n    observations: true\n")
        yield {"bao": bao, "dir": directory, "env": {"OBS_VAULT_TOKEN": bao.root_token}, "leaked": leaked,
               "app": app, "window": f"{iso(start)}/{iso(end)}", "attacker": attacker}


def secret(name: str) -> str:
    return f"vault:secret:secret/obs/{name}"


def test_blast_radius_observed_marks_exactly_the_secrets_read(world: dict[str, Any], revoke_cli: Any) -> None:
    d, env = world["dir"], world["env"]
    run = revoke_cli("collect", cwd=d, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    token = f"vault:token:{world['leaked']['accessor']}"
    data = revoke_cli("blast-radius", token, "--window", world["window"], "--observed", "--format", "json",
                      cwd=d, env=env).json()
    creds = {c["id"]: c for c in data["credentials"]}
    assert {secret(n) for n in "abc"} <= set(creds)  # potential reach is unchanged
    seen = {cid for cid, c in creds.items() if c["observed"] and cid.startswith("vault:secret:")}
    assert seen == {secret("a"), secret("b")}
    assert len(creds[secret("a")]["observed"]) == 2
    event = creds[secret("b")]["observed"][0]
    assert event["by"] == token and event["action"] == "read" and event["source"] == "vault-audit:lab"
    # observed-used credentials come first
    flags = [bool(c["observed"]) for c in data["credentials"]]
    assert flags == sorted(flags, reverse=True)
    # without --observed the contract is unchanged
    plain = revoke_cli("blast-radius", token, "--format", "json", cwd=d, env=env).json()
    assert all("observed" not in c for c in plain["credentials"])
    tsv = revoke_cli("blast-radius", token, "--window", world["window"], "--observed", "--format", "tsv",
                     cwd=d, env=env).stdout.splitlines()
    assert tsv[0].endswith("\tobserved\tlast_observed")
    counts = {r.split("\t")[1]: r.split("\t")[8] for r in tsv[1:]}
    assert (counts[secret("a")], counts[secret("b")], counts[secret("c")]) == ("2", "1", "0")
    table = revoke_cli("blast-radius", token, "--window", world["window"], "--observed", cwd=d, env=env)
    assert "observed" in table.stdout and "2x, last" in table.stdout
    # explain shows the observed hop next to the potential one
    why = revoke_cli("explain", token, secret("a"), "--format", "json", cwd=d, env=env).json()
    assert [h["rel"] for h in why["hops"]] == ["can_read"]
    assert [(o["from"], o["rel"], o["count"]) for o in why["observed"]] == [(token, "observed_read", 3 - 1)]
    text = revoke_cli("explain", token, secret("a"), cwd=d, env=env).stdout
    assert "observed: " in text and "--observed_read-->" in text
    # nothing secret in the store or the output
    blob = Path(d / ".revoke" / "revoke.db").read_bytes()
    for value in (*VALUES.values(), world["leaked"]["client_token"], world["app"]["client_token"]):
        assert value.encode() not in blob and value not in table.stdout


def test_attempt_after_revocation_shows_in_verify(world: dict[str, Any], revoke_cli: Any) -> None:
    d, env = world["dir"], world["env"]
    token = f"vault:token:{world['leaked']['accessor']}"
    assert revoke_cli("collect", cwd=d, env=env).returncode == 0
    playbook = d / "leaked-token.yaml"
    playbook.write_text(
        "name: leaked-token\ndescription: a leaked Vault token\napplies_to:\n  kinds: [token]\n"
        "actions:\n  token: revoke\n  password: manual\n  api_key: manual\n"
        "  secret: {action: skip, reason: a store}\n")
    run = revoke_cli("run", str(playbook), "--node", token, "--incident", "obs-1", "--execute", cwd=d, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    import hvac

    # provider state: the token is revoked (an unknown accessor is a 400)
    with pytest.raises(hvac.exceptions.InvalidRequest):
        world["bao"].client().auth.token.lookup_accessor(world["leaked"]["accessor"])
    with pytest.raises(hvac.exceptions.Forbidden):
        world["attacker"].secrets.kv.v2.read_secret_version("obs/a", mount_point="secret",
                                                            raise_on_deleted_version=True)
    res = revoke_cli("verify", "--incident", "obs-1", "--format", "json", cwd=d, env=env)
    data = res.json()
    attempts = data["after_containment"]
    assert [(a["node"], a["kind"], a["target"]) for a in attempts] == [(token, "attempt", secret("a"))]
    assert not any("used after containment" in r for r in data["reasons"])
    # the report: what was read during the window, and the attempt after containment
    md = revoke_cli("report", "--incident", "obs-1", "--format", "md", cwd=d, env=env)
    assert md.returncode == 0, md.stderr
    assert "## Observed during the window" in md.stdout and "## After containment" in md.stdout
    report = revoke_cli("report", "--incident", "obs-1", "--format", "json", cwd=d, env=env).json()
    during = {(r["credential"], r["by"]) for r in report["observed"]["during"]}
    assert {(secret("a"), token), (secret("b"), token)} <= during
    assert not any(by == f"vault:token:{world['app']['accessor']}" for _, by in during)
    assert [(a["kind"], a["node"]) for a in report["observed"]["after"]] == [("attempt", token)]
    html = revoke_cli("report", "--incident", "obs-1", "--format", "html", cwd=d, env=env).stdout
    assert "After containment" in html
    for value in VALUES.values():
        assert value not in md.stdout and value not in html


def test_observations_are_off_unless_asked(world: dict[str, Any], revoke_cli: Any, tmp_path: Path) -> None:
    """Without `observations: true`, `collect` reads no observed use; `collect --observations` does."""
    bao, env = world["bao"], world["env"]
    (tmp_path / "revoke.yaml").write_text(
        "connectors:\n  - type: vault\n"
        f"    url: {bao.url}\n    token_env: OBS_VAULT_TOKEN\n    audit_log: {bao.audit_log}\n")
    token = f"vault:token:{world['app']['accessor']}"  # still live: the other test revoked the leaked one
    assert revoke_cli("collect", cwd=tmp_path, env=env).returncode == 0
    plain = revoke_cli("blast-radius", token, "--observed", "--format", "json", cwd=tmp_path, env=env).json()
    assert not any(c["observed"] for c in plain["credentials"])
    assert revoke_cli("collect", "--observations", cwd=tmp_path, env=env).returncode == 0
    seen = revoke_cli("blast-radius", token, "--observed", "--format", "json", cwd=tmp_path, env=env).json()
    assert {c["id"] for c in seen["credentials"] if c["observed"] and c["id"].startswith("vault:secret:")} == {
        secret("c")}
