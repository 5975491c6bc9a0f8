"""SCRAM-SHA-256 verifiers (RFC 5802 / RFC 7677), computed here so `ALTER ROLE ... PASSWORD` sends a
verifier and never the password: statement logs, `pg_stat_statements` and a server-side
`log_statement = 'ddl'` see only what `pg_authid` would hold anyway.

libpq's `PQencryptPasswordConn` computes the same verifier but draws its own salt; revoke needs
to choose the salt: it starts with `MARK` and the password's tag (see `ids.password_tag`), so a
probe reading `pg_authid` can tell which password is current without ever holding one. The rest
of the salt is random, so the same password never yields the same verifier twice. Only hashes of
the password sit in the salt (the revoke store keeps the password's SHA-256 fingerprint anyway);
generated passwords carry 144 bits, beyond any guessing from a hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

ITERATIONS = 4096  # the server's default `scram_iterations`
MARK = b"revoke1:"
PREFIX = "SCRAM-SHA-256$"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def verifier(password: str, tag: str, *, iterations: int = ITERATIONS) -> str:
    """`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` for `password`. Generated passwords
    are ASCII without control characters, so SASLprep leaves them as they are."""
    salt = MARK + bytes.fromhex(tag) + secrets.token_bytes(8)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return f"{PREFIX}{iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


@dataclass(frozen=True)
class Verifier:
    """What a stored `rolpassword` says, without the value: its method and, for a verifier revoke
    wrote, the tag of the password it was made from."""

    method: str  # "scram-sha-256", "md5", "none" or "unknown"
    tag: str = ""


def read(rolpassword: str | None) -> Verifier:
    if not rolpassword:
        return Verifier("none")
    if rolpassword.startswith("md5") and len(rolpassword) == 35:
        return Verifier("md5")
    if not rolpassword.startswith(PREFIX):
        return Verifier("unknown")
    try:
        salt_b64 = rolpassword[len(PREFIX):].split(":", 1)[1].split("$", 1)[0]
        salt = base64.b64decode(salt_b64, validate=True)
    except (IndexError, ValueError):
        return Verifier("unknown")
    if salt.startswith(MARK) and len(salt) >= len(MARK) + 8:
        return Verifier("scram-sha-256", salt[len(MARK):len(MARK) + 8].hex())
    return Verifier("scram-sha-256")
