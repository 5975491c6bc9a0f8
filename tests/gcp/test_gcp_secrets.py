"""No private key material in nodes, edges, meta, findings, results, errors or logs."""

from __future__ import annotations

import base64
import json
import logging
import os

import pytest

from connectors.gcp import GcpConnector
from examples.lab.gcp_iam_double import GcpIamDouble
from revoke.connector import ActionContext, ConnectorError

TRANSPORT_LOGGER = "google.cloud.iam_admin_v1.services.iam.transports.grpc"


def canaries(key_json: str) -> list[str]:
    pem = json.loads(key_json)["private_key"]
    body = [line for line in pem.splitlines() if line and "-----" not in line]
    # raw, JSON-escaped and base64 (how the SDK would log `private_key_data`) forms
    return ["PRIVATE KEY", key_json, *body[1:4], pem.replace("\n", "\\n")[40:120],
            base64.b64encode(key_json.encode()).decode()[:60]]


def everything_logged(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    out, err = capfd.readouterr()
    # `extra` fields (where the SDK puts payloads) are on the record, not in its message
    records = " ".join(repr(r.__dict__) for r in caplog.records)
    return "\n".join([out, err, caplog.text, records])


@pytest.fixture
def seeded(double: GcpIamDouble, new_project) -> dict:
    p = new_project()
    email = double.add_service_account(p, "secret-holder")
    other = double.add_service_account(p, "target-sa")
    double.add_binding(other, "roles/iam.serviceAccountKeyAdmin", f"serviceAccount:{email}")
    return {"project": p, "email": email, "key": double.add_key(email)}


def test_no_key_material_leaks(seeded: dict, double: GcpIamDouble, monkeypatch: pytest.MonkeyPatch,
                               caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GOOGLE_SDK_PYTHON_LOGGING_SCOPE", "google")
    caplog.set_level(logging.DEBUG)
    conn = GcpConnector({"type": "gcp", "projects": [seeded["project"]], "endpoint": double.endpoint})
    assert "GOOGLE_SDK_PYTHON_LOGGING_SCOPE" not in os.environ
    ctx = ActionContext(incident="inc-secrets", dry_run=False)
    out = conn.collect()
    node = next(n for n in out.nodes if n.id == f"gcp:service_account_key:{seeded['key']['key_id']}")
    rep = conn.create_replacement(node, ctx)
    texts = [repr(rep), str(rep.material), repr(conn.probe(node)), repr(conn.act("rotate", node, ctx)),
             repr(conn.siblings(node)), repr(conn.discard_replacement(rep.new_id, ctx))]
    double.deny("EnableServiceAccountKey")
    with pytest.raises(ConnectorError) as err:
        conn.act("rollback", node, ctx)
    texts.append(str(err.value))
    assert "PERMISSION_DENIED" in texts[-1]
    conn.close()
    blob = json.dumps({
        "nodes": [n.to_dict() for n in out.nodes], "edges": [e.to_dict() for e in out.edges],
        "meta": out.meta, "findings": [vars(f) for f in out.findings], "texts": texts,
    }, default=str)
    logged = everything_logged(caplog, capfd)
    assert "gcp.replacement.created" in logged  # the capture works
    new_json = rep.material.get("key_json")
    assert new_json and seeded["key"]["key_json"] != new_json
    for key_json in (seeded["key"]["key_json"], new_json):
        for canary in canaries(key_json):
            assert canary not in blob
            assert canary not in logged


def test_the_log_capture_would_see_a_leak(seeded: dict, double: GcpIamDouble,
                                          caplog: pytest.LogCaptureFixture,
                                          capfd: pytest.CaptureFixture[str]) -> None:
    """Control: with the SDK's transport logger forced back to DEBUG, the payload does show up,
    so the test above would fail if the connector stopped pinning it."""
    caplog.set_level(logging.DEBUG)
    conn = GcpConnector({"type": "gcp", "projects": [seeded["project"]], "endpoint": double.endpoint})
    conn.collect()
    sdk_logger = logging.getLogger(TRANSPORT_LOGGER)
    saved = sdk_logger.level
    sdk_logger.setLevel(logging.DEBUG)
    try:
        node = next(n for n in conn.collect().nodes if n.kind.value == "service_account_key")
        rep = conn.create_replacement(node, ActionContext(incident="inc-control", dry_run=False))
    finally:
        sdk_logger.setLevel(saved)
        conn.close()
    logged = everything_logged(caplog, capfd)
    pem = json.loads(rep.material.get("key_json") or "{}")["private_key"]
    body = [line for line in pem.splitlines() if line and "-----" not in line]
    # the SDK logs the response as JSON, private_key_data base64-encoded: look for the id at least
    assert "Received response" in logged and rep.new_id.rsplit(":", 1)[1] in logged
    assert body
    encoded = base64.b64encode((rep.material.get("key_json") or "").encode()).decode()
    assert encoded[:60] in logged
