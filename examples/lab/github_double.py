"""A stateful double of GitHub's REST API, served over HTTP on 127.0.0.1.

No GitHub can run here (Gitea and Forgejo speak a different API), so this serves the endpoints the
GitHub connector uses from in-memory state (`github_double_state.py`); the routes, each citing the
REST documentation section it follows and the githubkit model its body parses as, are in
`github_double_routes.py` and `github_double_actions_routes.py` (Actions secrets and variables).
What it does as GitHub does: tokens authenticate `GET /user` until `POST /credentials/revoke` kills
them (401 afterwards); an org's fine-grained PAT loses the org when the org revokes its grant; lists
paginate with `per_page`/`page` and a `Link` header; every response carries the `x-ratelimit-*`
headers; `secondary_limit(n)` makes the next n requests answer GitHub's 403 secondary rate limit
with `retry-after`.

    with GithubDouble() as gh:
        token = gh.add_token("octo-admin")
        gh.add_repo("acme", "gateway")
        config = {"type": "github", "orgs": ["acme"], "base_url": gh.url, "token_env": ...}
"""

from __future__ import annotations

import base64
import json
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from nacl.public import PublicKey, SealedBox

from examples.lab import github_double_actions_routes  # noqa: F401 - registers the Actions routes
from examples.lab.github_double_routes import ROUTES, Fail, Route
from examples.lab.github_double_state import (
    DeployKey,
    Org,
    PatGrant,
    Repo,
    SealKey,
    State,
    StoredSecret,
    Token,
    _ids,
    now_iso,
)
from examples.lab.loopback import LoopbackServer

__all__ = ["GithubDouble"]


