"""The Kubernetes client: the official `kubernetes` package, one `call` per API method, every
failure as a `ConnectorError`.

The only module of the package that imports `kubernetes` or `urllib3`; the connector imports it
when it is instantiated, so `revoke --help`, config validation and `revoke permissions` load no SDK.

Responses are read as the API's own JSON (`_preload_content=False`): the pure transform works on
the documented shapes, and no SDK model (whose repr prints a Secret's data) is ever built. Errors
carry `code`, the HTTP status as text ("404", "409", "429"), never a response body.

Reads are retried on 429 and 5xx within `retry_seconds`, sleeping what `Retry-After` asks (API
Priority and Fairness sends it); urllib3's own status retries are switched off so this is the
one retry policy, and mutating calls are never retried here (the executor owns that).
"""

from __future__ import annotations

import ipaddress
import json
import random
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import urllib3
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from connectors.kubernetes.options import KubernetesOptions
from connectors.kubernetes.transform import PROVIDER
from revoke.connector import ConnectorError

APIS = {
    "core": kclient.CoreV1Api,
    "rbac": kclient.RbacAuthorizationV1Api,
    "authn": kclient.AuthenticationV1Api,
    "authz": kclient.AuthorizationV1Api,
    "certs": kclient.CertificatesV1Api,
}


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server(url: str) -> None:
    """Plain HTTP is allowed only on loopback (a lab double); anything else must use TLS."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectorError(PROVIDER, "config", f"server {url!r} must be an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConnectorError(PROVIDER, "config",
                             f"refusing plain HTTP to {parts.hostname}: plain HTTP is allowed only on loopback")


def make_api_client(opts: KubernetesOptions) -> Any:
    """An ApiClient from the kubeconfig (file and context by reference) or the pod's own
    service account (in-cluster), the server URL optionally overridden."""
    try:
        if opts.in_cluster:
            cfg = kclient.Configuration()
            kconfig.load_incluster_config(client_configuration=cfg)
            api = kclient.ApiClient(cfg)
        else:
            api = kconfig.new_client_from_config_dict(_kubeconfig(opts), context=opts.context,
                                                      persist_config=False)
    except (ConfigException, OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        # the loader's message can quote the file: name the file and context only
        where = ("in-cluster service account" if opts.in_cluster
                 else f"kubeconfig {opts.kubeconfig} context {opts.context or '(current)'}")
        raise ConnectorError(PROVIDER, "config", f"cannot load the {where} ({type(exc).__name__})") from None
    if opts.server:
        api.configuration.host = opts.server.rstrip("/")  # in-cluster: no kubeconfig to rewrite
    check_server(api.configuration.host)
    # debug turns on http.client's wire dump: request headers (the bearer token) and bodies
    api.configuration.debug = False
    # connection retries only: HTTP statuses come back to `call`, which owns the retry policy
    api.configuration.retries = urllib3.Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0,
                                              backoff_factor=0.1, raise_on_status=False,
                                              respect_retry_after_header=False)
    api.rest_client.pool_manager.connection_pool_kw["retries"] = api.configuration.retries
    return api


def _kubeconfig(opts: KubernetesOptions) -> dict[str, Any]:
    """The kubeconfig as a mapping, the chosen context's cluster pointed at `server` when given
    (the loader re-reads the file's server on every token refresh, so the override goes here)."""
    import os

    import yaml

    with open(os.path.expanduser(str(opts.kubeconfig)), encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError("not a kubeconfig mapping")
    if opts.server:
        name = opts.context or data.get("current-context")
        ctx = next((c.get("context") or {} for c in data.get("contexts") or [] if c.get("name") == name), {})
        for cluster in data.get("clusters") or []:
            if cluster.get("name") == ctx.get("cluster"):
                cluster.setdefault("cluster", {})["server"] = opts.server.rstrip("/")
    return data


def wrap(exc: BaseException, call: str, node: str | None) -> ConnectorError:
    """One ConnectorError naming the call, its `code` the HTTP status; retryable for 429 and 5xx
    and connection failures. Only the status and the Status reason are kept, never a body."""
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        reason = ""
        try:
            reason = str(json.loads(exc.body or "{}").get("reason") or "")
        except (ValueError, AttributeError):
            reason = ""
        message = {401: "401 Unauthorized: the credentials were refused",
                   403: "403 Forbidden: the caller lacks the RBAC permission for this call",
                   404: "404 NotFound: the object does not exist",
                   409: "409 Conflict: changed meanwhile (stale resourceVersion) or already exists",
                   429: "429 TooManyRequests: throttled by the API server"}.get(status, f"HTTP {status} {reason}".strip())
        return ConnectorError(PROVIDER, call, message, node=node, retryable=status == 429 or status >= 500,
                              code=str(status))
    return ConnectorError(PROVIDER, call, f"cannot reach the API server ({type(exc).__name__})", node=node,
                          retryable=True, code="unreachable")


def retry_after(exc: ApiException) -> float | None:
    headers = exc.headers or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class KubeClient:
    """The API groups the connector uses, over one ApiClient made on the first call."""

    def __init__(self, opts: KubernetesOptions) -> None:
        self.opts = opts
        self.timeout = opts.timeout
        self.retry_seconds = opts.retry_seconds
        self.page_size = opts.page_size
        self._api: Any = None
        self._apis: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.retries = 0  # reads repeated after a 429 or 5xx (collect metadata)

    def _group(self, group: str) -> Any:
        with self._lock:
            if self._api is None:
                self._api = make_api_client(self.opts)
            if group not in self._apis:
                self._apis[group] = APIS[group](self._api)
            return self._apis[group]

    @property
    def host(self) -> str:
        self._group("core")
        return str(self._api.configuration.host)

    def call(self, group: str, method: str, *args: Any, read: bool, node: str | None = None,
             body: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
        """Run one API method; the parsed JSON response. `read` calls are retried on 429/5xx."""
        fn = getattr(self._group(group), method)
        deadline = time.monotonic() + self.retry_seconds
        attempt = 0
        while True:
            try:
                positional = (*args, body) if body is not None else args
                resp = fn(*positional, _preload_content=False, _request_timeout=self.timeout, **params)
                data = resp.data
                return json.loads(data) if data else {}
            except ApiException as exc:
                status = int(exc.status or 0)
                if read and (status == 429 or status >= 500):
                    wait = retry_after(exc) or min(2.0, 0.2 * 2 ** attempt) * (0.5 + random.random() / 2)
                    if time.monotonic() + wait <= deadline:
                        attempt += 1
                        self.retries += 1
                        time.sleep(wait)
                        continue
                # not chained: an ApiException's text carries the response body, and a review
                # answer echoes the token it was asked about
                raise wrap(exc, method, node) from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise wrap(exc, method, node) from None

    def list_all(self, group: str, method: str, *args: Any) -> tuple[list[dict[str, Any]], int]:
        """Every item of a list, following `continue` tokens; (items, pages)."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": self.page_size}
            if token:
                params["_continue"] = token
            page = self.call(group, method, *args, read=True, **params)
            pages += 1
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items, pages

    def close(self) -> None:
        with self._lock:
            if self._api is not None:
                self._api.close()
            self._api, self._apis = None, {}
