"""What credentials look like: the one set of value shapes and field names.

The connectors' recogniser (`connectors/recognize.py`) imports these to find credentials inside
the secrets it reads; the config check (`revoke/config.py`) uses them to refuse a credential typed
into `revoke.yaml`, and the loaders to avoid quoting one in an error line. The core may not import
`connectors/`, so the patterns live here and the connectors import them.
"""

from __future__ import annotations

import re

AWS_KEY_ID_RE = re.compile(r"\b((?:AKIA|ASIA)[A-Z0-9]{16})\b")
AWS_SECRET_RE = re.compile(r"^[A-Za-z0-9/+=]{40}$")
VAULT_TOKEN_RE = re.compile(r"^(?:s|hvs|b|hvb)\.[A-Za-z0-9_-]{20,}$")
PEM_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----")
PASSWORD_FIELD_RE = re.compile(r"(^|_|-)(pass|passwd|password|pwd|db_password)$", re.I)
API_KEY_FIELD_RE = re.compile(r"(^|_|-)(api_?key|apikey)$", re.I)

# Token formats whose prefix says what they are (the providers document them for secret scanning).
_PREFIXED = (
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("a Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a PyPI token", re.compile(r"\bpypi-[A-Za-z0-9_-]{50,}")),
    ("a Stripe key", re.compile(r"\b[rs]k_live_[A-Za-z0-9]{20,}")),
    ("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
)
# scheme://user:password@host: a URL that carries its own password
URL_PASSWORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*:[^/?#@\s]+@")
# a GCP service-account key file pasted as text
GCP_KEY_TEXT_RE = re.compile(r'"(?:private_key|private_key_id)"\s*:|"type"\s*:\s*"service_account"')

# Field names that hold a credential's value. Keys ending in `_env` name an environment variable
# instead (`token_env: VAULT_TOKEN`): those are references, never values.
SECRET_FIELD_RE = re.compile(r"token|secret|passw|pwd|private[-_ ]?key|credential|api[-_ ]?key|key[-_ ]?json|auth[-_ ]?key",
                             re.I)
REFERENCE_FIELD_RE = re.compile(r"[-_]env$", re.I)
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def credential_shape(value: str) -> str | None:
    """What credential `value` looks like ("a Vault token", "a URL with a password", ...), or None.
    Never returns any part of the value itself."""
    text = value.strip()
    if VAULT_TOKEN_RE.match(text):
        return "a Vault token"
    if AWS_KEY_ID_RE.fullmatch(text):
        return "an AWS access key id"
    if _looks_like_aws_secret(text):
        return "an AWS secret access key"
    if "-----BEGIN " in text:
        return "a PEM block"
    if URL_PASSWORD_RE.search(text):
        return "a URL with a password"
    if GCP_KEY_TEXT_RE.search(text):
        return "a GCP service-account key"
    for label, pattern in _PREFIXED:
        if pattern.search(text):
            return label
    return None


def _looks_like_aws_secret(text: str) -> bool:
    """40 characters of base64 with mixed case and digits: a SHA-1 in hex (also 40) is not one."""
    if not AWS_SECRET_RE.match(text) or AWS_KEY_ID_RE.fullmatch(text):
        return False
    return any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text)


def is_secret_field(name: str) -> bool:
    """A field name that holds a credential's value (`Token`, `vault_token`, `key_json`,
    `aws_secret_access_key`); `*_env` fields name a variable and are not."""
    return bool(SECRET_FIELD_RE.search(name)) and not REFERENCE_FIELD_RE.search(name)
