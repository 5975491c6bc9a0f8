"""The AWS lab in a child process: moto serving from its own process, so the server's CPU is not
the client's (2 cores here), either bulk-seeded for benchmarks (`MotoProcess`) or seeded with the
demo incident (`SeededMotoProcess`). Run as `python -m examples.lab.aws_process serve|seed-serve`."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from types import TracebackType
from typing import Any

from examples.lab.aws_lab import ACCOUNT_ID, LAB_ENV, REGION, LabError, MotoServer, policy_json, seed_demo, speed_up_moto_dispatch


class SeededMotoProcess:
    """`with SeededMotoProcess(ca_cert_pem, ca_key_pem, devices) as aws:` the demo's AWS part in a
    child process: the child seeds its own moto state in memory (fast), then serves on loopback,
    so the server's CPU is on another core than the client's. `aws.seed` is `seed_demo`'s result."""

    def __init__(self, ca_cert_pem: str | bytes, ca_key_pem: str | bytes, devices: int = 200,
                 start_timeout: float = 60.0) -> None:
        self.endpoint_url = ""
        self.env = dict(LAB_ENV)
        self.seed: dict[str, Any] = {}
        self._args = {"ca_cert_pem": _text(ca_cert_pem), "ca_key_pem": _text(ca_key_pem), "devices": devices}
        self._timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SeededMotoProcess:
        return self.start().wait()

    def start(self) -> SeededMotoProcess:
        """Launch the child and send the seed request; `wait()` collects the result, so other
        servers can start meanwhile."""
        env = {**os.environ, **self.env}
        self._proc = subprocess.Popen([sys.executable, "-m", "examples.lab.aws_process", "seed-serve"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert self._proc.stdin is not None
        # the seed request (CA key included: lab material) goes over a pipe, never a file
        self._proc.stdin.write(json.dumps(self._args).encode() + b"\n")
        self._proc.stdin.close()
        return self

    def wait(self) -> SeededMotoProcess:
        import select

        assert self._proc is not None and self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], self._timeout)
        line = self._proc.stdout.readline() if ready else b""
        if not line:
            self.__exit__(None, None, None)
            raise LabError("the moto lab process did not start (or did not seed) in time")
        self.seed = json.loads(line)
        self.endpoint_url = self.seed["endpoint_url"]
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            _stop(self._proc)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
            self._proc = None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not gone within five seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _seed_serve() -> None:
    """Child side of SeededMotoProcess: serve, seed in memory, report, then serve until terminated."""
    import signal
    import threading

    request = json.loads(sys.stdin.readline())
    server = MotoServer().__enter__()
    result = seed_demo(server.endpoint_url, request["ca_cert_pem"], request["ca_key_pem"], devices=request["devices"])
    result["endpoint_url"] = _keep_alive_server()
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    # serve until SIGTERM, whose default action ends the process at once: the estate lives in this
    # process's memory only, and a graceful server shutdown cost the demo a second of waiting
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Event().wait()


def _keep_alive_server() -> str:
    """The same moto app (its state is this process's) behind waitress, which keeps connections
    open: werkzeug's server closes each one after its response, so every call of the demo's
    thousands paid a new TCP connection and a new server thread."""
    import threading

    import waitress
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    server = waitress.create_server(DomainDispatcherApplication(create_backend_app), host="127.0.0.1", port=0,
                                    threads=24, connection_limit=256, channel_timeout=300)
    threading.Thread(target=server.run, name="moto-keepalive", daemon=True).start()
    return f"http://127.0.0.1:{server.effective_port}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoProcess:
    """`with MotoProcess() as aws:` moto in a child process.

    `bulk={"users": N, "keys_per_user": K, "roles": M}` pre-creates that many IAM users, keys
    and roles inside the child before it serves (moto's backend directly, no HTTP): seeding
    thousands of principals over the API would take longer than the benchmark itself.
    """

    def __init__(self, start_timeout: float = 60.0, bulk: dict[str, int] | None = None) -> None:
        self.endpoint_url = ""
        self.env = dict(LAB_ENV)
        self._timeout = start_timeout
        self._bulk = bulk or {}
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MotoProcess:
        port = _free_port()
        env = {**os.environ, **self.env}
        args = [str(self._bulk.get(k, 0)) for k in ("users", "keys_per_user", "roles")]
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "examples.lab.aws_process", "serve", str(port), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.endpoint_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise LabError(f"moto server exited with code {self._proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise LabError(f"moto server did not answer within {self._timeout:.0f}s")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None:
            _stop(self._proc)
            self._proc = None


def _bulk_seed(users: int, keys_per_user: int, roles: int) -> None:
    """Fill this process's moto IAM backend directly (only for `serve` in a child process)."""
    from moto.iam.models import iam_backends

    backend = iam_backends[ACCOUNT_ID]["global"]
    for i in range(users):
        name = f"bulk-user-{i:05d}"
        backend.create_user(REGION, name)
        for _ in range(keys_per_user):
            backend.create_access_key(name)
    trust = policy_json([{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"},
                      "Action": "sts:AssumeRole"}])
    for i in range(roles):
        backend.create_role(f"bulk-role-{i:04d}", trust, "/", None, "", [], None)


def _serve(port: int, users: int, keys_per_user: int, roles: int) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    speed_up_moto_dispatch()
    _bulk_seed(users, keys_per_user, roles)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    if sys.argv[1:] == ["seed-serve"]:
        _seed_serve()
    elif len(sys.argv) == 6 and sys.argv[1] == "serve":
        _serve(*(int(a) for a in sys.argv[2:6]))
    else:
        sys.exit("usage: python -m examples.lab.aws_process serve PORT USERS KEYS_PER_USER ROLES")
