"""`revoke permissions --playbook P`: least-privilege policies derived from the connectors'
declarations. The Vault policy is loaded into a real OpenBao and checked with sys/capabilities."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from examples.lab.vault_lab import OpenBaoServer
from tests.reliability.reliability_testlib import record_figures

if TYPE_CHECKING:
    from tests.conftest import CliRun

ACTION = re.compile(r"^[a-z0-9-]+:[A-Za-z0-9]+$")


def _perms(revoke_cli: Callable[..., CliRun], cwd: Path, playbook: str, *extra: str) -> dict:
    res = revoke_cli("permissions", "--playbook", playbook, "--format", "json", *extra, cwd=cwd)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def ci(revoke_cli, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _perms(revoke_cli, tmp_path_factory.mktemp("perms"), "compromised-ci-supply-chain")


def _actions(report: dict) -> dict[str, list[str]]:
    return {s["Sid"]: s["Action"] for s in report["aws"]["iam_policy"]["Statement"]}


def test_aws_policy_shape_and_content(ci: dict) -> None:
    policy = ci["aws"]["iam_policy"]
    assert policy["Version"] == "2012-10-17"
    acts = _actions(ci)
    assert all(ACTION.match(a) for s in acts.values() for a in s)
    assert all(a.split(":")[1].startswith(("Get", "List", "Describe", "GenerateCredentialReport"))
               for a in acts["RevokeCollectVerify"])
    # rotate (create, retire), role sessions, secret store writes, IoT reissue
    for needed in ("iam:CreateAccessKey", "iam:UpdateAccessKey", "iam:PutRolePolicy", "secretsmanager:PutSecretValue",
                   "iot:RegisterCertificate", "iot:UpdateCACertificate"):
        assert needed in acts["RevokeActions"], needed
    assert "iam:GetAccountAuthorizationDetails" in acts["RevokeCollectVerify"]
    assert not any(a.endswith("*") or a == "*" for s in acts.values() for a in s)


def test_gcp_custom_role(ci: dict) -> None:
    role = ci["gcp"]["custom_role"]
    assert {"iam.serviceAccountKeys.create", "iam.serviceAccountKeys.disable", "iam.serviceAccountKeys.list",
            "resourcemanager.projects.getIamPolicy"} <= set(role["includedPermissions"])
    assert ci["gcp"]["predefined_roles"] and not ci["gcp"]["not_in_predefined_table"]


def test_narrower_playbook_needs_less(revoke_cli, tmp_path: Path) -> None:
    pb = tmp_path / "keys-only.yaml"
    pb.write_text(yaml.safe_dump({"name": "keys-only", "scope": "self", "actions": {"access_key": "revoke"},
                                  "default_action": "manual"}))
    narrow = _perms(revoke_cli, tmp_path, str(pb))
    acts = _actions(narrow)
    assert "iam:UpdateAccessKey" in acts["RevokeActions"]
    assert "iam:CreateAccessKey" not in acts["RevokeActions"] and "iam:PutRolePolicy" not in acts["RevokeActions"]
    assert "auth/token/create-orphan" not in narrow["vault"]["policy_hcl"]
    assert "iam.serviceAccountKeys.create" not in narrow["gcp"]["custom_role"]["includedPermissions"]
    manual = tmp_path / "manual.yaml"
    manual.write_text(yaml.safe_dump({"name": "look-only", "default_action": "manual"}))
    look = _perms(revoke_cli, tmp_path, str(manual))
    assert [s["Sid"] for s in look["aws"]["iam_policy"]["Statement"]] == ["RevokeCollectVerify"]
    record_figures("permissions", {
        "ci_aws_actions": sum(len(v) for v in _actions(_perms(revoke_cli, tmp_path, "compromised-ci-supply-chain")).values()),
        "keys_only_aws_actions": sum(len(v) for v in acts.values()),
        "look_only_aws_actions": sum(len(s["Action"]) for s in look["aws"]["iam_policy"]["Statement"])})


def test_config_limits_providers_and_text_output(revoke_cli, tmp_path: Path) -> None:
    (tmp_path / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [{"type": "aws", "region": "us-east-1"}]}))
    only = _perms(revoke_cli, tmp_path, "leaked-aws-key")
    assert "aws" in only and "vault" not in only and "gcp" not in only
    text = revoke_cli("permissions", "--playbook", "leaked-aws-key", cwd=tmp_path)
    assert text.returncode == 0 and "## AWS: IAM policy" in text.stdout


@pytest.mark.parametrize("args", [("--format", "xml"), ("--vault-mount", "nope")])
def test_bad_arguments_exit_2(revoke_cli, tmp_path: Path, args: tuple[str, ...]) -> None:
    res = revoke_cli("permissions", "--playbook", "compromised-ci-supply-chain", *args, cwd=tmp_path)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


@pytest.fixture(scope="module")
def bao() -> Iterator[OpenBaoServer]:
    with OpenBaoServer() as server:
        yield server


def test_vault_policy_loads_and_grants_only_what_it_says(revoke_cli, bao: OpenBaoServer, ci: dict, tmp_path: Path) -> None:
    root = bao.client()
    hcl = _perms(revoke_cli, tmp_path, "compromised-ci-supply-chain", "--vault-mount", "kv=kv2")["vault"]["policy_hcl"]
    assert 'path "kv2/data/*"' in hcl
    root.sys.create_or_update_policy("revoke-ci", ci["vault"]["policy_hcl"])  # OpenBao parses it
    token = root.auth.token.create(policies=["revoke-ci"], ttl="10m")["auth"]["client_token"]

    def caps(path: str) -> set[str]:
        return set(root.adapter.post("/v1/sys/capabilities", json={"token": token, "paths": [path]})["capabilities"])

    assert "update" in caps("auth/token/revoke-accessor")
    assert {"update", "sudo"} <= caps("auth/token/create-orphan")
    assert {"create", "update"} <= caps("secret/data/ci/aws-app")
    assert "delete" not in caps("secret/data/ci/aws-app")
    assert caps("sys/seal") == {"deny"} and caps("sys/policies/acl/revoke-ci") == {"read", "list"}
    assert caps("auth/token/create") == {"deny"}
    record_figures("permissions_vault", {"paths": hcl.count("path \""), "gaps": ci["gaps"]})


def test_a_token_holding_exactly_the_printed_vault_policy_collects_everything(
        revoke_cli, bao: OpenBaoServer, ci: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from examples.lab.vault_lab import seed_demo
    from revoke.connector import connector_class

    seed_demo(bao.url, bao.root_token, app_aws=("AKIAPERMSTEST0000000", "x" * 40), gcp_key_json="{}",
              db_password="p" * 20)
    root = bao.client()
    root.sys.create_or_update_policy("revoke-exact", ci["vault"]["policy_hcl"])
    token = root.auth.token.create(policies=["revoke-exact"], ttl="10m")["auth"]["client_token"]
    monkeypatch.setenv("REVOKE_PERMS_TOKEN", token)
    got = connector_class("vault")({"url": bao.url, "token_env": "REVOKE_PERMS_TOKEN"}).collect()
    # parents from raw storage (list + sudo), leases (sudo), capabilities: no area refused
    assert got.meta["parent_source"] == "raw" and got.meta["lease_source"] == "sys/leases/lookup", got.findings
    assert got.meta["capabilities_source"] == "sys/capabilities-accessor"
    assert [f.message for f in got.findings if "403" in f.message or "denied" in f.message.lower()] == []
    # the printed text is for the people granting it: no notes about revoke's own declarations
    text = revoke_cli("permissions", "--playbook", "compromised-ci-supply-chain", cwd=tmp_path)
    assert text.returncode == 0 and "declaration" not in text.stdout.lower() and "gap" not in text.stdout.lower()
