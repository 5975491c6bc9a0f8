"""Trust stores: a holder *trusts* the CAs in its bundle files and certificate directories."""

from __future__ import annotations

import pytest
from x509_testlib import cid, edge_set, write

from examples.lab.pki import make_ca, pem
from revoke.connector import connector_class


def test_trust_paths_record_trusts_with_the_file_not_holds_public(tmp_path, collect) -> None:
    root, root_key = make_ca("Trust Root")
    inter, _ = make_ca("Trust Intermediate", issuer=(root, root_key))
    bundle = write(tmp_path / "web" / "bundle.pem", pem(root) + pem(inter))
    write(tmp_path / "api" / "certs" / "inter.crt", pem(inter))
    got = collect({"trust_paths": [{"path": str(bundle), "holder": "host:web-1"},
                                   {"path": str(tmp_path / "api" / "certs"), "holder": "host:api-1"}]})
    edges = edge_set(got)
    assert {("host:web-1", "trusts", cid(root)), ("host:web-1", "trusts", cid(inter)),
            ("host:api-1", "trusts", cid(inter)), (cid(root), "issued", cid(inter))} <= edges
    assert not {e for e in edges if e[1] in ("holds_public", "stores")}
    by_key = {e.key: e for e in got.edges}
    assert by_key[("host:api-1", "trusts", cid(inter))].attrs["path"] == str(tmp_path / "api" / "certs" / "inter.crt")


def test_trust_paths_entries_forbid_extra_keys(tmp_path) -> None:
    with pytest.raises(ValueError, match="extra"):
        connector_class("x509")({"trust_paths": [{"path": str(tmp_path), "holder": "host:a", "mode": "x"}]})


def test_a_bad_trust_paths_entry_is_exit_2_naming_file_line_and_field(tmp_path, revoke_cli) -> None:
    (tmp_path / "revoke.yaml").write_text(
        "connectors:\n  - type: x509\n    trust_paths:\n      - {path: ./a.pem, holder: host:a, mode: x}\n")
    res = revoke_cli("collect", cwd=tmp_path, store=tmp_path / "s.db")
    assert res.returncode == 2
    assert "revoke.yaml:4" in res.stderr and "trust_paths.0.mode" in res.stderr
