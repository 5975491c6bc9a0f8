"""Shared helpers for the x509 connector tests: lab PKI material written to temp dirs."""

from __future__ import annotations

from typing import Any

import pytest

from revoke.connector import Collected, connector_class


@pytest.fixture
def collect():
    def run(config: dict[str, Any]) -> Collected:
        return connector_class("x509")(config).collect()

    return run
