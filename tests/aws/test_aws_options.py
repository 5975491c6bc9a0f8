"""The `type: aws` block of revoke.yaml is validated before anything runs: a typo or a wrong type
exits 2 naming the file, the line and the field, and no AWS call is made. The line is the
connector block's, or the nested entry's for a field inside `accounts:`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from connectors.aws.options import AwsOptions
from revoke.config import load_config
from revoke.errors import InputError

GOOD = """connectors:
  - type: aws
    region: eu-west-1
    endpoint_url: http://127.0.0.1:9
    access_key_id_env: LAB_KEY
    retry_mode: standard
    accounts:
      - {profile: prod}
      - {region: us-east-1, endpoint_url: http://127.0.0.1:10}
    max_workers: 8
    max_attempts: 2
    iot_ca_ids: [abc123]
    probe_sts: false
"""


def write(tmp_path: Path, text: str) -> Path:
    cfg = tmp_path / "revoke.yaml"
    cfg.write_text(text)
    return cfg


def test_every_declared_key_is_accepted_and_accounts_inherit(tmp_path: Path) -> None:
    conf = load_config(write(tmp_path, GOOD))
    opts = AwsOptions.model_validate(conf.connectors[0].options)
    assert (opts.max_workers, opts.max_attempts, opts.iot_ca_ids, opts.probe_sts) == (8, 2, ["abc123"], False)
    first, second = opts.account_settings()
    assert (first.profile, first.region, first.endpoint_url, first.access_key_id_env) == (
        "prod", "eu-west-1", "http://127.0.0.1:9", "LAB_KEY")
    assert (second.profile, second.region, second.endpoint_url) == (None, "us-east-1", "http://127.0.0.1:10")
    assert [a.region for a in AwsOptions().account_settings()] == [None]  # no accounts: the top level


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("    endpont_url: http://127.0.0.1:5000\n", "2: connector 'aws': field endpont_url: unknown key"),
        ("    max_workers: lots\n", "2: connector 'aws': field max_workers: Input should be a valid integer"),
        ("    accounts:\n      - {profile: a}\n      - {profle: b}\n",
         "6: connector 'aws': field accounts.1.profle: unknown key"),
        ("    retry_mode: eventually\n", "2: connector 'aws': field retry_mode: Input should be 'legacy'"),
        ("    accounts: prod\n", "2: connector 'aws': field accounts: Input should be a valid list"),
    ],
)
def test_bad_options_name_file_line_and_field(tmp_path: Path, block: str, message: str) -> None:
    cfg = write(tmp_path, "connectors:\n  - type: aws\n    region: us-east-1\n" + block)
    with pytest.raises(InputError) as err:
        load_config(cfg)
    assert err.value.exit_code == 2
    assert str(err.value).startswith(f"{cfg}:{message}"), str(err.value)


def test_a_typo_exits_2_before_any_call(tmp_path: Path) -> None:
    # endpont_url would otherwise be ignored and the calls would go to the real AWS
    write(tmp_path, "connectors:\n  - type: aws\n    endpont_url: http://127.0.0.1:9\n")
    proc = subprocess.run([sys.executable, "-m", "revoke", "collect"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "revoke.yaml:2: connector 'aws': field endpont_url: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / ".revoke").exists()
