"""The one-way architecture, checked: `revoke/` (the core) imports nothing from `connectors/`, and
the command line up to `revoke --help` imports no provider SDK (STYLE.md: lazy provider imports)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "revoke"
SDKS = ("boto3", "botocore", "hvac", "grpc", "google", "githubkit", "nacl", "pypitoken", "kubernetes")


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):  # every level: a function-local import counts as much as a top-level one
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_core_imports_nothing_from_connectors() -> None:
    files = sorted(CORE.glob("*.py"))
    assert len(files) > 20, CORE
    offending = [f"{path.name}:{line}: import {module}"
                 for path in files
                 for line, module in _imported_modules(ast.parse(path.read_text(encoding="utf-8"), str(path)))
                 if module == "connectors" or module.startswith("connectors.")]
    assert offending == []


def test_the_check_sees_function_local_imports() -> None:
    tree = ast.parse("def f():\n    from connectors.aws import AwsConnector\n    import connectors\n")
    assert _imported_modules(tree) == [(2, "connectors.aws"), (3, "connectors")]


# argv: the SDK names; prints, as its last line, those that `revoke --help` imported
PROBE = """
import json, sys
sdks = set(sys.argv[1:])
import typer.main
import revoke.cli
typer.main.get_command(revoke.cli.app)
sys.argv = ["revoke", "--help"]
try:
    revoke.cli.main()
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
loaded = sorted({name.split(".")[0] for name in sys.modules} & sdks)
sys.__stdout__.write("\\n" + json.dumps(loaded) + "\\n")
"""


def test_help_imports_no_provider_sdk(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE, *SDKS], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: revoke" in proc.stdout  # the help really was printed
    assert json.loads(proc.stdout.splitlines()[-1]) == []
