"""The observed-use options are checked with the rest of `revoke.yaml`: exit 2 with file, line
and field before any connector runs, and nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# a scalar has no line of its own: the connector block's line (2) is named, with the field
CASES = [
    ("vault", "    url: http://127.0.0.1:8200\n    observations: maybe\n",
     "field observations: Input should be a valid boolean"),
    ("aws", "    observations: true\n    cloudtrail_days: 365\n",
     "field cloudtrail_days: Input should be less than or equal to 90"),
    ("aws", "    cloudtrail_max_keys: 0\n", "field cloudtrail_max_keys: Input should be greater than or equal to 1"),
    ("aws", "    cloudtrial_days: 7\n", "field cloudtrial_days: unknown key"),
]


@pytest.mark.parametrize(("kind", "block", "message"), CASES)
def test_bad_observation_options_exit_2(tmp_path: Path, revoke_cli: Any, kind: str, block: str, message: str) -> None:
    (tmp_path / "revoke.yaml").write_text(f"connectors:\n  - type: {kind}\n{block}")
    run = revoke_cli("collect", "--observations", cwd=tmp_path, in_process=True)
    assert run.error_line().startswith(f"error: revoke.yaml:2: connector '{kind}': {message}")
    assert not (tmp_path / ".revoke").exists()
