"""The options of a `type: aws` block in revoke.yaml, validated before any connector runs.

Unknown keys are errors (`endpont_url:` must not send calls to the real cloud instead of the
lab). Credentials are named by environment variable only, never given as values.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

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


class SessionPolicyOptions(ConnectorOptions):
    """What a user's GetFederationToken sessions are minted with (its broker's `Policy` and
    `PolicyArns`), when known: such a session reaches only what its user's policies and these
    allow (`policy_sessions`)."""

    policy: dict[str, Any] | None = None  # the inline session policy document
    policy_arns: list[str] = []  # managed policies passed as session policies

    @field_validator("policy")
    @classmethod
    def _statements(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            stmts = value.get("Statement")
            items = stmts if isinstance(stmts, list) else [stmts]
            if not stmts or not all(isinstance(s, dict) and s.get("Effect") in ("Allow", "Deny") for s in items):
                raise ValueError("a policy document needs Statement entries with Effect Allow or Deny")
        return value


class AwsOptions(AccountOptions):
    accounts: list[AccountOptions] | None = None  # several accounts; none: the top level is the one
    # concurrent calls per account (below 4 counts as 4); zero, negative or absurd is a config error
    max_workers: int = Field(default=16, ge=1, le=MAX_WORKERS)
    max_attempts: int = Field(default=5, ge=1, le=MAX_ATTEMPTS)  # botocore's attempts per call
    iot_ca_ids: list[str] = []  # CA ids to describe where ListCACertificates is unavailable
    # corroborate key probes by calling STS with the key id itself: off by default, since that call
    # appears in CloudTrail as a failed authentication (and as last_used on some endpoints)
    probe_sts: bool = False
    # read the organization, and the SCPs and RCPs on the path from the root to each account (with
    # the first account's credentials: the management account or a delegated administrator)
    organizations: bool = False
    # user ARN -> the session policies its federation sessions are minted with, when known
    session_policies: dict[Annotated[str, StringConstraints(pattern=r"^arn:aws[a-zA-Z-]*:iam::\d{12}:user/.+$")],
                           SessionPolicyOptions] = {}
    # observed use (connectors.aws.usage): keys' last use as `observed_use` edges; with
    # cloudtrail_days > 0 also the CloudTrail event history (LookupEvents, at most 90 days back, 2
    # requests/s per account and region) of each key last used within that many days
    observations: bool = False
    cloudtrail_days: int = Field(default=0, ge=0, le=90)
    cloudtrail_max_keys: int = Field(default=50, ge=1)  # keys looked up per account (a finding names the rest)
    cloudtrail_endpoint_url: str | None = None  # a lab double; default: the account's endpoint

    def account_settings(self) -> list[AccountOptions]:
        """One merged settings object per account: an entry's own values over the top level's."""
        shared = {k: v for k in AccountOptions.model_fields if (v := getattr(self, k))}
        entries = self.accounts or [AccountOptions()]
        return [AccountOptions(**{**shared, **e.model_dump(exclude_unset=True)}) for e in entries]
