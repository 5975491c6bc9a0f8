"""Recognise credentials inside a secret value, and rewrite a value with a replacement.

Used by every connector that reads stores (Vault KV, AWS Secrets Manager, files): the
value is looked at here, and only ids and fingerprints come out. Node ids are the owning
connector's ids, so a Vault secret holding an AWS key links to `aws:access_key:<id>`
whether or not the AWS connector ran first.

Credentials recognised only by value (a Vault token, whose node id is its accessor) are
returned with `ref = "fp:<sha256>"`; the graph resolves such references to the node
carrying that fingerprint.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from revoke.model import NodeKind, Relation, fingerprint

# the one set of credential shapes, shared with the core's config check (revoke/secret_shapes.py)
from revoke.secret_shapes import (
    API_KEY_FIELD_RE,
    AWS_KEY_ID_RE,
    AWS_SECRET_RE,
    PASSWORD_FIELD_RE,
    PEM_RE,
    VAULT_TOKEN_RE,
)


@dataclass
class Found:
    """One credential found in a value. `ref` is a node id or an `fp:` fingerprint reference."""

    kind: NodeKind
    ref: str
    fields: list[str] = field(default_factory=list)  # where in the value it sits ("" = whole value)
    fingerprint: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def rel(self) -> Relation:
        """How the value's holder relates to it: a certificate without its key is public material."""
        return Relation.HOLDS_PUBLIC if self.kind in (NodeKind.CERTIFICATE, NodeKind.CA) else Relation.STORES


