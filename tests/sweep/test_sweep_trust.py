"""Trust store rules: CAs that are dead, retired or unknown and still trusted."""

from __future__ import annotations

from tests.sweep.sweep_testlib import ago, ahead, edge, findings_of, flagged, node


def test_trust_stores_holding_dead_and_unknown_cas() -> None:
    nodes = [
        node("x509:ca:root", "ca", expires=ahead(900), attrs={"subject": "CN=Root"}),
        node("x509:ca:old", "ca", expires=ago(3), attrs={"subject": "CN=Old"}),
        node("x509:ca:stranger", "ca", expires=ahead(900), attrs={"subject": "CN=Stranger"}),
        node("x509:ca:public", "ca", expires=ahead(900), attrs={"subject": "CN=Big Public Root,O=Public Trust"}),
        node("x509:cert:leaf", "certificate", expires=ahead(90)),
        node("host:web-1", "host"),
    ]
    edges = [edge("x509:ca:root", "issued", "x509:cert:leaf")]
    edges += [edge("host:web-1", "trusts", f"x509:ca:{c}", path="/etc/ssl/bundle.pem", paths=["/etc/ssl/bundle.pem"])
              for c in ("root", "old", "stranger", "public")]
    dead = findings_of("trust-store-dead-ca", nodes, edges)
    assert [f.node for f in dead] == ["x509:ca:old"]
    assert dead[0].evidence["trust_stores"] == [{"holder": "host:web-1", "paths": ["/etc/ssl/bundle.pem"]}]
    assert "host:web-1" in dead[0].reason and dead[0].targets == []
    assert flagged("trust-store-unknown-ca", nodes, edges) == {"x509:ca:stranger", "x509:ca:public"}
    assert flagged("trust-store-unknown-ca", nodes, edges, accepted_subjects=["O=Public Trust"]) == {"x509:ca:stranger"}
