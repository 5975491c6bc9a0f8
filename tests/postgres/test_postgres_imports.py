"""psycopg is imported by `connectors/postgres/client.py` only, and only when a connector is made:
recognising a Postgres password in a Vault or Secrets Manager value, validating options and
reading the action table load no driver."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "connectors" / "postgres"


def test_only_the_client_imports_psycopg() -> None:
    importers = set()
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] == "psycopg" for n in names):
                importers.add(path.name)
    assert importers == {"client.py"}


def test_recognising_and_declaring_load_no_driver() -> None:
    probe = ("import sys\n"
             "from connectors.recognize import recognize\n"
             "from revoke.connector import connector_class\n"
             "recognize({'host': 'db', 'username': 'u', 'password': 'p'})\n"
             "cls = connector_class('postgres'); cls.options_model.model_validate({'dsn_env': 'X'}); cls.permissions\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'psycopg'))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                         cwd=PACKAGE.parents[1], check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
