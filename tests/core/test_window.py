"""Exposure window rules (DESIGN.md, issue 2), window 2026-03-31 10:00Z to 13:00Z:
- a first hop counts only if its edge existed during the window; an edge without `since`
  dates from its target's `created`;
- a later hop counts if its edge existed at any time from its source's exposure until now;
- a credential created after the window that nothing exposed is out; one minted (`can_mint`)
  by an exposed principal is in."""

from __future__ import annotations

import pytest
from core_testlib import W, build, edge, node, paths, radius, reached

from revoke.blast import Window
from revoke.errors import InputError


def _first_hop_graph():
    nodes = [
        node("host:h"),
        node("aws:access_key:after_end"),
        node("aws:access_key:before_start"),
        node("aws:access_key:overlaps_start"),
        node("aws:access_key:inside"),
        node("aws:access_key:spanning"),
        node("aws:access_key:since_at_end"),
        node("aws:access_key:until_at_start"),
        node("aws:access_key:created_late", created="2026-04-01T00:00Z"),
        node("aws:access_key:created_early", created="2026-01-01T00:00Z"),
        node("aws:access_key:created_in_window", created="2026-03-31T12:59Z"),
        node("aws:access_key:undated"),
    ]
    edges = [
        edge("host:h", "stores", "aws:access_key:after_end", since="2026-03-31T14:00Z"),
        edge("host:h", "stores", "aws:access_key:before_start", until="2026-03-31T09:00Z"),
        edge("host:h", "stores", "aws:access_key:overlaps_start", since="2026-03-31T09:00Z", until="2026-03-31T11:00Z"),
        edge("host:h", "stores", "aws:access_key:inside", since="2026-03-31T12:00Z"),
        edge("host:h", "stores", "aws:access_key:spanning", since="2026-01-01T00:00Z", until="2026-12-31T00:00Z"),
        edge("host:h", "stores", "aws:access_key:since_at_end", since="2026-03-31T13:00Z"),
        edge("host:h", "stores", "aws:access_key:until_at_start", until="2026-03-31T10:00Z"),
        edge("host:h", "stores", "aws:access_key:created_late"),
        edge("host:h", "stores", "aws:access_key:created_early"),
        edge("host:h", "stores", "aws:access_key:created_in_window"),
        edge("host:h", "stores", "aws:access_key:undated"),
    ]
    return build(nodes, edges)


def test_first_hop_counts_only_edges_that_existed_during_the_window() -> None:
    r = radius(_first_hop_graph(), ["host:h"], window=W)
    assert set(reached(r)) == {
        "host:h",
        "aws:access_key:overlaps_start",
        "aws:access_key:inside",
        "aws:access_key:spanning",
        "aws:access_key:since_at_end",     # the window is closed at both ends
        "aws:access_key:until_at_start",
        "aws:access_key:created_early",
        "aws:access_key:created_in_window",
        "aws:access_key:undated",
    }
    # without a window, everything stored is reachable
    assert len(reached(radius(_first_hop_graph(), ["host:h"]))) == 12


def _later_hop_graph():
    nodes = [
        node("host:h"),
        node("vault:token:t"),
        node("vault:secret:after_window"),
        node("vault:secret:gone_before"),
        node("vault:secret:s12"),
        node("aws:access_key:k_until_11"),
        node("aws:access_key:k_until_1230"),
        node("aws:access_key:k_created_later", created="2026-04-02T00:00Z"),
        node("aws:access_key:ci", created="2025-01-01T00:00Z"),
        node("aws:user:ci"),
        node("aws:access_key:minted", created="2026-04-02T00:00Z"),
        node("aws:access_key:late_on_host", created="2026-04-02T00:00Z"),
    ]
    edges = [
        edge("host:h", "stores", "vault:token:t"),
        # the attacker keeps the token: what it can read after the window still counts
        edge("vault:token:t", "can_read", "vault:secret:after_window", since="2026-04-05T00:00Z"),
        edge("vault:token:t", "can_read", "vault:secret:gone_before", until="2026-03-30T00:00Z"),
        edge("vault:token:t", "can_read", "vault:secret:s12", since="2026-03-31T12:00Z"),
        # s12 is exposed at 12:00: an edge that ended at 11:00 was gone by then
        edge("vault:secret:s12", "stores", "aws:access_key:k_until_11", until="2026-03-31T11:00Z"),
        edge("vault:secret:s12", "stores", "aws:access_key:k_until_1230", until="2026-03-31T12:30Z"),
        edge("vault:secret:s12", "stores", "aws:access_key:k_created_later"),
        edge("host:h", "stores", "aws:access_key:ci"),
        edge("aws:access_key:ci", "authenticates_as", "aws:user:ci"),
        edge("aws:user:ci", "can_mint", "aws:access_key:minted"),
        edge("host:h", "stores", "aws:access_key:late_on_host"),
    ]
    return build(nodes, edges)


