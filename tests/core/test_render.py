"""Tables print node ids as they are: `vault:secret:...` must not become an emoji."""

from __future__ import annotations

from pathlib import Path

INVENTORY = """
nodes:
  - {id: host:h, kind: host}
  - {id: "vault:secret:secret/ci/app", kind: secret, provider: vault, fingerprint: "sha256:aa"}
  - {id: "vault:secret:secret/ci/copy", kind: secret, provider: vault, fingerprint: "sha256:aa"}
edges:
  - {from: host:h, to: "vault:secret:secret/ci/app", rel: stores}
"""


def test_ids_with_emoji_shortcodes_print_verbatim(revoke_cli, tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    (tmp_path / "revoke.yaml").write_text("connectors:\n  - {type: inventory, path: inv.yaml}\n")
    assert revoke_cli("collect", cwd=tmp_path).returncode == 0
    for args in (["blast-radius", "host:h"], ["sweep", "--fail-on", "none"], ["plan", "compromised-host", "--node", "host:h"]):
        res = revoke_cli(*args, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert "vault:secret:secret/ci/app" in res.stdout
        assert "\u3299" not in res.stdout
