"""`revoke sweep` through the real entry point: exit codes, formats, --out, JSON log events."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.sweep.sweep_testlib import ago, edge, make_store, node

ROOT_TOKEN = "vault:token:rootacc"


@pytest.fixture
def store(tmp_path: Path) -> str:
    nodes = [
        node("host:ci-runner-7", "host"),
        node("aws:access_key:AKIAOLD", "access_key", created=ago(200), last_used=ago(100)),
        node(ROOT_TOKEN, "token", attrs={"policies": ["root"], "orphan": False, "ttl": 0, "path": "auth/token/root"}),
        node("x509:cert:" + "ab" * 32, "certificate", name="<script>alert(1)</script>", expires=ago(-5),
             attrs={"subject": "CN=x", "issuer": "CN=gone|pipe"}),
    ]
    edges = [edge("host:ci-runner-7", "stores", "aws:access_key:AKIAOLD"), edge("host:ci-runner-7", "stores", ROOT_TOKEN)]
    return make_store(tmp_path / "s.db", nodes, edges)


@pytest.fixture
def clean_store(tmp_path: Path) -> str:
    return make_store(tmp_path / "clean.db", [node("host:a", "host"), node("aws:access_key:AKIAOK", "access_key",
                                                                             created=ago(5), last_used=ago(1))], [])


def test_exit_codes_follow_fail_on(revoke_cli, store: str, clean_store: str) -> None:
    code, out, _ = revoke_cli("sweep", store=store, in_process=True)
    assert code == 1 and "vault-token-root" in out and "critical" in out
    assert revoke_cli("sweep", "--fail-on", "none", store=store, in_process=True)[0] == 0
    assert revoke_cli("sweep", "--fail-on", "critical", store=store, in_process=True)[0] == 1
    assert revoke_cli("sweep", "--fail-on", "info", store=clean_store, in_process=True)[0] == 0
    # the clean store has a finding only below medium? none at all: exit 0 at any threshold
    code, out, _ = revoke_cli("sweep", store=clean_store, in_process=True)
    assert code == 0 and "no findings" in out


def test_rules_file_turns_findings_off(revoke_cli, store: str, tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text("rules:\n  vault-token-root: {severity: low}\n  vault-token-no-expiry: false\n"
                     "  cert-expiring: false\n  cert-ca-unknown: {severity: low}\n")
    code, out, _ = revoke_cli("sweep", "--rules", str(rules), "--format", "json", store=store, in_process=True)
    data = json.loads(out)
    assert code == 0, data["summary"]  # nothing left at high or above
    rules_seen = {f["rule"] for f in data["findings"]}
    assert "vault-token-no-expiry" not in rules_seen and "vault-token-root" in rules_seen
    assert data["rules"]["vault-token-no-expiry"]["enabled"] is False


def test_bad_input_exits_2(revoke_cli, store: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  nope-rule: {}\n")
    code, _, err = revoke_cli("sweep", "--rules", str(bad), store=store, in_process=True)
    assert code == 2 and f"{bad}:2: rules.nope-rule: unknown rule id" in err
    assert revoke_cli("sweep", "--format", "xml", store=store, in_process=True)[0] == 2
    code, _, err = revoke_cli("sweep", "--fail-on", "severe", store=store, in_process=True)
    assert code == 2 and "--fail-on" in err
    code, _, err = revoke_cli("sweep", store=f"sqlite:///{tmp_path}/missing.db", in_process=True)
    assert code == 2 and "revoke collect" in err


def test_json_output_shape(revoke_cli, store: str) -> None:
    code, out, _ = revoke_cli("sweep", "--format", "json", store=store, in_process=True)
    data = json.loads(out)
    assert code == 1 and data["fail_on"] == "high"
    assert set(data) == {"generated", "summary", "fail_on", "rules", "findings"}
    assert data["summary"]["critical"] == 1
    root = next(f for f in data["findings"] if f["rule"] == "vault-token-root")
    assert set(root) == {"rule", "severity", "reason", "node", "kind", "provider", "evidence", "path", "targets"}
    assert root["node"] == ROOT_TOKEN and root["kind"] == "token" and root["provider"] == "vault"
    assert root["evidence"]["policies"] == ["root"] and root["targets"] == [ROOT_TOKEN]
    # findings are worst first
    ranks = ["critical", "high", "medium", "low", "info"]
    assert [ranks.index(f["severity"]) for f in data["findings"]] == sorted(ranks.index(f["severity"]) for f in data["findings"])


def test_markdown_and_html_reports(revoke_cli, store: str, tmp_path: Path) -> None:
    md_path, html_path = tmp_path / "out" / "sweep.md", tmp_path / "sweep.html"
    code, out, _ = revoke_cli("sweep", "--format", "md", "--out", str(md_path), store=store, in_process=True)
    assert code == 1 and f"written to {md_path}" in out
    md = md_path.read_text()
    assert md.startswith("# Credential hygiene sweep")
    assert "## Critical (1)" in md and f"`{ROOT_TOKEN}`" in md and "## Rules" in md
    assert "CN=gone\\|pipe" in md  # a pipe in a value cannot break the table
    revoke_cli("sweep", "--format", "html", "--out", str(html_path), store=store, in_process=True)
    page = html_path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "http://" not in page and "https://" not in page
    assert "<script" not in page  # the node name planted above is escaped
    parser = HTMLParser()
    parser.feed(page)  # well-formed enough to parse
    assert "vault-token-root" in page and "Rules" in page


def test_log_format_json_emits_one_ocsf_event_per_finding(revoke_cli, store: str) -> None:
    code, out, err = revoke_cli("--log-format", "json", "sweep", "--format", "json", store=store, in_process=True)
    assert code == 1
    findings = json.loads(out)["findings"]
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    events = [e for e in events if e.get("event") == "sweep.finding"]
    assert len(events) == len(findings)
    root = next(e for e in events if e["finding_info"]["analytic"]["uid"] == "vault-token-root")
    assert root["class_uid"] == 2004 and root["type_uid"] == 200401 and root["severity_id"] == 5
    assert root["level"] == "error" and root["resources"][0]["uid"] == ROOT_TOKEN
    # console logging does not repeat the findings on stderr
    _, _, err = revoke_cli("sweep", "--format", "json", store=store, in_process=True)
    assert "sweep.finding" not in err


def test_sweep_after_revoke_collect(revoke_cli, tmp_path: Path) -> None:
    (tmp_path / "inventory.yaml").write_text("""
