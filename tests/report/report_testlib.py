"""A real incident without the lab servers: an inventory-only graph in a store, a plan built by
revoke.plan.build_plan from a shipped playbook, declared by revoke.incident.declare, then journal
records appended by hand the way revoke/execute.py writes them (intent / progress / outcome,
blocked, run.start / run.end), plus attest and verify records the way incident.attest and
verify.verify write them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from revoke.config import Config, ConnectorConfig, EscrowConfig
from revoke.incident import declare
from revoke.journal import Journal
from revoke.model import Edge, Node, NodeKind, Relation
from revoke.plan import Plan, build_plan
from revoke.playbook import load_playbook
from revoke.store import Store

HOST = "host:ci-runner-7"
RUNNER_KEY = "aws:access_key:AKIARUNNERKEY0000001"
APP_KEY = "aws:access_key:AKIAAPPBACKEND000002"
USER = "aws:user:arn:aws:iam::123456789012:user/ci-deployer"
ROLE = "aws:role:arn:aws:iam::123456789012:role/deploy-role"
TOKEN = "vault:token:acc-runner"
CHILD = "vault:token:acc-child"
KV_APP = "vault:secret:secret/ci/aws-app"
KV_DB = "vault:secret:secret/ci/db"
PASSWORD = "vault:password:secret/ci/db#password"
CA = "aws:iot_ca:5a0c1f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccdd"
CA_KEY = "x509:private_key:9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddccbbaa99887766554433221100"

# secret-looking values planted where the report must not look: node attributes, labels,
# snapshot meta and findings, extra outcome keys a connector might add, and a KV payload that
# never enters the store at all
CANARIES = {
    "attr": "AKIACANARYATTR9Q7Z1X/wJalrXUtnFEMIK7MDENGbPxRfiCYCANARY1",
    "label": "hvs.CANARYLABEL2x7Zk9PqRmT4wYvB",
    "meta": "-----BEGIN PRIVATE KEY-----CANARYMETA3",
    "finding": "ghp_CANARYFINDING4abcdefghijklmnopqrstuv",
    "outcome": "s.CANARYOUTCOME5Jq8Lm2Np",
    "kv": "postgres://app:CANARYKV6-hunter2@db.internal/app",
}


@dataclass
class Lab:
    """A store with recorded incidents (see conftest.py), its folder and its URL."""

    dir: Path
    store: Store
    url: str
    plan: Plan
    playbook: Any

    def journal(self, incident: str) -> Journal:
        return Journal(self.store, incident)


def cert(i: int) -> str:
    return f"aws:iot_certificate:{i:064x}"


def inventory(certs: int) -> tuple[list[Node], list[Edge]]:
    n = [
        Node(HOST, NodeKind.HOST, attrs={"note": CANARIES["attr"]}, labels={"env": CANARIES["label"]}),
        Node("package:ai-gateway", NodeKind.PACKAGE),
        Node(RUNNER_KEY, NodeKind.ACCESS_KEY, "aws", attrs={"secret_hint": CANARIES["attr"]}),
        Node(APP_KEY, NodeKind.ACCESS_KEY, "aws"),
        Node(USER, NodeKind.USER, "aws"), Node(ROLE, NodeKind.ROLE, "aws"),
        Node(TOKEN, NodeKind.TOKEN, "vault"), Node(CHILD, NodeKind.TOKEN, "vault"),
        Node(KV_APP, NodeKind.SECRET, "vault"), Node(KV_DB, NodeKind.SECRET, "vault"),
        Node(PASSWORD, NodeKind.PASSWORD, "vault", fingerprint="sha256:" + "ab" * 32),
        Node(CA, NodeKind.CA, "aws"), Node(CA_KEY, NodeKind.PRIVATE_KEY, "x509"),
        Node("host:unrelated", NodeKind.HOST),
    ]
    e = [
        Edge("package:ai-gateway", HOST, Relation.STORES),
        Edge(HOST, RUNNER_KEY, Relation.STORES), Edge(RUNNER_KEY, USER, Relation.AUTHENTICATES_AS),
        Edge(USER, ROLE, Relation.CAN_ASSUME),
        Edge(HOST, TOKEN, Relation.STORES), Edge(TOKEN, CHILD, Relation.PARENT_OF),
        Edge(TOKEN, KV_APP, Relation.CAN_READ), Edge(KV_APP, APP_KEY, Relation.STORES),
        Edge(TOKEN, KV_DB, Relation.CAN_READ), Edge(KV_DB, PASSWORD, Relation.STORES),
        Edge(HOST, CA_KEY, Relation.STORES), Edge(CA_KEY, CA, Relation.DERIVES),
    ]
    for i in range(certs):
        n.append(Node(cert(i), NodeKind.CERTIFICATE, "aws"))
        e.append(Edge(CA, cert(i), Relation.ISSUED))
    return n, e


def config() -> Config:
    # with an escrow, so the device certificates are reissued (their new keys kept there)
    return Config("test", [ConnectorConfig("aws", "aws"), ConnectorConfig("vault", "vault")],
                  EscrowConfig("vault", "secret/revoke-escrow", "vault"))


def build_store(directory: Path, *, certs: int = 3) -> tuple[Store, str, Plan, Any]:
    url = f"sqlite:///{directory / '.revoke' / 'revoke.db'}"
    store = Store(url)
    # thousands of hand-written journal records: durability is not what these tests are about
    store.db.execute("PRAGMA synchronous=OFF")
    nodes, edges = inventory(certs)
    store.replace_snapshot("inventory", "inventory", nodes, edges, {"source": CANARIES["meta"]},
                           [{"severity": "high", "code": "planted", "message": CANARIES["finding"]}])
    graph = store.compile()
    playbook = load_playbook("compromised-ci-supply-chain")
    plan = build_plan(playbook, store, graph, config(), [HOST])
    # the KV payload a connector would have read: it is never written anywhere revoke keeps
    assert CANARIES["kv"] not in repr(nodes) + repr(edges)
    return store, url, plan, playbook


def record_incident(store: Store, plan: Plan, playbook: Any, incident: str, scenario: str) -> Journal:
    """scenario: clean (everything done, every manual task attested, verify clean), dirty (one
    certificate reissue fails, the CA retire is blocked, one manual task open, verify not clean),
    unverified (run, no verify)."""
    j = Journal(store, incident)
    declare(j, playbook, plan, [HOST], emergency=False)
    j.append("run.start", data={"by": "tester@lab"})
    failed: set[str] = set()
    fail_id = next((s.id for s in plan.executable() if s.verb == "reissue"), None) if scenario == "dirty" else None
    for step in plan.executable():
        if any(d in failed for d in step.depends_on):
            j.append("blocked", action=step.id, node=step.node,
                     data={"reason": f"blocked by {', '.join(d for d in step.depends_on if d in failed)}"})
            failed.add(step.id)
            continue
        intent: dict[str, Any] = {"verb": step.verb, "resumed": False}
        if step.verb in ("rotate", "reissue"):
            intent["siblings"] = []
        j.append("intent", action=step.id, node=step.node, data=intent)
        if step.id == fail_id:
            j.append("outcome", action=step.id, node=step.node,
                     data={"ok": False, "error": "aws: iot:RegisterCertificate: ThrottlingException (gave up after 6 tries)",
                           "retryable": True})
            failed.add(step.id)
            continue
        data: dict[str, Any] = {"ok": True, "changed": True, "detail": "", "connector_debug": CANARIES["outcome"]}
        if step.verb in ("rotate", "reissue", "create_ca"):
            new = f"{step.node}-new" if step.kind != "access_key" else step.node.replace("AKIA", "AKIN")
            j.append("progress", action=step.id, node=step.node,
                     data={"event": "created", "old": step.node, "new": new, "fingerprint": "sha256:" + "cd" * 32})
            if step.escrow:
                j.append("progress", action=step.id, node=step.node,
                         data={"event": "escrowed", "new": new, "escrow": step.escrow["where"],
                               "item": step.escrow["item"], "fingerprint": "sha256:" + "cd" * 32, "changed": True})
            for t in step.stores:
                if t["mode"] == "write":
                    j.append("progress", action=step.id, node=step.node,
                             data={"event": "stored", "store": t["store"], "new": new, "changed": True,
                                   "fingerprint": "sha256:" + "cd" * 32})
            if step.verb != "create_ca":
                j.append("progress", action=step.id, node=step.node,
                         data={"event": "retired", "old": step.node, "verb": step.retire or "disable"})
            data["new"] = new
        if step.verb == "revoke" and step.kind == "token":
            data["detail"] = "token and its child tokens revoked"
        j.append("outcome", action=step.id, node=step.node, data=data)
    j.append("run.end", data={"done": len(plan.executable()) - len(failed), "already_done": 0,
                              "failed": {fail_id: "throttled"} if fail_id else {}, "blocked": {}, "retries": 5,
                              "seconds": 0.5})
    if scenario == "unverified":
        return j
    manual = [s.node for s in plan.manual()]
    open_manual = [CA_KEY] if scenario == "dirty" else []
    for node in manual:
        if node not in open_manual:
            j.append("attest", node=node, data={"by": "dba@lab", "note": "rotated by the database owner"})
    j.append("verify", data={"clean": scenario == "clean",
                             "survivors": [PASSWORD] if scenario == "dirty" else [],
                             "open_manual": open_manual, "probes": len(plan.executable()), "chain_ok": True,
                             "failed_steps": sorted(failed)})
    return j
