"""Signed evidence for auditors: an Ed25519 signature over a canonical JSON statement of what the
journal says about an incident, checked later with the public key alone.

The statement binds the incident id, the journal's final hash and record count (so any edit of a
signed record is caught by re-hashing the journal), the chain check, the last verification result,
the report file's SHA-256 and one plain sentence: "no live credential reachable from <sources> at
<time>" only when the last verification was clean and the chain intact, otherwise a sentence that
says what was not clean. Canonical JSON = sorted keys, no whitespace, UTF-8: the bytes signed are
re-derived from the parsed statement, so re-indenting the file does not break it, editing a value
does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from revoke.errors import InputError
from revoke.files import write_private as write_private  # the one writer of reports and statements

FORMAT = "revoke-evidence/1"
STATEMENT_TYPE = "revoke-incident-statement/1"
PASSPHRASE_ENV = "REVOKE_SIGNING_KEY_PASSPHRASE"


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def canonical_pretty(obj: Any) -> bytes:
    """The file form: indented for people; the signature is over `canonical()` of the statement."""
    return (json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def key_fingerprint(public_key: Any) -> str:
    """sha256 of the SubjectPublicKeyInfo DER, the same convention as revoke's x509:private_key ids."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def load_private_key(path: str) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read(path, "signing key")
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(data, password=passphrase.encode() if passphrase else None)
    except TypeError:
        raise InputError(f"the key is encrypted: put its passphrase in ${PASSPHRASE_ENV}", source=path) from None
    except ValueError:
        raise InputError("not a PEM private key (or a wrong passphrase); expected an Ed25519 key, e.g. from "
                         "`openssl genpkey -algorithm ed25519`", source=path) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"the signing key is {type(key).__name__.removeprefix('_')}, not Ed25519", source=path)
    return key


def load_public_key(path: str) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read(path, "public key")
    try:
        if data.lstrip().startswith(b"ssh-ed25519"):
            key: object = serialization.load_ssh_public_key(data.strip())
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise InputError("not a PEM (or ssh-ed25519) public key", source=path) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"the public key is {type(key).__name__.removeprefix('_')}, not Ed25519", source=path)
    return key


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the {what}: {exc.strerror}", source=path) from None


def statement(report: dict[str, Any], *, report_bytes: bytes, report_file: str, fmt: str,
              key_fp: str, signed_at: str | None = None) -> dict[str, Any]:
    inc, j, v = report["incident"], report["journal"], report["verification"]
    last = v["last"]
    clean = bool(last and last["clean"] and j["intact"])
    return {
        "type": STATEMENT_TYPE,
        "incident": inc["id"],
        "sources": inc["sources"],
        "playbook": inc["playbook"],
        "playbook_digest": inc["playbook_digest"],
        "declared_at": inc["declared_at"],
        "journal": {"final_hash": j["final_hash"], "records": j["records"], "chain_intact": j["intact"],
                    "chain_check": j["message"]},
        "verification": None if last is None else {
            "at": last["at"], "clean": last["clean"], "probes": last["probes"],
            "live_reachable": len(last["survivors"]), "survivors": [s["node"] for s in last["survivors"]],
            "open_manual": last["open_manual"], "failed_steps": last["failed_steps"],
            "records_after": last["records_after"],
        },
        "attested_not_probed": [{"node": m["node"], "by": m["attestation"]["by"], "at": m["attestation"]["at"]}
                                for m in report["manual"] if m.get("attestation")],
        "results": report["summary"]["results"],
        "clean": clean,
        "claim": v["statement"],
        "report": {"file": Path(report_file).name, "format": fmt, "sha256": hashlib.sha256(report_bytes).hexdigest()},
        "signed_at": signed_at or datetime.now(UTC).isoformat(),
        "key": key_fp,
    }


def sign(report: dict[str, Any], key: Any, *, report_bytes: bytes, report_file: str, fmt: str) -> dict[str, Any]:
    fp = key_fingerprint(key.public_key())
    stmt = statement(report, report_bytes=report_bytes, report_file=report_file, fmt=fmt, key_fp=fp)
    sig = key.sign(canonical(stmt))
    return {"format": FORMAT, "statement": stmt,
            "signature": {"algorithm": "ed25519", "key": fp, "value": base64.b64encode(sig).decode()}}


