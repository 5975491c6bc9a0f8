"""The Vault HTTP boundary: the only module that imports hvac or requests (on the first call, so
loading the connector class imports neither), one client per connector, and the error mapping.

Every hvac or requests exception becomes a `ConnectorError` naming the call (the API path, never
a body) and the node. Its `code` is the HTTP status as a string ("400", "404", "503"), so callers
compare `exc.code`; it is None when no status came back (Vault unreachable) or hvac did not say
which (`UnexpectedError`). 429 and 5xx are retryable, except a sealed server, which no amount of
backoff fixes.
"""

from __future__ import annotations

import builtins
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from connectors.vault.options import VaultOptions
from revoke.connector import ConnectorError

PROVIDER = "vault"
T = TypeVar("T")


class VaultApi:
    """Thin wrapper over `hvac.Client.adapter`: paths are relative to `/v1/`."""

    def __init__(self, opts: VaultOptions) -> None:
        self.url = str(opts.url or os.environ.get("VAULT_ADDR") or "")
        if not self.url:
            raise ConnectorError(PROVIDER, "configure", "no `url` in the vault connector block")
        self.token_env = opts.token_env or "VAULT_TOKEN"
        self.namespace = opts.namespace or None
        self.verify: bool | str = opts.ca_cert or opts.verify
        self.timeout = opts.timeout
        self.read_attempts = max(1, opts.read_attempts)
        self._client: Any = None
        self._lock = threading.Lock()

    # -- client ------------------------------------------------------------------------------

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                token = os.environ.get(self.token_env)
                if not token:
                    raise ConnectorError(
                        PROVIDER, "configure", f"environment variable {self.token_env} (token_env) is empty or unset"
                    )
                import hvac

                # token passed explicitly: hvac must never fall back to ~/.vault-token
                self._client = hvac.Client(
                    url=self.url, token=token, namespace=self.namespace, verify=self.verify, timeout=self.timeout
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.adapter.close()
                self._client = None

    # -- calls -------------------------------------------------------------------------------

    def call(self, call: str, fn: Callable[[], T], node: str | None = None) -> T:
        """One API call, errors wrapped. Reads (GET, LIST, lookups, capability checks) are retried
        here on 429/5xx/connection errors with exponential backoff: a collection or a probe must
        not fail on one throttled request. Writes are retried by the executor, which knows how to
        resume them safely."""
        read = call.startswith(("GET ", "LIST ")) or "lookup" in call or "capabilities" in call
        attempts = self.read_attempts if read else 1
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except ConnectorError as exc:
                error = exc
            except Exception as exc:
                error = wrap_error(call, exc, node)
                error.__cause__ = exc
            if not error.retryable or attempt == attempts:
                raise error
            # equal jitter: never less than half the step, so a per-second quota always gets its second
            step = min(4.0, 0.25 * 2 ** attempt)
            time.sleep(step / 2 + random.uniform(0, step / 2))
        raise AssertionError("unreachable")

    def get(self, path: str, node: str | None = None, **params: Any) -> dict[str, Any] | None:
        return self._json(self.call(f"GET {path}", lambda: self.client().adapter.get(f"/v1/{path}", params=params),
                                    node))

    def list(self, path: str, node: str | None = None, **params: Any) -> dict[str, Any] | None:
        return self._json(self.call(f"LIST {path}", lambda: self.client().adapter.list(f"/v1/{path}", params=params),
                                    node))

    def post(self, path: str, data: dict[str, Any] | None = None, node: str | None = None) -> dict[str, Any] | None:
        return self._json(self.call(f"POST {path}", lambda: self.client().adapter.post(f"/v1/{path}", json=data or {}),
                                    node))

    def delete(self, path: str, node: str | None = None) -> dict[str, Any] | None:
        return self._json(self.call(f"DELETE {path}", lambda: self.client().adapter.delete(f"/v1/{path}"), node))

    def get_bytes(self, path: str, node: str | None = None) -> bytes:
        """Unauthenticated-style raw GET (CRLs are DER); errors mapped like the rest."""

        def fetch() -> bytes:
            resp = self.client().adapter.request("GET", f"/v1/{path}", raise_exception=False)
            if not hasattr(resp, "status_code"):
                raise ConnectorError(PROVIDER, f"GET {path}", "expected a binary body, got JSON", node=node)
            if resp.status_code >= 400:
                from hvac import utils

                utils.raise_for_error("GET", path, resp.status_code, text="")
            return bytes(resp.content)

        return self.call(f"GET {path}", fetch, node)

    @staticmethod
    def _json(resp: Any) -> dict[str, Any] | None:
        # hvac's JSON adapter returns a dict for bodies and a Response for 204 No Content
        return resp if isinstance(resp, dict) else None

    def list_keys(self, path: str, node: str | None = None, page: int = 0) -> builtins.list[str]:
        """All keys of a LIST, following `limit`/`after` pages when `page` > 0. Missing path: []."""
        keys: builtins.list[str] = []
        after = ""
        while True:
            params: dict[str, Any] = {}
            if page:
                params["limit"] = page
                if after:
                    params["after"] = after
            try:
                body = self.list(path, node, **params)
            except ConnectorError as exc:
                if exc.code == "404":
                    return keys
                raise
            batch = builtins.list(((body or {}).get("data") or {}).get("keys") or [])
            keys.extend(batch)
            if not page or len(batch) < page:
                return keys
            after = batch[-1]


def _status(exc: Any) -> int | None:
    """The HTTP status hvac raised this exception for: hvac keeps only the class, not the number."""
    import hvac.exceptions as hx

    statuses: tuple[tuple[type[Exception], int], ...] = (
        (hx.InvalidRequest, 400), (hx.Unauthorized, 401), (hx.Forbidden, 403), (hx.InvalidPath, 404),
        (hx.UnsupportedOperation, 405), (hx.PreconditionFailed, 412), (hx.RateLimitExceeded, 429),
        (hx.InternalServerError, 500), (hx.VaultNotInitialized, 501), (hx.BadGateway, 502), (hx.VaultDown, 503),
    )
    return next((status for cls, status in statuses if isinstance(exc, cls)), None)


def wrap_error(call: str, exc: BaseException, node: str | None = None) -> ConnectorError:
    """Map an hvac/requests exception. Messages name the call and Vault's error text only."""
    import hvac.exceptions as hx
    import requests

    if isinstance(exc, requests.exceptions.RequestException):
        return ConnectorError(PROVIDER, call, f"cannot reach Vault: {type(exc).__name__}", node=node,
                              retryable=True)
    if isinstance(exc, hx.VaultError):
        errors = "; ".join(str(e) for e in (exc.errors or []))[:300] or type(exc).__name__
        status = _status(exc)
        code = str(status) if status else None
        if isinstance(exc, hx.VaultDown) and "sealed" in errors.lower():
            return ConnectorError(PROVIDER, call, "Vault is sealed (503): unseal it, then re-run", node=node,
                                  code=code)
        if isinstance(exc, hx.RateLimitExceeded):
            return ConnectorError(PROVIDER, call, f"rate limited (429): {errors}", node=node, retryable=True,
                                  code=code)
        retryable = (status is not None and status >= 500) or isinstance(exc, hx.UnexpectedError)
        label = f"HTTP {status}" if status else "unexpected status"
        return ConnectorError(PROVIDER, call, f"{label}: {errors}", node=node, retryable=retryable, code=code)
    return ConnectorError(PROVIDER, call, f"{type(exc).__name__}", node=node)
