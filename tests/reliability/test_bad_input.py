"""Bad input, property-based: for any inventory, playbook, config file or node id on the command
line, `revoke` either loads it or exits 2 with one clear line on stderr (never a traceback, never
"internal error"), and a rejected input never changes the store (its bytes, after a checkpoint).

The CLI's real entry point runs in-process (`revoke.cli.main`), so hundreds of inputs take
seconds. Example counts are kept modest for CI; REVOKE_HYPOTHESIS_EXAMPLES raises them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.reliability_testlib import INVENTORY, Workspace, record_figures

if TYPE_CHECKING:
    from tests.conftest import CliRun

EXAMPLES = int(os.environ.get("REVOKE_HYPOTHESIS_EXAMPLES", "100"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TRIED: dict[str, int] = {}


def check_rejection(res: CliRun, what: str) -> None:
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr, (what, res.stderr)
    assert res.returncode in (0, 1, 2), (what, res.returncode, res.stderr)
    if res.returncode == 2:
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        if any(ln.startswith("Usage:") for ln in lines):  # click's own usage errors: one `Error:` line
            assert sum(ln.startswith("Error:") for ln in lines) == 1, (what, res.stderr)
        else:
            assert len(lines) == 1 and lines[0].startswith("error: "), (what, res.stderr)


@pytest.fixture(scope="module")
def ws(revoke_cli, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("badinput")
    (root / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY))
    (root / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [{"type": "inventory", "path": "inventory.yaml"}]}))
    w = Workspace(root, root / ".revoke" / "revoke.db", root / "revoke.yaml")
    assert revoke_cli("collect", **w.cli).returncode == 0
    # a first dry run creates the journal tables (lazily, by design): the baseline includes them
    warmup = ("run", "compromised-ci-supply-chain", "--node", "host:ci-runner-7", "--incident", "warmup")
    assert revoke_cli(*warmup, **w.cli).returncode == 0
    yield w
    record_figures("bad_input", {"examples_per_property": EXAMPLES, "tried": dict(TRIED), "total": sum(TRIED.values())})


def _count(name: str) -> None:
    TRIED[name] = TRIED.get(name, 0) + 1


# -- strategies ------------------------------------------------------------------------------------
KEYS = st.sampled_from(["nodes", "edges", "id", "kind", "provider", "from", "to", "rel", "attrs", "labels", "name",
                        "actions", "holders", "scope", "approval", "retries", "concurrency", "connectors", "type",
                        "path", "paths", "token", "url", "applies_to", "window", "finalize", "grace_period",
                        "access_key", "token_env", "max_attempts", "required_above", "since", "until", "created"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(["host", "access_key", "rotate", "skip", "manual", "stores",
                                                           "host:ci-runner-7", "aws:access_key:AKIAEXAMPLE", "inventory",
                                                           "inventory.yaml", "24h", "-1", "2026-13-40T99:00Z/x"]))
DOCS = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), inner,
                                                                       max_size=5)), max_leaves=25)
RAW = st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")))


def _dump(doc: object, as_json: bool) -> str:
    return json.dumps(doc, default=str) if as_json else yaml.safe_dump(doc, allow_unicode=True)


@SETTINGS
@given(doc=st.one_of(DOCS, st.builds(lambda n, e: {"nodes": n, "edges": e}, DOCS, DOCS)), as_json=st.booleans(),
       raw=st.one_of(st.none(), RAW))
def test_inventory_loader(revoke_cli, ws: Workspace, doc: object, as_json: bool, raw: str | None) -> None:
    _count("inventory")
    text = raw if raw is not None else _dump(doc, as_json)
    inv = ws.root / ("fuzz.json" if as_json else "fuzz.yaml")
    inv.write_text(text, encoding="utf-8", errors="surrogateescape")
    cfg = ws.root / "fuzz-inventory.yaml"
    cfg.write_text(yaml.safe_dump({"connectors": [{"type": "inventory", "path": inv.name}]}))
    before = ws.snapshot()
    res = revoke_cli("collect", "--allow-empty", **(ws.cli | {"config": cfg}))
    check_rejection(res, text[:200])
    if res.returncode == 2:
        assert ws.snapshot() == before, "a rejected inventory changed the store"
    else:
        assert revoke_cli("collect", **ws.cli).returncode == 0  # back to the reference graph


@SETTINGS
@given(doc=st.one_of(DOCS, st.builds(lambda a, h, x: {"name": "fuzz", "actions": a, "holders": h, **(x or {})},
                                     DOCS, DOCS, st.one_of(st.none(), st.dictionaries(KEYS, DOCS, max_size=3)))),
       raw=st.one_of(st.none(), RAW))
def test_playbook_loader(revoke_cli, ws: Workspace, doc: object, raw: str | None) -> None:
    _count("playbook")
    pb = ws.root / "fuzz-playbook.yaml"
    pb.write_text(raw if raw is not None else _dump(doc, False), encoding="utf-8", errors="surrogateescape")
    before = ws.snapshot()
    res = revoke_cli("plan", str(pb), "--node", "host:ci-runner-7", "--format", "json", **ws.cli)
    check_rejection(res, pb.read_text(errors="replace")[:200])
    assert ws.snapshot() == before, "plan changed the store"


CONNECTOR = st.builds(lambda t, x: {"type": t, **(x or {})},
                      st.sampled_from(["inventory", "x509", "aws", "vault", "gcp", "nope", ""]),
                      st.one_of(st.none(), st.dictionaries(KEYS, SCALARS, max_size=3)))
CONFIGS = st.one_of(DOCS, st.builds(lambda c: {"connectors": c}, st.lists(st.one_of(DOCS, CONNECTOR), max_size=3)))


@SETTINGS
@given(doc=CONFIGS, raw=st.one_of(st.none(), RAW))
def test_config_loader(revoke_cli, ws: Workspace, doc: object, raw: str | None) -> None:
    _count("config")
    cfg = ws.root / "fuzz-config.yaml"
    cfg.write_text(raw if raw is not None else _dump(doc, False), encoding="utf-8", errors="surrogateescape")
    before = ws.snapshot()
    # plan reads the config and builds connector classes without contacting any provider
    res = revoke_cli("plan", "compromised-ci-supply-chain", "--node", "host:ci-runner-7", "--format", "json",
                     **(ws.cli | {"config": cfg}))
    check_rejection(res, cfg.read_text(errors="replace")[:200])
    assert ws.snapshot() == before, "plan changed the store"


NODE_IDS = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60),
    st.builds(lambda p, t, n: f"{p}:{t}:{n}", st.sampled_from(["aws", "vault", "gcp", "x509", "host", "fp", ""]),
              st.sampled_from(["access_key", "token", "secret", "sha256", "", "user"]), st.text(max_size=20)),
    st.sampled_from(["host:ci-runner-7", "aws:access_key:AKIAEXAMPLE", "-", "--", "--node", "fp:sha256:00"]),
)


@SETTINGS
@given(node=NODE_IDS.filter(lambda s: "\x00" not in s), cmd=st.sampled_from(["blast", "explain", "plan", "run", "attest"]))
def test_node_ids_on_the_command_line(revoke_cli, ws: Workspace, node: str, cmd: str) -> None:
    _count("node_id")
    argv = {
        "blast": ["blast-radius", "--format", "json", "--", node],
        "explain": ["explain", "--", "host:ci-runner-7", node],
        "plan": ["plan", "compromised-ci-supply-chain", f"--node={node}", "--format", "json"],
        "run": ["run", "compromised-ci-supply-chain", f"--node={node}", "--incident", "fuzz-dry-run"],
        "attest": ["attest", "--incident", "no-such-incident", "--note", "x", "--", node],
    }[cmd]
    before = ws.snapshot()
    res = revoke_cli(*argv, **ws.cli)
    check_rejection(res, f"{cmd} {node!r}")
    assert ws.snapshot() == before, f"{cmd} {node!r} changed the store"
