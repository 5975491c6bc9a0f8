"""GitHub: repositories, deploy keys, Actions secrets and the workflows that read them, fine-grained
PATs granted to an org, and leaked tokens known by value; PyPI tokens found beside them
(`connectors/pypi.py`).

Graph (ids in `transform`): a repository `can_read` its secrets (push runs any workflow) and
`can_assume` its workflow jobs; a job `can_read` each secret it names; a third-party action the
job runs from a mutable ref (tag, branch) gives the action's repository `can_read` to every secret
of the job: whoever can move that ref runs code with them. Deploy keys `authenticates_as` (write)
or `can_read` (read-only) their repository; a PAT grant `authenticates_as` (write) or `can_read`
each repository it reaches. An Actions secret is a store: what it holds comes from an inventory
edge (its value can never be read back), and a rotation writes the replacement into it.

Modules: `client` (the only githubkit / PyNaCl import, loaded when the connector is built),
`collect` (get), `workflows` and `transform` (pure), `actions` (actions, rotation, probes),
`connector` (options, the action table, the class).
"""

from connectors.github.connector import GithubConnector, GithubOptions

__all__ = ["GithubConnector", "GithubOptions"]