class GithubDouble(LoopbackServer):
    """Seed with `add_org`, `add_repo`, `add_token`, `add_secret`, `add_deploy_key`, `add_workflow`,
    `add_grant`; inspect with `secret_value` (opens the sealed box), `token_live`, `responses`."""

    def __init__(self) -> None:
        self.state = State()
        self.responses: list[tuple[Route, int, Any]] = []  # every body sent, for model validation

    def handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(_Handler):
            owner = double

        return Handler

    # -- seeding -----------------------------------------------------------------------------------

    def add_token(self, login: str, value: str | None = None, *, kind: str = "classic") -> str:
        import secrets as _secrets

        prefix = {"classic": "ghp_", "fine_grained": "github_pat_", "oauth": "gho_", "installation": "ghs_"}[kind]
        token = value or prefix + _secrets.token_urlsafe(30).replace("-", "a").replace("_", "b")[:36]
        with self.state.lock:
            self.state.tokens[token] = Token(login, kind=kind)
        return token

    def add_installation_token(self, org: str) -> str:
        """An App installation token (`ghs_`) with access to `org`'s repositories."""
        token = self.add_token(f"{org}[bot]", kind="installation")
        with self.state.lock:
            self.state.tokens[token].org = org
        return token

    def add_org(self, login: str) -> Org:
        with self.state.lock:
            return self.state.orgs.setdefault(login, Org(login))

    def add_repo(self, owner: str, name: str, *, private: bool = True) -> Repo:
        with self.state.lock:
            self.add_org(owner)
            return self.state.repos.setdefault(f"{owner}/{name}", Repo(owner, name, private=private))

    def add_secret(self, scope: str, name: str, value: str, *, env: str = "", visibility: str = "private",
                   selected: list[str] | None = None, updated_at: str | None = None) -> None:
        """`scope` is `owner/repo` (repo or, with `env`, environment secret) or an org login."""
        with self.state.lock:
            store, seal = self._store(scope, env)
            stamp = updated_at or now_iso()
            box = base64.b64encode(SealedBox(PublicKey(bytes(seal.private.public_key))).encrypt(value.encode()))
            store[name] = StoredSecret(name, stamp, stamp, box.decode(), seal.key_id, visibility,
                                       list(selected or []))

    def add_deploy_key(self, full_name: str, public_key: str, *, title: str = "deploy",
                       read_only: bool = True) -> int:
        with self.state.lock:
            repo = self.state.repos[full_name]
            key = DeployKey(next(_ids), " ".join(public_key.split()[:2]), title, read_only, now_iso())
            repo.deploy_keys[key.id] = key
            return key.id

    def add_workflow(self, full_name: str, filename: str, text: str) -> None:
        with self.state.lock:
            self.state.repos[full_name].files[f".github/workflows/{filename}"] = text

    def add_environment(self, full_name: str, env: str) -> None:
        with self.state.lock:
            self.state.repos[full_name].environments.setdefault(env, {})

    def add_grant(self, org: str, owner: str, repositories: list[str], permissions: dict[str, dict[str, str]],
                  *, token_name: str = "ci", expires_at: str | None = None) -> tuple[int, str]:
        """A fine-grained PAT with access to `org`: returns (grant id, token value)."""
        token = self.add_token(owner, kind="fine_grained")
        with self.state.lock:
            grant = PatGrant(next(_ids), next(_ids), token_name, owner, list(repositories), permissions,
                             expires_at, token=token)
            self.add_org(org).grants[grant.id] = grant
            return grant.id, token

    def add_installation(self, org: str, app_slug: str, permissions: dict[str, str], *,
                         repository_selection: str = "all") -> int:
        with self.state.lock:
            inst: dict[str, Any] = {"id": next(_ids), "app_id": next(_ids), "app_slug": app_slug,
                                    "permissions": dict(permissions), "repository_selection": repository_selection}
            self.add_org(org).installations.append(inst)
            return int(inst["id"])

    def add_app(self, org: str, app_slug: str, permissions: dict[str, str]) -> tuple[int, int, str]:
        """A GitHub App installed on `org`: (app id, installation id, the App's private key as PEM).
        The double keeps the public half only, to check the App's JWTs."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        installation = self.add_installation(org, app_slug, permissions)
        with self.state.lock:
            inst = next(i for i in self.state.orgs[org].installations if i["id"] == installation)
            self.state.apps[int(inst["app_id"])] = public
            return int(inst["app_id"]), installation, private

    def secondary_limit(self, requests: int) -> None:
        with self.state.lock:
            self.state.secondary_limited = requests

    # -- inspection -----------------------------------------------------------------------------------

    def _store(self, scope: str, env: str = "") -> tuple[dict[str, StoredSecret], SealKey]:
        if "/" in scope:
            repo = self.state.repos[scope]
            if env:
                repo.environments.setdefault(env, {})
                return repo.environments[env], repo.env_seals.setdefault(env, SealKey())
            return repo.secrets, repo.seal
        org = self.add_org(scope)
        return org.secrets, org.seal

    def secret_value(self, scope: str, name: str, *, env: str = "") -> str:
        """Open the stored sealed box with the private half (tests prove what a rotation wrote)."""
        with self.state.lock:
            store, seal = self._store(scope, env)
            return seal.open(store[name].encrypted_value)

    def secret_meta(self, scope: str, name: str, *, env: str = "") -> StoredSecret:
        with self.state.lock:
            return self._store(scope, env)[0][name]

    def token_live(self, token: str) -> bool:
        with self.state.lock:
            return self.state.tokens[token].live

    # -- request plumbing --------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        split = urlsplit(target)
        path = split.path.rstrip("/") or "/"
        query = dict(parse_qsl(split.query))
        st = self.state
        with st.lock:
            st.used += 1
            out_headers = {"x-ratelimit-limit": str(st.rate_limit),
                           "x-ratelimit-remaining": str(max(0, st.rate_limit - st.used)),
                           "x-ratelimit-reset": "4102444800", "x-ratelimit-used": str(st.used),
                           "x-ratelimit-resource": "core", "x-github-api-version-selected": "2022-11-28"}
            if st.secondary_limited > 0:
                st.secondary_limited -= 1
                out_headers["retry-after"] = "1"
                return 403, out_headers, {"message": "You have exceeded a secondary rate limit. Please wait a few "
                                                     "minutes before you try again.",
                                          "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}
            for r in ROUTES:
                m = r.pattern.match(path)
                if r.method != method or m is None:
                    continue
                params = {k: unquote(v) for k, v in m.groupdict().items()}  # per segment, as GitHub decodes
                try:
                    login = "" if r.public else self._login(headers, {**params, "__user__": path == "/user"},
                                                            app_route=r.app)
                    body = json.loads(raw) if raw else None
                    status, payload = r.handler(st, self.url, params, query, body, login)
                except Fail as fail:
                    return fail.status, out_headers, {"message": fail.message, "documentation_url": r.docs,
                                                      "status": str(fail.status)}
                if r.paginated and isinstance(payload, list):
                    payload = self._page(r, path, query, payload, out_headers)
                self.responses.append((r, status, payload))
                return status, out_headers, payload
        return 404, out_headers, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest",
                                  "status": "404"}

    def _login(self, headers: dict[str, str], params: dict[str, Any], *, app_route: bool = False) -> str:
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if app_route:  # authenticated as the App itself: a JWT, never a token
            return self._app_jwt(value.strip()) if scheme.lower() == "bearer" else self._refuse_jwt()
        token = self.state.tokens.get(value.strip()) if scheme.lower() in ("token", "bearer") else None
        if token is None or not token.live:
            raise Fail(401, "Bad credentials")
        if token.kind == "installation" and params.get("__user__"):
            raise Fail(403, "Resource not accessible by integration")
        if token.kind == "fine_grained":  # its org access ends when the org revokes its grant
            org = params.get("org") or params.get("owner")
            if org in self.state.orgs and not any(g.token == value.strip()
                                                  for g in self.state.orgs[org].grants.values()):
                raise Fail(403, "Resource not accessible by personal access token")
        return value.strip() if token.kind == "installation" else token.login

    def _app_jwt(self, value: str) -> str:
        """Check a GitHub App's JWT as GitHub does: RS256, signed by the App's private key (the
        double holds the public half), `iss` the App id, `iat` and `exp` present and `exp` in the
        future. The caller becomes `app:<id>`."""
        import jwt

        try:
            claims = jwt.decode(value, options={"verify_signature": False})
            public = self.state.apps.get(int(claims.get("iss", 0)))
            if public is None:
                raise Fail(401, "Integration not found")
            jwt.decode(value, public, algorithms=["RS256"], options={"require": ["iss", "iat", "exp"]},
                       leeway=0)
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Fail(401, "A JSON web token could not be decoded") from None
        return f"app:{int(claims['iss'])}"

    @staticmethod
    def _refuse_jwt() -> str:
        raise Fail(401, "A JSON web token could not be decoded")

    def _page(self, r: Route, path: str, query: dict[str, str], items: list[Any],
              headers: dict[str, str]) -> Any:
        per_page = max(1, min(int(query.get("per_page", 30)), self.state.page_size_cap))
        page = max(1, int(query.get("page", 1)))
        last = max(1, -(-len(items) // per_page))
        links = []
        if page < last:
            links.append(f'<{self.url}{path}?per_page={per_page}&page={page + 1}>; rel="next"')
            links.append(f'<{self.url}{path}?per_page={per_page}&page={last}>; rel="last"')
        if links:
            headers["link"] = ", ".join(links)
        chunk = items[(page - 1) * per_page: page * per_page]
        return {"total_count": len(items), r.wrapped: chunk} if r.wrapped else chunk


class _Handler(BaseHTTPRequestHandler):
    owner: GithubDouble
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out, payload = self.owner.handle(self.command, self.path, headers, raw)
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for k, v in out.items():
            self.send_header(k, v)
        if data:
            self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return None
