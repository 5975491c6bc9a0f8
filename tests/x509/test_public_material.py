"""Holding a certificate is not holding its key: a host that only trusts a CA is no compromise of it."""

from __future__ import annotations

import json
from pathlib import Path

from x509_testlib import cid, kid, write

from examples.lab.pki import make_ca, make_leaf, pem, pem_key


def test_trusting_a_ca_exposes_nothing_holding_its_key_does(tmp_path: Path, revoke_cli) -> None:
    def _revoke(cwd: Path, *args: str):
        return revoke_cli(*args, cwd=cwd, store=cwd / "s.db")

    ca, ca_key = make_ca("Acme IoT Device CA")
    devices = [make_leaf(ca, ca_key, f"device-{i}")[0] for i in range(3)]
    # a web server trusts the CA (its certificate only), and holds a device certificate without its key
    write(tmp_path / "web" / "trust" / "acme-ca.pem", pem(ca))
    write(tmp_path / "web" / "peer.pem", pem(devices[0]))
    # the PKI box holds the CA's key next to its certificate
    write(tmp_path / "pkibox" / "ca.pem", pem(ca))
    write(tmp_path / "pkibox" / "ca.key", pem_key(ca_key))
    write(tmp_path / "fleet.pem", "".join(pem(d) for d in devices))
    (tmp_path / "revoke.yaml").write_text(
        "connectors:\n  - {type: x509, paths: [web, pkibox, fleet.pem],\n"
        "     holders: {web: 'host:web-1', pkibox: 'host:pki-box', fleet.pem: 'host:fleet-registry'}}\n")
    assert _revoke(tmp_path, "collect").returncode == 0

    res = _revoke(tmp_path, "blast-radius", "host:web-1", "--format", "json")
    assert res.returncode == 0, res.stderr
    radius = json.loads(res.stdout)
    assert {c["id"] for c in radius["credentials"]} == set()  # public material only: nothing exposed

    res = _revoke(tmp_path, "plan", "compromised-host", "--node", "host:web-1", "--format", "json")
    assert res.returncode == 0, res.stderr
    assert [s for s in json.loads(res.stdout)["steps"] if s["node"] == cid(ca) or s["verb"] == "create_ca"] == []

    # the key is the compromise: the CA and every certificate it issued are exposed
    res = _revoke(tmp_path, "blast-radius", "host:pki-box", "--format", "json")
    creds = {c["id"] for c in json.loads(res.stdout)["credentials"]}
    assert {kid(ca_key), cid(ca), *(cid(d) for d in devices)} <= creds
