"""Connector options that count or time something refuse zero, negative and absurd values when
revoke.yaml is read: exit 2, one line naming the file, the connector block's line and the field,
and no store created (today a `max_workers: 0` would hang a pool, a negative timeout fail every call)."""

from __future__ import annotations

from pathlib import Path

import pytest

BLOCKS = {"aws": "    region: us-east-1\n", "vault": "    url: http://127.0.0.1:8200\n",
          "gcp": "    projects: [lab-project]\n"}
CASES = [
    ("aws", "max_workers", "0"), ("aws", "max_workers", "-4"), ("aws", "max_workers", "1000000000"),
    ("aws", "max_attempts", "0"), ("aws", "max_attempts", "-1"),
    ("vault", "timeout", "0"), ("vault", "timeout", "-0.5"), ("vault", "read_attempts", "0"),
    ("vault", "kv_page_size", "0"), ("vault", "kv_page_size", "-500"),
    ("gcp", "timeout", "0"), ("gcp", "timeout", "-30"), ("gcp", "retry_seconds", "-1"),
    ("gcp", "concurrency", "0"), ("gcp", "concurrency", "-8"),
]


@pytest.mark.parametrize(("ctype", "field", "value"), CASES)
def test_an_option_out_of_range_is_refused_with_file_line_and_field(revoke_cli, tmp_path: Path, ctype: str,
                                                                    field: str, value: str) -> None:
    (tmp_path / "revoke.yaml").write_text(f"connectors:\n  - type: inventory\n    path: inv.yaml\n  - type: {ctype}\n"
                                          f"{BLOCKS[ctype]}    {field}: {value}\n")
    res = revoke_cli("collect", cwd=tmp_path, in_process=True)
    assert res.returncode == 2, (ctype, field, value, res.stdout, res.stderr)
    (line,) = res.stderr.splitlines()
    assert line.startswith(f"error: revoke.yaml:4: connector '{ctype}': field {field}: "), line
    assert not (tmp_path / ".revoke").exists()


@pytest.mark.parametrize(("ctype", "field", "value"), [("aws", "max_workers", "1"), ("gcp", "retry_seconds", "0"),
                                                       ("vault", "timeout", "0.5")])
def test_small_values_that_mean_something_are_accepted(tmp_path: Path, ctype: str, field: str, value: str) -> None:
    from revoke.config import load_config

    (tmp_path / "revoke.yaml").write_text(f"connectors:\n  - type: {ctype}\n{BLOCKS[ctype]}    {field}: {value}\n")
    assert load_config(str(tmp_path / "revoke.yaml")).connectors[0].options[field] == yaml_value(value)


def yaml_value(text: str) -> object:
    import yaml

    return yaml.safe_load(text)
