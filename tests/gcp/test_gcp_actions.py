"""Actions, probes and error mapping through the real client against the double."""

from __future__ import annotations

import time

import grpc
import pytest
from google.api_core import exceptions as gexc
from google.cloud import iam_admin_v1
from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport

from connectors.gcp import GcpConnector
from examples.lab.gcp_iam_double import GcpIamDouble
from revoke.connector import ActionContext, ConnectorError, Unsupported
from revoke.model import Node, NodeKind


@pytest.fixture
def setup(double: GcpIamDouble, new_project, make_connector) -> dict:
    """A project with one account holding one key; the connector has collected it."""
    p = new_project()
    email = double.add_service_account(p, "worker-sa")
    key = double.add_key(email)
    conn = make_connector([p])
    nodes = {n.id: n for n in conn.collect().nodes}
    return {"project": p, "email": email, "key": key, "conn": conn,
            "key_node": nodes[f"gcp:service_account_key:{key['key_id']}"],
            "sa_node": nodes[f"gcp:service_account:{email}"]}


@pytest.fixture
def raw_client(double: GcpIamDouble):
    channel = grpc.insecure_channel(double.endpoint)
    yield iam_admin_v1.IAMClient(transport=IAMGrpcTransport(channel=channel))
    channel.close()


def test_disable_is_idempotent_and_kills_the_key(setup: dict, double: GcpIamDouble, ctx: ActionContext) -> None:
    conn, node, key = setup["conn"], setup["key_node"], setup["key"]
    assert double.authenticate(key["key_json"]) is True
    assert conn.probe(node).live is True
    first = conn.act("disable", node, ctx)
    assert (first.ok, first.changed) == (True, True)
    second = conn.act("disable", node, ctx)
    assert (second.ok, second.changed) == (True, False)
    assert double.key_info(key["key_id"])["disabled"] is True
    assert double.authenticate(key["key_json"]) is False
    probe = conn.probe(node)
    assert probe.live is False and probe.signal == "GetServiceAccountKey: disabled=True"
    back = conn.act("rollback", node, ctx)
    assert back.changed is True and conn.act("rollback", node, ctx).changed is False
    assert double.authenticate(key["key_json"]) is True


def test_revoke_then_finalize_deletes(setup: dict, double: GcpIamDouble, ctx: ActionContext) -> None:
    conn, node, key = setup["conn"], setup["key_node"], setup["key"]
    res = conn.act("revoke", node, ctx)
    assert res.changed and res.data["finalize"] == "delete the key"
    assert conn.act("revoke", node, ctx).changed is False
    assert conn.act("finalize", node, ctx).changed is True
    assert double.key_info(key["key_id"]) is None
    assert conn.act("finalize", node, ctx).changed is False
    assert conn.act("revoke", node, ctx).changed is False
    probe = conn.probe(node)
    assert probe.live is False and "NOT_FOUND (key deleted)" in probe.signal
    with pytest.raises(ConnectorError, match="cannot roll back"):
        conn.act("rollback", node, ctx)


def test_dry_run_changes_nothing(setup: dict, double: GcpIamDouble) -> None:
    conn, node, key = setup["conn"], setup["key_node"], setup["key"]
    dry = ActionContext(incident="inc-dry", dry_run=True)
    for action in ("disable", "revoke", "finalize"):
        res = conn.act(action, node, dry)
        assert res.changed is False and res.detail.startswith("dry run: would")
    assert conn.act("disable", setup["sa_node"], dry).changed is False
    assert double.key_info(key["key_id"])["disabled"] is False
    assert double.account_info(setup["email"])["disabled"] is False
    with pytest.raises(ConnectorError, match="dry run"):
        conn.create_replacement(node, dry)


def test_rotate(setup: dict, double: GcpIamDouble, ctx: ActionContext) -> None:
    conn, node, old = setup["conn"], setup["key_node"], setup["key"]
    rep = conn.create_replacement(node, ctx)
    fields = rep.material.reveal()
    assert set(fields) == {"key_json", "private_key_id"}
    assert rep.new_id == f"gcp:service_account_key:{fields['private_key_id']}" and rep.old_id == node.id
    assert rep.kind is NodeKind.SERVICE_ACCOUNT_KEY and rep.attrs["service_account"] == setup["email"]
    assert "PRIVATE KEY" not in repr(rep)
    assert double.authenticate(fields["key_json"]) is True
    assert conn.siblings(node) == {rep.new_id}
    # the executor writes the stores, then finishes the rotation on the old key
    assert conn.act("rotate", node, ctx).changed is True
    assert conn.act("rotate", node, ctx).changed is False
    assert double.authenticate(old["key_json"]) is False and double.authenticate(fields["key_json"]) is True
    # crash recovery: a replacement that never reached its stores is deleted, twice is harmless
    assert conn.discard_replacement(rep.new_id, ctx).changed is True
    assert conn.discard_replacement(rep.new_id, ctx).changed is False
    assert double.key_info(fields["private_key_id"]) is None


