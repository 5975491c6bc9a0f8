"""The Vault (and OpenBao) connector package; `VaultConnector` is its entry point.

Graph contract (ids in `ids`, edges in `transform` and `transform_material`):
- credentials: `vault:token:<accessor>` (kind token), `vault:secret_id:<mount>/<role>/<accessor>`
  and `vault:lease:<lease id>` (kind token), `vault:secret:<mount>/<path>` (secret, and a store),
  `vault:pki_cert:<mount>/<serial>` (certificate), `vault:pki_issuer:<mount>/<issuer id>` (ca),
  `vault:password:...#<field>` / `vault:api_key:...#<field>` found in KV values (no connector
  manages them: manual tasks);
- holders: `vault:policy:<name>`, `vault:approle:<mount>/<role>` (role);
- edges: authenticates_as (token/approle/secret_id -> policy/approle), parent_of (token -> token),
  stores (secret -> any provider's credential found in its value), can_read (token -> secret),
  can_mint (token -> approle, approle -> its login tokens), issued (issuer -> issuer/cert), and
  alias derives edges from the `x509:` ids of the same certificates; with `observations: true`,
  observed_read (token -> secret, from the audit log; never walked: see `audit`).

Modules: `client` (the only hvac import, error mapping), `options`, `ids`, `collect` (get),
`transform` (pure: tokens, policies, capabilities, AppRole, leases), `transform_material` (pure:
KV values, PKI), `snapshot` (the collect sequence), `audit` (observed use from the audit log), `acl` (policy evaluation fallback),
`tokens`, `auth` (AppRole, leases), `kv`, `pki` (actions and probes), `connector` (the class and
its action table).
"""

from connectors.vault.connector import VaultConnector

__all__ = ["VaultConnector"]
