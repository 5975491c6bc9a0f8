"""Retrying a provider call: throttling, 429, 5xx and connection errors (a ConnectorError its
connector marked `retryable`) with exponential backoff and full jitter, as the playbook's
`retries` says. Anything else, or the last attempt's error, goes to the caller."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

import structlog

from revoke.connector import ConnectorError
from revoke.playbook import Retries

log = structlog.get_logger()
T = TypeVar("T")


def with_retries(what: str, fn: Callable[[], T], policy: Retries, on_retry: Callable[[], None]) -> T:
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return fn()
        except ConnectorError as exc:
            if not exc.retryable or attempt == policy.max_attempts:
                raise
            delay = random.uniform(0, min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1)))
            on_retry()
            log.warning("action.retry", call=what, attempt=attempt, delay=round(delay, 3), error=str(exc))
            time.sleep(delay)
    raise AssertionError("unreachable")
