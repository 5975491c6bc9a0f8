"""The `gcp` block of `revoke.yaml` is checked against `GcpOptions` before anything runs: a
typo, an empty project list or a non-number is exit 2 naming the file, the line and the field
(the line of the value when it is a list or mapping, else the line of the connector block)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from connectors.gcp import GcpConnector
from revoke.config import load_config
from revoke.connector import ConnectorError
from revoke.errors import InputError


def _config(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "revoke.yaml"
    path.write_text("connectors:\n  - type: gcp\n" + "".join(f"    {line}\n" for line in lines))
    return path


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["projects: [p]", "endpont: 127.0.0.1:8085"], "2: connector 'gcp': field endpont: unknown key"),
        (["timeout: 5", "projects: []"], "4: connector 'gcp': field projects: List should have at least 1 item"),
        (["projects: [p]", "concurrency: lots"], "2: connector 'gcp': field concurrency: Input should be a valid integer"),
        (["projects: [p, 7]"], "3: connector 'gcp': field projects.1: Input should be a valid string"),
        (["endpoint: 127.0.0.1:8085"], "2: connector 'gcp': field projects: Field required"),
    ],
)
def test_bad_options_exit_2_with_file_line_and_field(tmp_path: Path, lines: list[str], message: str) -> None:
    cfg = _config(tmp_path, *lines)
    with pytest.raises(InputError) as err:
        load_config(cfg)
    assert str(err.value).startswith(f"{cfg}:{message}"), str(err.value)
    assert err.value.exit_code == 2


def test_every_option_is_declared(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "projects: [a, b]", "endpoint: 127.0.0.1:8085", "credentials_env: GCP_KEY_FILE",
                  "timeout: 5", "retry_seconds: 0", "concurrency: 2")
    (block,) = load_config(cfg).connectors
    conn = GcpConnector(block.options)
    assert (conn.projects, conn.concurrency, conn.client.timeout, conn.client.retry) == (["a", "b"], 2, 5.0, None)
    conn.close()


def test_direct_construction_names_the_field() -> None:
    with pytest.raises(ConnectorError, match="field projects: List should have at least 1 item"):
        GcpConnector({"type": "gcp", "projects": []})


def test_validation_and_permissions_load_no_sdk(tmp_path: Path) -> None:
    """The SDK is imported when a connector is built, never for `revoke.yaml` or the class."""
    cfg = _config(tmp_path, "projects: [p]")
    code = (
        "import sys\n"
        "from revoke.config import load_config\n"
        "from revoke.connector import connector_class\n"
        f"load_config({str(cfg)!r})\n"
        "assert connector_class('gcp').permissions\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'google'))\n"
        "assert not loaded, loaded\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