def test_siblings_from_a_fresh_connector(setup: dict, double: GcpIamDouble, make_connector) -> None:
    """A resumed run knows the old key only by id and owner; siblings still finds the others."""
    extra = double.add_key(setup["email"])
    bare = Node(setup["key_node"].id, NodeKind.SERVICE_ACCOUNT_KEY, "gcp", owner=setup["email"])
    fresh = make_connector([setup["project"]])
    assert fresh.siblings(bare) == {f"gcp:service_account_key:{extra['key_id']}"}
    only_id = Node(setup["key_node"].id, NodeKind.SERVICE_ACCOUNT_KEY, "gcp")
    assert make_connector([setup["project"]]).probe(only_id).live is True


def test_disabled_account_kills_keys_that_still_list_enabled(
        setup: dict, double: GcpIamDouble, ctx: ActionContext, raw_client) -> None:
    conn, key_node, sa_node, key = setup["conn"], setup["key_node"], setup["sa_node"], setup["key"]
    assert conn.act("disable", sa_node, ctx).changed is True
    assert conn.act("disable", sa_node, ctx).changed is False
    assert double.authenticate(key["key_json"]) is False
    listed = raw_client.list_service_account_keys(request={"name": sa_node.attrs["resource"], "key_types": [1]})
    assert [k.disabled for k in listed.keys] == [False]  # what the real API reports too
    probe = conn.probe(key_node)
    assert probe.live is False
    assert probe.signal == "GetServiceAccount: disabled=True (no key of a disabled account works)"
    sa_probe = conn.probe(sa_node)
    assert (sa_probe.live, sa_probe.signal) == (False, "GetServiceAccount: disabled=True")
    assert conn.act("rollback", sa_node, ctx).changed is True
    assert conn.act("rollback", sa_node, ctx).changed is False
    assert conn.probe(key_node).live is True and double.authenticate(key["key_json"]) is True
    assert conn.act("finalize", sa_node, ctx).changed is False  # accounts are never deleted


def test_ten_key_limit(setup: dict, double: GcpIamDouble, ctx: ActionContext, raw_client) -> None:
    for _ in range(9):
        double.add_key(setup["email"], disabled=True)
    with pytest.raises(ConnectorError) as err:
        setup["conn"].create_replacement(setup["key_node"], ctx)
    assert "maximum of 10 keys" in str(err.value) and err.value.retryable is False
    assert err.value.code == "FAILED_PRECONDITION"
    assert isinstance(err.value.__cause__, gexc.FailedPrecondition)
    with pytest.raises(gexc.FailedPrecondition, match="Precondition check failed"):
        raw_client.create_service_account_key(request={"name": setup["sa_node"].attrs["resource"]})
    # deleting one disabled key frees a slot
    victim = sorted(double.account_info(setup["email"])["keys"])[0]
    if victim == setup["key"]["key_id"]:
        victim = sorted(double.account_info(setup["email"])["keys"])[1]
    raw_client.delete_service_account_key(request={"name": f"{setup['sa_node'].attrs['resource']}/keys/{victim}"})
    assert setup["conn"].create_replacement(setup["key_node"], ctx).new_id.startswith("gcp:service_account_key:")


def test_stale_etag_is_aborted(setup: dict, raw_client) -> None:
    resource = setup["sa_node"].attrs["resource"]
    policy = raw_client.get_iam_policy(request={"resource": resource})
    fresh = type(policy)()
    fresh.CopyFrom(policy)
    fresh.bindings.add(role="roles/iam.serviceAccountUser", members=["user:a@example.com"])
    raw_client.set_iam_policy(request={"resource": resource, "policy": fresh})
    policy.bindings.add(role="roles/iam.serviceAccountUser", members=["user:b@example.com"])
    with pytest.raises(gexc.Aborted, match="concurrent policy changes"):
        raw_client.set_iam_policy(request={"resource": resource, "policy": policy})
    with pytest.raises(gexc.InvalidArgument):
        bad = type(policy)()
        bad.bindings.add(role="roles/viewer", members=["nobody"])
        raw_client.set_iam_policy(request={"resource": resource, "policy": bad})
    members = [m for b in raw_client.get_iam_policy(request={"resource": resource}).bindings for m in b.members]
    assert members == ["user:a@example.com"]


def test_permission_denied_and_not_found_messages(setup: dict, double: GcpIamDouble, ctx: ActionContext) -> None:
    conn, node, key = setup["conn"], setup["key_node"], setup["key"]
    double.deny("DisableServiceAccountKey", key["key_id"])
    with pytest.raises(ConnectorError) as err:
        conn.act("disable", node, ctx)
    text = str(err.value)
    assert err.value.retryable is False and "PERMISSION_DENIED" in text and key["name"] in text
    assert err.value.node == node.id and err.value.call == "DisableServiceAccountKey"
    assert err.value.code == "PERMISSION_DENIED"
    double.clear_faults()
    ghost = Node("gcp:service_account:ghost-sa@nowhere-proj.iam.gserviceaccount.com", NodeKind.SERVICE_ACCOUNT, "gcp")
    with pytest.raises(ConnectorError, match="cannot roll back"):
        conn.act("rollback", ghost, ctx)
    assert conn.act("disable", ghost, ctx).changed is False
    assert conn.probe(ghost).live is False