def test_later_hops_count_edges_alive_after_their_source_was_exposed() -> None:
    r = radius(_later_hop_graph(), ["host:h"], window=W)
    assert reached(r) == {
        "host:h": 0,
        "vault:token:t": 1,
        "vault:secret:after_window": 2,
        "vault:secret:s12": 2,
        "aws:access_key:k_until_1230": 3,
        "aws:access_key:k_created_later": 3,
        "aws:access_key:ci": 1,
        "aws:user:ci": 2,
        # created after the window, but by a principal the attacker held: in
        "aws:access_key:minted": 3,
    }
    # created after the window and only ever stored on the host, which was held during the window: out
    assert "aws:access_key:late_on_host" not in r
    assert paths(r)["aws:access_key:minted"] == ("host:h", "aws:access_key:ci", "aws:user:ci", "aws:access_key:minted")


def test_exposure_time_is_the_earliest_over_all_paths() -> None:
    nodes = [node("host:h"), node("vault:token:a"), node("vault:secret:s"), node("aws:access_key:k")]
    edges = [
        edge("host:h", "stores", "vault:secret:s", since="2026-03-31T12:00Z"),  # short, but late
        edge("host:h", "stores", "vault:token:a"),
        edge("vault:token:a", "can_read", "vault:secret:s"),  # longer, exposes s at 10:00
        edge("vault:secret:s", "stores", "aws:access_key:k", until="2026-03-31T11:00Z"),
    ]
    r = radius(build(nodes, edges), ["host:h"], window=W)
    assert paths(r)["aws:access_key:k"] == ("host:h", "vault:token:a", "vault:secret:s", "aws:access_key:k")
    assert reached(r)["aws:access_key:k"] == 3
    # k's path only exists through the earlier exposure
    assert "aws:access_key:k" not in radius(build(nodes, [e for e in edges if "token:a" not in e.dst + e.src]),
                                            ["host:h"], window=W)


def test_every_source_gets_the_first_hop_rule() -> None:
    nodes = [node("host:a"), node("host:b"), node("aws:access_key:a_late"), node("aws:access_key:b_ok"),
             node("aws:access_key:b_late")]
    edges = [
        edge("host:a", "stores", "aws:access_key:a_late", since="2026-04-01T00:00Z"),
        edge("host:b", "stores", "aws:access_key:b_ok", since="2026-03-31T10:30Z"),
        edge("host:b", "stores", "aws:access_key:b_late", since="2026-04-01T00:00Z"),
    ]
    assert set(reached(radius(build(nodes, edges), ["host:a", "host:b"], window=W))) == {
        "host:a", "host:b", "aws:access_key:b_ok"}


def test_explain_names_the_edge_that_was_valid_in_the_window() -> None:
    nodes = [node("aws:user:u"), node("aws:role:r")]
    edges = [
        edge("aws:user:u", "can_read", "aws:role:r", until="2026-03-01T00:00Z"),
        edge("aws:user:u", "can_assume", "aws:role:r", since="2026-03-31T11:00Z"),
    ]
    r = radius(build(nodes, edges), ["aws:user:u"], window=W)
    assert r.hops("aws:role:r") == [("aws:user:u", "can_assume", "aws:role:r")]


@pytest.mark.parametrize(
    "text",
    ["2026-03-31T10:00Z", "2026-03-31T13:00Z/2026-03-31T10:00Z", "yesterday/today", "/2026-03-31T10:00Z", "2026-03-31T10:00Z/"],
)
def test_invalid_windows_are_input_errors(text: str) -> None:
    with pytest.raises(InputError, match="window"):
        Window.parse(text)


def test_window_parsing_accepts_offsets_and_naive_times_as_utc() -> None:
    w = Window.parse("2026-03-31T12:00+02:00/2026-03-31T13:00")
    assert (w.start.isoformat(), w.end.isoformat()) == ("2026-03-31T10:00:00+00:00", "2026-03-31T13:00:00+00:00")
