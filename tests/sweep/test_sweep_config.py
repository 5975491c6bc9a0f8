"""The rules file: overrides, switches, and errors that name the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from revoke.errors import InputError
from revoke.sweep import default_config
from revoke.sweep_config import config_to_dict, load_rules

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sweep-rules.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def test_example_file_is_exactly_the_builtin_defaults() -> None:
    assert config_to_dict(load_rules(EXAMPLE)) == config_to_dict(default_config())
    text = EXAMPLE.read_text()
    for rule_id in default_config():
        assert f"\n  {rule_id}:\n" in text, f"{rule_id} not documented in the example"


def test_overrides_and_switches(tmp_path: Path) -> None:
    config = load_rules(write(tmp_path, """
rules:
  key-unused: {days: 30, severity: HIGH}
  vault-token-orphan: false
  cert-expiring:
    enabled: false
  weak-key: ~
  cert-ca-unknown: {trusted_issuers: ["O=Let's Encrypt"]}
"""))
    assert config["key-unused"].params["days"] == 30 and config["key-unused"].severity == "high"
    assert config["key-unused"].params["kinds"] == ["access_key", "service_account_key"]  # untouched default
    assert not config["vault-token-orphan"].enabled and not config["cert-expiring"].enabled
    assert config["weak-key"].enabled and config["weak-key"].params["min_rsa_bits"] == 2048
    assert config["cert-ca-unknown"].params["trusted_issuers"] == ["O=Let's Encrypt"]
    assert load_rules(write(tmp_path, "")) is not None  # an empty file means the defaults


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("rules:\n  key-unused:\n    days: 30\n  key-unsued: {days: 3}\n", 4,
     "rules.key-unsued: unknown rule id 'key-unsued' (did you mean: key-unused"),
    ("rules:\n  key-unused:\n    days: 30\n    dayz: 3\n", 4, "rules.key-unused.dayz: unknown field 'dayz'; this rule takes: "
     "enabled, severity, days, kinds"),
    ("rules:\n  key-unused:\n    days: -1\n", 3, "rules.key-unused.days: expected a whole number >= 0, got a negative number"),
    ("rules:\n  key-unused:\n    days: ninety\n", 3, "rules.key-unused.days: expected a whole number >= 0, got a string"),
    ("rules:\n  key-unused:\n    days: true\n", 3, "rules.key-unused.days: expected a whole number >= 0, got true/false"),
    ("rules:\n  cert-expiring:\n    severity: urgent\n", 3, "rules.cert-expiring.severity: unknown severity; expected one of"),
    ("rules:\n  cert-expiring:\n    enabled: yes please\n", 3, "rules.cert-expiring.enabled: expected true or false"),
    ("rules:\n  weak-key:\n    kinds: [certificate, cert]\n", 3, "rules.weak-key.kinds: unknown kind(s) ['cert']"),
    ("rules:\n  weak-key:\n    weak_types: dsa\n", 3, "rules.weak-key.weak_types: expected a list of strings"),
    ("rules:\n  weak-signature: 3\n", 2, "rules.weak-signature: expected a mapping of settings, or true/false"),
    ("rule:\n  key-unused: {}\n", 1, "unknown top-level field 'rule'"),
    ("rules: [key-unused]\n", 1, "rules: expected a mapping"),
    ("version: 2\nrules: {}\n", 1, "version: unsupported rules file version; expected 1"),
    ("rules:\n  key-unused: {days: 1}\n  key-unused: {days: 2}\n", 3, "duplicate key 'key-unused'"),
    ("rules:\n  key-unused: {days: [1\n", 3, "invalid YAML"),
])
def test_errors_name_file_line_and_field(tmp_path: Path, text: str, line: int, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_rules(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert needle in message, message
    assert info.value.exit_code == 2


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="rules file not found"):
        load_rules(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text", ["rules:\n  key-unused: {days: 3}\x07\n", "rules: [\n", "rules: {a: 1, a: 2}\n"])
def test_yaml_errors_are_one_line(tmp_path: Path, text: str) -> None:
    """The rules file goes through revoke.yamlio like every other input: one line, file:line first."""
    path = write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_rules(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}:"), message
