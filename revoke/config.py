"""`revoke.yaml`: which connectors to run and how. Credentials only by reference (env vars)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from revoke.connector import connector_class, holds_escrow, known_connectors
from revoke.errors import InputError
from revoke.yamlio import item_line, key_line, line_for, line_of, load_file

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


@dataclass(frozen=True)
class EscrowConfig:
    """Where new material goes when no store revoke can write may receive it: `location` is a
    Vault KV v2 path (`secret/revoke-escrow`) or a Secrets Manager name prefix
    (`revoke/escrow/`), kept by the configured connector `connector`."""

    type: str
    location: str
    connector: str
    line: int | None = None

    def where(self, item: str) -> str:
        """The full name of one item, as manual tasks and the report show it (never a value)."""
        if self.type == "aws":
            return f"aws:secretsmanager:{self.location}{item}"
        return f"{self.type}:{self.location.rstrip('/')}/{item}"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "location": self.location, "connector": self.connector}


@dataclass
class Config:
    source: str
    connectors: list[ConnectorConfig]
    escrow: EscrowConfig | None = None


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
    unknown_top = set(data) - {"connectors", "store", "escrow"}
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
    escrow = _load_escrow(data["escrow"], out, src, key_line(data, "escrow")) if "escrow" in data else None
    return Config(src, out, escrow)


class _EscrowBlock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connector: str | None = None  # the connector block's name, when several of the type are configured


class _VaultEscrow(_EscrowBlock):
    type: Literal["vault"]
    path: str = Field(min_length=1)  # a KV v2 path: `<mount>/<path>`

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        v = v.strip("/")
        if not v or ".." in v.split("/"):
            raise ValueError("a KV v2 path such as secret/revoke-escrow")
        return v


class _AwsEscrow(_EscrowBlock):
    type: Literal["aws"]
    prefix: str = Field(min_length=1)  # a Secrets Manager name prefix

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        import re

        if not re.fullmatch(r"[A-Za-z0-9/_+=.@-]+", v):
            raise ValueError("a Secrets Manager name prefix (letters, digits and /_+=.@-), such as revoke/escrow/")
        return v


_Escrow = Annotated[_VaultEscrow | _AwsEscrow, Field(discriminator="type")]


def _load_escrow(block: Any, connectors: list[ConnectorConfig], source: str, line: int | None) -> EscrowConfig:
    """The `escrow:` block, checked like a connector block (unknown keys, wrong types, an inline
    credential: exit 2 with file, line and field), and tied to a configured connector that can
    keep an escrow."""
    from pydantic import TypeAdapter, ValidationError

    line = line_of(block) or line
    found = _forbidden(block, line)
    if found:
        raise InputError(f"escrow: field {found[0]!r}: credentials are taken by reference only, from the "
                         "connector the escrow names", source=source, line=found[1])
    try:
        model = TypeAdapter(_Escrow).validate_python(block)
    except ValidationError as exc:
        err = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        loc = tuple(p for p in err["loc"] if p not in ("vault", "aws"))
        field_name = ".".join(str(p) for p in loc) or "type"
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] in ("union_tag_invalid", "union_tag_not_found", "model_type"):
            msg = "expected a mapping with `type: vault` (and `path`) or `type: aws` (and `prefix`)"
        else:
            msg = err["msg"].removeprefix("Value error, ")
        raise InputError(f"escrow: field {field_name}: {msg}", source=source,
                         line=line_for(block, loc) or line) from None
    candidates = [c for c in connectors if c.type == model.type and (model.connector in (None, c.name))]
    if not candidates:
        named = f"named {model.connector!r} " if model.connector else ""
        raise InputError(f"escrow: field type: no `type: {model.type}` connector {named}is configured to keep it",
                         source=source, line=line_for(block, ("connector",) if model.connector else ("type",)) or line)
    if not holds_escrow(connector_class(model.type)):
        raise InputError(f"escrow: field type: the {model.type} connector cannot keep an escrow", source=source,
                         line=line)
    location = model.path if isinstance(model, _VaultEscrow) else model.prefix
    return EscrowConfig(model.type, location, candidates[0].name, line)


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
