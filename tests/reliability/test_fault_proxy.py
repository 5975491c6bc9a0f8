"""The fault proxy speaks each protocol the way the real service does: botocore and hvac parse its
answers into the errors they parse from AWS and Vault, and the connectors mark them retryable."""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3
import hvac
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from connectors.aws import wrap_error as aws_wrap
from connectors.vault.client import wrap_error as vault_wrap
from examples.lab.aws_lab import LAB_ENV, MotoServer
from examples.lab.faultproxy import FaultPlan, FaultProxy


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    saved = {k: os.environ.get(k) for k in LAB_ENV}
    os.environ.update(LAB_ENV)
    try:
        with MotoServer() as server:
            yield server
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def _only(kind: str) -> FaultPlan:
    return FaultPlan(rate=1.0, seed=1, weights={kind: 1.0}, slow_seconds=(0.2, 0.2))


def _client(service: str, url: str):  # one attempt: the test sees exactly what the proxy sent
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        config=Config(retries={"mode": "standard", "total_max_attempts": 1}))


CALLS = {
    "iam": lambda c: c.list_users(),  # query protocol, XML errors
    "secretsmanager": lambda c: c.list_secrets(),  # JSON 1.1, __type
    "iot": lambda c: c.list_things(),  # REST-JSON, x-amzn-ErrorType
}


@pytest.mark.parametrize("service", sorted(CALLS))
@pytest.mark.parametrize(("kind", "status", "codes"), [
    ("throttle", 400, {"Throttling", "ThrottlingException"}),
    ("too_many", 429, {"TooManyRequestsException"}),
    ("error_500", 500, {"InternalFailure"}),
    ("error_503", 503, {"ServiceUnavailable"}),
])
def test_aws_faults_parse_as_retryable(moto: MotoServer, service: str, kind: str, status: int, codes: set[str]) -> None:
    with FaultProxy(moto.endpoint_url, flavor="aws", plan=_only(kind)) as proxy, \
            pytest.raises(ClientError) as info:
        CALLS[service](_client(service, proxy.url))
    err = info.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == status
    assert err["Error"]["Code"] in codes
    if kind == "throttle":
        # the code is one botocore's retry logic classes as throttling
        from botocore.retries.standard import ThrottledRetryableChecker

        assert err["Error"]["Code"] in ThrottledRetryableChecker._THROTTLED_ERROR_CODES
    if kind == "too_many":
        assert err["ResponseMetadata"]["HTTPHeaders"].get("retry-after") == "1"
    assert aws_wrap(info.value, "call", None).retryable
    assert proxy.stats.injected[kind] == 1 and proxy.stats.forwarded == 0


def test_aws_reset_and_slow(moto: MotoServer) -> None:
    with FaultProxy(moto.endpoint_url, flavor="aws", plan=_only("reset")) as proxy, \
            pytest.raises((ConnectionClosedError, EndpointConnectionError)) as info:
        _client("iam", proxy.url).list_users()
    assert aws_wrap(info.value, "call", None).retryable
    with FaultProxy(moto.endpoint_url, flavor="aws", plan=_only("slow")) as proxy:
        import time

        started = time.perf_counter()
        assert "Users" in _client("iam", proxy.url).list_users()
        assert time.perf_counter() - started >= 0.2
        assert proxy.stats.forwarded == 1 and proxy.stats.injected["slow"] == 1


def test_clean_share_is_forwarded_and_seeded(moto: MotoServer) -> None:
    """With rate 0.2, about a fifth of the calls fail, and the same seed gives the same faults."""
    outcomes = []
    for _ in range(2):
        plan = FaultPlan(rate=0.2, seed=42, weights={"throttle": 1, "error_503": 1, "reset": 1})
        with FaultProxy(moto.endpoint_url, flavor="aws", plan=plan) as proxy:
            iam = _client("iam", proxy.url)
            seen = []
            for _ in range(50):
                try:
                    iam.list_users()
                    seen.append("ok")
                except (ClientError, ConnectionClosedError, EndpointConnectionError) as exc:
                    seen.append(type(exc).__name__)
            outcomes.append((seen, dict(proxy.stats.injected)))
    assert outcomes[0] == outcomes[1]
    assert 3 <= sum(outcomes[0][1].values()) <= 20


@pytest.mark.parametrize(("kind", "exc_name", "retryable"), [
    ("too_many", "RateLimitExceeded", True),
    ("error_500", "InternalServerError", True),
    ("error_503", "VaultDown", True),
])
def test_vault_faults(moto: MotoServer, kind: str, exc_name: str, retryable: bool) -> None:
    # vault-flavoured faults are answered by the proxy itself: the upstream is never reached
    with FaultProxy(moto.endpoint_url, flavor="vault", plan=_only(kind)) as proxy, \
            pytest.raises(Exception) as info:
        hvac.Client(url=proxy.url, token="canary-not-a-token").adapter.get("/v1/secret/data/x")
    assert type(info.value).__name__ == exc_name
    wrapped = vault_wrap("GET secret/data/x", info.value)
    assert wrapped.retryable is retryable and "sealed" not in str(wrapped)


def test_proxy_is_bounded_in_time(moto: MotoServer) -> None:
    import time
    import urllib.request

    proxy = FaultProxy(moto.endpoint_url, flavor="aws", plan=FaultPlan(rate=0.0), max_seconds=0.3)
    proxy.start()
    with urllib.request.urlopen(f"{proxy.url}/moto-api/", timeout=5) as resp:
        assert resp.status == 200
    time.sleep(0.8)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{proxy.url}/moto-api/", timeout=2)
    proxy.stop()
