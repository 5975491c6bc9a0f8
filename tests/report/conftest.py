"""One store with three recorded incidents over a graph with 250 IoT certificates (built once), and a
small fresh store per test for the tests that tamper with the journal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.report.report_testlib import Lab, build_store, record_incident


@pytest.fixture(scope="session")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    d = tmp_path_factory.mktemp("report-big")
    store, url, plan, playbook = build_store(d, certs=250)
    for scenario in ("clean", "dirty", "unverified"):
        record_incident(store, plan, playbook, f"inc-{scenario}", scenario)
    yield Lab(d, store, url, plan, playbook)
    store.close()


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Lab]:
    store, url, plan, playbook = build_store(tmp_path, certs=3)
    record_incident(store, plan, playbook, "inc-clean", "clean")
    record_incident(store, plan, playbook, "inc-dirty", "dirty")
    yield Lab(tmp_path, store, url, plan, playbook)
    store.close()