nodes:
  - {id: host:ci-runner-7, kind: host}
  - {id: aws:access_key:AKIAEXAMPLE, kind: access_key, created: "2020-01-01T00:00Z", last_used: "2020-02-01T00:00Z"}
edges:
  - {from: host:ci-runner-7, to: aws:access_key:AKIAEXAMPLE, rel: stores}
""")
    (tmp_path / "revoke.yaml").write_text("connectors:\n  - type: inventory\n    path: inventory.yaml\n")
    url = f"sqlite:///{tmp_path}/r.db"
    assert revoke_cli("collect", cwd=tmp_path, store=url, in_process=True)[0] == 0
    code, out, _ = revoke_cli("sweep", "--format", "json", cwd=tmp_path, store=url, in_process=True)
    rules = {(f["rule"], f["node"]) for f in json.loads(out)["findings"]}
    assert code == 0  # medium findings only, default --fail-on high
    assert rules == {("key-unused", "aws:access_key:AKIAEXAMPLE"), ("key-rotation-overdue", "aws:access_key:AKIAEXAMPLE"),
                     ("holder-long-lived-credential", "aws:access_key:AKIAEXAMPLE")}


def test_targets_from_store_for_the_playbook_hand_off(store: str, tmp_path: Path) -> None:
    from revoke.store import Store
    from revoke.sweep import targets_from_store

    s = Store(store, create=False)
    try:
        assert targets_from_store(s) == [ROOT_TOKEN]
        # worst first; at equal severity in rule order (cert-ca-unknown, cert-expiring, holder-..., key-...)
        assert targets_from_store(s, "medium") == [ROOT_TOKEN, "x509:cert:" + "ab" * 32, "aws:access_key:AKIAOLD"]
        rules = tmp_path / "r.yaml"
        rules.write_text("rules:\n  vault-token-root: false\n  vault-token-no-expiry: false\n")
        assert targets_from_store(s, "high", rules=str(rules)) == []
    finally:
        s.close()
