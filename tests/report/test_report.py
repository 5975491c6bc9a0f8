"""The incident report built from a recorded incident: every section in every format, no secret
value, the hash-chain check, the picture's grouping and a self-contained HTML file."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from revoke.report import build_report, render
from revoke.report_graph import build_boxes, layout
from tests.report.report_testlib import (
    APP_KEY,
    CA,
    CA_KEY,
    CANARIES,
    CHILD,
    HOST,
    KV_APP,
    KV_DB,
    PASSWORD,
    ROLE,
    RUNNER_KEY,
    TOKEN,
    USER,
    Lab,
    cert,
)

MD_SECTIONS = ["# Incident report: inc-", "## Summary", "## Incident", "## Timeline", "## Blast radius", "### Credentials",
               "### Holders and identities", "## Revoked", "## Rotated", "## Reissued", "## Skipped", "## Covered",
               "## Manual tasks", "## Failed or not done", "## Observed during the window",
               "## After containment: observed use and attempts", "## Verification", "## Journal hash chain"]
HTML_SECTIONS = ["<h2>Incident</h2>", "<h2>Blast radius</h2>", "<svg", "<h2>Timeline</h2>", "<h2>Revoked</h2>",
                 "<h2>Rotated</h2>", "<h2>Reissued</h2>", "<h2>Skipped</h2>", "<h2>Covered</h2>", "<h2>Manual tasks</h2>",
                 "<h2>Failed or not done</h2>", "<h2>Observed during the window</h2>", "<h2>Verification</h2>",
                 "<h2>Journal hash chain</h2>"]
JSON_KEYS = {"format", "generated_at", "incident", "timeline", "blast_radius", "steps", "revoked", "rotated", "reissued",
             "skipped", "covered", "manual", "escrowed", "trust_removed", "failed", "pending", "after", "journal",
             "verification", "summary", "observed"}


@pytest.fixture(scope="module")
def reports(big: Lab) -> dict[str, dict]:
    return {s: build_report(big.store, big.journal(f"inc-{s}")) for s in ("clean", "dirty", "unverified")}


def test_json_sections_and_content(reports: dict[str, dict]) -> None:
    r = reports["clean"]
    assert set(r) == JSON_KEYS
    inc = r["incident"]
    assert inc["id"] == "inc-clean" and inc["sources"] == [HOST] and inc["playbook"] == "compromised-ci-supply-chain"
    assert len(inc["playbook_digest"]) == 64 and inc["declared_by"] and inc["declared_at"]
    events = [e["event"] for e in r["timeline"]]
    for ev in ("collect", "declared", "plan", "run.start", "action", "run.end", "attest", "verify"):
        assert ev in events, ev
    acts = [e for e in r["timeline"] if e["event"] == "action"]
    # 3 manual (one: re-provision the runner with its key's replacement, from the escrow), 1 covered
    # and 2 skip have no action
    assert len(acts) == len(r["steps"]) - 6
    assert all(a["intent_at"] and a["outcome_at"] and a["status"] == "done" for a in acts)

    br = r["blast_radius"]
    creds = {c["id"]: c for c in br["credentials"]}
    assert set(creds) == {RUNNER_KEY, APP_KEY, TOKEN, CHILD, KV_APP, KV_DB, PASSWORD, CA, CA_KEY} | {cert(i) for i in range(250)}
    assert {h["id"] for h in br["holders"]} == {USER, ROLE}
    assert creds[APP_KEY]["path"] == [HOST, TOKEN, KV_APP, APP_KEY]
    assert creds[APP_KEY]["rels"] == ["stores", "can_read", "stores"]
    assert creds[cert(7)]["path"] == [HOST, CA_KEY, CA, cert(7)] and creds[cert(7)]["depth"] == 3

    rotated = {e["node"]: e for e in r["rotated"]}
    assert rotated[APP_KEY]["new"] == APP_KEY.replace("AKIA", "AKIN")
    assert rotated[APP_KEY]["stores"] == [{"store": KV_APP, "mode": "write", "connector": "vault", "reason": "",
                                           "written": True, "at": rotated[APP_KEY]["stores"][0]["at"], "changed": True}]
    assert rotated[RUNNER_KEY]["stores"][0]["mode"] == "skip"  # the compromised host gets nothing back
    assert rotated[APP_KEY]["retired"]["verb"] == "disable"
    reissued = {e["node"]: e for e in r["reissued"]}
    assert len(reissued) == 251 and reissued[cert(3)]["new"] == f"{cert(3)}-new"
    assert {e["verb"] for e in r["revoked"]} == {"revoke", "revoke_sessions", "retire_ca"}
    assert {e["node"]: e["reason"] for e in r["skipped"]}.keys() == {KV_APP, KV_DB}
    assert [(e["node"], e["covered_by"]) for e in r["covered"]] == [(CHILD, f"revoke:{TOKEN}")]
    manual = {e["node"]: e for e in r["manual"]}
    assert set(manual) == {PASSWORD, CA_KEY, RUNNER_KEY}
    assert "from the escrow vault:secret/revoke-escrow/" in manual[RUNNER_KEY]["reason"]
    escrowed = {x["replaces"]: x for x in r["escrowed"]}
    assert len(escrowed) == 252 and escrowed[RUNNER_KEY]["deliver_to"][0]["node"] == RUNNER_KEY
    assert escrowed[CA]["escrowed"] and escrowed[CA]["fingerprint"] == "sha256:" + "cd" * 32
    assert manual[PASSWORD]["attestation"]["label"] == "attested, not probed"
    assert manual[PASSWORD]["attestation"]["by"] == "dba@lab"
    assert r["failed"] == [] and r["pending"] == []

    v = r["verification"]
    assert v["last"]["clean"] and v["last"]["survivors"] == [] and v["last"]["open_manual"] == []
    assert v["statement"] == f"no live credential reachable from {HOST} at {v['last']['at']}"
    j = r["journal"]
    assert j["intact"] and j["final_hash"] == j["verified_through"] == j["chain"][-1]["hash"]
    assert r["summary"]["verdict"] == "clean"


def test_json_holds_the_full_chain(big: Lab, reports: dict[str, dict]) -> None:
    chain = reports["clean"]["journal"]["chain"]
    records = big.journal("inc-clean").records()
    assert [c["seq"] for c in chain] == [r.seq for r in records] == list(range(1, len(records) + 1))
    assert all(set(c) == {"seq", "ts", "type", "action", "node", "hash", "prev"} for c in chain)
    assert chain[0]["prev"] == "0" * 64
    assert all(b["prev"] == a["hash"] for a, b in itertools.pairwise(chain))
    parsed = json.loads(render(reports["clean"], "json"))
    assert parsed["journal"]["chain"] == chain


def test_dirty_incident_says_what_failed(reports: dict[str, dict]) -> None:
    r = reports["dirty"]
    failed = {e["node"]: e for e in r["failed"]}
    assert failed[cert(0)]["status"] == "failed" and "ThrottlingException" in failed[cert(0)]["outcome"]["error"]
    assert failed[CA]["status"] == "blocked" and f"reissue:{cert(0)}" in failed[CA]["blocked"]
    assert [m["node"] for m in r["manual"] if m["result"] == "manual-open"] == [CA_KEY]
    v = r["verification"]
    assert not v["last"]["clean"] and [s["node"] for s in v["last"]["survivors"]] == [PASSWORD]
    assert v["statement"].startswith("NOT clean at ") and "1 live credential(s) reachable" in v["statement"]
    assert r["summary"]["verdict"] == "not clean"
    md = render(r, "md")
    assert "**NOT CLEAN**" in md and "FAILED after 1 try" in md and "BLOCKED: blocked by" in md and "OPEN: not attested" in md
    html = render(r, "html")
    assert "NOT CLEAN" in html and "ca · BLOCKED" in html and "certificate · FAILED" in html


def test_unverified_incident_claims_nothing(reports: dict[str, dict]) -> None:
    r = reports["unverified"]
    assert r["verification"]["last"] is None and r["summary"]["verdict"] == "not verified"
    assert r["verification"]["statement"].startswith("never verified")
    assert "NOT VERIFIED" in render(r, "html") and "**NOT VERIFIED**" in render(r, "md")


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_every_section_in_every_format(reports: dict[str, dict], fmt: str) -> None:
    text = render(reports["clean"], fmt)
    if fmt == "md":
        for heading in MD_SECTIONS:
            assert heading in text, heading
    elif fmt == "html":
        for heading in HTML_SECTIONS:
            assert heading in text, heading
    else:
        assert set(json.loads(text)) == JSON_KEYS
    # what every reader needs, whatever the format
    for needle in ("inc-clean", HOST, APP_KEY.replace("AKIA", "AKIN"), KV_APP, "attested, not probed",
                   "no live credential reachable from host:ci-runner-7", reports["clean"]["journal"]["final_hash"],
                   "a secret is a store", f"revoke:{TOKEN}"):
        assert needle in text, (fmt, needle)


@pytest.mark.parametrize("scenario", ["clean", "dirty", "unverified"])
def test_no_planted_secret_in_any_format(reports: dict[str, dict], scenario: str) -> None:
    for fmt in ("md", "html", "json"):
        text = render(reports[scenario], fmt)
        for where, canary in CANARIES.items():
            assert canary not in text, (scenario, fmt, where)
            assert canary.split("CANARY")[1][:8] not in text, (scenario, fmt, where)


def test_html_is_self_contained(reports: dict[str, dict]) -> None:
    html = render(reports["dirty"], "html")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert not re.search(r"""(?:src|href|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "http://" not in html and "https://" not in html
    for banned in ("<script", "<link", "@import", "<img", "<iframe", "<object", "@font-face"):
        assert banned not in html.lower(), banned
    assert all(ref.startswith("#") for ref in re.findall(r"url\(\s*['\"]?([^)'\"]*)", html))  # in-file references only
    assert "default-src 'none'" in html  # and a viewer is told not to fetch anything


def test_values_are_escaped(small: Lab) -> None:
    from tests.report.report_testlib import record_incident

    record_incident(small.store, small.plan, small.playbook, "inc-<script>|x", "clean")
    report = build_report(small.store, small.journal("inc-<script>|x"))
    html = render(report, "html")
    assert "<script>" not in html and "inc-&lt;script&gt;|x" in html
    md = render(report, "md")
    # a code span shows its text literally; outside code spans nothing may open a tag or a cell
    assert "`inc-<script>\\|x`" in md
    assert "<script>" not in re.sub(r"`[^`]*`", "", md)


def test_picture_groups_the_certificates(reports: dict[str, dict]) -> None:
    boxes, edges = build_boxes(reports["dirty"]["blast_radius"])
    grouped = [b for b in boxes if b.grouped]
    assert [(b.kind, b.style, len(b.members)) for b in grouped] == [("certificate", "done", 249)]
    assert {m for b in boxes for m in b.members} >= {cert(i) for i in range(250)}
    assert len(boxes) < 20
    assert (CA, grouped[0].key, 249) in edges and (CA, cert(0), 1) in edges
    width, height = layout(boxes, edges)
    # no two boxes overlap, every box is inside the picture, every edge goes one column right
    for i, a in enumerate(boxes):
        assert a.x >= 0 and a.x + 172 <= width and a.y >= 0 and a.y + 40 <= height
        for b in boxes[i + 1:]:
            if a.depth == b.depth:
                assert abs(a.y - b.y) >= 40, (a.key, b.key)
    by_key = {b.key: b for b in boxes}
    assert all(by_key[b].depth == by_key[a].depth + 1 for a, b, _ in edges)
    svg = render(reports["dirty"], "html")
    assert "249 \u00d7 certificate" in svg and svg.count('<g class="node') == len(boxes)


def test_picture_has_every_outcome_colour(reports: dict[str, dict]) -> None:
    styles = {b.style for b in build_boxes(reports["dirty"]["blast_radius"])[0]}
    assert styles == {"source", "done", "covered", "manual-attested", "manual-open", "skipped", "failed", "holder",
                      "holder-done"}


def test_edited_record_breaks_the_chain(small: Lab) -> None:
    before = build_report(small.store, small.journal("inc-clean"))
    assert before["journal"]["intact"]
    seq = next(c["seq"] for c in before["journal"]["chain"] if c["type"] == "outcome")
    small.store.db.execute("UPDATE journal SET data = replace(data, '\"ok\": true', '\"ok\": false') "
                           "WHERE incident='inc-clean' AND seq=?", (seq,))
    after = build_report(small.store, small.journal("inc-clean"))
    j = after["journal"]
    assert not j["intact"] and j["broken_at"] == seq and "modified" in j["message"]
    assert j["verified_through"] == before["journal"]["chain"][seq - 2]["hash"]
    assert after["summary"]["verdict"] == "not clean"
    assert "cannot be relied on" in after["verification"]["statement"]
    assert "**BROKEN**" in render(after, "md") and "BROKEN" in render(after, "html")
    # the other incident in the same store is untouched
    assert build_report(small.store, small.journal("inc-dirty"))["journal"]["intact"]


def test_deleted_record_breaks_the_chain(small: Lab) -> None:
    small.store.db.execute("DELETE FROM journal WHERE incident='inc-clean' AND seq=5")
    j = build_report(small.store, small.journal("inc-clean"))["journal"]
    assert not j["intact"] and j["broken_at"] == 5
