"""AWS: IAM users, access keys and roles; STS; Secrets Manager; IoT Core certificates and CAs.

Configuration (`revoke.yaml`)::

    - type: aws
      region: us-east-1                    # default us-east-1
      profile: incident-response           # or boto3's default credential chain
      endpoint_url: http://127.0.0.1:5000  # a lab instead of AWS
      access_key_id_env: AWS_ACCESS_KEY_ID # names of environment variables, never values
      secret_access_key_env: AWS_SECRET_ACCESS_KEY
      accounts: [{profile: prod}, {profile: staging, region: eu-west-1}]  # each inherits the above
      max_workers: 16                      # concurrent calls per account
      max_attempts: 5
      iot_ca_ids: [...]                    # CA ids to look at when ListCACertificates is unavailable
      probe_sts: false                     # true: also call STS with the key id (CloudTrail logs it)

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
  identity policies, permissions boundaries and trust policies (`policy.py`; conditions are kept
  in attrs, not decided; attrs basis says why). A trust naming a principal nobody collected
  still gets its edge (attrs uncollected=true).
- `aws:iot_ca:<CA id>` (ca) and `aws:iot_certificate:<certificate id>` (certificate), with
  `issued` CA -> certificate (attrs signature verified | mismatch | unchecked; basis=signature
  when only the signature links them), and `derives {alias: true}` from the x509 connector's id
  of the same certificate (`x509:cert:` / `x509:ca:<sha256 of DER>`) to the IoT node.
- `aws:iot_thing:<name>` (workload) and `aws:iot_policy:<name>` (policy), with
  `authenticates_as` certificate -> thing / policy.

Findings: `aws.empty` (no users or roles: credentials), `aws.secret.unreadable`,
`aws.iam.policy_unavailable` (an attached policy's document was not returned),
`aws.iam.trust_any`, `aws.iot.list_ca_unavailable` (CAs found another way),
`aws.iot.signature_mismatch`.

Inside the package: `client` (the only SDK use: sessions, clients, the error wrapper),
`collect` (API calls) -> `transform` (pure), `policy` + `policy_match` (IAM evaluation),
`iot` (IoT transform and certificate material), `actions` / `iot_actions` / `store` (what the
actions do, over a client), and `connector` (the class and its action table).
"""

from connectors.aws.client import wrap_error
from connectors.aws.connector import AwsConnector

__all__ = ["AwsConnector", "wrap_error"]
