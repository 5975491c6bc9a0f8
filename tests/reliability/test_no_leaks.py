"""No secret value leaks: canaries planted in every provider and file never reach stdout, stderr,
log files, the store (raw bytes of the database, its -wal and -shm), the journal, reports or exports.

The canaries are the lab's real secret values, read from the providers' own state: every IAM
secret access key (moto's backend), the Vault root token and every token value in Vault's token
store, the KV secret values (an AWS secret key, a GCP key file's private key, the database
password), every GCP private key the double holds, and the private key files on the runner. They
are harvested again after the run, so the replacements' material is checked too. Each is searched
raw, JSON-escaped, URL-encoded and base64-encoded.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import urllib.parse
from pathlib import Path

import hvac

from examples.lab.aws_lab import ACCOUNT_ID
from examples.lab.demo import RUNNER, VAULT_TOKEN_ENV, Lab
from tests.incident.incident_testlib import manual_tasks
from tests.reliability.reliability_testlib import record_figures

PLAYBOOK = "compromised-ci-supply-chain"
JSON_DEBUG = ("--log-format", "json", "--log-level", "debug")
CONSOLE_DEBUG = ("--log-format", "console", "--log-level", "debug")


def _pem_lines(pem: str, *public: str) -> list[str]:
    """The key's base64 lines, but those a public certificate carries too: an EC PKCS#8 key ends
    with its public point, which may line up with the certificate's (public, journaled by untrust)."""
    shown = "".join(ln.strip() for text in public for ln in text.splitlines() if "-----" not in ln)
    return [ln.strip() for ln in pem.splitlines() if len(ln.strip()) >= 40 and "-----" not in ln
            and ln.strip() not in shown]


def harvest(lb: Lab) -> dict[str, str]:
    """name -> secret value, from the providers' own state and the runner's files."""
    from moto.iam.models import iam_backends

    out: dict[str, str] = {"vault root token": os.environ[VAULT_TOKEN_ENV]}
    for user in iam_backends[ACCOUNT_ID]["global"].users.values():
        for key in user.access_keys:
            out[f"aws secret of {key.access_key_id}"] = key.secret_access_key
    vault = hvac.Client(url=lb.vault_url, token=os.environ[VAULT_TOKEN_ENV])
    for key in vault.adapter.list("/v1/sys/raw/sys/token/id/")["data"]["keys"]:
        entry = json.loads(vault.adapter.get(f"/v1/sys/raw/sys/token/id/{key}")["data"]["value"])
        out[f"vault token {entry['accessor']}"] = entry["id"]
    for path in ("ci/aws-app", "ci/gcp-deployer", "ci/db"):
        data = vault.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)["data"]["data"]
        for field, value in data.items():
            if field in ("aws_secret_access_key", "password"):
                out[f"kv {path}#{field}"] = value
            elif field == "key_json":
                for i, line in enumerate(_pem_lines(json.loads(value)["private_key"])):
                    out[f"kv {path} private key line {i}"] = line
    # what revoke escrowed: the runner key's replacement, every device's new key, the new CA's key
    try:
        items = vault.secrets.kv.v2.list_secrets(path="revoke-escrow")["data"]["keys"]
    except hvac.exceptions.InvalidPath:
        items = []
    for item in items:
        data = vault.secrets.kv.v2.read_secret_version(path=f"revoke-escrow/{item}",
                                                       raise_on_deleted_version=True)["data"]["data"]
        # a fleet's item holds its devices as members
        members = data["members"] if data.get("batch") == "members" else {"": data}
        for name, rec in members.items():
            where = f"{item}#{name}" if name else item
            if rec.get("secret_access_key"):
                out[f"escrow {where} secret"] = rec["secret_access_key"]
            for i, line in enumerate(_pem_lines(rec.get("private_key_pem", ""), rec.get("certificate_pem", ""))):
                out[f"escrow {where} private key line {i}"] = line
    with lb.gcp.state.lock:
        pems = {k.key_id: k.private_pem for k in lb.gcp.state.keys.values() if k.private_pem}
    for kid, pem in pems.items():
        for i, line in enumerate(_pem_lines(pem)):
            out[f"gcp key {kid} line {i}"] = line
    files = [f for f in (lb.directory / "pki").rglob("*") if f.is_file()]
    certs = [f.read_text(errors="replace") for f in files if "PRIVATE KEY" not in f.read_text(errors="replace")]
    for f in files:
        if "PRIVATE KEY" in f.read_text(errors="replace"):
            for i, line in enumerate(_pem_lines(f.read_text(), *certs)):
                out[f"file {f.name} line {i}"] = line
    return out


