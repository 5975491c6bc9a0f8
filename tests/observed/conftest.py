"""Observed use against real parts: an OpenBao dev server whose file audit device logs accessors
in plain (`hmac_accessor = "false"`), moto in server mode, and the CloudTrail double."""

from __future__ import annotations

import sys
from pathlib import Path

# the Vault tests' helpers (require_bao) live beside them
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vault"))
