"""The lab: loopback servers and doubles for the demo, the tests and the benchmarks."""

import os

# Same reason as in connectors/gcp/__init__.py: the lab forks servers (Postgres, moto, OpenBao)
# while its GCP double serves gRPC, and gRPC's fork handlers can crash such a child.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
