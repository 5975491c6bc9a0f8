"""GCP: service accounts, their user-managed keys and who can act as them (IAM Admin and
Resource Manager over gRPC).

Graph:
- `gcp:service_account:<email>` (service_account), status `disabled` / `active`; an account
  named only as a policy member in a project that does not list it carries `attrs.external`.
- `gcp:service_account_key:<key id>` (service_account_key; the id is the key file's
  `private_key_id`), user-managed keys only; status `disabled` when the key or its account is
  disabled (a disabled account still lists its keys as enabled), `expired` once past
  `valid_before`. `authenticates_as` key -> its account.
- `gcp:user:<email or domain>` (user: users, groups, domains) and `gcp:workload:<member>`
  (workload: Kubernetes service accounts, workload-identity principals), from policy members.
- `can_assume` / `can_mint` member -> account, for the roles in `transform.ROLE_RELATIONS` only,
  bound on the account or on its project; one edge per (member, relation, account) keeps every
  role (`roles`), scope (`via`) and IAM condition (`conditions`, `conditional`).

Modules: `client` (the only SDK import, loaded when the connector is instantiated; errors with
`code` = gRPC status), `collect` (get), `transform` (pure: payloads -> graph), `actions`
(actions, rotation, probes), `connector` (options, the action table, the class).
"""

import os

# gRPC's fork handlers restart its poller threads in a forked child, which can crash the child
# before it execs (a Postgres started beside a GCP channel died of SIGSEGV that way); revoke
# forks only to exec, so the handlers have nothing to protect. Read once, at gRPC's first import.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

from connectors.gcp.connector import GcpConnector, GcpOptions

__all__ = ["GcpConnector", "GcpOptions"]