def sig_path(report_path: str) -> str:
    return f"{report_path}.sig.json"


@dataclass
class CheckResult:
    valid: bool = True
    lines: list[str] = field(default_factory=list)
    incident: str | None = None

    def ok(self, line: str) -> None:
        self.lines.append(f"ok: {line}")

    def bad(self, line: str) -> None:
        self.valid = False
        self.lines.append(f"INVALID: {line}")

    def note(self, line: str) -> None:
        self.lines.append(f"note: {line}")


def check(sig_file: str, public_key: Any, *, store: Any = None) -> CheckResult:
    """Signature, key, report digest and (when a store is given) the journal's hashes today."""
    from cryptography.exceptions import InvalidSignature

    res = CheckResult()
    raw = _read(sig_file, "signed statement")
    try:
        env = json.loads(raw)
        stmt, sig = env["statement"], env["signature"]
        value = base64.b64decode(sig["value"], validate=True)
        res.incident = str(stmt["incident"])
    except (ValueError, KeyError, TypeError):
        res.bad("the file is not a revoke signed statement (unparsable or fields missing)")
        return res
    fp = key_fingerprint(public_key)
    if sig.get("algorithm") != "ed25519":
        res.bad(f"unsupported algorithm {sig.get('algorithm')!r}")
        return res
    if sig.get("key") != fp or stmt.get("key") != fp:
        res.bad(f"signed by key {sig.get('key')}, not by the given public key {fp}")
        return res
    try:
        public_key.verify(value, canonical(stmt))
    except InvalidSignature:
        res.bad("the signature does not match the statement (the statement or the signature was altered)")
        return res
    res.ok(f"signature valid (ed25519, key {fp}), signed at {stmt.get('signed_at')}")
    res.ok(f"incident {stmt['incident']}: {stmt.get('claim')}")
    _check_report(res, stmt, Path(sig_file).parent)
    _check_journal(res, stmt, store)
    return res


def _check_report(res: CheckResult, stmt: dict[str, Any], directory: Path) -> None:
    rep = stmt.get("report") or {}
    path = directory / str(rep.get("file", ""))
    if not rep.get("file") or not path.is_file():
        res.note(f"report file {rep.get('file')!r} not found beside the signature; its digest was not checked")
        return
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != rep.get("sha256"):
        res.bad(f"report {path.name} was changed after signing (sha256 now {digest[:16]}..., "
                f"signed {str(rep.get('sha256'))[:16]}...)")
    else:
        res.ok(f"report {path.name} matches the signed digest")


def _check_journal(res: CheckResult, stmt: dict[str, Any], store: Any) -> None:
    if store is None:
        res.note("no store available: the journal was not re-checked (pass --store to check it too)")
        return
    from revoke.journal import Journal

    journal = Journal(store, res.incident or "")
    if journal.info() is None:
        res.note(f"the store {store.where} holds no incident {res.incident!r}: the journal was not re-checked")
        return
    signed = stmt.get("journal") or {}
    n, final = signed.get("records"), signed.get("final_hash")
    intact, message, _ = journal.check_chain()
    records = journal.records()
    if not intact:
        res.bad(f"the journal's hash chain no longer checks: {message}")
        return
    if not isinstance(n, int) or n < 1 or n > len(records) or records[n - 1].hash != final:
        now = records[-1].hash if records else None
        res.bad(f"the journal no longer matches the signed final hash {final} (record {n} is now "
                f"{records[n - 1].hash if isinstance(n, int) and 0 < n <= len(records) else 'missing'}; final hash now {now})")
        return
    extra = len(records) - n
    if extra:
        # the chain is intact and record n still carries the signed hash: records 1..n are unchanged
        res.ok(f"journal records 1..{n} unchanged (final hash {final}); {extra} record(s) appended since signing")
    else:
        res.ok(f"journal unchanged: {n} records, final hash {final}")
