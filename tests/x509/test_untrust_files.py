"""The x509 connector takes a CA out of file trust stores, byte for byte, and puts it back on rollback.

The files are the judge: what a holder's TLS stack would read after revoke wrote them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from x509_testlib import cid, kid, write

from examples.lab.pki import make_ca, pem, pem_key


def _lab(tmp: Path):
    other, _ = make_ca("Other Root")
    inter, inter_key = make_ca("Issuing CA")
    write(tmp / "pkibox" / "issuing.key", pem_key(inter_key))
    write(tmp / "pkibox" / "issuing.pem", pem(inter))
    # a bundle with comments, CRLF line ends and the CA in the middle: every other byte must stay
    crlf = pem(inter).replace("\n", "\r\n")
    bundle = write(tmp / "web" / "bundle.pem", b"# system roots\r\n" + pem(other).encode() + b"# issuing\r\n"
                   + crlf.encode() + b"# end\r\n")
    bundle.chmod(0o644)
    # a c_rehash directory: the CA's file, its hash link, and another CA's file and link
    certs = tmp / "api" / "certs"
    write(certs / "issuing.crt", pem(inter))
    write(certs / "other.crt", pem(other))
    os.symlink("issuing.crt", certs / "1a2b3c4d.0")
    os.symlink("other.crt", certs / "5e6f7a8b.0")
    # a bundle that is a symbolic link (a shared system file): revoke never writes through it
    shared = write(tmp / "system" / "ca-certificates.crt", pem(other) + pem(inter))
    os.symlink(shared, tmp / "kiosk-bundle.pem")
    (tmp / "revoke.yaml").write_text(
        "connectors:\n  - type: x509\n    paths: [pkibox]\n    holder: 'host:pki-box'\n    trust_paths:\n"
        "      - {path: web/bundle.pem, holder: 'host:web'}\n"
        "      - {path: api/certs, holder: 'host:api'}\n"
        "      - {path: kiosk-bundle.pem, holder: 'host:kiosk'}\n")
    return other, inter, inter_key


def _snapshot(tmp: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for path in sorted(tmp.rglob("*")):
        rel = str(path.relative_to(tmp))
        if rel.startswith(("s.db", ".revoke")) or (path.is_dir() and not path.is_symlink()):
            continue
        out[rel] = f"-> {os.readlink(path)}" if path.is_symlink() else path.read_bytes()
    return out


def test_untrust_rewrites_bundles_and_directories_and_rollback_puts_the_ca_back(tmp_path: Path, revoke_cli) -> None:
    def rv(*args: str):
        return revoke_cli(*args, cwd=tmp_path, store=tmp_path / "s.db")

    other, _, inter_key = _lab(tmp_path)
    before = _snapshot(tmp_path)
    assert rv("collect").returncode == 0
    plan = json.loads(rv("plan", "compromised-ca", "--node", kid(inter_key), "--format", "json").stdout)
    untrust = {s["trust"]["holder"]: s for s in plan["steps"] if s["id"].startswith("untrust:")}
    assert {h: s["verb"] for h, s in untrust.items()} == {"host:web": "untrust", "host:api": "untrust",
                                                         "host:kiosk": "manual"}
    # the linked bundle stays a person's task, named with its file and the CA's fingerprint
    assert "kiosk-bundle.pem" in untrust["host:kiosk"]["reason"] and untrust["host:kiosk"]["node"] == "host:kiosk"

    run = rv("run", "compromised-ca", "--node", kid(inter_key), "--incident", "u1", "--execute")
    assert run.returncode == 0, run.stdout + run.stderr
    after = _snapshot(tmp_path)
    # the bundle: only the CA's block (and its line end) is gone; comments, CRLF, order kept; mode kept
    assert after["web/bundle.pem"] == b"# system roots\r\n" + pem(other).encode() + b"# issuing\r\n# end\r\n"
    assert (tmp_path / "web" / "bundle.pem").stat().st_mode & 0o777 == 0o644
    # the directory: the CA's file and its hash link are gone, the other CA and its link stay
    assert "api/certs/issuing.crt" not in after and "api/certs/1a2b3c4d.0" not in after
    assert after["api/certs/other.crt"] == before["api/certs/other.crt"]
    assert after["api/certs/5e6f7a8b.0"] == "-> other.crt"
    # nothing written through the link, nor anywhere else
    assert after["system/ca-certificates.crt"] == before["system/ca-certificates.crt"]
    assert {k: v for k, v in after.items() if not k.startswith(("web/", "api/"))} == \
        {k: v for k, v in before.items() if not k.startswith(("web/", "api/"))}
    # the journal holds public certificates only: no private key left revoke
    journal = json.dumps(json.loads(rv("report", "--incident", "u1", "--format", "json").stdout))
    assert "PRIVATE KEY" not in journal

    dry = rv("rollback", "--incident", "u1")
    assert dry.returncode == 0, dry.stderr
    undo = rv("rollback", "--incident", "u1", "--execute")
    assert undo.returncode in (0, 1), undo.stderr
    restored = _snapshot(tmp_path)
    for name in ("web/bundle.pem", "api/certs/issuing.crt", "api/certs/1a2b3c4d.0", "api/certs/other.crt"):
        assert restored[name] == before[name], name
    assert (tmp_path / "web" / "bundle.pem").stat().st_mode & 0o777 == 0o644


def test_verify_reads_the_stores_back_and_a_rerun_removes_the_ca_again(tmp_path: Path, revoke_cli) -> None:
    def rv(*args: str):
        return revoke_cli(*args, cwd=tmp_path, store=tmp_path / "s.db")

    other, inter, inter_key = _lab(tmp_path)
    os.unlink(tmp_path / "kiosk-bundle.pem")  # only stores revoke can write
    (tmp_path / "revoke.yaml").write_text((tmp_path / "revoke.yaml").read_text().replace(
        "      - {path: kiosk-bundle.pem, holder: 'host:kiosk'}\n", ""))
    assert rv("collect").returncode == 0
    assert rv("run", "compromised-ca", "--node", kid(inter_key), "--incident", "u2", "--execute").returncode == 0
    plan = json.loads(rv("plan", "compromised-ca", "--node", kid(inter_key), "--format", "json").stdout)
    for node in {s["node"] for s in plan["steps"] if s["verb"] == "manual"}:
        assert rv("attest", "--incident", "u2", node, "--note", "done").returncode == 0
    first = json.loads(rv("verify", "--incident", "u2", "--format", "json").stdout)
    probes = {p["step"]: p for p in first["probes"]}
    assert probes[f"untrust:{cid(inter)}->host:web"]["live"] is False, first["reasons"]
    assert first["clean"] is True, first["reasons"]

    # someone puts the CA back into the bundle: verify says so, and a re-run takes it out again
    bundle = tmp_path / "web" / "bundle.pem"
    bundle.write_bytes(bundle.read_bytes() + pem(inter).encode())
    again = json.loads(rv("verify", "--incident", "u2", "--format", "json").stdout)
    assert again["clean"] is False
    assert any("bundle.pem" in r for r in again["reasons"]), again["reasons"]
    rerun = rv("run", "compromised-ca", "--incident", "u2", "--execute")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert pem(inter).encode() not in bundle.read_bytes() and pem(other).encode() in bundle.read_bytes()


def test_directory_forms_and_links_outside_and_a_linked_bundle(tmp_path: Path) -> None:
    import pytest
    from cryptography.hazmat.primitives import serialization

    from connectors import x509_trust
    from revoke.connector import ConnectorError

    other, _ = make_ca("Other")
    inter, _ = make_ca("Issuing")
    sha = cid(inter).rsplit(":", 1)[1]
    d = tmp_path / "certs"
    der = write(d / "issuing.der", inter.public_bytes(serialization.Encoding.DER))
    both = write(d / "pair.pem", pem(other) + pem(inter))
    outside = write(tmp_path / "elsewhere" / "issuing.pem", pem(inter))
    os.symlink(outside, d / "abcdef01.0")
    before = {p.name: p.read_bytes() for p in (der, both)}
    records = x509_trust.remove(d, sha)
    # the DER file is gone, the pair keeps the other CA, the link to a file outside is removed, the
    # file it pointed to is not touched (revoke removes links, never writes through them)
    assert not der.exists() and both.read_text() == pem(other)
    assert not (d / "abcdef01.0").is_symlink() and outside.read_text() == pem(inter)
    assert x509_trust.still_holding([d], sha) == []
    assert x509_trust.restore(records, sha) == 3
    assert {p.name: p.read_bytes() for p in (der, both)} == before and os.readlink(d / "abcdef01.0") == str(outside)
    # a bundle that is a symbolic link is refused, and nothing changes
    os.symlink(outside, tmp_path / "linked.pem")
    with pytest.raises(ConnectorError) as err:
        x509_trust.remove(tmp_path / "linked.pem", sha)
    assert err.value.code == "not_writable" and outside.read_text() == pem(inter)
