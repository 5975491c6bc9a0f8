"""GCP observed use: each key's last authentication from a Policy Analyzer double (REST, paged),
joined to the keys the IAM double (gRPC) serves; a project without the API is a finding."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.gcp.usage import key_id_of
from examples.lab.gcp_iam_double import GcpIamDouble
from examples.lab.policy_analyzer_double import PolicyAnalyzerDouble


@pytest.fixture
def doubles() -> Iterator[tuple[GcpIamDouble, PolicyAnalyzerDouble]]:
    with GcpIamDouble() as iam, PolicyAnalyzerDouble(page_size=1) as pa:
        yield iam, pa


def test_last_authentication_per_key(doubles: tuple[GcpIamDouble, PolicyAnalyzerDouble], tmp_path: Path,
                                     revoke_cli: Any) -> None:
    iam, pa = doubles
    for project in ("obs-proj", "closed-proj"):
        iam.add_project(project)
    email = iam.add_service_account("obs-proj", "deployer")
    used, idle = iam.add_key(email), iam.add_key(email)
    at = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
    pa.add("obs-proj", email, used["key_id"], at)
    pa.add("obs-proj", email, "0" * 40, at)  # a key the collection does not know: left out
    pa.deny("closed-proj")
    (tmp_path / "revoke.yaml").write_text(
        f"connectors:\n  - type: gcp\n    projects: [obs-proj, closed-proj]\n    endpoint: {iam.endpoint}\n"
        f"    observations: true\n    activity_endpoint: {pa.endpoint_url}\n")
    run = revoke_cli("collect", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "gcp.activity_unavailable" in run.stdout and "closed-proj" in run.stdout
    assert sum("obs-proj" in r for r in pa.requests) == 2  # two pages of one
    node = f"gcp:service_account_key:{used['key_id']}"
    data = revoke_cli("blast-radius", node, "--observed", "--format", "json", cwd=tmp_path).json()
    [event] = next(c for c in data["credentials"] if c["id"] == node)["observed"]
    assert event == {"at": at.isoformat(), "by": node, "action": "authenticated", "source": "gcp:policy_analyzer",
                     "target": f"gcp:service_account:{email}"}
    other = revoke_cli("blast-radius", f"gcp:service_account_key:{idle['key_id']}", "--observed", "--format", "json",
                       cwd=tmp_path).json()
    assert all(c["observed"] == [] for c in other["credentials"])
    assert used["key_json"] not in (tmp_path / ".revoke" / "revoke.db").read_text(errors="replace")


def test_key_id_of() -> None:
    assert key_id_of("//iam.googleapis.com/projects/p/serviceAccounts/a@p.iam.gserviceaccount.com/keys/abc") == "abc"
    assert key_id_of("//iam.googleapis.com/projects/p/serviceAccounts/a") == ""
