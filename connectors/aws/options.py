"""The options of a `type: aws` block in revoke.yaml, validated before any connector runs.

Unknown keys are errors (`endpont_url:` must not send calls to the real cloud instead of the
lab). Credentials are named by environment variable only, never given as values.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from revoke.connector import ConnectorOptions

# bounds of counts a block may set: a thread per worker, an attempt per retry
MAX_WORKERS = 1024
MAX_ATTEMPTS = 100


class AccountOptions(ConnectorOptions):
    """Where one account is and how to sign in to it. An `accounts:` entry overrides the
    top-level values it sets and inherits the others."""

    region: str | None = None  # default us-east-1
    profile: str | None = None  # else boto3's default credential chain
    endpoint_url: str | None = None  # a lab or emulator instead of AWS
    access_key_id_env: str | None = None  # names of environment variables, never values
    secret_access_key_env: str | None = None
    session_token_env: str | None = None
    retry_mode: Literal["legacy", "standard", "adaptive"] | None = None  # default standard
    # a role to assume with the credentials above (one per account, as c7n-org does); its
    # sessions are refreshed before they expire
    role_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role/.+$")


class AwsOptions(AccountOptions):
    accounts: list[AccountOptions] | None = None  # several accounts; none: the top level is the one
    # concurrent calls per account (below 4 counts as 4); zero, negative or absurd is a config error
    max_workers: int = Field(default=16, ge=1, le=MAX_WORKERS)
    max_attempts: int = Field(default=5, ge=1, le=MAX_ATTEMPTS)  # botocore's attempts per call
    iot_ca_ids: list[str] = []  # CA ids to describe where ListCACertificates is unavailable
    # corroborate key probes by calling STS with the key id itself: off by default, since that call
    # appears in CloudTrail as a failed authentication (and as last_used on some endpoints)
    probe_sts: bool = False
    # read the SCPs on the path from the root to each account (with the first account's
    # credentials: the management account or a delegated administrator)
    organizations: bool = False

    def account_settings(self) -> list[AccountOptions]:
        """One merged settings object per account: an entry's own values over the top level's."""
        shared = {k: v for k in AccountOptions.model_fields if (v := getattr(self, k))}
        entries = self.accounts or [AccountOptions()]
        return [AccountOptions(**{**shared, **e.model_dump(exclude_unset=True)}) for e in entries]
