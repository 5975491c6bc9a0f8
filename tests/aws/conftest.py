"""AWS connector tests: one in-process moto server per session, reset and seeded per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from examples.lab.aws_lab import MotoServer


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server, pytest.MonkeyPatch.context() as mp:
        for key, value in server.env.items():
            mp.setenv(key, value)
        # no shared config or credentials file of the machine may leak into the tests
        mp.setenv("AWS_CONFIG_FILE", "/nonexistent")
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        yield server


@pytest.fixture(scope="module")
def fresh(moto_server: MotoServer) -> MotoServer:
    moto_server.reset()
    return moto_server
