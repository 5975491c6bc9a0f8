"""The observed-use model: edges that annotate and never grant, the annotation, uses and attempts
after containment, the sweep rule, and the audit-log parser on recorded OpenBao lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.vault.audit import name_actors, parse_audit, tombstones
from revoke.blast import blast_radius, resolve_sources
from revoke.graph import CompiledGraph, resolve
from revoke.model import Edge, Node, NodeKind, Relation
from revoke.observed import (
    MAX_EVENTS,
    Observation,
    ObservedEdges,
    after_containment,
    after_reasons,
    annotate,
    to_edges,
)
from tests.sweep.sweep_testlib import ago, flagged, node

T0 = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
TOKEN, APP = "vault:token:leaked", "vault:token:app"
A, B = "vault:secret:secret/obs/a", "vault:secret:secret/obs/b"


def obs(by: str, target: str, minutes: int, outcome: str = "ok", rel: Relation = Relation.OBSERVED_READ) -> Observation:
    return Observation(by, rel, target, T0 + timedelta(minutes=minutes), "read", "vault-audit:lab", outcome)


def graph(edges: list[Edge]) -> CompiledGraph:
    nodes = [Node(TOKEN, NodeKind.TOKEN, "vault"), Node(APP, NodeKind.TOKEN, "vault"),
             Node(A, NodeKind.SECRET, "vault"), Node(B, NodeKind.SECRET, "vault")]
    r = resolve(nodes, edges)
    return CompiledGraph.build(r.nodes, r.edges)


def test_one_edge_per_actor_and_target_newest_events_kept() -> None:
    edges = to_edges([obs(TOKEN, A, m) for m in range(MAX_EVENTS + 20)] + [obs(TOKEN, B, 5)])
    assert [(e.src, e.rel.value, e.dst) for e in edges] == [(TOKEN, "observed_read", A), (TOKEN, "observed_read", B)]
    first = edges[0]
    assert first.attrs["count"] == MAX_EVENTS + 20 and len(first.attrs["events"]) == MAX_EVENTS
    assert first.since == T0 and first.until == T0 + timedelta(minutes=MAX_EVENTS + 19)
    assert first.attrs["events"][-1]["at"] == first.until.isoformat()


def test_an_observation_never_makes_anything_reachable() -> None:
    g = graph(to_edges([obs(TOKEN, A, 1)]))
    radius = blast_radius(g, resolve_sources(g, [TOKEN]))
    assert A not in radius  # seen read, but no potential edge: the walk ignores observed ones
    g2 = graph([Edge(TOKEN, A, Relation.CAN_READ), Edge(TOKEN, B, Relation.CAN_READ), *to_edges([obs(TOKEN, A, 1)])])
    assert A in blast_radius(g2, resolve_sources(g2, [TOKEN])) and B in blast_radius(g2, resolve_sources(g2, [TOKEN]))


def test_annotate_counts_only_actors_of_the_radius_and_the_window() -> None:
    seen = ObservedEdges.of(to_edges([obs(TOKEN, A, 10), obs(TOKEN, B, -30), obs(APP, B, 12),
                                      obs(TOKEN, A, 20, outcome="denied")]))
    data: dict[str, Any] = {"sources": [TOKEN], "holders": [],
            "credentials": [{"id": TOKEN, "depth": 0}, {"id": B, "depth": 1}, {"id": A, "depth": 1}]}
    annotate(data, seen, since=T0)
    by_id = {c["id"]: c["observed"] for c in data["credentials"]}
    assert [e["by"] for e in by_id[A]] == [TOKEN]  # the denied read is not use
    assert by_id[B] == []  # read before the window, and by the application's token (not reached)
    assert [c["id"] for c in data["credentials"]] == [TOKEN, A, B]  # observed first, then depth order
    assert {e["target"] for e in by_id[TOKEN]} == {A}


def test_after_containment_attempts_are_evidence_uses_are_not_clean() -> None:
    seen = ObservedEdges.of(to_edges([obs(TOKEN, A, 1), obs(TOKEN, A, 30, outcome="denied"), obs(TOKEN, B, 40)]))
    found = after_containment(seen, {TOKEN: T0 + timedelta(minutes=10)})
    assert [(f["kind"], f["target"]) for f in found] == [("attempt", A), ("use", B)]
    [reason] = after_reasons(found)
    assert reason.startswith(f"used after containment: {TOKEN} at ") and B in reason
    assert after_reasons([f for f in found if f["kind"] == "attempt"]) == []


def test_sweep_unused_by_observed_data() -> None:
    nodes = [node("aws:access_key:AKIAQUIET", "access_key", created=ago(400)),
             node("aws:access_key:AKIABUSY", "access_key", created=ago(400)),
             node("aws:access_key:AKIAOLDUSE", "access_key", created=ago(400)),
             node("aws:user:arn:aws:iam::1:user/u", "user"),
             # no observed data for GCP at all: nothing can be said
             node("gcp:service_account_key:k1", "service_account_key", created=ago(400))]
    user = "aws:user:arn:aws:iam::1:user/u"
    now = datetime.now(UTC)
    edges = to_edges([Observation("aws:access_key:AKIABUSY", Relation.OBSERVED_USE, user, now - timedelta(days=200),
                                  "last used", "aws:cloudtrail"),
                      Observation("aws:access_key:AKIABUSY", Relation.OBSERVED_USE, user, now - timedelta(days=1),
                                  "s3:ListBuckets", "aws:cloudtrail"),
                      Observation("aws:access_key:AKIAOLDUSE", Relation.OBSERVED_USE, user, now - timedelta(days=120),
                                  "s3:ListBuckets", "aws:cloudtrail")])
    assert flagged("unused-by-observed-data", nodes, edges) == {"aws:access_key:AKIAQUIET", "aws:access_key:AKIAOLDUSE"}
    assert flagged("unused-by-observed-data", nodes, edges, days=150) == {"aws:access_key:AKIAQUIET"}


# Recorded OpenBao 2.7.2 response lines (file device, hmac_accessor = "false"), shortened to the
# fields the parser reads; the token values are HMACs, as the device writes them.
LINES: list[dict[str, Any]] = [
    # the leaked token's creation: the response pairs its token HMAC with its accessor
    {"type": "response", "time": "2026-11-28T11:42:26.40Z",
     "request": {"path": "auth/token/create", "operation": "update", "client_token": "hmac-sha256:root",
                 "client_token_accessor": "rootacc"},
     "response": {"auth": {"client_token": "hmac-sha256:leaked", "accessor": "leakedacc"}}},
    {"type": "request", "time": "2026-11-28T11:42:26.44Z",
     "request": {"path": "secret/data/obs/a", "operation": "read", "client_token": "hmac-sha256:leaked",
                 "client_token_accessor": "leakedacc"}},
    {"type": "response", "time": "2026-11-28T11:42:26.45Z",
     "request": {"path": "secret/data/obs/a", "operation": "read", "client_token": "hmac-sha256:leaked",
                 "client_token_accessor": "leakedacc"},
     "response": {"data": {"data": {"note": "hmac-sha256:value"}, "metadata": {"version": 3}}}},
    # the collector (root) reads everything: not use
    {"type": "response", "time": "2026-11-28T11:42:27.00Z",
     "request": {"path": "secret/data/obs/b", "operation": "read", "client_token": "hmac-sha256:root",
                 "client_token_accessor": "rootacc"}, "response": {"data": {}}},
    # after revocation: no accessor, only the token's HMAC, and an error
    {"type": "response", "time": "2026-11-28T11:43:00.00Z", "error": "1 error occurred:\n\t* permission denied\n\n",
     "request": {"path": "secret/data/obs/a", "operation": "read", "client_token": "hmac-sha256:leaked"},
     "response": {"data": {"error": "hmac-sha256:err"}}},
    # a token nobody can name (no earlier line pairs it)
    {"type": "response", "time": "2026-11-28T11:43:01.00Z", "error": "permission denied",
     "request": {"path": "secret/data/obs/a", "operation": "read", "client_token": "hmac-sha256:stranger"}},
]


def test_audit_parser_on_recorded_lines() -> None:
    text = [json.dumps(x) + "\n" for x in LINES] + ['{"type":"response","time": "2026-11-28T1']  # torn last line
    paths = {"secret/data/obs/a": A, "secret/data/obs/b": B}
    raw = parse_audit(text, paths, source="vault-audit:lab")
    assert raw.unresolved == 1 and not raw.hmaced
    use = name_actors(raw, {}, {"rootacc"})
    got = [(o.by, o.target, o.outcome, o.version, o.at.isoformat()) for o in use.observations]
    assert got == [("vault:token:leakedacc", A, "ok", 3, "2026-11-28T11:42:26.450000+00:00"),
                   ("vault:token:leakedacc", A, "denied", None, "2026-11-28T11:43:00+00:00")]
    [stone] = tombstones(use, ["rootacc"])
    assert stone.id == "vault:token:leakedacc" and not stone.is_live
    assert "hmac-sha256" not in json.dumps([e.to_dict() for e in to_edges(use.observations)])


def test_audit_parser_matches_hmaced_accessors() -> None:
    line = {**LINES[2], "request": {**LINES[2]["request"], "client_token_accessor": "hmac-sha256:acc"}}
    raw = parse_audit([json.dumps(line)], {"secret/data/obs/a": A}, source="vault-audit:lab")
    assert raw.hmaced == {"hmac-sha256:acc"}
    assert [o.by for o in name_actors(raw, {"hmac-sha256:acc": "leakedacc"}, set()).observations] == [
        "vault:token:leakedacc"]
    assert name_actors(raw, {}, set()).unresolved == 1


def test_audit_log_is_read_as_a_tail(tmp_path: Any) -> None:
    from connectors.vault.audit import read_lines

    log = tmp_path / "audit.log"
    lines = [json.dumps({**LINES[2], "time": f"2026-11-28T11:42:{i:02d}Z"}) + "\n" for i in range(40)]
    log.write_text("".join(lines))
    assert list(read_lines(str(log))) == lines
    tail = list(read_lines(str(log), tail_bytes=len(lines[0]) * 3 + 5))
    assert tail == lines[-3:]  # the cut line before them is dropped, not half-parsed
    assert list(read_lines(str(log), tail_bytes=len(lines[0]) * 3)) == lines[-3:]  # cut on a line boundary
    assert list(read_lines(str(log), tail_bytes=10**9)) == lines
