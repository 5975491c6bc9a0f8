"""A compromised CA leaves every trust store that accepts it: planned, removed from the files by the
x509 connector, verified from the files."""

from __future__ import annotations

import json
from pathlib import Path

from x509_testlib import cid, kid, write

from examples.lab.pki import make_ca, make_leaf, pem, pem_key

WEB = ("host:web-1", "host:web-2", "host:web-3")


def _lab(tmp: Path):
    root, root_key = make_ca("Lab Root CA")
    inter, inter_key = make_ca("Lab Issuing CA", issuer=(root, root_key))
    leaves = [make_leaf(inter, inter_key, f"svc-{i}")[0] for i in range(2)]
    write(tmp / "pkibox" / "issuing.pem", pem(inter))
    write(tmp / "pkibox" / "issuing.key", pem_key(inter_key))
    write(tmp / "fleet.pem", "".join(pem(c) for c in leaves))
    for i in range(1, len(WEB) + 1):
        write(tmp / f"web-{i}" / "bundle.pem", pem(root) + pem(inter))
    write(tmp / "web-3" / "certs" / "issuing.crt", pem(inter))  # also trusted through a directory
    write(tmp / "api-1" / "client-ca.pem", pem(inter))  # the mTLS server's client CA file
    write(tmp / "kiosk" / "bundle.pem", pem(root))  # trusts only the root, whose key is not reachable
    stores = [(f"web-{i}/bundle.pem", host) for i, host in enumerate(WEB, start=1)]
    stores += [("web-3/certs", "host:web-3"), ("api-1/client-ca.pem", "host:api-1"), ("kiosk/bundle.pem", "host:kiosk")]
    (tmp / "revoke.yaml").write_text(
        "connectors:\n  - type: x509\n    paths: [pkibox, fleet.pem]\n"
        "    holders: {pkibox: 'host:pki-box', fleet.pem: 'host:fleet'}\n    trust_paths:\n"
        + "".join(f"      - {{path: {p}, holder: '{h}'}}\n" for p, h in stores))
    return root, inter, inter_key


def test_a_compromised_ca_leaves_every_trust_store_and_verify_reads_them_back(tmp_path: Path, revoke_cli) -> None:
    def rv(*args: str):
        res = revoke_cli(*args, cwd=tmp_path, store=tmp_path / "s.db")
        return res

    root, inter, inter_key = _lab(tmp_path)
    assert rv("collect").returncode == 0
    res = rv("plan", "compromised-ca", "--node", kid(inter_key), "--format", "json")
    assert res.returncode == 0, res.stderr
    steps = json.loads(res.stdout)["steps"]
    untrust = {s["trust"]["holder"]: s for s in steps if s["id"].startswith("untrust:")}
    # every holder trusting the issuing CA, and nobody for the root (its key is not reachable);
    # each store is a file the x509 connector may rewrite: an action on the CA, not a manual task
    assert set(untrust) == {*WEB, "host:api-1"}
    assert all(s["trust"]["ca"] == cid(inter) and s["verb"] == "untrust" and s["node"] == cid(inter)
               and s["connector"] == "x509" for s in untrust.values())
    assert untrust["host:web-3"]["trust"]["paths"] == [str(tmp_path / "web-3" / "bundle.pem"),
                                                       str(tmp_path / "web-3" / "certs" / "issuing.crt")]
    fp = "sha256:" + cid(inter).rsplit(":", 1)[1]
    assert fp in untrust["host:api-1"]["reason"] and "client-ca.pem" in untrust["host:api-1"]["reason"]
    assert not [s for s in steps if cid(root) in (s["node"], s.get("trust", {}).get("ca"))]
    # trusting a CA is no compromise of it: the kiosk exposes nothing
    kiosk = json.loads(rv("blast-radius", "host:kiosk", "--format", "json").stdout)
    assert kiosk["credentials"] == []

    run = rv("run", "compromised-ca", "--node", kid(inter_key), "--incident", "ca1", "--execute")
    assert run.returncode == 0, run.stdout + run.stderr
    # the files are the judge: the issuing CA left every store, every other certificate stayed
    for i in range(1, 4):
        assert (tmp_path / f"web-{i}" / "bundle.pem").read_text() == pem(root)
    assert not (tmp_path / "web-3" / "certs" / "issuing.crt").exists()
    assert (tmp_path / "api-1" / "client-ca.pem").read_text() == ""
    assert (tmp_path / "kiosk" / "bundle.pem").read_text() == pem(root)
    # deliver: the new issuing CA goes into the stores, the CA's and key's tasks are attested
    new, _ = make_ca("Lab Issuing CA 2", issuer=(root, make_ca("unused")[1]))
    for i in range(1, 4):
        write(tmp_path / f"web-{i}" / "bundle.pem", pem(root) + pem(new))
    write(tmp_path / "api-1" / "client-ca.pem", pem(new))
    manual = {s["node"] for s in steps if s["verb"] == "manual"}
    assert manual and not manual & {*WEB, "host:api-1"}
    for node in sorted(manual):
        assert rv("attest", "--incident", "ca1", node, "--note", "done").returncode == 0
    res = rv("verify", "--incident", "ca1", "--format", "json")
    assert res.stdout, res.stderr
    first = json.loads(res.stdout)
    assert first["clean"] is True and first["trust_survivors"] == [], first["reasons"]
    report = json.loads(rv("report", "--incident", "ca1", "--format", "json").stdout)
    removed = {t["holder"]: t for t in report["trust_removed"]}
    assert set(removed) == {*WEB, "host:api-1"}
    assert removed["host:api-1"]["dropped"] == cid(inter) and removed["host:api-1"]["trusts_now"] == [cid(new)]
    assert removed["host:web-1"]["removed"] and "removed by x509 (untrust:" in removed["host:web-1"]["verified"]
    for fmt in ("md", "html"):
        text = rv("report", "--incident", "ca1", "--format", fmt).stdout
        assert "Trust removed" in text and "host:web-3" in text

    # out of band, the old CA is back in one bundle: verify names that host and its file
    write(tmp_path / "web-2" / "bundle.pem", pem(root) + pem(new) + pem(inter))
    res = rv("verify", "--incident", "ca1", "--format", "json")
    again = json.loads(res.stdout)
    assert again["clean"] is False
    assert again["trust_survivors"] == [{"holder": "host:web-2", "ca": cid(inter),
                                         "paths": [str(tmp_path / "web-2" / "bundle.pem")]}]
    assert any("host:web-2" in r and "bundle.pem" in r for r in again["reasons"])
    # and the sweep flags the bundle holding a CA an incident retired
    res = rv("sweep", "--format", "json", "--fail-on", "none")
    assert res.returncode == 0, res.stderr
    dead = [f for f in json.loads(res.stdout)["findings"] if f["rule"] == "trust-store-dead-ca"]
    assert [(f["node"], [t["holder"] for t in f["evidence"]["trust_stores"]]) for f in dead] == [
        (cid(inter), ["host:web-2"])]
    assert "retired by incident ca1" in dead[0]["reason"]
