"""One store fixture for both backends: every test here runs against a SQLite file and against a
fresh database on the session's real Postgres server (`postgres_lab`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from revoke.store import Store


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/s.db"
    lab = request.getfixturevalue("postgres_lab")
    return str(lab.uri(lab.new_database("store")))


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[..., Store]]:
    """`open_store()` -> a Store on this test's URL (several may be open at once); all closed after."""
    opened: list[Store] = []

    def make(**kw: Any) -> Store:
        store = Store(store_url, **kw)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
