"""Untrust tasks in a plan that replaces a CA: after the reissues, before the retirement, one per holder."""

from __future__ import annotations

from pathlib import Path

from revoke.config import Config, ConnectorConfig, EscrowConfig
from revoke.model import Edge, Node, NodeKind, Relation
from revoke.plan import build_plan
from revoke.playbook import load_playbook
from revoke.store import Store

CA = "aws:iot_ca:" + "c" * 64
KEY = "x509:private_key:" + "d" * 64
IOT = "aws:iot:111122223333/us-east-1"
CERTS = [f"aws:iot_certificate:{i:064x}" for i in range(2)]


def _plan(tmp: Path, *, emergency: bool = False):
    store = Store(f"sqlite:///{tmp / 's.db'}")
    nodes = [Node(CA, NodeKind.CA, "aws", name="Device CA"), Node(KEY, NodeKind.PRIVATE_KEY, "x509"),
             Node("host:pki-box", NodeKind.HOST), Node("host:gw-1", NodeKind.HOST), Node("host:gone", NodeKind.HOST,
             status="deleted"), Node(IOT, NodeKind.WORKLOAD, "aws"), *(Node(c, NodeKind.CERTIFICATE, "aws") for c in CERTS)]
    edges = [Edge("host:pki-box", KEY, Relation.STORES), Edge(KEY, CA, Relation.DERIVES),
             Edge("host:gw-1", CA, Relation.TRUSTS, attrs={"path": "/etc/gw/ca.pem", "paths": ["/etc/gw/ca.pem"]}),
             Edge("host:gone", CA, Relation.TRUSTS, attrs={"path": "/x.pem"}),
             Edge(IOT, CA, Relation.TRUSTS, attrs={"path": "IoT CA registry"}),
             *(Edge(CA, c, Relation.ISSUED) for c in CERTS)]
    store.replace_snapshot("inventory", "inventory", nodes, edges, {}, [])
    graph = store.compile()
    # an escrow receives the new CA's key and the reissued devices' keys: without one, revoke
    # contains only (revokes) and creates no CA
    config = Config("test", [ConnectorConfig("aws", "aws")], EscrowConfig("aws", "revoke/escrow/", "aws"))
    return build_plan(load_playbook("compromised-ca"), store, graph, config, [KEY], emergency=emergency)


def test_untrust_after_the_reissues_before_the_retirement(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    steps = plan.by_id()
    gw = steps[f"untrust:{CA}->host:gw-1"]
    assert gw.verb == "manual" and gw.node == "host:gw-1"
    assert gw.depends_on == [f"create_ca:{CA}", *sorted(f"reissue:{c}" for c in CERTS)]
    assert gw.trust["before"] == f"retire_ca:{CA}" and gw.trust["paths"] == ["/etc/gw/ca.pem"]
    assert "/etc/gw/ca.pem" in gw.reason and "sha256:" + "c" * 64 in gw.reason and f"retire_ca:{CA}" in gw.reason
    # the IoT registry's trust goes with the CA's retirement there; a dead holder needs nothing
    assert steps[f"untrust:{CA}->{IOT}"].verb == "covered"
    assert steps[f"untrust:{CA}->{IOT}"].depends_on == [f"retire_ca:{CA}"]
    assert f"untrust:{CA}->host:gone" not in steps
    order = [s.id for s in plan.executable()]
    assert order.index(f"retire_ca:{CA}") > max(order.index(f"reissue:{c}") for c in CERTS)


def test_emergency_says_the_old_ca_goes_first(tmp_path: Path) -> None:
    gw = _plan(tmp_path, emergency=True).by_id()[f"untrust:{CA}->host:gw-1"]
    assert "--emergency retires the old CA first" in gw.reason