def _as_mapping(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except ValueError:
                return None
            return parsed if isinstance(parsed, dict) else None
    return None


def _env_lines(text: str) -> dict[str, str]:
    """`KEY=value` lines (an .env file or a CI environment dump)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[7:]
        if "=" in line and not line.startswith("#"):
            key, _, val = line.partition("=")
            out[key.strip()] = val.strip().strip("'\"")
    return out


def pem_objects(text: str) -> list[tuple[str, str]]:
    """(label, pem block) for each PEM block in text."""
    return [(m.group(1), m.group(0)) for m in PEM_RE.finditer(text)]


def pem_ref(label: str, block: str) -> Found | None:
    """Node reference for a PEM certificate or private key, by the x509 connector's ids."""
    from cryptography.hazmat.primitives import serialization

    from connectors import pki

    try:
        if label == "CERTIFICATE":
            cert = pki.load_pem(block)
            kind = NodeKind.CA if pki.is_ca(cert) else NodeKind.CERTIFICATE
            return Found(kind, pki.cert_node_id(cert), fingerprint="sha256:" + pki.cert_sha256(cert))
        if label.endswith("PRIVATE KEY") and "ENCRYPTED" not in label:
            key = serialization.load_pem_private_key(block.encode(), password=None)
            return Found(NodeKind.PRIVATE_KEY, pki.key_node_id(key.public_key()), fingerprint=fingerprint(block.strip()))
    except (ValueError, TypeError):
        return None
    return None


def recognize(value: Any) -> list[Found]:
    """Every credential recognisable in `value` (a str, bytes or JSON-like mapping)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    mapping = _as_mapping(value)
    if mapping is None and isinstance(value, str) and not _URI_RE.match(value.strip()):
        env = _env_lines(value)
        if env and not PEM_RE.search(value):
            mapping = env
    found: list[Found] = []
    if mapping is None:
        if isinstance(value, str):
            found.extend(_scan_scalar("", value))
        return found
    gcp = _gcp_key(mapping)
    if gcp is not None:
        gcp.fields = [""]
        return [gcp]
    strings = {str(k): v for k, v in _flatten(mapping).items() if isinstance(v, _SCALARS)}
    found.extend(_aws_pairs({k: v for k, v in strings.items() if isinstance(v, str)}))
    found.extend(postgres_logins(strings))
    taken = {f for item in found for f in item.fields}
    for key, val in strings.items():
        if key in taken or not isinstance(val, str):
            continue
        nested = _as_mapping(val)
        if nested is not None and _gcp_key(nested) is not None:
            item = _gcp_key(nested)
            assert item is not None
            item.fields = [key]
            found.append(item)
            continue
        scalar = _scan_scalar(key, val)
        if scalar:
            found.extend(scalar)
            continue
        leaf = key.rsplit(".", 1)[-1]
        if PASSWORD_FIELD_RE.search(leaf) and val:
            found.append(Found(NodeKind.PASSWORD, "", [key], fingerprint(val)))
        elif API_KEY_FIELD_RE.search(leaf) and val:
            found.append(Found(NodeKind.API_KEY, "", [key], fingerprint(val)))
    return found


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, val in mapping.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(val, dict):
            out.update(_flatten(val, path))
        else:
            out[path] = val
    return out


def _scan_scalar(key: str, val: str) -> list[Found]:
    out: list[Found] = []
    login = postgres_uri(key, val)
    if login is not None:
        return [login]
    if VAULT_TOKEN_RE.match(val.strip()):
        fp = fingerprint(val.strip())
        out.append(Found(NodeKind.TOKEN, "fp:" + fp, [key], fp))
        return out
    prefixed = _prefixed_token(val.strip())
    if prefixed is not None:
        prefixed.fields = [key]
        return [prefixed]
    for label, block in pem_objects(val):
        item = pem_ref(label, block)
        if item is not None:
            item.fields = [key]
            out.append(item)
    match = AWS_KEY_ID_RE.search(val)
    if match and not out:
        out.append(Found(NodeKind.ACCESS_KEY, f"aws:access_key:{match.group(1)}", [key]))
    return out


# -- GitHub and PyPI tokens: the prefix says what they are ---------------------------------------------
# ghp_ (classic PAT), github_pat_ (fine-grained PAT), gho_ (OAuth), ghu_ (App user-to-server),
# ghs_ (App installation), ghr_ (refresh); pypi- (a PyPI API token, a macaroon)
GITHUB_TOKEN_RE = re.compile(r"^(?:gh[pousr]_[A-Za-z0-9_]{20,}|github_pat_[A-Za-z0-9_]{20,})$")
PYPI_TOKEN_RE = re.compile(r"^pypi-[A-Za-z0-9_-]{50,}$")


def _prefixed_token(val: str) -> Found | None:
    """A whole value that is a GitHub or PyPI token, by the ids their connectors give them
    (`github:token:<sha256>`, `pypi:api_token:<sha256>`)."""
    if GITHUB_TOKEN_RE.match(val):
        fp = fingerprint(val)
        return Found(NodeKind.TOKEN, f"github:token:{fp.removeprefix('sha256:')}", fingerprint=fp,
                     attrs={"token_prefix": val[:4]})
    if PYPI_TOKEN_RE.match(val):
        from connectors import pypi

        fp = fingerprint(val)
        # its caveats, read offline: the store's connector adds the `can_publish` edges (`pypi.links`)
        try:
            nodes, _, _ = pypi.token_graph(val)
        except ImportError:  # pypitoken comes with the `github` extra: without it, the token alone
            nodes = []
        attrs = dict(nodes[0].attrs) if nodes else {}
        return Found(NodeKind.TOKEN, f"pypi:api_token:{fp.removeprefix('sha256:')}", fingerprint=fp, attrs=attrs)
    return None


def _aws_pairs(strings: dict[str, str]) -> list[Found]:
    out: list[Found] = []
    secrets = [k for k, v in strings.items() if AWS_SECRET_RE.match(v) and not AWS_KEY_ID_RE.fullmatch(v)]
    for key, val in strings.items():
        match = AWS_KEY_ID_RE.fullmatch(val.strip())
        if not match:
            continue
        partner = _closest(key, secrets)
        fields = [key] + ([partner] if partner else [])
        fp = fingerprint(strings[partner]) if partner else ""
        out.append(Found(NodeKind.ACCESS_KEY, f"aws:access_key:{match.group(1)}", fields, fp))
        if partner:
            secrets.remove(partner)
    return out


def _closest(key: str, candidates: list[str]) -> str | None:
    """The secret field most likely paired with an id field (same prefix, or the only one)."""
    if not candidates:
        return None
    prefix = key.rsplit(".", 1)[0] if "." in key else ""
    scoped = [c for c in candidates if (c.rsplit(".", 1)[0] if "." in c else "") == prefix]
    pool = scoped or candidates
    return max(pool, key=lambda c: len(_common_prefix(c.lower(), key.lower())))


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _gcp_key(mapping: dict[str, Any]) -> Found | None:
    if mapping.get("type") == "service_account" and mapping.get("private_key_id"):
        key_id = str(mapping["private_key_id"])
        return Found(
            NodeKind.SERVICE_ACCOUNT_KEY,
            f"gcp:service_account_key:{key_id}",
            fingerprint=fingerprint(json.dumps(mapping, sort_keys=True)),
            attrs={"client_email": str(mapping.get("client_email", ""))},
        )
    return None


# ---------------------------------------------------------------------------------------------
# Rewriting a stored value with a replacement, keeping its shape


def substitute(value: Any, old_ref: str, new_fields: dict[str, str], kind: NodeKind) -> Any:
    """Return `value` with the credential `old_ref` replaced by `new_fields` (canonical names,
    see `revoke.connector.Secret`). Other fields are kept. Raises `KeyError` when the old
    credential is not in the value (the caller decides whether that means "already done").
    """
    original = value
    mapping = _as_mapping(value)
    was_json_text = isinstance(value, str) and mapping is not None
    env = None
    if mapping is None and isinstance(value, str) and not _URI_RE.match(value.strip()):
        env = _env_lines(value)
    target = [f for f in recognize(value) if f.ref == old_ref or (old_ref.startswith("fp:") and f.fingerprint == old_ref[3:])]
    if not target:
        raise KeyError(old_ref)
    found = target[0]
    if kind is NodeKind.SERVICE_ACCOUNT_KEY and found.fields == [""]:
        key_json = new_fields["key_json"]
        return json.loads(key_json) if isinstance(original, dict) else key_json
    replacements = _field_values(found, new_fields, kind, mapping or env or {}, original)
    if mapping is not None:
        updated = _set_paths(mapping, replacements)
        return json.dumps(updated) if was_json_text else updated
    if env:
        text = original
        for key, new in replacements.items():
            text = re.sub(rf"^(\s*(?:export\s+)?{re.escape(key)}\s*=\s*)(['\"]?).*?\2[ \t]*$",
                          functools.partial(_env_assignment, new=new), text, flags=re.M)
        return text
    # a bare scalar: the whole value is the credential
    return next(iter(replacements.values()))


def _env_assignment(m: re.Match[str], *, new: str) -> str:
    """`KEY=old` (quoted or not, `export` or not) with `new` in place of `old`, quotes kept."""
    return f"{m.group(1)}{m.group(2)}{new}{m.group(2)}"


def _field_values(found: Found, new: dict[str, str], kind: NodeKind, mapping: dict[str, Any],
                  original: Any = None) -> dict[str, str]:
    out: dict[str, str] = {}
    if kind is NodeKind.PASSWORD and found.attrs.get(IN_URI):
        # the password inside a connection URI: the rest of the URI stays as it was
        key = found.fields[0]
        uri = _flatten(mapping).get(key) if key else original
        out[key] = _uri_with_password(str(uri), new["password"])
    elif kind is NodeKind.ACCESS_KEY:
        out[found.fields[0]] = new["access_key_id"]
        if len(found.fields) > 1:
            out[found.fields[1]] = new["secret_access_key"]
    elif kind is NodeKind.SERVICE_ACCOUNT_KEY:
        out[found.fields[0]] = new["key_json"]
    elif kind in (NodeKind.CERTIFICATE, NodeKind.CA):
        out[found.fields[0]] = new["certificate_pem"]
    elif kind is NodeKind.PRIVATE_KEY:
        out[found.fields[0]] = new["private_key_pem"]
    elif kind is NodeKind.TOKEN:
        out[found.fields[0]] = new["token"]
    elif kind is NodeKind.PASSWORD:
        out[found.fields[0]] = new["password"]
    elif kind is NodeKind.API_KEY:
        out[found.fields[0]] = new["api_key"]
    else:
        raise KeyError(kind.value)
    return out


def _set_paths(mapping: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    updated = json.loads(json.dumps(mapping))
    for path, new in values.items():
        if path == "":
            continue
        parts = path.split(".")
        cursor = updated
        for part in parts[:-1]:
            cursor = cursor[part]
        cursor[parts[-1]] = new
    return updated


# ---------------------------------------------------------------------------------------------
# Postgres logins (`connectors/postgres/logins.py` reads them): a role's password, linked to its
# role with no login attempt, under the Postgres connector's ids

_SCALARS = (str, int)
IN_URI = "in_uri"  # Found.attrs: the password sits inside a URI field, not alone
AUTHENTICATES_AS = "authenticates_as"  # Found.attrs: the principal the credential logs in as
_URI_RE = re.compile(r"^postgres(?:ql)?://", re.I)


def _as_found(login: Any) -> Found:
    from connectors.postgres.ids import password_id, role_id

    fp = fingerprint(login.password)
    return Found(NodeKind.PASSWORD, password_id(login.server, login.user, fp), [login.where], fp,
                 attrs={AUTHENTICATES_AS: role_id(login.server, login.user), **({IN_URI: True} if login.in_uri else {})})


def postgres_uri(key: str, value: str) -> Found | None:
    from connectors.postgres.logins import from_uri

    login = from_uri(key, value) if _URI_RE.match(value.strip()) else None
    return _as_found(login) if login is not None else None


def postgres_logins(strings: dict[str, Any]) -> list[Found]:
    from connectors.postgres.logins import from_fields

    return [_as_found(login) for login in from_fields(strings)]


def _uri_with_password(uri: str, password: str) -> str:
    from connectors.postgres.logins import with_password

    return with_password(uri, password)
