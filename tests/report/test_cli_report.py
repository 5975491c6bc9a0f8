"""`revoke report` through the real entry point: formats, files 0600, exit codes, and signed
statements that an auditor checks later (signature, report digest, journal hashes)."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from revoke import evidence
from tests.report.report_testlib import CANARIES, HOST, Lab

if TYPE_CHECKING:
    from tests.conftest import CliRun


def _keypair(d: Path, name: str = "signer") -> tuple[Path, Path]:
    key = Ed25519PrivateKey.generate()
    priv, pub = d / f"{name}.pem", d / f"{name}.pub"
    priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def signed(revoke_cli, small: Lab) -> tuple[Lab, Path, Path, Path]:
    priv, pub = _keypair(small.dir)
    out = small.dir / "out" / "report.html"
    res = revoke_cli("report", "--incident", "inc-clean", "--format", "html", "--out", str(out), "--sign", str(priv),
                     cwd=small.dir, store=small.url)
    assert res.returncode == 0, res.stderr
    return small, out, Path(f"{out}.sig.json"), pub


@pytest.fixture
def signed_here(small: Lab) -> tuple[Lab, Path, Path, Path]:
    """Signed in this process, as `revoke report --sign` does (that path itself is tested above)."""
    from revoke.report import build_report, render

    priv, pub = _keypair(small.dir)
    out = small.dir / "out" / "report.md"
    report = build_report(small.store, small.journal("inc-clean"))
    data = render(report, "md").encode()
    evidence.write_private(out, data)
    env = evidence.sign(report, evidence.load_private_key(str(priv)), report_bytes=data, report_file=str(out), fmt="md")
    evidence.write_private(evidence.sig_path(str(out)), evidence.canonical_pretty(env))
    return small, out, Path(evidence.sig_path(str(out))), pub


def check(revoke_cli: Callable[..., CliRun], lab: Lab, sig: Path, pub: Path, *extra: str) -> tuple[int, str]:
    """`revoke report --check` as a subprocess: the exit code is part of the contract."""
    res = revoke_cli("report", "--check", str(sig), "--pubkey", str(pub), *extra, cwd=lab.dir, store=lab.url)
    return res.returncode, res.stdout + res.stderr


def check_here(lab: Lab, sig: Path, pub: Path) -> tuple[int, str]:
    """The same check in this process (what the CLI prints, without a Python start-up per call)."""
    res = evidence.check(str(sig), evidence.load_public_key(str(pub)), store=lab.store)
    return (0 if res.valid else 1), "\n".join([*res.lines, "VALID" if res.valid else "INVALID"])


def test_formats_to_stdout_and_file(revoke_cli, small: Lab) -> None:
    res = revoke_cli("report", "--incident", "inc-dirty", "--format", "json", cwd=small.dir, store=small.url)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["incident"]["id"] == "inc-dirty" and data["summary"]["verdict"] == "not clean"
    res = revoke_cli("report", "--incident", "inc-dirty", cwd=small.dir, store=small.url)
    assert res.returncode == 0 and res.stdout.startswith("# Incident report: inc-dirty")
    out = small.dir / "r.md"
    out.write_text("old, world-readable")
    out.chmod(0o644)
    res = revoke_cli("report", "--incident", "inc-dirty", "--out", str(out), cwd=small.dir, store=small.url)
    assert res.returncode == 0 and _mode(out) == 0o600 and out.read_text().startswith("# Incident report")


def test_unknown_incident_is_one_clear_line(revoke_cli, small: Lab) -> None:
    res = revoke_cli("report", "--incident", "nope", cwd=small.dir, store=small.url)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().splitlines() == [
        "error: unknown incident 'nope'; known incidents: " + res.stderr.split("known incidents: ")[1].strip()]
    assert "inc-clean" in res.stderr


@pytest.mark.parametrize("args", [["--incident", "inc-clean", "--format", "pdf"],
                                  ["--incident", "inc-clean", "--sign", "k.pem"],
                                  ["--check", "x.sig.json"], []])
def test_usage_errors_exit_2(revoke_cli, small: Lab, args: list[str]) -> None:
    res = revoke_cli("report", *args, cwd=small.dir, store=small.url)
    assert res.returncode == 2, res.stdout + res.stderr


def test_bad_signing_keys_exit_2_and_write_nothing(revoke_cli, small: Lab) -> None:
    ec = small.dir / "ec.pem"
    ec.write_bytes(generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (small.dir / "junk.pem").write_text("not a key")
    cases = ((ec, "not Ed25519"), (small.dir / "junk.pem", "not a PEM private key"), (small.dir / "absent.pem", "cannot read"))
    for key, says in cases:
        out = small.dir / f"r-{key.stem}.md"
        res = revoke_cli("report", "--incident", "inc-clean", "--out", str(out), "--sign", str(key),
                         cwd=small.dir, store=small.url)
        assert res.returncode == 2 and says in res.stderr and not out.exists(), res.stderr


def test_sign_and_check_round_trip(revoke_cli, signed: tuple[Lab, Path, Path, Path]) -> None:
    lab, out, sig, pub = signed
    assert _mode(out) == 0o600 and _mode(sig) == 0o600
    env = json.loads(sig.read_text())
    stmt = env["statement"]
    assert stmt["incident"] == "inc-clean" and stmt["clean"] is True
    assert stmt["claim"] == f"no live credential reachable from {HOST} at {stmt['verification']['at']}"
    assert stmt["journal"]["chain_intact"] and len(stmt["journal"]["final_hash"]) == 64
    assert stmt["report"]["file"] == "report.html" and env["signature"]["key"].startswith("sha256:")
    text = sig.read_text()
    assert not any(c in text for c in CANARIES.values())
    rc, said = check(revoke_cli, lab, sig, pub)
    assert rc == 0 and said.strip().endswith("VALID"), said
    assert "journal unchanged" in said and "matches the signed digest" in said


def test_edited_statement_fails(revoke_cli, signed: tuple[Lab, Path, Path, Path]) -> None:
    lab, _, sig, pub = signed
    env = json.loads(sig.read_text())
    env["statement"]["verification"]["live_reachable"] = 0
    env["statement"]["claim"] = env["statement"]["claim"].replace("host:ci-runner-7", "host:other")
    sig.write_text(json.dumps(env, indent=1))
    rc, said = check(revoke_cli, lab, sig, pub)
    assert rc == 1 and "does not match the statement" in said and said.strip().endswith("INVALID")


def test_reformatted_statement_still_checks(signed_here: tuple[Lab, Path, Path, Path]) -> None:
    lab, _, sig, pub = signed_here
    sig.write_text(json.dumps(json.loads(sig.read_text())))  # same content, other whitespace and order
    assert check_here(lab, sig, pub)[0] == 0


def test_edited_report_fails(signed_here: tuple[Lab, Path, Path, Path]) -> None:
    lab, out, sig, pub = signed_here
    out.write_text(out.read_text().replace("**CLEAN**", "**CLEAN!**"))
    rc, said = check_here(lab, sig, pub)
    assert rc == 1 and "changed after signing" in said


def test_journal_edited_after_signing_fails(revoke_cli, signed_here: tuple[Lab, Path, Path, Path]) -> None:
    lab, _, sig, pub = signed_here
    lab.store.db.execute("UPDATE journal SET data = replace(data, 'dba@lab', 'mallory') "
                         "WHERE incident='inc-clean' AND type='attest'")
    rc, said = check(revoke_cli, lab, sig, pub)
    assert rc == 1 and "hash chain no longer checks" in said


def test_journal_rewritten_with_a_valid_chain_fails(signed_here: tuple[Lab, Path, Path, Path]) -> None:
    """Someone re-creates the whole incident with recomputed hashes: the chain checks, the signed hash does not."""
    from tests.report.report_testlib import record_incident

    lab, _, sig, pub = signed_here
    lab.store.db.execute("DELETE FROM journal WHERE incident='inc-clean'")
    lab.store.db.execute("DELETE FROM incidents WHERE id='inc-clean'")
    record_incident(lab.store, lab.plan, lab.playbook, "inc-clean", "clean")
    rc, said = check_here(lab, sig, pub)
    assert rc == 1 and "no longer matches the signed final hash" in said


def test_records_appended_after_signing_are_named(signed_here: tuple[Lab, Path, Path, Path]) -> None:
    lab, _, sig, pub = signed_here
    lab.journal("inc-clean").append("verify", data={"clean": True, "survivors": [], "open_manual": []})
    rc, said = check_here(lab, sig, pub)
    assert rc == 0 and "1 record(s) appended since signing" in said


def test_other_key_fails(signed_here: tuple[Lab, Path, Path, Path]) -> None:
    lab, _, sig, _ = signed_here
    _, other = _keypair(lab.dir, "other")
    rc, said = check_here(lab, sig, other)
    assert rc == 1 and "not by the given public key" in said


def test_check_without_store_checks_signature_only(revoke_cli, signed_here: tuple[Lab, Path, Path, Path]) -> None:
    lab, _, sig, pub = signed_here
    res = revoke_cli("report", "--check", str(sig), "--pubkey", str(pub), cwd=lab.dir,
                     store=f"sqlite:///{lab.dir / 'absent.db'}")
    assert res.returncode == 0 and "journal was not re-checked" in res.stdout


def test_wrong_incident_named_fails(revoke_cli, signed_here: tuple[Lab, Path, Path, Path]) -> None:
    lab, _, sig, pub = signed_here
    rc, said = check(revoke_cli, lab, sig, pub, "--incident", "inc-dirty")
    assert rc == 1 and "not 'inc-dirty'" in said


def test_dirty_incident_is_signed_honestly(revoke_cli, small: Lab) -> None:
    priv, pub = _keypair(small.dir)
    out = small.dir / "dirty.json"
    res = revoke_cli("report", "--incident", "inc-dirty", "--format", "json", "--out", str(out), "--sign", str(priv),
                     cwd=small.dir, store=small.url)
    assert res.returncode == 0, res.stderr
    stmt = json.loads(Path(f"{out}.sig.json").read_text())["statement"]
    assert stmt["clean"] is False and stmt["claim"].startswith("NOT clean at ")
    assert "no live credential reachable" not in stmt["claim"]
    assert stmt["verification"]["survivors"] and stmt["verification"]["failed_steps"]
    assert check_here(small, Path(f"{out}.sig.json"), pub)[0] == 0  # a true statement that it is not clean


def test_broken_chain_report_exits_1(revoke_cli, small: Lab) -> None:
    small.store.db.execute("UPDATE journal SET ts='2020-01-01T00:00:00+00:00' WHERE incident='inc-clean' AND seq=3")
    res = revoke_cli("report", "--incident", "inc-clean", cwd=small.dir, store=small.url)
    assert res.returncode == 1 and "hash chain is broken" in res.stderr and "**BROKEN**" in res.stdout
