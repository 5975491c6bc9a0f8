"""The GitHub client: githubkit (REST, typed from GitHub's OpenAPI description) and PyNaCl's sealed
boxes. The only module of the package that imports either; the connector imports it when it is
instantiated, so config validation and `revoke permissions` load neither.

Every failure becomes a `ConnectorError` whose `code` is the HTTP status ("404", "401") or
"secondary_rate_limit"; 403 secondary limits, 429 and 5xx are `retryable`. Reads are retried
here for a short budget (honouring `retry-after`); writes are not: a retryable error goes back to
the executor, which owns the retry policy. Responses are parsed with githubkit's models, so a
reply that drifts from GitHub's published shape fails loudly instead of being half-read.
"""

from __future__ import annotations

import base64
import functools
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from githubkit import GitHub
from githubkit.exception import GitHubException, RequestError, RequestFailed, RequestTimeout
from nacl.public import PublicKey, SealedBox

from connectors.github.transform import PROVIDER
from revoke.connector import ConnectorError

T = TypeVar("T")
RETRY_AFTER_CAP = 5.0


def _error(call: str, exc: Exception, node: str | None) -> ConnectorError:
    if isinstance(exc, RequestFailed):
        status = exc.response.status_code
        text = ""
        try:
            text = str(exc.response.json().get("message", ""))[:200]
        except Exception:
            text = ""
        secondary = status == 403 and "secondary rate limit" in text.lower()
        code = "secondary_rate_limit" if secondary else str(status)
        retryable = secondary or status == 429 or status >= 500
        return ConnectorError(PROVIDER, call, f"HTTP {status} {text}".strip(), node=node, retryable=retryable,
                              code=code)
    if isinstance(exc, RequestTimeout | RequestError):
        return ConnectorError(PROVIDER, call, type(exc).__name__, node=node, retryable=True, code="connection")
    return ConnectorError(PROVIDER, call, f"{type(exc).__name__}: {exc}", node=node, code="invalid_response")


def _retry_after(exc: Exception) -> float:
    if isinstance(exc, RequestFailed):
        try:
            return min(RETRY_AFTER_CAP, float(exc.response.headers.get("retry-after", "1")))
        except ValueError:
            return 1.0
    return 0.5


@dataclass(frozen=True)
class AppCredentials:
    """A GitHub App revoke acts as: its id (the JWT's `iss`), its private key (PEM, read from the
    configured file), and the installation (or the org whose installation is looked up)."""

    app_id: str
    private_key: str = field(repr=False)
    installation_id: int | None
    org: str

    def __repr__(self) -> str:
        return f"AppCredentials(app_id={self.app_id!r}, installation_id={self.installation_id!r})"


