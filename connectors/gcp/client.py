"""The GCP client: channel and credentials, one `call` per RPC, every failure as a `ConnectorError`.

The only module of the package that imports `grpc` or `google.*`; the connector imports it when
it is instantiated, so `revoke --help`, config validation and `revoke permissions` load no SDK.

Every wrapped error carries `code`, the gRPC status name ("NOT_FOUND", "PERMISSION_DENIED"), and
`retryable`; callers compare `err.code` and never look at the cause.

Over gRPC `private_key_data` is the raw key-file JSON and a response's `repr()` shows it: no
message from the SDK is ever logged or formatted into an error here, only ids and status
codes. The SDK's own debug logging (on when `GOOGLE_SDK_PYTHON_LOGGING_SCOPE` is set, or when
a root logger runs at DEBUG) would print whole responses, so it is switched off in-process.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import grpc
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry

from connectors.gcp.transform import PROVIDER
from revoke.connector import ConnectorError

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
RETRYABLE = {
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.ABORTED,
}
# RPC name (as errors and the double name it) -> (service, SDK method)
RPCS: dict[str, tuple[str, str]] = {
    "ListServiceAccounts": ("iam", "list_service_accounts"),
    "GetServiceAccount": ("iam", "get_service_account"),
    "DisableServiceAccount": ("iam", "disable_service_account"),
    "EnableServiceAccount": ("iam", "enable_service_account"),
    "ListServiceAccountKeys": ("iam", "list_service_account_keys"),
    "GetServiceAccountKey": ("iam", "get_service_account_key"),
    "CreateServiceAccountKey": ("iam", "create_service_account_key"),
    "DisableServiceAccountKey": ("iam", "disable_service_account_key"),
    "EnableServiceAccountKey": ("iam", "enable_service_account_key"),
    "DeleteServiceAccountKey": ("iam", "delete_service_account_key"),
    "GetIamPolicy": ("iam", "get_iam_policy"),
    "Projects.GetIamPolicy": ("projects", "get_iam_policy"),
}
_SDK_LOGGERS = (
    "google.cloud.iam_admin_v1",
    "google.cloud.iam_admin_v1.services.iam.transports.grpc",
    "google.cloud.iam_admin_v1.services.iam.client",
    "google.cloud.resourcemanager_v3",
    "google.cloud.resourcemanager_v3.services.projects.transports.grpc",
    "google.cloud.resourcemanager_v3.services.projects.client",
)


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


def credentials(credentials_env: str | None) -> Any:
    """A key file named by the env var `credentials_env`, else Application Default Credentials."""
    import google.auth
    from google.auth import exceptions as auth_exc

    env = credentials_env
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
class _Sdk:
    iam: Any
    projects: Any
    channel: grpc.Channel | None


def _make_sdk(endpoint: str | None, credentials_env: str | None) -> _Sdk:
    from google.cloud import iam_admin_v1, resourcemanager_v3
    from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport
    from google.cloud.resourcemanager_v3.services.projects.transports import ProjectsGrpcTransport

    if endpoint:
        _host, target, plaintext = split_endpoint(endpoint)
        if plaintext:
            # No credentials are looked up on an explicit channel; proxies would break loopback.
            channel = grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)])
            return _Sdk(iam_admin_v1.IAMClient(transport=IAMGrpcTransport(channel=channel)),
                        resourcemanager_v3.ProjectsClient(transport=ProjectsGrpcTransport(channel=channel)),
                        channel)
        creds = credentials(credentials_env)
        return _Sdk(
            iam_admin_v1.IAMClient(credentials=creds, client_options={"api_endpoint": target}),
            resourcemanager_v3.ProjectsClient(credentials=creds, client_options={"api_endpoint": target}),
            None,
        )
    creds = credentials(credentials_env)
    return _Sdk(iam_admin_v1.IAMClient(credentials=creds),
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


def wrap(exc: BaseException, call: str, resource: str, node: str | None = None) -> ConnectorError:
    """One `ConnectorError` naming the call and the resource, its `code` the gRPC status name,
    retryable for throttling and transient failures. Only the status and the server's message are
    kept (never a response)."""
    failed = exc.cause if isinstance(exc, gexc.RetryError) and exc.cause is not None else exc
    status: grpc.StatusCode | None = None
    if isinstance(failed, gexc.GoogleAPICallError):
        status = failed.grpc_status_code
    elif isinstance(failed, grpc.RpcError) and hasattr(failed, "code"):
        status = failed.code()
    server = getattr(exc, "message", None) or ""
    if isinstance(exc, gexc.RetryError):
        server = f"gave up retrying: {getattr(exc.cause, 'message', '') or exc.cause!r}"
    name = status.name if status is not None else type(exc).__name__
    if status is grpc.StatusCode.PERMISSION_DENIED:
        message = f"PERMISSION_DENIED on {resource}: the caller lacks the permission for {call} (or it does not exist)"
    elif status is grpc.StatusCode.NOT_FOUND:
        message = f"NOT_FOUND: {resource} does not exist"
    elif status is grpc.StatusCode.FAILED_PRECONDITION and call == "CreateServiceAccountKey":
        message = (f"FAILED_PRECONDITION on {resource}: the service account already has the maximum of 10 keys; "
                   "delete a disabled key first")
    elif status is grpc.StatusCode.ABORTED:
        message = f"ABORTED on {resource}: concurrent change (stale etag); read again and retry"
    else:
        message = f"{name} on {resource}: {server}".rstrip(": ")
    retryable = status in RETRYABLE or (status is None and isinstance(exc, gexc.RetryError))
    return ConnectorError(PROVIDER, call, message, node=node, retryable=retryable,
                          code=status.name if status is not None else None)


class GcpClient:
    """IAM Admin and Resource Manager clients on one channel, made on the first call.

    Reads are retried within `retry_seconds`; mutating calls are not retried here: a retryable
    `ConnectorError` goes back to the executor, which owns the retry policy.
    """

    def __init__(self, *, endpoint: str | None, credentials_env: str | None, timeout: float,
                 retry_seconds: float) -> None:
        if endpoint:
            split_endpoint(endpoint)  # refuse a plaintext remote endpoint up front
        self.endpoint = endpoint
        self.credentials_env = credentials_env
        self.timeout = timeout
        self.retry = read_retry(retry_seconds)
        silence_sdk_logging()
        self._sdk: _Sdk | None = None
        self._lock = threading.Lock()

    def _clients(self) -> _Sdk:
        with self._lock:
            if self._sdk is None:
                self._sdk = _make_sdk(self.endpoint, self.credentials_env)
            return self._sdk

    def call(self, rpc: str, resource: str, request: dict[str, Any], *, read: bool, node: str | None = None) -> Any:
        """Run one RPC (a key of `RPCS`) on `resource`; `read` calls are retried."""
        service, method = RPCS[rpc]
        fn = getattr(getattr(self._clients(), service), method)
        try:
            return fn(request=request, timeout=self.timeout, retry=self.retry if read else None)
        except Exception as exc:  # every SDK/gRPC failure leaves as a ConnectorError
            if isinstance(exc, ConnectorError):
                raise
            raise wrap(exc, rpc, resource, node) from exc

    def pages(self, rpc: str, resource: str, request: dict[str, Any]) -> list[Any]:
        """Every page of a paged read; later pages are fetched (and may fail) as the pager is walked."""
        pager = self.call(rpc, resource, request, read=True)
        try:
            return list(pager.pages)
        except Exception as exc:
            raise wrap(exc, rpc, resource) from exc

    def rest_get(self, base_url: str, path: str, params: dict[str, Any], call: str) -> dict[str, Any]:
        """One REST GET for an API with no gRPC client here (Policy Analyzer): plain HTTP only to
        a loopback endpoint (a lab double, no credentials, no proxy), else HTTPS with the
        connector's credentials. Failures leave as a ConnectorError with the gRPC status name."""
        from urllib.parse import urlsplit

        import requests

        scheme, host = urlsplit(base_url).scheme, urlsplit(base_url).hostname or ""
        if scheme != "https" and not (scheme == "http" and is_loopback(host)):
            raise ConnectorError(PROVIDER, "config", f"{base_url}: plaintext HTTP only to a loopback endpoint")
        url = f"{base_url.rstrip('/')}/{path}"
        try:
            if scheme == "http":
                with requests.Session() as plain:
                    plain.trust_env = False  # proxy variables must not reroute loopback
                    resp = plain.get(url, params=params, timeout=self.timeout)
            else:
                from google.auth.transport.requests import AuthorizedSession

                with AuthorizedSession(credentials(self.credentials_env)) as session:
                    resp = session.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ConnectorError(PROVIDER, call, type(exc).__name__, retryable=True, code="UNAVAILABLE") from exc
        if resp.status_code != 200:
            status = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                      429: "RESOURCE_EXHAUSTED"}.get(resp.status_code, "UNAVAILABLE")
            raise ConnectorError(PROVIDER, call, f"HTTP {resp.status_code} {status}", code=status,
                                 retryable=resp.status_code == 429 or resp.status_code >= 500)
        body = resp.json()
        return body if isinstance(body, dict) else {}

    def close(self) -> None:
        with self._lock:
            if self._sdk is not None and self._sdk.channel is not None:
                self._sdk.channel.close()
            self._sdk = None
