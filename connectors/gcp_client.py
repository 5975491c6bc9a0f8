"""GCP clients for the connector: channel and credentials, error mapping, message -> dict.

Imported only by `connectors.gcp`, itself imported lazily by the registry, so the SDK is
loaded only when a config names `type: gcp`.

Over gRPC `private_key_data` is the raw key-file JSON and a response's `repr()` shows it: no
message from the SDK is ever logged or formatted into an error here, only ids and status
codes. The SDK's own debug logging (on when `GOOGLE_SDK_PYTHON_LOGGING_SCOPE` is set, or when
a root logger runs at DEBUG) would print whole responses, so it is switched off in-process.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from dataclasses import dataclass
from typing import Any

import grpc
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry

from revoke.connector import ConnectorError

PROVIDER = "gcp"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
RETRYABLE = {
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.ABORTED,
}
_SDK_LOGGERS = (
    "google.cloud.iam_admin_v1",
    "google.cloud.iam_admin_v1.services.iam.transports.grpc",
    "google.cloud.iam_admin_v1.services.iam.client",
    "google.cloud.resourcemanager_v3",
    "google.cloud.resourcemanager_v3.services.projects.transports.grpc",
    "google.cloud.resourcemanager_v3.services.projects.client",
)
_SA_EMAIL_RE = re.compile(r"^[^@\s]+@([a-z][-a-z0-9]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$")


def silence_sdk_logging() -> None:
    """The transports log full request/response payloads whenever DEBUG is enabled for them;
    pin their level so a DEBUG root logger cannot turn that on."""
    os.environ.pop("GOOGLE_SDK_PYTHON_LOGGING_SCOPE", None)
    for name in _SDK_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_endpoint(endpoint: str) -> tuple[str, str, bool]:
    """`host:port` (optionally `http://`, `grpc://` or `https://`) -> (host, host:port, plaintext?).
    Plaintext only to loopback; anything else must use TLS."""
    text = endpoint.strip()
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    rest = rest.rstrip("/")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise ConnectorError(PROVIDER, "config", f"endpoint {endpoint!r} must be host:port")
    if scheme not in ("", "http", "grpc", "https"):
        raise ConnectorError(PROVIDER, "config", f"endpoint scheme {scheme!r} is not supported")
    loopback = is_loopback(host)
    if scheme in ("http", "grpc") and not loopback:
        raise ConnectorError(PROVIDER, "config",
                             f"refusing plaintext gRPC to {host}: plaintext is allowed only on loopback")
    return host, rest, loopback and scheme != "https"


def credentials(config: dict[str, Any]) -> Any:
    """A key file named by the env var `credentials_env`, else Application Default Credentials."""
    import google.auth
    from google.auth import exceptions as auth_exc

    env = config.get("credentials_env")
    try:
        if env:
            path = os.environ.get(str(env))
            if not path:
                raise ConnectorError(PROVIDER, "config", f"environment variable {env} (credentials_env) is not set")
            from google.oauth2 import service_account

            return service_account.Credentials.from_service_account_file(path, scopes=SCOPES)
        creds, _ = google.auth.default(scopes=SCOPES)
        return creds
    except auth_exc.DefaultCredentialsError as exc:
        raise ConnectorError(PROVIDER, "credentials",
                             "no Application Default Credentials found; set credentials_env "
                             "or run `gcloud auth application-default login`") from exc
    except (auth_exc.GoogleAuthError, ValueError, OSError) as exc:
        # a failed key-file parse can quote the file: name only the error type
        raise ConnectorError(PROVIDER, "credentials",
                             f"cannot load the key file named by {env} ({type(exc).__name__})") from exc


@dataclass
class Clients:
    iam: Any
    projects: Any
    channel: grpc.Channel | None


def make_clients(config: dict[str, Any]) -> Clients:
    from google.cloud import iam_admin_v1, resourcemanager_v3
    from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport
    from google.cloud.resourcemanager_v3.services.projects.transports import ProjectsGrpcTransport

    endpoint = config.get("endpoint")
    if endpoint:
        _host, target, plaintext = split_endpoint(str(endpoint))
        if plaintext:
            # No credentials are looked up on an explicit channel; proxies would break loopback.
            channel = grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)])
            return Clients(iam_admin_v1.IAMClient(transport=IAMGrpcTransport(channel=channel)),
                           resourcemanager_v3.ProjectsClient(transport=ProjectsGrpcTransport(channel=channel)),
                           channel)
        creds = credentials(config)
        return Clients(
            iam_admin_v1.IAMClient(credentials=creds, client_options={"api_endpoint": target}),
            resourcemanager_v3.ProjectsClient(credentials=creds, client_options={"api_endpoint": target}),
            None,
        )
    creds = credentials(config)
    return Clients(iam_admin_v1.IAMClient(credentials=creds),
                   resourcemanager_v3.ProjectsClient(credentials=creds), None)


def read_retry(seconds: float) -> Any:
    """Reads are safe to repeat: retry throttling and transient failures within `seconds`
    (the SDK's default retries neither RESOURCE_EXHAUSTED nor most methods)."""
    if seconds <= 0:
        return None
    return gretry.Retry(
        predicate=gretry.if_exception_type(gexc.ResourceExhausted, gexc.ServiceUnavailable,
                                           gexc.DeadlineExceeded, gexc.InternalServerError),
        initial=0.2, maximum=2.0, multiplier=2.0, timeout=seconds)


def status_of(exc: BaseException) -> grpc.StatusCode | None:
    if isinstance(exc, gexc.RetryError) and exc.cause is not None:
        return status_of(exc.cause)
    if isinstance(exc, gexc.GoogleAPICallError):
        return exc.grpc_status_code
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return exc.code()
    return None


class GcpCallError(ConnectorError):
    """A failed GCP call; `status` is the gRPC status name (e.g. "NOT_FOUND"), "" if none."""

    def __init__(self, status: str, call: str, message: str, *, node: str | None, retryable: bool) -> None:
        super().__init__(PROVIDER, call, message, node=node, retryable=retryable)
        self.status = status


def has_status(err: ConnectorError, *statuses: str) -> bool:
    return isinstance(err, GcpCallError) and err.status in statuses


def wrap(exc: BaseException, call: str, resource: str, node: str | None = None) -> GcpCallError:
    """One `ConnectorError` naming the call and the resource, retryable for throttling and
    transient failures. Only the status and the server's message are kept (never a response)."""
    code = status_of(exc)
    server = getattr(exc, "message", None) or ""
    if isinstance(exc, gexc.RetryError):
        server = f"gave up retrying: {getattr(exc.cause, 'message', '') or exc.cause!r}"
    name = code.name if code is not None else type(exc).__name__
    if code is grpc.StatusCode.PERMISSION_DENIED:
        message = f"PERMISSION_DENIED on {resource}: the caller lacks the permission for {call} (or it does not exist)"
    elif code is grpc.StatusCode.NOT_FOUND:
        message = f"NOT_FOUND: {resource} does not exist"
    elif code is grpc.StatusCode.FAILED_PRECONDITION and call == "CreateServiceAccountKey":
        message = (f"FAILED_PRECONDITION on {resource}: the service account already has the maximum of 10 keys; "
                   "delete a disabled key first")
    elif code is grpc.StatusCode.ABORTED:
        message = f"ABORTED on {resource}: concurrent change (stale etag); read again and retry"
    else:
        message = f"{name} on {resource}: {server}".rstrip(": ")
    retryable = code in RETRYABLE or (code is None and isinstance(exc, gexc.RetryError))
    return GcpCallError(code.name if code is not None else "", call, message, node=node, retryable=retryable)


def project_of(email: str) -> str:
    """`x@P.iam.gserviceaccount.com` -> P; other service-agent domains -> `-` (any project)."""
    match = _SA_EMAIL_RE.match(email)
    return match.group(1) if match else "-"


def account_resource(email: str) -> str:
    return f"projects/{project_of(email)}/serviceAccounts/{email}"


def policy_dict(policy: Any) -> dict[str, Any]:
    return {
        "etag": bytes(policy.etag).hex(),
        "bindings": [
            {"role": b.role, "members": list(b.members),
             "condition": {"title": b.condition.title, "expression": b.condition.expression}
             if b.HasField("condition") else None}
            for b in policy.bindings
        ],
    }


def account_dict(msg: Any) -> dict[str, Any]:
    return {"name": msg.name, "email": msg.email, "unique_id": msg.unique_id,
            "display_name": msg.display_name, "disabled": bool(msg.disabled)}


def key_dict(msg: Any) -> dict[str, Any]:
    """Public key metadata only: `private_key_data` is never copied."""
    return {"name": msg.name, "key_algorithm": msg.key_algorithm.name, "key_origin": msg.key_origin.name,
            "valid_after": msg.valid_after_time, "valid_before": msg.valid_before_time,
            "disabled": bool(msg.disabled)}
