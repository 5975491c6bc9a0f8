"""Kubernetes: service-account tokens, Secrets, RBAC and client certificates, over the official
`kubernetes` client.

Graph (every id carries the cluster's identity, the `kube-system` namespace uid `<cid>`, so two
clusters never collide):
- `kubernetes:service_account:<cid>/<ns>/<name>` (service_account), `attrs.uid`; one named by a
  binding or pod outside the collected namespaces carries `attrs.not_collected`.
- `kubernetes:secret:<cid>/<ns>/<name>` (secret: a store). Values are never kept: each key's
  fingerprint (`attrs.key_fingerprints`) and `stores` edges to what `connectors.recognize` finds
  in them, in the owning connector's ids (`aws:access_key:AKIA...`), or to
  `kubernetes:password:<cid>/<ns>/<name>#<key>` for values no connector manages.
- `kubernetes:token_secret:<cid>/<ns>/<name>` (token): a legacy `kubernetes.io/service-account-token`
  Secret; `authenticates_as` its account; `revoked` when the account (or its uid) is gone.
- `kubernetes:pod:<cid>/<ns>/<name>` (workload) `stores` its projected token
  `kubernetes:pod_token:<cid>/<ns>/<name>` (token, `authenticates_as` the pod's account) and every
  Secret it mounts, projects, reads into env or pulls images with.
- `kubernetes:user:<cid>/<name>` (user) and `kubernetes:group:<cid>/<name>` (role) from bindings
  and certificates; a service account `can_assume` each group it is in that grants anything.
- RBAC, evaluated (`rbac.py`): subject `can_read` a Secret or token Secret (get/list/watch
  secrets), `can_mint` an account (create serviceaccounts/token), `can_assume` an account, user or
  group (impersonate), and `can_assume` every account of a namespace where it can create pods or
  workload controllers. Edges keep the bindings that made them (`attrs.bindings`).
  `system:masters` reaches everything: it is admitted before RBAC.
- `kubernetes:client_cert:<cid>/<sha256>` (certificate) from approved client CSRs:
  `authenticates_as` its user (CN) and groups (O); `kubernetes:ca:<cid>` (ca, from
  `kube-root-ca.crt`) `issued` it; `revoked` once the CA it chains to is no longer the cluster's;
  `attrs.bypasses_authorization` for `system:masters`.

Modules: `options`, `client` (the only SDK import, lazy; errors with `code` = HTTP status),
`collect` (get; Secret values fingerprinted and dropped there), `transform` and `rbac` (pure),
`actions` (actions, store writes, probes), `connector` (the class and its action table).
"""

from connectors.kubernetes.connector import KubernetesConnector
from connectors.kubernetes.options import KubernetesOptions

__all__ = ["KubernetesConnector", "KubernetesOptions"]
