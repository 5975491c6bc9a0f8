"""Bad input, property-based: for any inventory, playbook, config file or node id on the command
line, `revoke` either loads it or exits 2 with one clear line on stderr (never a traceback, never
"internal error"), and a rejected input never changes the store (its bytes, after a checkpoint).

The CLI's real entry point runs in-process (`revoke.cli.main`), so hundreds of inputs take
seconds. Example counts are kept modest for CI; REVOKE_HYPOTHESIS_EXAMPLES raises them."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.conftest import record_figures

EXAMPLES = int(os.environ.get("REVOKE_HYPOTHESIS_EXAMPLES", "100"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
TRIED: dict[str, int] = {}
INVENTORY = {
    "nodes": [{"id": "host:ci-runner-7", "kind": "host"},
              {"id": "aws:access_key:AKIAEXAMPLE", "kind": "access_key", "provider": "aws"},
              {"id": "vault:password:secret/ci/db#password", "kind": "password", "provider": "vault"}],
    "edges": [{"from": "host:ci-runner-7", "to": "aws:access_key:AKIAEXAMPLE", "rel": "stores"},
              {"from": "host:ci-runner-7", "to": "vault:password:secret/ci/db#password", "rel": "stores"}],
}


@dataclass
class Result:
    rc: int
    out: str
    err: str


@dataclass
class Workspace:
    root: Path
    store: Path
    config: Path

    def snapshot(self) -> bytes:
        # fold the WAL into the main file first, so equal bytes mean an equal store
        db = sqlite3.connect(self.store)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        return self.store.read_bytes()


def revoke(ws: Workspace, *args: str, config: Path | None = None) -> Result:
    from revoke import cli

    argv = ["revoke", "--store", f"sqlite:///{ws.store}", "--config", str(config or ws.config), *args]
    # real text streams over bytes: commands write JSON to sys.stdout.buffer
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    saved = sys.argv
    sys.argv = argv
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
                rc = 0
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
    return Result(rc, out.buffer.getvalue().decode(), err.buffer.getvalue().decode())


def check_rejection(res: Result, what: str) -> None:
    assert "Traceback" not in res.err and "internal error" not in res.err, (what, res.err)
    assert res.rc in (0, 1, 2), (what, res.rc, res.err)
    if res.rc == 2:
        lines = [ln for ln in res.err.splitlines() if ln.strip()]
        if any(ln.startswith("Usage:") for ln in lines):  # click's own usage errors: one `Error:` line
            assert sum(ln.startswith("Error:") for ln in lines) == 1, (what, res.err)
        else:
            assert len(lines) == 1 and lines[0].startswith("error: "), (what, res.err)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("badinput")
    (root / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY))
    (root / "revoke.yaml").write_text(yaml.safe_dump({"connectors": [{"type": "inventory", "path": "inventory.yaml"}]}))
    w = Workspace(root, root / ".revoke" / "revoke.db", root / "revoke.yaml")
    assert revoke(w, "collect").rc == 0
    # a first dry run creates the journal tables (lazily, by design): the baseline includes them
    assert revoke(w, "run", "compromised-ci-supply-chain", "--node", "host:ci-runner-7", "--incident", "warmup").rc == 0
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
def test_inventory_loader(ws: Workspace, doc: object, as_json: bool, raw: str | None) -> None:
    _count("inventory")
    text = raw if raw is not None else _dump(doc, as_json)
    inv = ws.root / ("fuzz.json" if as_json else "fuzz.yaml")
    inv.write_text(text, encoding="utf-8", errors="surrogateescape")
    cfg = ws.root / "fuzz-inventory.yaml"
    cfg.write_text(yaml.safe_dump({"connectors": [{"type": "inventory", "path": inv.name}]}))
    before = ws.snapshot()
    res = revoke(ws, "collect", "--allow-empty", config=cfg)
    check_rejection(res, text[:200])
    if res.rc == 2:
        assert ws.snapshot() == before, "a rejected inventory changed the store"
    else:
        assert revoke(ws, "collect").rc == 0  # back to the reference graph


@SETTINGS
@given(doc=st.one_of(DOCS, st.builds(lambda a, h, x: {"name": "fuzz", "actions": a, "holders": h, **(x or {})},
                                     DOCS, DOCS, st.one_of(st.none(), st.dictionaries(KEYS, DOCS, max_size=3)))),
       raw=st.one_of(st.none(), RAW))
def test_playbook_loader(ws: Workspace, doc: object, raw: str | None) -> None:
    _count("playbook")
    pb = ws.root / "fuzz-playbook.yaml"
    pb.write_text(raw if raw is not None else _dump(doc, False), encoding="utf-8", errors="surrogateescape")
    before = ws.snapshot()
    res = revoke(ws, "plan", str(pb), "--node", "host:ci-runner-7", "--format", "json")
    check_rejection(res, pb.read_text(errors="replace")[:200])
    assert ws.snapshot() == before, "plan changed the store"


CONNECTOR = st.builds(lambda t, x: {"type": t, **(x or {})},
                      st.sampled_from(["inventory", "x509", "aws", "vault", "gcp", "nope", ""]),
                      st.one_of(st.none(), st.dictionaries(KEYS, SCALARS, max_size=3)))
CONFIGS = st.one_of(DOCS, st.builds(lambda c: {"connectors": c}, st.lists(st.one_of(DOCS, CONNECTOR), max_size=3)))


@SETTINGS
@given(doc=CONFIGS, raw=st.one_of(st.none(), RAW))
def test_config_loader(ws: Workspace, doc: object, raw: str | None) -> None:
    _count("config")
    cfg = ws.root / "fuzz-config.yaml"
    cfg.write_text(raw if raw is not None else _dump(doc, False), encoding="utf-8", errors="surrogateescape")
    before = ws.snapshot()
    # plan reads the config and builds connector classes without contacting any provider
    res = revoke(ws, "plan", "compromised-ci-supply-chain", "--node", "host:ci-runner-7", "--format", "json",
                 config=cfg)
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
def test_node_ids_on_the_command_line(ws: Workspace, node: str, cmd: str) -> None:
    _count("node_id")
    argv = {
        "blast": ["blast-radius", "--format", "json", "--", node],
        "explain": ["explain", "--", "host:ci-runner-7", node],
        "plan": ["plan", "compromised-ci-supply-chain", f"--node={node}", "--format", "json"],
        "run": ["run", "compromised-ci-supply-chain", f"--node={node}", "--incident", "fuzz-dry-run"],
        "attest": ["attest", "--incident", "no-such-incident", "--note", "x", "--", node],
    }[cmd]
    before = ws.snapshot()
    res = revoke(ws, *argv)
    check_rejection(res, f"{cmd} {node!r}")
    assert ws.snapshot() == before, f"{cmd} {node!r} changed the store"
