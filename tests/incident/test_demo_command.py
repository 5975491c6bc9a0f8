"""`revoke demo` end to end through the CLI: it starts from the scanner action's moved tag, rotates the
database password and the job's Actions secrets, retires the runner's trust of the internal CA, prints
the first-key-only comparison, attests its manual tasks itself (and says so), and ends clean. Judged
by the kept lab's files too."""

from __future__ import annotations

import re
from pathlib import Path


def test_demo_retires_the_runner_trust_and_ends_clean(revoke_cli, tmp_path: Path) -> None:
    keep = tmp_path / "lab"
    res = revoke_cli("demo", "--devices", "5", "--keep", str(keep), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    # the entry point is the re-tagged action; the plan rotates the database password and reaches the chain
    assert "blast radius of github:repo:scanner-org/scan-action" in out
    assert re.search(r"^\s+rotate\s+postgres:password:db\.internal:5432/ci@[0-9a-f]+$", out, re.M), out
    # the bot's token (an Actions secret) and the CI token found in Vault
    assert len(re.findall(r"^\s+revoke\s+github:token:[0-9a-f]{64}$", out, re.M)) == 2, out
    assert re.search(r"rotating only the first key found \(aws:access_key:\w+\) leaves \d+ live reachable", out), out
    assert "the demo pins the action in release.yml to scanner-org/scan-action@" in out
    assert re.search(r"^\s+manual: pypi:api_token:[0-9a-f]{64}: ", out, re.M), out
    assert re.search(r"the demo attests these \d+ manual task\(s\) itself", out), out
    # blast radius names the trust, the plan has the untrust step before the retirement, the run did it
    assert re.search(r"host:ci-runner-7 trusts x509:ca:[0-9a-f]{64} \(its key is exposed\) through \S+ca-bundle\.pem",
                     out), out
    assert re.search(r"^\s+untrust\s+x509:ca:[0-9a-f]{64}\s+remove CA Revoke Lab Internal CA", out, re.M), out
    assert "untrust: host:ci-runner-7 no longer trusts Revoke Lab Internal CA" in out
    assert re.search(r"first key only -> \d+ live reachable; playbook -> 0 live reachable; clean", out), out
    # piped: no id is folded in the middle
    assert not re.search(r"x509:ca:[0-9a-f]{1,63}$", out, re.M)
    # the bundle lost the internal CA and kept the public root; the report says so
    bundle = (keep / "pki" / "runner-trust" / "ca-bundle.pem").read_text()
    assert bundle.startswith("# the CI runner's CA bundle\n") and bundle.count("BEGIN CERTIFICATE") == 1
    report = (keep / "demo-incident-report.md").read_text()
    assert "## Trust removed" in report and "removed by x509 (untrust:" in report
    # the database password and the AWS key the job's secret held were rotated, and written back
    assert re.search(r"\| rotate \| `postgres:password:db\.internal:5432/ci@[0-9a-f]+` \| done \|", report), report
    assert re.search(r"github:secret:acme/ai-gateway/AWS\\_DEPLOY\\_KEY: written", report)
