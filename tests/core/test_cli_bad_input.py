"""Bad input through the CLI: exit 2, one clear line on stderr, no traceback, store unchanged."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from core_testlib import file_state, write_config, write_yaml_inventory

if TYPE_CHECKING:
    from tests.conftest import CliRun


@pytest.fixture
def ws(lab: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """A private copy of the collected lab store, and its state before the command."""
    store = tmp_path / "store" / "revoke.db"
    store.parent.mkdir()
    shutil.copy2(lab["store"], store)
    return {"dir": tmp_path, "store": store}


def _assert_input_error(res: CliRun, *fragments: str) -> str:
    line = res.error_line()
    for fragment in fragments:
        assert fragment in line, line
    return line


def _collect(revoke_cli: Callable[..., CliRun], ws: dict[str, Path], inventory: Path) -> CliRun:
    write_config(ws["dir"] / "revoke.yaml", f"{{type: inventory, path: {inventory.name}}}")
    before = file_state(ws["store"])
    res = revoke_cli("collect", cwd=ws["dir"], store=ws["store"])
    assert file_state(ws["store"]) == before
    return res


def test_malformed_yaml_names_file_and_line(revoke_cli, ws: dict[str, Path]) -> None:
    bad = ws["dir"] / "inv.yaml"
    bad.write_text("nodes:\n  - {id: host:a, kind: host}\n  - id: host:b\n   kind: host\nedges: []\n")
    line = _assert_input_error(_collect(revoke_cli, ws, bad), f"{bad}:", "invalid YAML")
    assert re.search(rf"{re.escape(str(bad))}:4: ", line), line


def test_malformed_json_names_file_and_line(revoke_cli, ws: dict[str, Path]) -> None:
    bad = ws["dir"] / "inv.json"
    bad.write_text('{"nodes": [\n  {"id": "host:a", "kind": "host"},\n]}\n')
    _assert_input_error(_collect(revoke_cli, ws, bad), f"{bad}:3: invalid JSON")


def test_edge_naming_an_unknown_node(revoke_cli, ws: dict[str, Path]) -> None:
    inv = write_yaml_inventory(ws["dir"] / "inv.yaml", ["{id: host:ci-runner-7, kind: host}"],
                               ["{from: host:ci-runer-7, to: host:ci-runner-7, rel: stores}"])
    _assert_input_error(_collect(revoke_cli, ws, inv), f"{inv}:4: edges[0]: edge names unknown node 'host:ci-runer-7' "
                        "(did you mean: host:ci-runner-7?)")


def test_unknown_kind(revoke_cli, ws: dict[str, Path]) -> None:
    inv = write_yaml_inventory(ws["dir"] / "inv.yaml", ["{id: host:a, kind: host}", "{id: host:b, kind: hots}"], [])
    line = _assert_input_error(_collect(revoke_cli, ws, inv),
                               f"{inv}:3: nodes[1]: field 'kind': unknown kind; expected one of: access_key,")
    assert "hots" not in line  # the value is never echoed


def test_unknown_rel(revoke_cli, ws: dict[str, Path]) -> None:
    inv = write_yaml_inventory(ws["dir"] / "inv.yaml", ["{id: host:a, kind: host}", "{id: host:b, kind: host}"],
                               ["{from: host:a, to: host:b, rel: stores}", "{from: host:a, to: host:b, rel: owns}"])
    _assert_input_error(_collect(revoke_cli, ws, inv), f"{inv}:6: edges[1]: field 'rel': unknown rel; expected one of: stores,")


def test_bad_timestamp_in_inventory(revoke_cli, ws: dict[str, Path]) -> None:
    inv = write_yaml_inventory(ws["dir"] / "inv.yaml", ["{id: host:a, kind: host, created: last tuesday}"], [])
    _assert_input_error(_collect(revoke_cli, ws, inv), f"{inv}:2: nodes[0]: field 'created': not a valid ISO-8601 time")


def test_missing_inventory_is_an_input_error_and_keeps_the_store(revoke_cli, ws: dict[str, Path]) -> None:
    _assert_input_error(_collect(revoke_cli, ws, ws["dir"] / "deleted.yaml"), "inventory not found", "deleted.yaml")


def test_inline_token_in_config_is_refused(revoke_cli, ws: dict[str, Path]) -> None:
    canary = "s.CANARYcanaryCANARYcanary12"
    cfg = write_config(ws["dir"] / "revoke.yaml", "{type: inventory, path: inv.yaml}",
                       f"{{type: vault, url: 'http://127.0.0.1:8200', token: {canary}}}")
    before = file_state(ws["store"])
    res = revoke_cli("--config", str(cfg), "collect", cwd=ws["dir"], store=ws["store"])
    line = _assert_input_error(res, f"{cfg}:3: field 'token': credentials are taken by reference only")
    assert canary not in line + res.stdout
    assert file_state(ws["store"]) == before


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["blast-radius", "host:ci-runner7"], "unknown node 'host:ci-runner7' (did you mean: host:ci-runner-7?)"),
        (["blast-radius", "host:ci-runner-7", "vault:token:acc-chld"],
         "unknown node 'vault:token:acc-chld' (did you mean: vault:token:acc-child"),
        (["explain", "host:ci-runner-7", "aws:access_key:AKIACIDEPLOYR"],
         "unknown node 'aws:access_key:AKIACIDEPLOYR' (did you mean: aws:access_key:AKIACIDEPLOYER"),
        (["blast-radius", "host:ci-runner-7", "--window", "2026-03-31T13:00Z/2026-03-31T10:00Z"],
         "invalid window '2026-03-31T13:00Z/2026-03-31T10:00Z': END is before START"),
        (["blast-radius", "host:ci-runner-7", "--window", "since tuesday"], "invalid window 'since tuesday'; expected START/END"),
        (["explain", "host:ci-runner-7", "host:unrelated", "--window", "2026-03-31/nope"], "invalid window end 'nope'"),
    ],
    ids=["unknown-node", "unknown-second-source", "unknown-target", "window-reversed", "window-shape", "window-date"],
)
def test_bad_query_arguments(revoke_cli, ws: dict[str, Path], args: list[str], expected: str) -> None:
    before = file_state(ws["store"])
    res = revoke_cli(*args, cwd=ws["dir"], store=ws["store"])
    _assert_input_error(res, expected)
    assert res.stdout == ""
    assert file_state(ws["store"]) == before


@pytest.mark.parametrize("command", [["blast-radius", "host:ci-runner-7"], ["collect"]])
def test_corrupt_store_is_refused_and_left_alone(revoke_cli, ws: dict[str, Path], command: list[str]) -> None:
    ws["store"].write_bytes(b"\x7fELF not a database \x00\xff" * 300)
    write_config(ws["dir"] / "revoke.yaml", "{type: inventory, path: inv.yaml}")
    write_yaml_inventory(ws["dir"] / "inv.yaml", ["{id: host:a, kind: host}"], [])
    before = file_state(ws["store"])
    res = revoke_cli(*command, cwd=ws["dir"], store=ws["store"])
    _assert_input_error(res, f"store {ws['store']} is unreadable or corrupt")
    assert file_state(ws["store"]) == before


def test_missing_store_is_not_created_by_a_query(revoke_cli, tmp_path: Path) -> None:
    res = revoke_cli("blast-radius", "host:a", cwd=tmp_path, store=tmp_path / "nowhere" / "revoke.db")
    _assert_input_error(res, "no store at", "run `revoke collect` first")
    assert not (tmp_path / "nowhere").exists()