class GithubClient:
    """One githubkit client for the configured credential, plus throwaway ones to test a token."""

    def __init__(self, token: str | None, base_url: str | None, timeout: float, retry_seconds: float,
                 app: AppCredentials | None = None) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self.gh = self._github(self._app_auth(app) if app is not None else token)

    def _app_auth(self, app: AppCredentials) -> Any:
        """githubkit's installation strategy: it signs the App's JWT (RS256) and trades it for an
        installation token (`POST /app/installations/{id}/access_tokens`), renewed before it
        expires. Without an installation id, the org's installation is looked up as the App."""
        from githubkit import AppAuthStrategy, AppInstallationAuthStrategy

        as_app = AppAuthStrategy(app.app_id, app.private_key)
        installation = app.installation_id
        if installation is None:
            gh = self._github(as_app)
            found = self.call("GET /orgs/{org}/installation",
                              lambda: gh.rest.apps.get_org_installation(app.org).parsed_data, read=True,
                              node=f"orgs/{app.org}")
            installation = int(found.id)
        return AppInstallationAuthStrategy(app.app_id, app.private_key, installation)

    def _github(self, token: Any) -> GitHub[Any]:
        # githubkit opens an httpx client per request outside a `with` block; one shared SSL context
        # spares each of them loading the CA bundle again (~50 ms a request)
        return GitHub(token, base_url=base_url_arg(self.base_url), timeout=self.timeout, auto_retry=False,
                      http_cache=False, trust_env=False, ssl_verify=_ssl_context())

    def close(self) -> None:
        return None

    @property
    def rest(self) -> Any:
        return self.gh.rest

    def call(self, call: str, fn: Callable[[], T], *, read: bool, node: str | None = None) -> T:
        """Run one request; reads retry throttling and 5xx within `retry_seconds`."""
        deadline = time.monotonic() + (self.retry_seconds if read else 0)
        while True:
            try:
                return fn()
            except (GitHubException, ValueError) as exc:
                err = _error(call, exc, node)
                if not (read and err.retryable) or time.monotonic() >= deadline:
                    raise err from None
                time.sleep(_retry_after(exc))

    def pages(self, call: str, method: Callable[..., Any], *, wrapped: str = "", node: str | None = None,
              **kwargs: Any) -> list[Any]:
        """Every item of a paginated list (GitHub's `Link: rel="next"`), 100 per page."""
        def fetch() -> list[Any]:
            out: list[Any] = []
            page = 1
            while True:
                resp = method(**kwargs, per_page=100, page=page)
                data = resp.parsed_data
                out.extend(getattr(data, wrapped) if wrapped else data)
                if 'rel="next"' not in resp.headers.get("link", ""):
                    return out
                page += 1

        return self.call(call, fetch, read=True, node=node)

    def token_login(self, token: str, node: str | None = None) -> str | None:
        """`GET /user` with `token`: its login, or None when GitHub answers 401 (revoked, expired)."""
        probe = self._github(token)
        try:
            user = self.call("GET /user", lambda: probe.rest.users.get_authenticated().parsed_data, read=True,
                             node=node)
        except ConnectorError as err:
            if err.code == "401":
                return None
            raise
        return str(user.login)

    def installation_token_live(self, token: str, node: str | None = None) -> bool:
        """An App installation token (`ghs_`) cannot call `GET /user`: it is tested with
        `GET /installation/repositories` (401: revoked or expired)."""
        probe = self._github(token)
        try:
            self.call("GET /installation/repositories",
                      lambda: probe.rest.apps.list_repos_accessible_to_installation(per_page=1).parsed_data,
                      read=True, node=node)
        except ConnectorError as err:
            if err.code == "401":
                return False
            raise
        return True

    def revoke_installation_token(self, token: str, node: str | None = None) -> None:
        """`DELETE /installation/token`, authenticated by the token itself (the credential
        revocation API does not take installation tokens)."""
        own = self._github(token)
        self.call("DELETE /installation/token", lambda: own.rest.apps.revoke_installation_access_token(), read=False,
                  node=node)

    def revoke_credentials(self, tokens: list[str], node: str | None = None) -> None:
        """`POST /credentials/revoke` (unauthenticated; up to 1,000 tokens per call)."""
        anonymous = self._github(None)
        for start in range(0, len(tokens), 1000):
            batch: list[str] = tokens[start:start + 1000]

            def send(b: list[str] = batch) -> Any:
                return anonymous.rest.credentials.revoke(data={"credentials": b})

            self.call("POST /credentials/revoke", send, read=False, node=node)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def base_url_arg(base_url: str | None) -> str | None:
    if not base_url:
        return None
    return base_url if base_url.endswith("/") else base_url + "/"


def seal(public_key_b64: str, value: str) -> str:
    """A libsodium sealed box of `value` for an Actions public key, base64 (what GitHub expects)."""
    box = SealedBox(PublicKey(base64.b64decode(public_key_b64)))
    return base64.b64encode(box.encrypt(value.encode())).decode()


def new_ssh_key_pair(comment: str) -> tuple[str, str]:
    """A new Ed25519 deploy key: (OpenSSH public line, OpenSSH private PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    return f"{public.decode()} {comment}", private.decode()
