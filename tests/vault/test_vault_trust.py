"""A Vault PKI mount trusts the CA certificates it imported without generating them: recorded
as `trusts` to the x509 connector's id of that certificate, and dropped by the `untrust` action
(the imported issuer deleted), each read back from the real server."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from vault_testlib import connector

from examples.lab.pki import make_ca, pem, pem_key
from examples.lab.vault_lab import OpenBaoServer
from revoke.connector import ActionContext, ConnectorError, connector_class, declared
from revoke.model import Node, NodeKind, Relation


def cid(cert: x509.Certificate) -> str:
    """The x509 connector's id of a CA certificate, from its definition (sha256 of the DER)."""
    return "x509:ca:" + hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def issuers(bao: OpenBaoServer, mount: str) -> dict[str, dict[str, Any]]:
    root = bao.client()
    return {iid: root.read(f"{mount}/issuer/{iid}")["data"] for iid in root.list(f"{mount}/issuers")["data"]["keys"]}


def holds(bao: OpenBaoServer, mount: str, cert: x509.Certificate) -> bool:
    return any(d["certificate"].strip() == pem(cert).strip() for d in issuers(bao, mount).values())


def new_mount(bao: OpenBaoServer, mount: str, *, own_root: bool = True) -> None:
    root = bao.client()
    root.sys.enable_secrets_engine("pki", path=mount)
    if own_root:  # the mount's own root, its default issuer
        root.write_data(f"{mount}/root/generate/internal", data={"common_name": f"{mount} own root", "ttl": "8760h"})


def trusts(collected: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e.src, e.dst): e.attrs for e in collected.edges if e.rel is Relation.TRUSTS}


@pytest.fixture
def conn(bao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    c = connector(bao, monkeypatch)
    yield c
    c.close()


def untrust_node(mount: str, ca: x509.Certificate) -> Node:
    # the executor hands the holder over with the plan's step naming the CA (revoke.trust.acting_node)
    return Node(f"vault:pki_mount:{mount}", NodeKind.WORKLOAD, "vault", attrs={"untrust": {"ca": cid(ca)}})


def test_imported_issuers_and_an_external_parent_are_trusted_not_held(bao: OpenBaoServer, conn: Any) -> None:
    ext_root, ext_key = make_ca("Outside Root")
    new_mount(bao, "trust-imp")
    bao.client().write_data("trust-imp/issuers/import/cert", data={"pem_bundle": pem(ext_root)})
    # an intermediate whose key the mount holds, signed by an outside root: config/ca with the chain
    parent, parent_key = make_ca("Partner Root")
    inter, inter_key = make_ca("Partner Issuing", issuer=(parent, parent_key))
    new_mount(bao, "trust-int", own_root=False)
    bao.client().write_data("trust-int/config/ca", data={"pem_bundle": pem_key(inter_key) + pem(inter) + pem(parent)})

    got = conn.collect()
    found = trusts(got)
    own = next(d for d in issuers(bao, "trust-imp").values() if d["key_id"])
    own_id = cid(x509.load_pem_x509_certificate(own["certificate"].encode()))
    imp = found[("vault:pki_mount:trust-imp", cid(ext_root))]
    assert imp["basis"] == "imported" and imp["path"].startswith("trust-imp/issuer/") and imp["default"] is False
    assert ("vault:pki_mount:trust-int", cid(parent)) in found
    # what the mount generated or holds the key of is no trust: it is an alias of its issuer node
    assert ("vault:pki_mount:trust-imp", own_id) not in found
    assert ("vault:pki_mount:trust-int", cid(inter)) not in found
    aliases = {e.src for e in got.edges if e.rel is Relation.DERIVES and e.attrs.get("alias")}
    assert cid(inter) in aliases and own_id in aliases and cid(ext_root) not in aliases and cid(parent) not in aliases
    mount = next(n for n in got.nodes if n.id == "vault:pki_mount:trust-imp")
    assert mount.kind is NodeKind.WORKLOAD
    del ext_key


def test_untrust_deletes_the_imported_issuer_and_reads_it_back(bao: OpenBaoServer, conn: Any) -> None:
    ext_root, _ = make_ca("Removed Root")
    new_mount(bao, "trust-act")
    bao.client().write_data("trust-act/issuers/import/cert", data={"pem_bundle": pem(ext_root)})
    node = untrust_node("trust-act", ext_root)
    assert conn.confirm("untrust", node).live is True

    res = conn.act("untrust", node, ActionContext(incident="INC-T", dry_run=False))
    assert res.changed and not holds(bao, "trust-act", ext_root)
    assert len(issuers(bao, "trust-act")) == 1  # the mount's own root stays
    assert conn.confirm("untrust", node).live is False
    again = conn.act("untrust", node, ActionContext(incident="INC-T", dry_run=False))
    assert again.changed is False

    # imported again out of band: the read-back says so
    bao.client().write_data("trust-act/issuers/import/cert", data={"pem_bundle": pem(ext_root)})
    back = conn.confirm("untrust", node)
    assert back.live is True and "trust-act" in back.signal


def test_untrust_refuses_the_default_issuer(bao: OpenBaoServer, conn: Any) -> None:
    only, _ = make_ca("Only Root")
    new_mount(bao, "trust-dflt")
    imported = bao.client().write_data("trust-dflt/issuers/import/cert", data={"pem_bundle": pem(only)})
    bao.client().write_data("trust-dflt/config/issuers", data={"default": imported["data"]["imported_issuers"][0]})
    with pytest.raises(ConnectorError) as err:
        conn.act("untrust", untrust_node("trust-dflt", only), ActionContext(incident="INC-T", dry_run=False))
    assert err.value.code == "default_issuer" and "default issuer" in str(err.value)
    assert holds(bao, "trust-dflt", only)  # nothing changed


def test_untrust_is_declared_with_its_permissions_and_a_readback() -> None:
    spec = declared(connector_class("vault"), "vault:pki_mount:pki", "untrust")
    assert spec is not None and spec.probe == "readback" and NodeKind.WORKLOAD in spec.kinds
    assert spec.reversible is False and spec.undo is False
    assert "delete <pki>/issuer/*" in spec.permissions
