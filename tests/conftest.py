"""Shared by every test directory: each test starts with structlog's defaults, so one test's
`revoke.logs.configure()` (say, at warning level) cannot hide another test's log events."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
