"""The `type: vault` block of revoke.yaml is checked against VaultOptions before any connector
runs: a typo'd key or a wrongly typed value is exit 2 naming the file, the line and the field."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from revoke.config import load_config
from revoke.errors import InputError

BLOCK = """connectors:
  - type: inventory
    path: inv.yaml
  - type: vault
    url: http://127.0.0.1:8200
    token_env: VAULT_TOKEN
"""


def _config(tmp_path: Path, *lines: str) -> Path:
    cfg = tmp_path / "revoke.yaml"
    cfg.write_text(BLOCK + "".join(f"    {line}\n" for line in lines))
    return cfg


@pytest.mark.parametrize(
    ("line", "where", "message"),
    [
        ("parent_sorce: raw", 4, "field parent_sorce: unknown key"),
        ("kv_page_size: lots", 4, "field kv_page_size: Input should be a valid integer"),
        ("parent_source: sometimes", 4, "field parent_source: Input should be 'auto', 'raw', 'audit' or 'none'"),
        ("timeout: [30]", 7, "field timeout: Input should be a valid number"),  # a collection has a line of its own
        ("audit_log: [a.log, b.log]", 7, "field audit_log: Input should be a valid string"),
    ],
)
def test_bad_option_names_file_line_and_field(tmp_path: Path, line: str, where: int, message: str) -> None:
    cfg = _config(tmp_path, line)
    with pytest.raises(InputError) as err:
        load_config(cfg)
    assert err.value.exit_code == 2
    assert str(err.value).startswith(f"{cfg}:{where}: connector 'vault': {message}"), str(err.value)


def test_typo_exits_2_before_any_connector_runs(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "namespce: team-a")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REVOKE_", "VAULT_"))}
    proc = subprocess.run([sys.executable, "-c", "from revoke.cli import main; main()", "--store",
                           f"sqlite:///{tmp_path / 'revoke.db'}", "--config", str(cfg), "collect"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert f"{cfg}:4: connector 'vault': field namespce: unknown key" in proc.stderr
    assert not (tmp_path / "revoke.db").exists()


def test_every_documented_option_is_accepted(tmp_path: Path) -> None:
    from connectors.vault import VaultConnector

    cfg = _config(tmp_path, "namespace: team-a", "verify: false", "ca_cert: vault-ca.pem", "timeout: 5",
                  "read_attempts: 2", "parent_source: audit", "audit_log: audit.log", "audit_device: file",
                  "kv_page_size: 50")
    options = load_config(cfg).connectors[1].options
    conn = VaultConnector(options)  # no call is made: the client is created on first use
    assert conn.opts.parent_source == "audit" and conn.opts.kv_page_size == 50
    assert conn.opts.audit_log == str(tmp_path / "audit.log")
    assert conn.api.verify == str(tmp_path / "vault-ca.pem")  # a CA bundle wins over `verify`
    assert (conn.api.namespace, conn.api.timeout, conn.api.read_attempts) == ("team-a", 5.0, 2)