def variants(value: str) -> set[str]:
    found = {value, json.dumps(value)[1:-1], urllib.parse.quote_plus(value), urllib.parse.quote(value, safe="")}
    raw = value.encode()
    for i in range(3):
        chunk = raw[i: i + 3 * ((len(raw) - i) // 3)]
        if len(chunk) >= 12:
            found.add(base64.b64encode(chunk).decode())
            found.add(base64.urlsafe_b64encode(chunk).decode())
    return found


def scan(canaries: dict[str, str], texts: dict[str, str]) -> list[str]:
    hits = []
    for where, text in texts.items():
        for name, value in canaries.items():
            if any(v in text for v in variants(value)):
                hits.append(f"{name} found in {where}")
    return hits


def _db_password_id(lb: Lab) -> str:
    """The demo's database password: a Postgres role's (host/username/password in `secret/ci/db`)."""
    from connectors.postgres.ids import password_id
    from revoke.model import fingerprint

    vault = hvac.Client(url=lb.vault_url, token=os.environ[VAULT_TOKEN_ENV])
    value = vault.secrets.kv.v2.read_secret_version(path="ci/db", raise_on_deleted_version=True)["data"]["data"]
    return password_id("db.internal:5432", value["username"], fingerprint(value["password"]))


def test_no_canary_anywhere(revoke_cli, demo_lab: Lab, tmp_path: Path) -> None:
    lb = demo_lab
    out_dir = lb.directory / "out"
    out_dir.mkdir()
    logs = lb.directory / "logs"
    logs.mkdir()
    texts: dict[str, str] = {}
    # the SDK's own request/response logging is asked for: the CLI must still keep it off
    env = {"GOOGLE_SDK_PYTHON_LOGGING_SCOPE": "google"}
    n = 0

    def recorded(log: tuple[str, ...], *args: str, ok: tuple[int, ...] = (0, 1)) -> str:
        """Run `revoke`, keep its stdout and stderr for the scan and its stderr as a log file."""
        nonlocal n
        n += 1
        proc = revoke_cli(*log, *args, env=env, cwd=lb.directory)
        assert proc.returncode in ok, f"{args}: {proc.stdout}{proc.stderr}"
        label = f"`revoke {' '.join(log + args)}`"
        texts[f"stdout of {label}"] = proc.stdout
        texts[f"stderr of {label}"] = proc.stderr
        (logs / f"{n:02d}.log").write_text(proc.stderr)  # as an operator's `2> revoke.log`
        return proc.stdout

    before = harvest(lb)
    recorded(JSON_DEBUG, "collect")
    import sqlite3

    store = lb.directory / ".revoke" / "revoke.db"
    # a reader held open all along: SQLite removes -wal and -shm when the last connection closes,
    # and their raw bytes (pages not yet checkpointed) are searched too
    holder = sqlite3.connect(store)
    holder.execute("SELECT count(*) FROM meta").fetchone()
    recorded(JSON_DEBUG, "blast-radius", RUNNER, "--format", "json")
    recorded(JSON_DEBUG, "blast-radius", RUNNER)
    recorded(JSON_DEBUG, "explain", RUNNER, _db_password_id(lb))
    recorded(JSON_DEBUG, "plan", PLAYBOOK, "--node", RUNNER, "--format", "json")
    recorded(JSON_DEBUG, "run", PLAYBOOK, "--node", RUNNER, "--incident", "leak", "--execute", "--approve")
    recorded(JSON_DEBUG, "attest", "--incident", "leak", *manual_tasks(lb, "leak"), "--note", "rotated by the DBA")
    recorded(JSON_DEBUG, "verify", "--incident", "leak", "--format", "json", ok=(0,))
    recorded(JSON_DEBUG, "sweep", "--format", "json", "--fail-on", "none")
    recorded(JSON_DEBUG, "sweep", "--format", "html", "--out", str(out_dir / "sweep.html"), "--fail-on", "none")
    for fmt in ("json", "graphml", "dot"):
        recorded(JSON_DEBUG, "export", "--format", fmt, "--out", str(out_dir / f"graph.{fmt}"))
    reports = 0
    for fmt in ("md", "html", "json"):
        recorded(JSON_DEBUG, "report", "--incident", "leak", "--format", fmt, ok=(0,))
        reports += 1
    # console logs at debug level
    recorded(CONSOLE_DEBUG, "collect")
    recorded(CONSOLE_DEBUG, "plan", PLAYBOOK, "--node", RUNNER)
    recorded(CONSOLE_DEBUG, "run", PLAYBOOK, "--incident", "leak", "--execute")
    recorded(CONSOLE_DEBUG, "verify", "--incident", "leak", ok=(0,))
    recorded(CONSOLE_DEBUG, "sweep", "--fail-on", "none")
    recorded(CONSOLE_DEBUG, "export")

    canaries = {**before, **harvest(lb)}  # the replacements' material too
    files = [p for p in lb.directory.rglob("*") if p.is_file() and "pki" not in p.relative_to(lb.directory).parts]
    for p in files:
        texts[f"file {p.relative_to(lb.directory)}"] = p.read_bytes().decode("latin-1")
    journal = "\n".join(r[0] for r in holder.execute("SELECT data FROM journal"))
    texts["journal records"] = journal
    store_files = sorted(p.name for p in store.parent.iterdir())
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in store.parent.iterdir() if p.name.startswith("revoke.db")}
    holder.close()
    hits = scan(canaries, texts)
    record_figures("no_leaks", {"canaries": len(canaries), "searched_variants": sum(len(variants(v)) for v in canaries.values()),
                                "commands": n, "reports": reports, "texts": len(texts), "store_files": store_files,
                                "canaries_found": len(hits)})
    assert len(canaries) >= 20 and any(k.startswith("aws secret") for k in canaries)
    assert any(k.startswith("escrow ") and "private key" in k for k in canaries)
    assert any(k.startswith("vault token") for k in canaries) and any(k.startswith("gcp key") for k in canaries)
    assert hits == []
    # the store (the journal lives in it) and its WAL side files are private to the user
    assert {"revoke.db", "revoke.db-wal", "revoke.db-shm"} <= set(modes)
    assert all(m == 0o600 for m in modes.values()), {k: oct(m) for k, m in modes.items()}
    assert journal.count('"verb"') > 5  # the journal really was searched


def test_scan_finds_each_encoding() -> None:
    """The search itself is not blind: every encoding of a planted value is found."""
    value = "s.Zx9/Qw+ER4t6TY2pLmN0aB3c"
    for text in (value, json.dumps({"v": value + "\n"}), urllib.parse.quote_plus(value),
                 base64.b64encode(b"prefix:" + value.encode()).decode()):
        assert scan({"planted": value}, {"t": f"..{text}.."}) == ["planted found in t"]
