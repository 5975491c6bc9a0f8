"""The journal key: an Ed25519 private key that signs the journal's head, so a rewrite of the
journal by someone with write access to the store (edit a record, recompute every hash) is caught.

Configured by reference, never inline: `--journal-key FILE` (global option), else `journal:
{signing_key: FILE}` in revoke.yaml (relative to that file). A passphrase-protected key takes its
passphrase from $REVOKE_SIGNING_KEY_PASSPHRASE, as `report --sign` does.

With a key, every `declared`, `verify`, `attest` and `finalize` record carries `head_signature`:
{seq, hash, key, value}, where `hash` is the record's own hash computed without that field (so it
covers the record and, through `prev`, every record before it) and `value` is the Ed25519
signature of the canonical JSON {"type": "revoke-journal-head/1", "incident", "seq", "hash"}. A
truncation leaves a valid prefix, so it shows only against a copy of a later head kept elsewhere:
each such record is also logged as a `journal.head` event with its seq and stored hash (a SIEM
keeps them), and `revoke report --head SEQ:HASH` checks the journal still holds that head.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from revoke.errors import InputError

SIGNED_TYPES = ("declared", "verify", "attest", "finalize")
HEAD_TYPE = "revoke-journal-head/1"
FIELD = "head_signature"


@dataclass(frozen=True)
class JournalKey:
    private: Any
    fingerprint: str
    source: str

    def sign(self, incident: str, seq: int, hash_: str) -> str:
        return base64.b64encode(self.private.sign(head_message(incident, seq, hash_))).decode()

    def check(self, incident: str, seq: int, hash_: str, value: str) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            self.private.public_key().verify(base64.b64decode(value, validate=True),
                                             head_message(incident, seq, hash_))
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True


def head_message(incident: str, seq: int, hash_: str) -> bytes:
    return json.dumps({"type": HEAD_TYPE, "incident": incident, "seq": seq, "hash": hash_},
                      sort_keys=True, separators=(",", ":")).encode()


# -- configuration: set once per command by the CLI (revoke/cli.py); a library caller sets it too ----
_explicit: str | None = None
_config: str | None = None
_loaded: tuple[JournalKey | None] | None = None


def configure(explicit: str | None, config_path: str | None) -> None:
    """Where the key comes from for this command; it is loaded on first use (`active()`)."""
    global _explicit, _config, _loaded
    _explicit, _config, _loaded = explicit, config_path, None


def active() -> JournalKey | None:
    """The configured journal key, loaded once; None when none is configured. InputError (exit 2,
    naming the file) for an unreadable or non-Ed25519 key."""
    global _loaded
    if _loaded is None:
        path = _explicit or _from_config(_config)
        _loaded = (_load(path) if path else None,)
    return _loaded[0]


def _load(path: str) -> JournalKey:
    from revoke.evidence import key_fingerprint, load_private_key

    key = load_private_key(path)
    return JournalKey(key, key_fingerprint(key.public_key()), path)


def _from_config(config_path: str | None) -> str | None:
    if not config_path or not Path(config_path).is_file():
        return None
    from revoke.yamlio import load_file

    data = load_file(Path(config_path), what="config")
    return section_key(data.get("journal") if isinstance(data, dict) else None, config_path, data)


def section_key(section: Any, source: str, parent: Any = None) -> str | None:
    """Validate revoke.yaml's `journal:` section and return its key path (resolved against the
    config file's folder), or None without one."""
    from revoke.yamlio import line_of

    if section is None:
        return None
    line = line_of(section) or (line_of(parent) if parent is not None else None)
    if not isinstance(section, dict):
        raise InputError("field journal: expected a mapping such as {signing_key: journal-key.pem}", source=source,
                         line=line)
    unknown = set(section) - {"signing_key"}
    if unknown:
        raise InputError(f"field journal: unknown key(s) {sorted(map(str, unknown))}; expected signing_key",
                         source=source, line=line)
    value = section.get("signing_key")
    if not isinstance(value, str) or not value.strip():
        raise InputError("field journal.signing_key: expected the path of an Ed25519 private key (PEM)",
                         source=source, line=line)
    path = Path(value)
    return str(path if path.is_absolute() else (Path(source).resolve().parent / path))
