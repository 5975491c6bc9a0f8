"""Incremental verify: a file source that provably did not change keeps its snapshot, one that did
is read again, and either way the result is the one a full re-collection gives."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

INVENTORY = """nodes:
  - {id: host:web-1, kind: host}
  - {id: host:web-2, kind: host}
  - {id: 'vault:api_key:secret/a', kind: api_key, provider: vault, status: active}
  - {id: 'vault:api_key:secret/b', kind: api_key, provider: vault, status: active}
edges:
  - {from: host:web-1, to: 'vault:api_key:secret/a', rel: stores}
  - {from: host:web-2, to: 'vault:api_key:secret/b', rel: stores}
"""
OTHER_KEY = "vault:api_key:secret/b"


def _incident(revoke_cli, tmp_path: Path) -> None:
    """host:web-1 compromised; its one key is a manual task, attested."""
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    (tmp_path / "revoke.yaml").write_text("connectors:\n  - {type: inventory, path: inv.yaml}\n")
    assert revoke_cli("collect", cwd=tmp_path).returncode == 0
    ran = revoke_cli("run", "compromised-host", "--node", "host:web-1", "--incident", "i1", "--execute", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    done = revoke_cli("attest", "--incident", "i1", "vault:api_key:secret/a", "--note", "revoked at the vendor",
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def _verify(revoke_cli, tmp_path: Path, *extra: str) -> dict:
    res = revoke_cli("verify", "--incident", "i1", "--format", "json", *extra, cwd=tmp_path)
    assert res.returncode in (0, 1), res.stderr
    out = json.loads(res.stdout)
    assert res.returncode == (0 if out["clean"] else 1)
    return out


def _judged(out: dict) -> dict:
    """What verify concluded, without what differs between two runs by design."""
    return {k: v for k, v in out.items() if k not in ("chain_message", "recollection")}


def _taken_at(tmp_path: Path) -> str:
    db = sqlite3.connect(tmp_path / ".revoke" / "revoke.db")
    try:
        return db.execute("SELECT taken_at FROM snapshots WHERE name='inventory'").fetchone()[0]
    finally:
        db.close()


def test_an_unchanged_inventory_is_not_read_again_and_the_result_is_a_full_ones(revoke_cli, tmp_path: Path) -> None:
    _incident(revoke_cli, tmp_path)
    taken = _taken_at(tmp_path)
    quick = _verify(revoke_cli, tmp_path)
    assert quick["clean"], quick["reasons"]
    assert quick["recollection"] == {"recollected": [], "reused": {"inventory": taken}, "full": False}
    assert _taken_at(tmp_path) == taken  # the snapshot was kept, not re-parsed and rewritten
    full = _verify(revoke_cli, tmp_path, "--full")
    assert full["recollection"] == {"recollected": ["inventory"], "reused": {}, "full": True}
    assert _taken_at(tmp_path) != taken
    assert _judged(full) == _judged(quick)


def test_an_inventory_edited_since_is_read_again(revoke_cli, tmp_path: Path) -> None:
    _incident(revoke_cli, tmp_path)
    assert _verify(revoke_cli, tmp_path)["clean"]
    # a new edge: the compromised host now stores the other key too
    inv = tmp_path / "inv.yaml"
    inv.write_text(INVENTORY + f"  - {{from: host:web-1, to: '{OTHER_KEY}', rel: stores}}\n")
    out = _verify(revoke_cli, tmp_path)
    assert out["recollection"]["recollected"] == ["inventory"] and out["recollection"]["reused"] == {}
    assert not out["clean"] and [s["node"] for s in out["survivors"]] == [OTHER_KEY]
    assert _judged(out) == _judged(_verify(revoke_cli, tmp_path, "--full"))


def test_a_same_size_rewrite_with_the_old_mtime_is_still_seen(revoke_cli, tmp_path: Path) -> None:
    _incident(revoke_cli, tmp_path)
    inv = tmp_path / "inv.yaml"
    before = inv.stat()
    # web-2's key moves to web-1: same size, and the old modification time put back
    inv.write_text(INVENTORY.replace(f"{{from: host:web-2, to: '{OTHER_KEY}'", f"{{from: host:web-1, to: '{OTHER_KEY}'"))
    os.utime(inv, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert inv.stat().st_size == before.st_size and inv.stat().st_mtime_ns == before.st_mtime_ns
    out = _verify(revoke_cli, tmp_path)
    assert out["recollection"]["recollected"] == ["inventory"]
    assert [s["node"] for s in out["survivors"]] == [OTHER_KEY]


def test_a_kept_inventory_whose_named_node_vanished_is_read_again(revoke_cli, tmp_path: Path) -> None:
    """hosts.yaml is unchanged, but the key it names is no longer collected by keys.yaml: what it
    resolved to depended on the other snapshot, so it is read again (the key becomes a tombstone)."""
    key = "aws:access_key:AKIA2"
    (tmp_path / "keys.yaml").write_text(f"nodes:\n  - {{id: '{key}', kind: access_key, status: active}}\n"
                                        "  - {id: 'aws:access_key:AKIA9', kind: access_key, status: active}\n")
    (tmp_path / "hosts.yaml").write_text("nodes:\n  - {id: host:a, kind: host}\n  - {id: host:b, kind: host}\n"
                                         f"edges:\n  - {{from: host:b, to: '{key}', rel: stores}}\n"
                                         "  - {from: host:a, to: 'aws:access_key:AKIA9', rel: stores}\n")
    (tmp_path / "revoke.yaml").write_text("connectors:\n  - {type: inventory, path: keys.yaml, name: keys}\n"
                                          "  - {type: inventory, path: hosts.yaml, name: hosts}\n")
    assert revoke_cli("collect", cwd=tmp_path).returncode == 0, "collect"
    ran = revoke_cli("run", "compromised-host", "--node", "host:a", "--incident", "i1", "--execute", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert _verify(revoke_cli, tmp_path)["recollection"]["reused"].keys() == {"keys", "hosts"}
    (tmp_path / "keys.yaml").write_text("nodes:\n  - {id: 'aws:access_key:AKIA9', kind: access_key, status: active}\n")
    out = _verify(revoke_cli, tmp_path)
    assert out["recollection"]["recollected"] == ["hosts", "keys"]
    assert _judged(out) == _judged(_verify(revoke_cli, tmp_path, "--full"))


def test_an_inventory_with_a_node_expired_since_is_read_again(revoke_cli, tmp_path: Path) -> None:
    """A re-read would say a node past its expiry is dead: the snapshot records the earliest expiry
    ahead, and once it is past the inventory is read again."""
    expires = "2999-01-01T00:00:00+00:00"
    _incident(revoke_cli, tmp_path)
    text = INVENTORY.replace("edges:\n", f"  - {{id: 'vault:token:t', kind: token, provider: vault, status: active, "
                                         f"expires: '{expires}'}}\nedges:\n")
    (tmp_path / "inv.yaml").write_text(text)
    assert revoke_cli("collect", cwd=tmp_path).returncode == 0
    db = sqlite3.connect(tmp_path / ".revoke" / "revoke.db")
    try:
        meta = json.loads(db.execute("SELECT meta FROM snapshots WHERE name='inventory'").fetchone()[0])
        assert meta["source_fingerprint"]["valid_until"] == expires
        assert _verify(revoke_cli, tmp_path)["recollection"]["reused"].keys() == {"inventory"}
        # time passes beyond that expiry (the record moved back rather than the clock forward)
        meta["source_fingerprint"]["valid_until"] = "2000-01-01T00:00:00+00:00"
        with db:
            db.execute("UPDATE snapshots SET meta=? WHERE name='inventory'", (json.dumps(meta),))
    finally:
        db.close()
    assert _verify(revoke_cli, tmp_path)["recollection"]["recollected"] == ["inventory"]


def test_a_changed_small_source_beside_an_unchanged_big_one_merges_with_its_kept_part(revoke_cli, tmp_path: Path) -> None:
    """Only the small file is read again; the big one's snapshot is kept and merged into the graph
    from its compiled part (made when it was collected), and the result is a full re-collection's."""
    (tmp_path / "big.yaml").write_text(INVENTORY)
    small = tmp_path / "incident.yaml"
    small.write_text("nodes:\n  - {id: host:web-3, kind: host}\n"
                     "  - {id: 'vault:api_key:secret/c', kind: api_key, provider: vault, status: active}\n"
                     "edges:\n  - {from: host:web-3, to: 'vault:api_key:secret/c', rel: stores}\n"
                     f"  - {{from: host:web-3, to: '{OTHER_KEY}', rel: stores}}\n")
    (tmp_path / "revoke.yaml").write_text("connectors:\n  - {type: inventory, path: big.yaml, name: estate}\n"
                                          "  - {type: inventory, path: incident.yaml, name: incident}\n")
    assert revoke_cli("collect", cwd=tmp_path).returncode == 0
    ran = revoke_cli("run", "compromised-host", "--node", "host:web-3", "--incident", "i1", "--execute", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    done = revoke_cli("attest", "--incident", "i1", "vault:api_key:secret/c", OTHER_KEY, "--note", "revoked",
                      cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # a label added on the small file; and the compromised host now stores one more key, the big file's
    small.write_text(small.read_text().replace("kind: host}", "kind: host, labels: {team: web}}") +
                     "  - {from: host:web-3, to: 'vault:api_key:secret/a', rel: stores}\n")
    db = sqlite3.connect(tmp_path / ".revoke" / "revoke.db")
    try:
        part = "SELECT key, taken_at, data FROM parts WHERE snapshot='estate' ORDER BY key"
        kept_part = db.execute(part).fetchall()
        taken = db.execute("SELECT taken_at FROM snapshots WHERE name='estate'").fetchone()[0]
        assert kept_part and {row[1] for row in kept_part} == {taken}
        out = _verify(revoke_cli, tmp_path)
        assert out["recollection"]["recollected"] == ["incident"]
        assert list(out["recollection"]["reused"]) == ["estate"]
        assert not out["clean"] and [s["node"] for s in out["survivors"]] == ["vault:api_key:secret/a"]
        # the big snapshot and its part are the ones collect made: nothing of it was rewritten
        assert db.execute(part).fetchall() == kept_part
    finally:
        db.close()
    assert _judged(out) == _judged(_verify(revoke_cli, tmp_path, "--full"))
