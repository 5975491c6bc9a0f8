"""The options of a `type: vault` block in `revoke.yaml`, checked before any connector runs.

    - type: vault
      url: https://vault.example:8200   # else $VAULT_ADDR
      token_env: VAULT_TOKEN            # the collector's token, by environment variable only
      namespace: team-a                 # Vault Enterprise / OpenBao namespace
      verify: true                      # false, or a CA bundle path; `ca_cert` wins when set
      ca_cert: ./vault-ca.pem
      timeout: 30                       # seconds per HTTP request
      read_attempts: 5                  # tries per read (429, 5xx, connection errors)
      parent_source: auto               # auto | raw | audit | none (see connectors.vault.snapshot)
      audit_log: /var/log/vault/audit.log
      audit_device: file                # the file audit device writing `audit_log`, when not unique
      observations: false               # read observed use (KV reads per token) from `audit_log`
      audit_tail_mb: 512                # observed use: read the log's last MiB only
      kv_page_size: 500                 # keys per LIST page on KV v2 metadata

A typo'd key, a wrongly typed value or one out of range (a zero or negative timeout, attempt
count or page size) is an input error (exit 2, file, line and field).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from revoke.connector import ConnectorOptions


class VaultOptions(ConnectorOptions):
    url: str | None = None
    token_env: str = "VAULT_TOKEN"
    namespace: str | None = None
    verify: bool | str = True
    ca_cert: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    read_attempts: int = Field(default=5, ge=1, le=100)
    parent_source: Literal["auto", "raw", "audit", "none"] = "auto"
    audit_log: str | None = None
    audit_device: str | None = None
    observations: bool = False
    audit_tail_mb: int = Field(default=512, ge=1)
    kv_page_size: int = Field(default=500, ge=1, le=100_000)
