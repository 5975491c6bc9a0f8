"""Tables print node ids as they are: `vault:secret:...` must not become an emoji."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

INVENTORY = """
nodes:
  - {id: host:h, kind: host}
  - {id: "vault:secret:secret/ci/app", kind: secret, provider: vault, fingerprint: "sha256:aa"}
  - {id: "vault:secret:secret/ci/copy", kind: secret, provider: vault, fingerprint: "sha256:aa"}
edges:
  - {from: host:h, to: "vault:secret:secret/ci/app", rel: stores}
"""


def test_ids_with_emoji_shortcodes_print_verbatim(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    (tmp_path / "revoke.yaml").write_text("connectors:\n  - {type: inventory, path: inv.yaml}\n")

    def cli(*args: str) -> str:
        env = {**os.environ, "COLUMNS": "250"}  # wide enough that no id is folded
        proc = subprocess.run([sys.executable, "-m", "revoke", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60, env=env)
        assert proc.returncode in (0, 1), proc.stderr
        return proc.stdout

    cli("collect")
    for out in (cli("blast-radius", "host:h"), cli("sweep", "--fail-on", "none"),
                cli("plan", "compromised-host", "--node", "host:h")):
        assert "vault:secret:secret/ci/app" in out
        assert "\u3299" not in out
