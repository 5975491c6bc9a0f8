"""The sweep rules file: thresholds, severities, rules switched off. Every error names the file,
the line and the field; unknown rule ids and unknown fields are rejected, not ignored (a typo in a
threshold must not silently fall back to the default).

    rules:
      key-unused: {days: 60}             # override a threshold
      cert-expiring: {days: 45, severity: high}
      vault-token-orphan: false          # switch a rule off (or `enabled: false`)
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from revoke.errors import InputError
from revoke.input_rules import field_path, shown_key, shown_keys
from revoke.model import NodeKind, type_name
from revoke.sweep import RuleConfig, builtin_rules, default_config, parse_severity
from revoke.yamlio import key_line, load_file

KIND_PARAMS = {"kinds", "holder_kinds"}


def load_rules(path: str | Path) -> dict[str, RuleConfig]:
    """Defaults overlaid with the rules file at `path`."""
    return parse_rules(load_file(path, what="rules file"), str(Path(path)))


def parse_rules(data: Any, source: str = "<rules>") -> dict[str, RuleConfig]:
    config = default_config()
    if data is None:
        return config

    def fail(message: str, mapping: Any = None, key: Any = None) -> InputError:
        return InputError(message, source=source, line=key_line(mapping, key) if mapping is not None else None)

    if not isinstance(data, dict):
        raise fail("expected a mapping with a `rules:` mapping")
    for key in data:
        if key not in ("rules", "version"):
            raise fail(f"unknown top-level field {shown_key(key)}; expected `rules` (and optionally `version`)", data, key)
    if data.get("version", 1) != 1:
        raise fail("version: unsupported rules file version; expected 1", data, "version")
    rules = data.get("rules")
    if rules is None:
        return config
    if not isinstance(rules, dict):
        raise fail("rules: expected a mapping of rule id -> settings", data, "rules")
    known = builtin_rules()
    for rule_id, settings in rules.items():
        where = f"rules.{field_path([rule_id])}"
        if rule_id not in known:
            close = difflib.get_close_matches(str(rule_id), list(known), n=3)
            hint = f" (did you mean: {', '.join(close)}?)" if close else f"; known rules: {', '.join(sorted(known))}"
            raise fail(f"{where}: unknown rule id {shown_key(rule_id)}{hint}", rules, rule_id)
        cfg = config[rule_id]
        if isinstance(settings, bool):
            cfg.enabled = settings
            continue
        if settings is None:
            continue
        if not isinstance(settings, dict):
            raise fail(f"{where}: expected a mapping of settings, or true/false", rules, rule_id)
        for field, value in settings.items():
            _apply(cfg, known[rule_id].params, where, field, value, lambda msg, f=field, s=settings: fail(msg, s, f))
    return config


def _apply(cfg: RuleConfig, defaults: dict[str, Any], where: str, field: Any, value: Any, fail: Any) -> None:
    name = f"{where}.{field_path([field])}"
    if field == "enabled":
        if not isinstance(value, bool):
            raise fail(f"{name}: expected true or false, got {type_name(value)}")
        cfg.enabled = value
        return
    if field == "severity":
        try:
            cfg.severity = parse_severity(value, where=f"{name}:")
        except InputError as exc:  # its message quotes the value: keep only what was expected
            raise fail(f"{name}: unknown severity; {str(exc).split('; ', 1)[-1]}") from None
        return
    if field not in defaults:
        allowed = ", ".join(["enabled", "severity", *defaults])
        raise fail(f"{name}: unknown field {shown_key(field)}; this rule takes: {allowed}")
    cfg.params[field] = _typed(name, field, defaults[field], value, fail)


def _typed(name: str, field: str, default: Any, value: Any, fail: Any) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise fail(f"{name}: expected true or false, got {type_name(value)}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise fail(f"{name}: expected a whole number >= 0, got {_number_or_type(value)}")
        return value
    if isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail(f"{name}: expected a list of strings, got {type_name(value)}")
        if field in KIND_PARAMS:
            valid = {k.value for k in NodeKind}
            bad = [v for v in value if v not in valid]
            if bad:
                raise fail(f"{name}: unknown kind(s) {shown_keys(bad)}; expected some of: {', '.join(sorted(valid))}")
        return list(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise fail(f"{name}: expected a string, got {type_name(value)}")
        return value
    raise fail(f"{name}: cannot be set from a rules file")


def _number_or_type(value: Any) -> str:
    """What was given instead, never the value itself."""
    return "a negative number" if isinstance(value, int) and not isinstance(value, bool) else type_name(value)


def config_to_dict(config: dict[str, RuleConfig]) -> dict[str, Any]:
    """The effective settings, as the rules file would write them (for `--format json`)."""
    return {rid: {"enabled": c.enabled, "severity": c.severity.value, **c.params} for rid, c in config.items()}
