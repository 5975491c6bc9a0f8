"""The AWS boundary: sessions and clients, and the one place a botocore error becomes a ConnectorError.

boto3 and botocore are imported here and nowhere else in the package, and only inside the
functions that need them: importing the connector class (`revoke --help`, config validation, an
inventory-only run) loads no SDK.

Every AWS call goes through `call()`: a `ClientError` (AWS answered) becomes a `ConnectorError`
whose `code` is AWS's error code (`NoSuchEntity`, `LimitExceeded`; the HTTP status when AWS sent
none); throttling, 429, 5xx and connection errors are `retryable`. Nothing else in the package
looks at a botocore exception.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from revoke.connector import ConnectorError

if TYPE_CHECKING:
    from connectors.aws.options import AccountOptions

PROVIDER = "aws"
THROTTLING = frozenset(
    {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
     "SlowDown", "RequestThrottled", "ServiceUnavailable", "InternalFailure", "InternalError"}
)
T = TypeVar("T")


class _DropDebug(logging.Filter):
    """botocore logs whole request and response bodies at DEBUG: GetSecretValue values,
    PutSecretValue and CreateAccessKey secrets included. Those records never pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_DROP_DEBUG = _DropDebug()


def quiet_sdk_bodies() -> None:
    for name in ("botocore.parsers", "botocore.endpoint", "botocore.hooks", "botocore.retryhandler"):
        logger = logging.getLogger(name)
        if _DROP_DEBUG not in logger.filters:
            logger.addFilter(_DROP_DEBUG)


def wrap_error(exc: BaseException, call: str, node: str | None) -> ConnectorError:
    """A boto3/botocore exception as a ConnectorError (message: AWS error code and text only).

    `code` is AWS's error code for an answer from AWS and None for a call that got no answer
    (connection refused, timeout, an unparseable body): callers tell the two apart by it.
    """
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )
    from botocore.parsers import ResponseParserError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        retryable = status == 429 or status >= 500 or code in THROTTLING
        text = str(err.get("Message", "")).splitlines()[0][:200] if err.get("Message") else ""
        if text.lstrip().startswith("<"):
            text = "HTML error page"
        return ConnectorError(PROVIDER, call, f"{code or status}: {text}".rstrip(": "), node=node,
                              retryable=retryable, code=code or str(status))
    retryable = isinstance(
        exc, EndpointConnectionError | ConnectionClosedError | ConnectTimeoutError | ReadTimeoutError
        | ResponseParserError
    )
    return ConnectorError(PROVIDER, call, type(exc).__name__, node=node, retryable=retryable)


def call(fn: Callable[[], T], name: str, node: str | None = None) -> T:
    """Run one AWS call (`name` as the API names it), its errors wrapped."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    try:
        return fn()
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        raise wrap_error(exc, name, node) from exc


def pages(client: Any, operation: str, key: str, node: str | None = None, **kwargs: Any) -> list[Any]:
    """Every item of a paginated list operation, as one wrapped call."""

    def run() -> list[Any]:
        out: list[Any] = []
        for page in client.get_paginator(operation).paginate(**kwargs):
            out.extend(page.get(key, []))
        return out

    return call(run, operation, node)


def native(node_id: str) -> str:
    """The AWS id inside `aws:<type>:<id>` (a key id, an ARN, a certificate id)."""
    return node_id.split(":", 2)[2]


_loader: Any = None
_loader_lock = threading.Lock()


def _core_session() -> Any:
    """A botocore session that reads the service models through one loader per process: every
    session otherwise parses the same JSON models again (collect, run and verify each make theirs)."""
    import botocore.session
    from botocore.loaders import create_loader

    global _loader
    with _loader_lock:
        if _loader is None:
            _loader = create_loader()
    core = botocore.session.Session()
    core.register_component("data_loader", _loader)
    return core


class Account:
    """One configured account: a boto3 session and its clients, created lazily, thread-safe."""

    def __init__(self, settings: AccountOptions, max_attempts: int, pool_size: int) -> None:
        self.settings = settings
        self.max_attempts = max_attempts
        self.pool_size = pool_size
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, int], Any] = {}
        self._session: Any = None
        self._account_id: str | None = None

    def client(self, service: str, *, attempts: int | None = None, endpoint_url: str | None = None) -> Any:
        """`endpoint_url` overrides the account's for this service (CloudTrail served apart in a lab);
        `attempts=0`: one try, no botocore retry at all (the caller paces and retries itself)."""
        attempts = self.max_attempts if attempts is None else attempts
        with self._lock:
            if (service, attempts) not in self._clients:
                from botocore.config import Config

                # botocore's `max_attempts` counts retries; `total_max_attempts: 1` is a single try
                tries = {"total_max_attempts": 1} if attempts == 0 else {"max_attempts": attempts}
                self._clients[(service, attempts)] = self._make_session().client(
                    service,
                    endpoint_url=endpoint_url or self.settings.endpoint_url,
                    config=Config(
                        # standard, not adaptive: adaptive also throttles the whole client after
                        # one throttle, which measured 2.4x slower here in the hour that matters
                        retries={"mode": self.settings.retry_mode or "standard", **tries},
                        max_pool_connections=self.pool_size,
                    ),
                )
            return self._clients[(service, attempts)]

    def _make_session(self) -> Any:
        """The account's session (call with the lock held). Credentials come from the environment
        variables the configuration names, else boto3's own chain (profile, instance role)."""
        if self._session is None:
            import boto3

            creds: dict[str, str] = {}
            for key in ("access_key_id", "secret_access_key", "session_token"):
                env = getattr(self.settings, f"{key}_env")
                if env:
                    creds[f"aws_{key}"] = os.environ.get(env, "")
            base = boto3.session.Session(botocore_session=_core_session(), profile_name=self.settings.profile,
                                         region_name=self.region, **creds)
            self._session = self._assumed(base) if self.settings.role_arn else base
        return self._session

    def _assumed(self, base: Any) -> Any:
        """A session as `role_arn`, assumed from `base`, whose credentials refresh themselves."""
        import boto3
        from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

        endpoint = self.settings.endpoint_url

        def sts_client(service: str, **kw: Any) -> Any:
            return base.client(service, endpoint_url=endpoint, **kw)

        fetcher = AssumeRoleCredentialFetcher(sts_client, base.get_credentials(), str(self.settings.role_arn),
                                              extra_args={"RoleSessionName": "revoke"})
        core = _core_session()
        core._credentials = DeferredRefreshableCredentials(fetcher.fetch_credentials, "assume-role")
        return boto3.session.Session(botocore_session=core, region_name=self.region)

    def probe_client(self, service: str, key_id: str) -> Any:
        """A client signing as `key_id` with a deliberately wrong secret (see actions.probe_key)."""
        from botocore.config import Config

        with self._lock:
            return self._make_session().client(
                service,
                endpoint_url=self.settings.endpoint_url,
                aws_access_key_id=key_id,
                aws_secret_access_key="0" * 40,
                config=Config(retries={"mode": "standard", "max_attempts": 1}),
            )

    @property
    def region(self) -> str:
        return self.settings.region or "us-east-1"

    def account_id(self) -> str:
        if self._account_id is None:
            sts = self.client("sts")
            self._account_id = str(call(sts.get_caller_identity, "get_caller_identity")["Account"])
        return self._account_id
