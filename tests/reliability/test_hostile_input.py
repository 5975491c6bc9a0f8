"""Hostile input files, by class. Every payload of a class must be refused the same way: exit 2 and
one `error:` line naming the file, the line and the field, the store neither created nor changed.

- Resource exhaustion from tiny files (YAML alias bombs, deep nesting, huge numbers, special and
  oversized files) in inventories, revoke.yaml, playbooks and rules files: each run is a child
  process under a 1.5 GiB address-space cap and a time limit, and must stay small and fast.
- Input errors that used to exit 1 (wrongly typed node and edge fields, impossible dates, JSON
  duplicate keys), in YAML and JSON inventories."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.hostile_testlib import (
    billion_laughs,
    billion_laughs_flow,
    inventory_config,
    make_workspace,
    one_error_line,
    run_bounded,
)
from tests.reliability.reliability_testlib import Workspace, record_figures

PEAK_MB = 400  # a refused run imports the CLI stack (~80 MB) and must not grow past this
SECONDS = 30


@pytest.fixture(scope="module")
def ws(revoke_cli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    w = make_workspace(tmp_path_factory.mktemp("hostile"))
    assert revoke_cli("collect", **w.cli).returncode == 0
    w.snapshot()
    yield w


# -- resource exhaustion -----------------------------------------------------------------------------
def _inventory_with_attrs(attrs_yaml: str) -> str:
    body = "\n".join("      " + line for line in attrs_yaml.splitlines())
    return f"nodes:\n  - id: host:payload\n    kind: host\n    attrs:\n{body}\nedges: []\n"


def _json_inventory(attrs_json: str) -> str:
    return '{"nodes": [{"id": "host:payload", "kind": "host",\n "attrs": ' + attrs_json + "}], \"edges\": []}\n"


def _block_nesting(levels: int) -> str:
    return "\n".join("  " * i + f"l{i}:" for i in range(levels)) + " leaf\n"


BIG = "1" + "0" * 30
HUGE = "9" * 5000
# name -> (file name, content, where it is read from, fragment of the error)
RESOURCE: dict[str, tuple[str, str, str, str]] = {
    "alias bomb in an inventory": ("bomb.yaml", _inventory_with_attrs(billion_laughs()), "inventory", "anchors and aliases"),
    "merge key in an inventory": ("merge.yaml", _inventory_with_attrs("base: &base {k: v}\nmore: {<<: *base, x: 1}"),
                                  "inventory", "anchors and aliases"),
    "anchor without alias": ("anchor.yaml", _inventory_with_attrs("one: &one 1"), "inventory", "anchors and aliases"),
    "flow nesting 10,000 deep": ("deep-flow.yaml", _inventory_with_attrs("x: " + "[" * 10000 + "]" * 10000),
                                 "inventory", "nested deeper than 64"),
    "block nesting 100 deep": ("deep-block.yaml", _inventory_with_attrs(_block_nesting(100)), "inventory",
                               "nested deeper than 64"),
    "JSON nesting 100 deep": ("deep.json", _json_inventory('{"x": ' + "[" * 100 + "]" * 100 + "}"), "inventory",
                              "nested deeper than 64"),
    "JSON nesting 50,000 deep": ("deeper.json", _json_inventory('{"x": ' + "[" * 50000 + "]" * 50000 + "}"), "inventory",
                                 "nested deeper than 64"),
    "YAML integer 10**30": ("big-int.yaml", _inventory_with_attrs(f"n: {BIG}"), "inventory", "integer out of range"),
    "YAML integer of 5,000 digits": ("huge-int.yaml", _inventory_with_attrs(f"n: {HUGE}"), "inventory",
                                     "integer out of range"),
    "YAML .inf": ("inf.yaml", _inventory_with_attrs("n: .inf"), "inventory", "number out of range"),
    "JSON integer 10**30": ("big-int.json", _json_inventory('{"n": ' + BIG + "}"), "inventory", "integer out of range"),
    "JSON integer of 5,000 digits": ("huge-int.json", _json_inventory('{"n": ' + HUGE + "}"), "inventory",
                                     "integer out of range"),
    "JSON NaN": ("nan.json", _json_inventory('{"n": NaN}'), "inventory", "number out of range"),
    "JSON 1e999": ("inf.json", _json_inventory('{"n": 1e999}'), "inventory", "number out of range"),
    "alias bomb in revoke.yaml": ("bomb-config.yaml", "connectors:\n  - type: inventory\n    path: inventory.yaml\n"
                                  + "\n".join("    " + ln for ln in billion_laughs().splitlines()) + "\n",
                                  "config", "anchors and aliases"),
    "nesting in revoke.yaml": ("deep-config.yaml", "connectors: " + "[" * 10000 + "]" * 10000 + "\n", "config",
                               "nested deeper than 64"),
    "alias bomb in a playbook": ("bomb-playbook.yaml", f"name: bomb\napplies_to: {{kinds: {billion_laughs_flow()}}}\n",
                                 "playbook", "anchors and aliases"),
    "nesting in a playbook": ("deep-playbook.yaml", "name: deep\napplies_to: {labels: {x: " + "[" * 10000 + "]" * 10000
                              + "}}\n", "playbook", "nested deeper than 64"),
    "alias bomb in a rules file": ("bomb-rules.yaml", f"rules:\n  weak-key:\n    kinds: {billion_laughs_flow()}\n",
                                   "rules", "anchors and aliases"),
    "integer 10**30 in a rules file": ("big-rules.yaml", f"rules:\n  key-unused:\n    days: {BIG}\n", "rules",
                                       "integer out of range"),
}


def _argv(ws: Workspace, where: str, name: str) -> tuple[list[str], Path]:
    """(revoke arguments, config) that make revoke read the payload file `name` as `where`."""
    if where == "inventory":
        return ["collect"], inventory_config(ws, f"config-{name}.yaml", name)
    if where == "config":
        return ["collect"], ws.root / name
    if where == "playbook":
        return ["plan", name, "--node", "host:ci-runner-7", "--format", "json"], ws.config
    return ["sweep", "--rules", name], ws.config


def test_resource_exhaustion_payloads_are_refused_small_and_fast(ws: Workspace) -> None:
    failures, figures = [], {}
    before = ws.snapshot()
    for label, (name, content, where, fragment) in RESOURCE.items():
        (ws.root / name).write_text(content)
        args, cfg = _argv(ws, where, name)
        res = run_bounded(*args, cwd=ws.root, store=ws.store, config=cfg, timeout=SECONDS * 2)
        figures[label] = {"bytes": len(content), "peak_mb": round(res.peak_mb), "seconds": round(res.seconds, 2)}
        try:
            line = one_error_line(res.returncode, res.stderr)
            assert fragment in line, line
            assert re.search(rf"{re.escape(name)}:\d+: ", line), f"no file:line in {line!r}"
            assert res.peak_mb < PEAK_MB and res.seconds < SECONDS, figures[label]
            assert ws.snapshot() == before, "the store changed"
        except AssertionError as exc:
            failures.append(f"{label}: {str(exc)[:300]}")
    record_figures("hostile_resource", {"payloads": len(RESOURCE), "runs": figures})
    assert not failures, "\n".join(failures)


SPECIAL: dict[str, Callable[[Path], str]] = {
    "/dev/zero": lambda root: "/dev/zero",
    "a directory": lambda root: str(root),
    # 17 MiB of YAML comment: past the YAML limit (a large inventory belongs in JSON)
    "oversized YAML": lambda root: _oversized(root / "oversized.yaml"),
}


def _oversized(path: Path) -> str:
    with path.open("w") as fh:
        fh.write("nodes: []\nedges: []\n")
        for _ in range(17):
            fh.write("#" + "x" * ((1 << 20) - 2) + "\n")
    return str(path)


def test_special_and_oversized_files_are_not_read(ws: Workspace) -> None:
    failures = []
    before = ws.snapshot()
    for label, make in SPECIAL.items():
        cfg = inventory_config(ws, "config-special.yaml", make(ws.root))
        res = run_bounded("collect", cwd=ws.root, store=ws.store, config=cfg, timeout=SECONDS * 2)
        try:
            line = one_error_line(res.returncode, res.stderr)
            assert "not a regular file" in line or "the limit is 16 MiB" in line, line
            assert res.peak_mb < PEAK_MB and res.seconds < SECONDS, (res.peak_mb, res.seconds)
            assert ws.snapshot() == before
        except AssertionError as exc:
            failures.append(f"{label}: {str(exc)[:300]}")
    assert not failures, "\n".join(failures)


# -- input errors: exit 2, file, line and field, nothing written --------------------------------------
def _yaml_node(field: str) -> str:
    return f"nodes:\n  - {{id: host:a, kind: host}}\n  - id: host:b\n    kind: host\n    {field}\nedges: []\n"


def _yaml_edge(field: str) -> str:
    return ("nodes:\n  - {id: host:a, kind: host}\n  - {id: host:b, kind: host}\nedges:\n"
            f"  - from: host:a\n    to: host:b\n    rel: stores\n    {field}\n")


def _json_node(field: str) -> str:
    return '{"nodes": [\n{"id": "host:a", "kind": "host"},\n{"id": "host:b",\n "kind": "host",\n ' + field + "}],\n\"edges\": []}"


# file name -> (content, line, fragment: the field and what is wrong)
INPUT_ERRORS: dict[str, tuple[str, int, str]] = {
    "name-list.yaml": (_yaml_node("name: [1, 2]"), 5, "field 'name': expected text, got a list"),
    "labels-scalar.yaml": (_yaml_node("labels: x"), 5, "field 'labels': expected a mapping"),
    "status-mapping.yaml": (_yaml_node("status: {}"), 5, "field 'status': expected text, got a mapping"),
    "owner-mapping.yaml": (_yaml_node("owner: {a: 1}"), 5, "field 'owner'"),
    "label-list.yaml": (_yaml_node("labels: {team: [a]}"), 5, "field 'labels'"),
    "name-boolean.yaml": (_yaml_node("name: yes"), 5, "field 'name': expected text, got true/false"),
    "attrs-list.yaml": (_yaml_node("attrs: [1]"), 5, "field 'attrs': expected a mapping"),
    "created-feb-30.yaml": (_yaml_node("created: 2026-02-30"), 5, "field 'created': invalid date or time"),
    "expires-feb-30-text.yaml": (_yaml_node("expires: '2026-02-30T10:00:00Z'"), 5, "field 'expires'"),
    "created-number.yaml": (_yaml_node("created: 1700000000"), 5, "field 'created'"),
    "last-used-year-1.yaml": (_yaml_node("last_used: 0001-01-01T00:00:00+05:00"), 5, "field 'last_used'"),
    "since-feb-31.yaml": (_yaml_edge("since: 2026-02-31"), 8, "field 'since': invalid date or time"),
    "until-list.yaml": (_yaml_edge("attrs: {a: 1}\n    until: [soon]"), 9, "field 'until'"),
    "name-list.json": (_json_node('"name": [1, 2]'), 5, "field 'name': expected text, got a list"),
    "status-mapping.json": (_json_node('"status": {}'), 5, "field 'status'"),
    "created-feb-30.json": (_json_node('"created": "2026-02-30"'), 5, "field 'created'"),
    "kind-number.json": ('{"nodes": [\n{"id": "host:a",\n "kind": 3}], "edges": []}', 3, "field 'kind': expected text"),
    "duplicate-top.json": ('{"nodes": [],\n "edges": [],\n "nodes": []}', 3, "duplicate key 'nodes'"),
    "duplicate-attr.json": (_json_node('"attrs": {"a": 1,\n "a": 2}'), 6, "duplicate key 'a'"),
    "deep-attrs.json": (_json_node('"attrs": {"x": ' + "[" * 80 + "]" * 80 + "}"), 5, "nested deeper than 64"),
}


def test_input_errors_exit_2_with_file_line_field_and_write_nothing(revoke_cli, ws: Workspace, tmp_path: Path) -> None:
    failures = []
    before = ws.snapshot()
    for name, (content, line, fragment) in INPUT_ERRORS.items():
        (ws.root / name).write_text(content)
        cfg = inventory_config(ws, "config-input.yaml", name)
        res = revoke_cli("collect", **(ws.cli | {"config": cfg}))
        fresh = tmp_path / name / ".revoke" / "revoke.db"  # a store that does not exist yet
        res_fresh = revoke_cli("collect", **(ws.cli | {"config": cfg, "store": fresh}))
        try:
            text = one_error_line(res.returncode, res.stderr)
            assert f"{name}:{line}: " in text and fragment in text, text
            assert ws.snapshot() == before, "the store changed"
            assert one_error_line(res_fresh.returncode, res_fresh.stderr)
            assert not fresh.parent.exists(), "a store was created"
        except AssertionError as exc:
            failures.append(f"{name}: {str(exc)[:400]}")
    record_figures("hostile_input_errors", {"payloads": len(INPUT_ERRORS)})
    assert not failures, "\n".join(failures)


def test_a_json_inventory_with_duplicate_node_fields_is_not_last_one_wins(tmp_path: Path) -> None:
    # json.loads keeps the last of two equal keys: a reviewer reading the first would be misled
    from revoke.errors import InputError
    from revoke.yamlio import load_file

    path = tmp_path / "inv.json"
    path.write_text(json.dumps({"nodes": []})[:-1] + ', "edges": [],\n"edges": [{"from": "host:x"}]}')
    with pytest.raises(InputError, match=r"inv\.json:2: duplicate key 'edges'"):
        load_file(path)
