"""The `postgres` block is checked before anything runs (exit 2 naming file, line and field), the
connection string comes from the environment only, and TLS is required to a remote server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from revoke.config import load_config
from revoke.connector import ConnectorError
from revoke.errors import InputError


def _config(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "revoke.yaml"
    path.write_text("connectors:\n  - type: postgres\n" + "".join(f"    {line}\n" for line in lines))
    return path


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["dsn_env: PG", "dsn: postgres://u:p@h/db"], "4: field 'dsn': the value looks like a URL with a password"),
        (["dsn_env: PG", "dbs: [a]"], "4: connector 'postgres': field dbs: unknown key"),
        (["server: db.internal:5432"], "2: connector 'postgres': field dsn_env: Field required"),
        (["dsn_env: PG", "sslmode: sometimes"], "2: connector 'postgres': field sslmode: Input should be"),
        (["dsn_env: PG", "databases: []"], "4: connector 'postgres': field databases"),
        (["dsn_env: 'postgres://u:p@h/db'"], "3: field 'dsn_env': expects the name of an environment variable"),
    ],
)
def test_bad_options_exit_2_with_file_line_and_field(tmp_path: Path, lines: list[str], message: str) -> None:
    cfg = _config(tmp_path, *lines)
    with pytest.raises(InputError) as err:
        load_config(cfg)
    assert str(err.value).startswith(f"{cfg}:{message}"), str(err.value)
    assert "u:p@" not in str(err.value)


def test_cli_rejects_a_bad_block_and_changes_nothing(tmp_path: Path, revoke_cli: Any) -> None:
    _config(tmp_path, "dsn_env: PG", "sslmode: sometimes")
    run = revoke_cli("collect", cwd=tmp_path)
    assert "sslmode" in run.error_line()
    assert not (tmp_path / ".revoke").exists()


def test_dsn_only_by_reference_and_tls_to_remote_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.postgres import PostgresConnector

    monkeypatch.delenv("PG_NOT_SET", raising=False)
    with pytest.raises(ConnectorError, match="PG_NOT_SET"):
        PostgresConnector({"dsn_env": "PG_NOT_SET"})
    monkeypatch.setenv("PG_REMOTE", "postgresql://ops:s3cret@db.example.com:6432/app")
    remote = PostgresConnector({"dsn_env": "PG_REMOTE"})
    assert remote.client.server == "db.example.com:6432"
    assert remote.client._params["sslmode"] == "verify-full"
    monkeypatch.setenv("PG_LOCAL", "postgresql://ops:s3cret@127.0.0.1/app")
    assert PostgresConnector({"dsn_env": "PG_LOCAL"}).client._params["sslmode"] == "prefer"
    monkeypatch.setenv("PG_BAD", "postgresql://ops:s3cret@h/app?nonsense=1")
    with pytest.raises(ConnectorError) as err:
        PostgresConnector({"dsn_env": "PG_BAD"})
    assert "s3cret" not in str(err.value)
