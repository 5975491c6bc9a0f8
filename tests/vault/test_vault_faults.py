"""Real faults from the real server: a rate-limit quota (429), a 500, a sealed server (503);
and configuration errors. None may escape as a raw hvac/requests exception."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from vault_testlib import connector, require_bao

from examples.lab.vault_lab import OpenBaoServer
from revoke.connector import ActionContext, ConnectorError
from revoke.model import Node, NodeKind


def retry(fn: Any, attempts: int = 20) -> Any:
    """What the executor does with a retryable error: back off and try again."""
    for _ in range(attempts - 1):
        try:
            return fn()
        except ConnectorError as exc:
            if not exc.retryable:
                raise
            time.sleep(0.1)
    return fn()


def test_rate_limit_quota_is_retryable(bao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    root = bao.client()
    root.secrets.kv.v2.create_or_update_secret("rl/one", secret={"a": "b"}, mount_point="secret")
    root.write_data("sys/quotas/rate-limit/kv-slow", data={"path": "secret/", "rate": 1, "interval": "1s"})
    conn = connector(bao, monkeypatch, read_attempts=1)
    patient = connector(bao, monkeypatch)  # reads retried inside the connector (the default)
    store = Node("vault:secret:secret/rl/one", NodeKind.SECRET, attrs={"mount": "secret", "path": "rl/one"})
    try:
        errors = []
        for _ in range(5):
            try:
                conn.store_holds(store)
            except ConnectorError as exc:
                errors.append(exc)
        assert errors, "the quota never produced a 429"
        assert all(e.retryable for e in errors)
        assert "rate limited (429)" in str(errors[0]) and "GET secret/data/rl/one" in str(errors[0])
        assert retry(lambda: conn.store_holds(store)) == set()
        # the same quota does not fail a read that the connector retries itself
        assert [patient.store_holds(store) for _ in range(4)] == [set()] * 4
    finally:
        root.delete("sys/quotas/rate-limit/kv-slow")
        conn.close()
        patient.close()


def test_server_500_is_retryable(bao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    root = bao.client()
    root.sys.enable_auth_method("approle", path="ar500")
    root.write_data("auth/ar500/role/r", data={"token_policies": ["default"]})
    acc = root.write_data("auth/ar500/role/r/secret-id", data={})["data"]["secret_id_accessor"]
    conn = connector(bao, monkeypatch)
    path = "auth/ar500/role/r/secret-id-accessor/destroy"
    conn.api.post(path, {"secret_id_accessor": acc})
    with pytest.raises(ConnectorError) as info:
        conn.api.post(path, {"secret_id_accessor": acc})  # the real server answers 500 here
    assert info.value.retryable and "HTTP 500" in str(info.value)
    # which is why the destroy action looks first: no 500, no change
    node = Node(f"vault:secret_id:ar500/r/{acc}", NodeKind.TOKEN)
    assert conn.act("destroy", node, ActionContext(incident="I", dry_run=False)).changed is False
    conn.close()


def test_missing_token_env_is_a_clear_error(bao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from revoke.connector import connector_class

    monkeypatch.delenv("REVOKE_NO_SUCH_TOKEN", raising=False)
    conn = connector_class("vault")({"url": bao.url, "token_env": "REVOKE_NO_SUCH_TOKEN"})
    with pytest.raises(ConnectorError, match="REVOKE_NO_SUCH_TOKEN"):
        conn.collect()


def test_unreachable_server_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    from revoke.connector import connector_class

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("REVOKE_T", "s.whatever")
    conn = connector_class("vault")({"url": f"http://127.0.0.1:{port}", "token_env": "REVOKE_T", "timeout": 2})
    with pytest.raises(ConnectorError) as info:
        conn.probe(Node("vault:token:abc", NodeKind.TOKEN))
    assert info.value.retryable and "cannot reach Vault" in str(info.value)
    assert "s.whatever" not in str(info.value)


def test_sealed_server_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    require_bao()
    with OpenBaoServer() as sealed:
        conn = connector(sealed, monkeypatch)
        assert conn.probe(Node("vault:token:nope", NodeKind.TOKEN)).live is False
        sealed.client().sys.seal()
        with pytest.raises(ConnectorError) as info:
            conn.collect()
        assert "Vault is sealed (503)" in str(info.value) and not info.value.retryable
        with pytest.raises(ConnectorError, match="sealed"):
            conn.act("revoke", Node("vault:token:nope", NodeKind.TOKEN), ActionContext(incident="I", dry_run=False))
        conn.close()