@pytest.mark.parametrize("code", [grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE,
                                  grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL])
def test_transient_errors_are_retryable(setup: dict, double: GcpIamDouble, ctx: ActionContext,
                                        code: grpc.StatusCode) -> None:
    conn, node = setup["conn"], setup["key_node"]
    double.fail_next("DisableServiceAccountKey", code)
    with pytest.raises(ConnectorError) as err:
        conn.act("disable", node, ctx)
    assert err.value.retryable is True and code.name in str(err.value) and err.value.code == code.name
    # what the executor does next: the same call again
    assert conn.act("disable", node, ctx).changed is True


def test_rate_limit_then_retry_succeeds(setup: dict, double: GcpIamDouble, ctx: ActionContext) -> None:
    conn, node = setup["conn"], setup["key_node"]
    double.rate_limit("DisableServiceAccountKey", calls=0, per_seconds=0.2)
    with pytest.raises(ConnectorError) as err:
        conn.act("disable", node, ctx)
    assert err.value.retryable and "RESOURCE_EXHAUSTED" in str(err.value)
    double.rate_limit("DisableServiceAccountKey", calls=1, per_seconds=0.2)
    time.sleep(0.05)
    assert conn.act("disable", node, ctx).changed is True


def test_undeclared_operations_are_unsupported(setup: dict, ctx: ActionContext) -> None:
    conn, key_node, sa_node = setup["conn"], setup["key_node"], setup["sa_node"]
    for call in (lambda: conn.act("rotate", sa_node, ctx), lambda: conn.act("reissue", key_node, ctx),
                 lambda: conn.create_replacement(sa_node, ctx), lambda: conn.write_store(sa_node, key_node, None, ctx)):
        with pytest.raises(Unsupported) as err:
            call()
        assert err.value.code == "unsupported" and err.value.provider == "gcp"
    assert conn.siblings(sa_node) == set()


def test_probe_that_cannot_decide_says_so(setup: dict, double: GcpIamDouble) -> None:
    double.deny("GetServiceAccountKey")
    probe = setup["conn"].probe(setup["key_node"])
    assert probe.live is None and "PERMISSION_DENIED" in probe.signal


def test_endpoint_policy() -> None:
    with pytest.raises(ConnectorError, match="plaintext is allowed only on loopback"):
        GcpConnector({"type": "gcp", "projects": ["p"], "endpoint": "http://10.0.0.5:8085"})
    with pytest.raises(ConnectorError, match="host:port"):
        GcpConnector({"type": "gcp", "projects": ["p"], "endpoint": "iam.googleapis.com"})
    with pytest.raises(ConnectorError, match="projects"):
        GcpConnector({"type": "gcp"})
    # a remote endpoint is accepted for TLS; nothing is dialled until first use
    GcpConnector({"type": "gcp", "projects": ["p"], "endpoint": "iam.googleapis.com:443"}).close()


def test_missing_credentials_env_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REVOKE_TEST_GCP_KEY", raising=False)
    conn = GcpConnector({"type": "gcp", "projects": ["p"], "credentials_env": "REVOKE_TEST_GCP_KEY"})
    with pytest.raises(ConnectorError, match="REVOKE_TEST_GCP_KEY"):
        conn.collect()


def test_discard_after_restart(setup: dict, double: GcpIamDouble, make_connector) -> None:
    """A new process knows the replacement only by id: found through the key it replaced, or by a
    search of the configured projects; a graph lookup that raises for unknown ids is tolerated."""
    old_node = setup["key_node"]
    graph = {old_node.id: old_node}

    def get_node(node_id: str) -> Node:
        return graph[node_id]  # raises KeyError like the runtime does

    for hint in (True, False):
        new = double.add_key(setup["email"])
        new_id = f"gcp:service_account_key:{new['key_id']}"
        ctx = ActionContext(incident="inc-restart", dry_run=False, get_node=get_node,
                            replacements={old_node.id: new_id} if hint else {})
        fresh = make_connector([setup["project"]])
        before = double.calls.get("ListServiceAccounts", 0)
        assert fresh.discard_replacement(new_id, ctx).changed is True
        assert double.key_info(new["key_id"]) is None
        assert (double.calls.get("ListServiceAccounts", 0) == before) is hint  # the hint avoids a search
        assert make_connector([setup["project"]]).discard_replacement(new_id, ctx).changed is False


def test_unreachable_endpoint_is_retryable(make_connector) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    with pytest.raises(ConnectorError) as err:
        make_connector(["p-unreachable"], endpoint=f"127.0.0.1:{port}", timeout=5).collect()
    assert err.value.retryable is True and "UNAVAILABLE" in str(err.value)
    assert time.perf_counter() - started < 5
