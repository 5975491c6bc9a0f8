"""`revoke.yaml`: which connectors to run and how. Credentials only by reference (env vars)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from revoke.connector import connector_class, holds_escrow, known_connectors
from revoke.errors import InputError
from revoke.input_rules import field_path, shown_key, shown_keys
from revoke.secret_shapes import ENV_NAME_RE, REFERENCE_FIELD_RE, credential_shape, is_secret_field
from revoke.yamlio import item_line, key_line, line_for, line_of, load_file

# keys whose values are paths, resolved against the config file's directory
PATH_KEYS = ("path", "paths", "audit_log", "ca_cert")
# mappings whose keys are file names, not settings (a `./secrets/` folder is not a secret)
PATH_KEYED = ("holders",)
BY_REFERENCE = "credentials are taken by reference only (e.g. token_env: VAULT_TOKEN)"


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


def _resolve_paths(options: dict[str, Any], base: Path, *, follow: bool = True) -> None:
    for key in PATH_KEYS:
        value = options.get(key)
        if isinstance(value, str) and not follow:
            # a trust store that is a link stays one: revoke may rewrite the store, never through a link
            options[key] = os.path.normpath(base / value) if not Path(value).is_absolute() else value
        elif isinstance(value, str):
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
            _resolve_paths(entry, base, follow=False)


def _inline_secret(value: Any, line: int | None, field: str) -> tuple[str, int | None, str] | None:
    """(field, line, why) of the first credential typed into the config, at any depth: a key named
    like one (`Token`, `vault_token`, `aws_secret_access_key`, `key_json`, any case), a value shaped
    like one (the patterns the connectors recognise, a URL with a password), or a `*_env` key given
    something other than a variable name. `why` never includes the value."""
    if isinstance(value, dict):
        line = line_of(value) or line
        for key, item in value.items():
            name, at = str(key), key_line(value, key) or line
            key_shape = credential_shape(name)
            if key_shape:
                return shown_key(key), at, f"a key that looks like {key_shape}; {BY_REFERENCE}"
            if key in PATH_KEYED and isinstance(item, dict):
                found = _inline_secret(list(item.values()), at, shown_key(key))
            elif REFERENCE_FIELD_RE.search(name):
                # AKIA... is a valid variable name too: a name shaped like a credential is one
                if item is not None and not (isinstance(item, str) and ENV_NAME_RE.match(item)
                                             and not credential_shape(item)):
                    return shown_key(key), at, "expects the name of an environment variable (e.g. VAULT_TOKEN), not a value"
                continue
            elif is_secret_field(name):
                return shown_key(key), at, BY_REFERENCE
            else:
                found = _inline_secret(item, at, shown_key(key))
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _inline_secret(item, item_line(value, index) or line, field)
            if found:
                return found
    elif isinstance(value, str):
        shape = credential_shape(value)
        if shape:
            return field, line, f"the value looks like {shape}; {BY_REFERENCE}"
    return None


def load_config(path: str | Path) -> Config:


    path = Path(path)
    src = str(path)
    data = load_file(path, what="config")
    # first, before any message could quote a value: no credential anywhere in the file
    found = _inline_secret(data, line_of(data), "(document)")
    if found:
        raise InputError(f"field {found[0]}: {found[2]}", source=src, line=found[1])
    if not isinstance(data, dict) or not isinstance(data.get("connectors"), list):
        raise InputError("expected a mapping with a `connectors:` list", source=src, line=line_of(data))
    unknown_top = [k for k in data if k not in ("connectors", "store", "journal", "escrow")]
    if unknown_top:
        raise InputError(f"unknown key(s) {shown_keys(unknown_top)}", source=src, line=line_of(data))
    from revoke.journal_key import section_key

    section_key(data.get("journal"), src, data)  # `journal: {signing_key: FILE}`, read by revoke/journal_key.py
    known = set(known_connectors())
    out: list[ConnectorConfig] = []
    names: set[str] = set()
    counts: dict[str, int] = {}
    for index, entry in enumerate(data["connectors"]):
        line = item_line(data["connectors"], index)
        if not isinstance(entry, dict) or "type" not in entry:
            raise InputError("each connector needs a `type`", source=src, line=line or line_of(data))
        ctype = entry["type"]
        if not isinstance(ctype, str) or ctype not in known:
            raise InputError(f"unknown connector type; known: {', '.join(sorted(known))}", source=src,
                             line=key_line(entry, "type") or line)
        counts[ctype] = counts.get(ctype, 0) + 1
        name = entry.get("name") or (ctype if counts[ctype] == 1 else f"{ctype}-{counts[ctype]}")
        if not isinstance(name, str):
            raise InputError("field 'name': expected text", source=src, line=key_line(entry, "name") or line)
        if name in names:
            raise InputError(f"duplicate connector name {shown_key(name)}", source=src, line=line)
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
    """The `escrow:` block, checked like a connector block (unknown keys, wrong types: exit 2 with
    file, line and field; an inline credential was refused with the whole file), and tied to a
    configured connector that can keep an escrow: it writes with that connector's credentials."""
    from pydantic import TypeAdapter, ValidationError

    line = line_of(block) or line
    try:
        model = TypeAdapter(_Escrow).validate_python(block)
    except ValidationError as exc:
        err = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        loc = tuple(p for p in err["loc"] if p not in ("vault", "aws"))
        field_name = field_path(loc) or "type"
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
        named = f"named {shown_key(model.connector)} " if model.connector else ""
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
        # a location may pass through a mapping keyed by file names: only plain names are shown
        field_name = field_path(loc) or "(connector)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        raise InputError(f"connector {ctype!r}: field {field_name}: {msg}", source=source,
                         line=line_for(entry, loc) or line) from None
