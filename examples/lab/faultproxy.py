"""Fault injection over the wire: a loopback reverse proxy in front of moto and OpenBao.

`FaultProxy(target, flavor="aws"|"vault", plan=FaultPlan(rate=0.2, seed=7))` forwards every
request to `target` and, on a seeded share of them, answers instead with what a real provider
sends when it is overloaded or failing:

- `throttle`: AWS throttling in the service's own protocol shape, which botocore parses into an
  error code its retry logic classes as throttling: HTTP 400 `Throttling` in an XML
  `ErrorResponse` for the query services (IAM, STS), `ThrottlingException` as `__type` for the
  JSON services (Secrets Manager) and in `x-amzn-ErrorType` for the REST-JSON ones (IoT).
  For Vault (no such shape) it is the same as `too_many`;
- `too_many`: HTTP 429 with `Retry-After` (`TooManyRequestsException` for AWS; Vault's
  `{"errors": [...rate limit quota exceeded]}`);
- `error_500`, `error_503`: server errors (`InternalFailure` / `ServiceUnavailable`; Vault
  `{"errors": [...]}` bodies that do not say "sealed", so they stay retryable);
- `reset`: the connection is closed (RST) without any response;
- `slow`: the request is forwarded and the response held back for a while.

`FaultPlan(delay=fn)` also holds chosen requests back before forwarding them: `fn(method, path,
body)` returns seconds (0 for most), so a test can make exactly the containment calls slow and
see, from the journal, that nothing waiting on them ran early.

Faults are injected before the request reaches the server (the provider never acts on it), as
throttling and load shedding do. `FaultPlan(lost_response=...)` also forwards some requests and
then drops the answer, the case where a non-idempotent create happened but the client never
learned of it.

The proxy is bounded (at most `max_connections` concurrent connections) and stops by itself after
`max_seconds`. The demo lab behind two such proxies, and the demo incident run through them, are
in `examples/lab/faulty_lab.py`.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KINDS = ("throttle", "too_many", "error_500", "error_503", "reset", "slow")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length"}
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([a-z0-9-]+)/aws4_request")
QUERY_SERVICES = frozenset({"iam", "sts", "ec2", "sqs", "sns", "rds", "cloudformation"})
JSON_SERVICES = frozenset({"secretsmanager", "kms", "dynamodb", "logs"})


@dataclass
class FaultPlan:
    """What to inject and how often. `rate` is the share of requests answered with a fault."""

    rate: float = 0.2
    seed: int = 0
    weights: dict[str, float] = field(default_factory=lambda: {
        "throttle": 3.0, "too_many": 2.0, "error_500": 1.0, "error_503": 1.0, "reset": 1.0, "slow": 2.0})
    slow_seconds: tuple[float, float] = (0.05, 0.4)
    retry_after: int = 1
    # share of requests forwarded whose response is then dropped (the server did act)
    lost_response: float = 0.0
    # requests never faulted: the lab's own control endpoints and health checks
    skip_paths: tuple[str, ...] = ("/moto-api", "/v1/sys/health")
    # seconds to hold a request back before it is forwarded: (method, path, body) -> seconds
    delay: Callable[[str, str, bytes], float] | None = None


@dataclass
class FaultStats:
    requests: int = 0
    forwarded: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    by_service: Counter[str] = field(default_factory=Counter)
    lost_responses: int = 0

    @property
    def faults(self) -> int:
        return sum(self.injected.values()) + self.lost_responses

    def to_json(self) -> dict[str, Any]:
        return {"requests": self.requests, "forwarded": self.forwarded, "faults": self.faults,
                "injected": dict(sorted(self.injected.items())), "by_service": dict(sorted(self.by_service.items())),
                "lost_responses": self.lost_responses}


class FaultProxy:
    """`with FaultProxy("http://127.0.0.1:5000", flavor="aws") as p:` then use `p.url`."""

    def __init__(self, target: str, *, flavor: str = "aws", plan: FaultPlan | None = None,
                 max_seconds: float = 900.0, max_connections: int = 64) -> None:
        if flavor not in ("aws", "vault"):
            raise ValueError("flavor must be aws or vault")
        parsed = urllib.parse.urlsplit(target)
        if parsed.scheme != "http" or parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy forwards to a plain-HTTP loopback server only")
        self.target_host, self.target_port = parsed.hostname, parsed.port or 80
        self.flavor = flavor
        self.plan = plan or FaultPlan()
        self.stats = FaultStats()
        self.max_seconds = max_seconds
        self.url = ""
        self._rng = random.Random(self.plan.seed)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._timer: threading.Timer | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        proxy = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def process_request(self, request: Any, client_address: Any) -> None:
                # bounded: a connection waits for a slot rather than spawning threads without limit
                if not proxy._slots.acquire(timeout=30):
                    self.shutdown_request(request)
                    return
                super().process_request(request, client_address)

            def process_request_thread(self, request: Any, client_address: Any) -> None:
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    proxy._slots.release()

        self._server = Server(("127.0.0.1", 0), _handler_for(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="faultproxy", daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.max_seconds, self.stop)
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        if server is not None:
            server.shutdown()
            server.server_close()

    def set_rate(self, rate: float) -> None:
        with self._lock:
            self.plan.rate = rate

    # -- decisions ---------------------------------------------------------------------------
    def decide(self, path: str) -> str | None:
        """The fault for this request, or None to forward it (seeded, so a run can be repeated)."""
        with self._lock:
            self.stats.requests += 1
            if any(path.startswith(p) for p in self.plan.skip_paths):
                return None
            if self._rng.random() >= self.plan.rate:
                if self.plan.lost_response and self._rng.random() < self.plan.lost_response:
                    return "lost_response"
                return None
            kinds = [k for k in KINDS if self.plan.weights.get(k, 0) > 0]
            return self._rng.choices(kinds, weights=[self.plan.weights[k] for k in kinds])[0]

    def slow_delay(self) -> float:
        with self._lock:
            return self._rng.uniform(*self.plan.slow_seconds)

    def count(self, kind: str, service: str) -> None:
        with self._lock:
            if kind == "lost_response":
                self.stats.lost_responses += 1
            else:
                self.stats.injected[kind] += 1
            self.stats.by_service[service] += 1

    def forwarded(self) -> None:
        with self._lock:
            self.stats.forwarded += 1


def aws_service(headers: Any) -> str:
    """The signing service from the SigV4 credential scope (iam, sts, secretsmanager, iot, ...)."""
    m = _SCOPE.search(headers.get("Authorization", "") or "")
    return m.group(1) if m else "unknown"


def aws_error(service: str, status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    """An AWS error response in the protocol the service speaks, so botocore parses the code."""
    request_id = f"fault-{random.getrandbits(32):08x}"
    if service in QUERY_SERVICES:
        body = (f'<ErrorResponse xmlns="https://{service}.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
                "</ErrorResponse>")
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body.encode()
    if service in JSON_SERVICES:
        body = json.dumps({"__type": code, "message": message})
        return status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": request_id}, body.encode()
    # REST-JSON (IoT and most newer services): the code travels in a header
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": f"{code}:",
                    "x-amzn-RequestId": request_id}, json.dumps({"message": message}).encode()


def fault_response(flavor: str, kind: str, service: str, retry_after: int) -> tuple[int, dict[str, str], bytes]:
    if flavor == "vault":
        table = {"throttle": (429, "request path: rate limit quota exceeded"),
                 "too_many": (429, "request path: rate limit quota exceeded"),
                 "error_500": (500, "internal error"),
                 "error_503": (503, "service temporarily unavailable (injected)")}
        status, message = table[kind]
        headers = {"Content-Type": "application/json"}
        if status == 429:
            headers["Retry-After"] = str(retry_after)
        return status, headers, json.dumps({"errors": [message]}).encode()
    query = service in QUERY_SERVICES
    status, code, message = {
        "throttle": (400, "Throttling" if query else "ThrottlingException", "Rate exceeded"),
        "too_many": (429, "TooManyRequestsException", "Too many requests"),
        "error_500": (500, "InternalFailure", "An internal error occurred (injected)"),
        "error_503": (503, "ServiceUnavailable", "Service is unavailable (injected)"),
    }[kind]
    status, headers, body = aws_error(service, status, code, message)
    if kind == "too_many":
        headers["Retry-After"] = str(retry_after)
    return status, headers, body


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    local = threading.local()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return  # request lines may carry query strings with identifiers: keep them out of test output

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _reset(self) -> None:
            # SO_LINGER 0 makes close() send an RST: the client sees a reset, not a clean EOF
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _upstream(self) -> http.client.HTTPConnection:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = http.client.HTTPConnection(proxy.target_host, proxy.target_port, timeout=120)
                local.conn = conn
            return conn

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            for attempt in (1, 2):
                conn = self._upstream()
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    return resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP], data
                except (OSError, http.client.HTTPException):
                    conn.close()
                    local.conn = None
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

        def _handle(self) -> None:
            body = self._body()
            held = proxy.plan.delay(self.command, self.path, body) if proxy.plan.delay else 0.0
            if held > 0:
                time.sleep(held)
            service = aws_service(self.headers) if proxy.flavor == "aws" else "vault"
            fault = proxy.decide(self.path)
            if fault is not None and fault not in ("slow", "lost_response"):
                proxy.count(fault, service)
                if fault == "reset":
                    self._reset()
                    return
                self._send(*fault_response(proxy.flavor, fault, service, proxy.plan.retry_after))
                return
            try:
                status, headers, data = self._forward(body)
            except (OSError, http.client.HTTPException):
                self._send(502, {"Content-Type": "text/plain"}, b"upstream unreachable")
                return
            proxy.forwarded()
            if fault == "lost_response":
                proxy.count(fault, service)
                self._reset()
                return
            if fault == "slow":
                proxy.count(fault, service)
                time.sleep(proxy.slow_delay())
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_LIST = _handle

    return Handler
