"""AWS: IAM users, access keys and roles; STS; Secrets Manager; IoT Core certificates and CAs.

Configuration (`revoke.yaml`)::

    - type: aws
      region: us-east-1                    # default us-east-1
      profile: incident-response           # or boto3's default credential chain
      endpoint_url: http://127.0.0.1:5000  # a lab instead of AWS
      access_key_id_env: AWS_ACCESS_KEY_ID # names of environment variables, never values
      secret_access_key_env: AWS_SECRET_ACCESS_KEY
      accounts: [{profile: prod}, {profile: staging, region: eu-west-1}]  # each inherits the above
      # or one collector role per account, assumed with the credentials above (c7n-org style):
      # accounts: [{role_arn: "arn:aws:iam::111122223333:role/revoke-collector"}, ...]
      max_workers: 16                      # concurrent calls per account
      max_attempts: 5
      iot_ca_ids: [...]                    # CA ids to look at when ListCACertificates is unavailable
      probe_sts: false                     # true: also call STS with the key id (CloudTrail logs it)
      organizations: false                 # true: SCPs cap each account's principals, RCPs its resources
      session_policies:                    # what a user's GetFederationToken sessions are minted with
        "arn:aws:iam::111122223333:user/broker": {policy: {Statement: [...]}, policy_arns: [...]}

Every key is declared in `options.AwsOptions`; an unknown one is an error with file and line.

Graph:
- `aws:account:<account id>` (user, attrs root=true): the account root.
- `aws:user:<user ARN>` (user, attrs groups) and `aws:role:<role ARN>` (role, attrs
  trusted_services when the trust policy admits services).
- `aws:access_key:<key id>` (access_key, owner the user, status active | inactive), with
  `authenticates_as` key -> user.
- `aws:secret:<secret ARN>` (secret; status `unreadable` when the value could not be read), with
  `stores` secret -> every credential recognised in its value (attrs fields): a provider's id
  (`aws:access_key:...`, `x509:cert:...`, `vault:token:...`) or, for a credential no provider
  manages, `aws:<kind>:<secret ARN>#<fields>` (password, api_key, ...; attrs unmanaged=true).
  Values are fingerprinted and dropped during collection: no node carries one.
- `can_mint` principal -> user (may create or reactivate the user's keys), `can_read`
  principal -> secret, `can_assume` principal or account root -> role: decided by evaluating the
  identity policies, permissions boundaries, trust policies (`policy.py`), secret resource
  policies and customer KMS key policies (`policy_resource.py`), with the conditions the
  collection can decide (`policy_conditions.py`; the others are kept in attrs; attrs basis says
  why). A trust naming a principal nobody collected still gets its edge (attrs uncollected=true).
- `aws:session_token:<user ARN>` and, when sts:GetFederationToken is allowed,
  `aws:federation_token:<user ARN>` (token, owner the user): the sessions a user can mint with
  its keys, which outlive a key rotation (`policy_sessions.py`); `can_mint` user -> token, and the
  token's own `can_read` (and, for GetSessionToken, `can_assume`) edges. `revoke` denies them by
  issue time in the user's inline policy, as `revoke_sessions` does for a role.
  attrs session_policy says whether the federation token's reach is intersected with declared
  session policies or is its user's whole reach (an upper bound).
- `aws:kms_grant:<key ARN>/<grant id>` (token, attrs key, grantee, operations): a grant on a
  secret's customer managed key, with `can_assume` grantee -> grant; a grantee with Decrypt also
  gets `can_read` on the key's secrets it may read (attrs kms_grant). `revoke` is RevokeGrant
  (irreversible), probed by ListGrants.
- `aws:iot_ca:<CA id>` (ca) and `aws:iot_certificate:<certificate id>` (certificate), with
  `issued` CA -> certificate (attrs signature verified | mismatch | unchecked; basis=signature
  when only the signature links them), and `derives {alias: true}` from the x509 connector's id
  of the same certificate (`x509:cert:` / `x509:ca:<sha256 of DER>`) to the IoT node.
- `aws:iot_thing:<name>` (workload) and `aws:iot_policy:<name>` (policy), with
  `authenticates_as` certificate -> thing / policy.

Findings: `aws.empty` (no users or roles: credentials), `aws.secret.unreadable`,
`aws.secret.policy_unreadable`, `aws.kms.policy_unreadable` (the read is kept as possible),
`aws.iam.policy_unavailable` (an attached policy's document was not returned),
`aws.iam.trust_any`, `aws.iot.list_ca_unavailable` (CAs found another way),
`aws.iot.signature_mismatch`, `aws.kms.grants_unreadable`, `aws.org.outside` (a configured
account the organization does not hold), `aws.org.rcp_unavailable`,
`aws.sts.session_policy_unavailable` (a declared managed session policy was not collected).

Inside the package: `client` (the only SDK use: sessions, clients, the error wrapper),
`collect` (API calls) -> `transform` + `access` (pure), `policy` + `policy_match` +
`policy_conditions` + `policy_resource` + `policy_org` + `policy_sessions` + `kms_grants` (IAM
evaluation),
`iot` (IoT transform and certificate material), `actions` / `iot_actions` / `kms_actions` /
`store` (what the actions do, over a client), and `connector` (the class and its action table).
"""

from connectors.aws.client import wrap_error
from connectors.aws.connector import AwsConnector

__all__ = ["AwsConnector", "wrap_error"]
