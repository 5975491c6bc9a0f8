"""`revoke.yaml`: which connectors to run and how. Credentials only by reference (env vars)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from revoke.connector import connector_class, known_connectors
from revoke.errors import InputError
from revoke.yamlio import item_line, line_for, line_of, load_file

# keys whose values are paths, resolved against the config file's directory
PATH_KEYS = ("path", "paths", "audit_log", "ca_cert")
# inline secrets are refused: they would end up in shell history, backups and the store
FORBIDDEN_KEYS = ("token", "secret_key", "secret_access_key", "password", "private_key", "credentials",
                  "session_token", "secret_id", "client_secret", "api_key")


@dataclass
class ConnectorConfig:
    name: str
    type: str
    options: dict[str, Any] = field(default_factory=dict)
    line: int | None = None


@dataclass
class Config:
    source: str
    connectors: list[ConnectorConfig]


def _resolve_paths(options: dict[str, Any], base: Path) -> None:
    for key in PATH_KEYS:
        value = options.get(key)
        if isinstance(value, str):
            options[key] = str((base / value).resolve()) if not Path(value).is_absolute() else value
        elif isinstance(value, list):
            options[key] = [str((base / v).resolve()) if not Path(str(v)).is_absolute() else v for v in value]
    holders = options.get("holders")
    if isinstance(holders, dict):
        options["holders"] = {
            (str((base / k).resolve()) if not Path(k).is_absolute() else k): v for k, v in holders.items()
        }
    for entry in options.get("trust_paths") or []:  # x509 trust stores: [{path, holder}]
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            _resolve_paths(entry, base)


def _forbidden(value: Any, line: int | None) -> tuple[str, int | None] | None:
    """The first inline-credential key at any depth (an `accounts:` list of mappings included)."""
    if isinstance(value, dict):
        line = line_of(value) or line
        for key, item in value.items():
            if key in FORBIDDEN_KEYS:
                return str(key), line
            # `holders` maps paths to node ids: its keys are file names, not settings
            found = None if key == "holders" else _forbidden(item, line)
            if found:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _forbidden(item, line)
            if found:
                return found
    return None


def load_config(path: str | Path) -> Config:


    path = Path(path)
    src = str(path)
    data = load_file(path, what="config")
    if not isinstance(data, dict) or not isinstance(data.get("connectors"), list):
        raise InputError("expected a mapping with a `connectors:` list", source=src, line=line_of(data))
    unknown_top = set(data) - {"connectors", "store"}
    if unknown_top:
        raise InputError(f"unknown key(s) {sorted(unknown_top)}", source=src, line=line_of(data))
    known = set(known_connectors())
    out: list[ConnectorConfig] = []
    names: set[str] = set()
    counts: dict[str, int] = {}
    for index, entry in enumerate(data["connectors"]):
        line = item_line(data["connectors"], index)
        if not isinstance(entry, dict) or "type" not in entry:
            raise InputError("each connector needs a `type`", source=src, line=line or line_of(data))
        ctype = str(entry["type"])
        if ctype not in known:
            raise InputError(f"unknown connector type {ctype!r}; known: {', '.join(sorted(known))}", source=src, line=line)
        found = _forbidden(entry, line)
        if found:
            raise InputError(
                f"field {found[0]!r}: credentials are taken by reference only (e.g. token_env: VAULT_TOKEN)",
                source=src, line=found[1],
            )
        counts[ctype] = counts.get(ctype, 0) + 1
        name = str(entry.get("name") or (ctype if counts[ctype] == 1 else f"{ctype}-{counts[ctype]}"))
        if name in names:
            raise InputError(f"duplicate connector name {name!r}", source=src, line=line)
        names.add(name)
        out.append(ConnectorConfig(name, ctype, {k: v for k, v in entry.items() if k not in ("type", "name")}, line))
    # the options of each block, once the list itself is well formed
    for cfg, entry in zip(out, data["connectors"], strict=True):
        _validate_options(cfg.type, entry, cfg.options, src, cfg.line)
        _resolve_paths(cfg.options, path.parent.resolve())
    return Config(src, out)


def _validate_options(ctype: str, entry: dict[str, Any], options: dict[str, Any], source: str, line: int | None) -> None:
    """Check one connector block against the connector's declared options model, before anything
    runs: an unknown key (a typo in `endpoint_url`) or a wrong type is exit 2 with file and line."""
    from pydantic import ValidationError

    try:
        connector_class(ctype).options_model.model_validate(options)
    except ValidationError as exc:
        # a typo'd key explains the "missing" error that usually comes with it: name it first
        err = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        loc = tuple(err["loc"])
        field_name = ".".join(str(p) for p in loc) or "(connector)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        raise InputError(f"connector {ctype!r}: field {field_name}: {msg}", source=source,
                         line=line_for(entry, loc) or line) from None
