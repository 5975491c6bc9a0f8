"""One IAM double per test session; each test seeds its own project so tests stay independent."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.gcp import GcpConnector
from examples.lab.gcp_iam_double import GcpIamDouble
from revoke.connector import ActionContext

PAGE_SIZE = 3  # small pages so every listing needs several round trips
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def double() -> Iterator[GcpIamDouble]:
    with GcpIamDouble(page_size=PAGE_SIZE) as d:
        yield d


@pytest.fixture(autouse=True)
def _clear_faults(double: GcpIamDouble) -> Iterator[None]:
    yield
    double.clear_faults()


@pytest.fixture
def new_project(double: GcpIamDouble) -> Callable[[], str]:
    def make() -> str:
        project = f"test-proj-{next(_counter):04d}"
        double.add_project(project)
        return project

    return make


@pytest.fixture
def make_connector(double: GcpIamDouble) -> Iterator[Callable[..., GcpConnector]]:
    made: list[GcpConnector] = []

    def make(projects: list[str], **extra: Any) -> GcpConnector:
        conn = GcpConnector({"type": "gcp", "projects": projects, "endpoint": double.endpoint,
                             "retry_seconds": 0, **extra})
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


@pytest.fixture
def ctx() -> ActionContext:
    return ActionContext(incident="inc-gcp-test", dry_run=False)
