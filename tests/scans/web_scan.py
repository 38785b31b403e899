"""wapiti3 against the running demo, anonymous and signed in as a demo patient (issue #10).

``python -m tests.scans.web_scan`` (``make scan-web``) runs the full scan; tests/scans/test_wapiti.py
runs a shorter one in the suite. Either way:

- wapiti3 lives in its own virtual environment, var/wapiti-<version>/, made on first use from PyPI
  with uv (.ci/bootstrap makes it ahead of the tests). It pins dozens of packages that clash with
  the portal's, so it is never one of the project's dependencies.
- The portal runs as ``carefront demo`` serves it (SQLite, the sandbox hospital, its demo accounts;
  only the sandbox's simulated EHR latency is off) in a throwaway data folder, behind nginx with deploy/'s site template and a certificate made for
  the run: the portal's cookies are Secure and ``__Host-`` prefixed, so only HTTPS shows wapiti what
  a browser gets (over plain HTTP no cookie would come back and every form would fail CSRF).
- Every finding wapiti reports (vulnerabilities and anomalies, i.e. 5xx answers and timeouts) must
  match an entry of tests/scans/wapiti-baseline.toml, each with the reason it is accepted.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from carefront_sandbox.hooks import carefront_demo_personas

from portal.app import CSRF_COOKIE, SESSION_COOKIE
from portal.identity.demo_accounts import DEMO_PASSWORD
from tests.production.serving import NGINX, nginx_config, processes, self_signed, wait_for

ROOT = Path(__file__).resolve().parents[2]
BASELINE = Path(__file__).with_name("wapiti-baseline.toml")
WAPITI_VERSION = "3.2.3"
WAPITI_HOME = ROOT / "var" / f"wapiti-{WAPITI_VERSION}"
WAPITI = WAPITI_HOME / "bin" / "wapiti"
CARE_FRONT = Path(sys.executable).with_name("carefront")
CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')

MODULES = (
    "backup,cookieflags,crlf,csp,csrf,exec,file,htaccess,http_headers,ldap,methods,permanentxss,redirect,"
    "shellshock,sql,timesql,upload,xss"
)
"""Every wapiti module that means something for this app and needs nothing from the internet. Left
out: ssrf, xxe and log4shell (they need wapiti's endpoint on the internet to see a callback);
https_redirect (it only probes the HTTPS port over HTTP; nginx's redirect of plain HTTP is
tests/production's); ssl (it needs sslscan, and the TLS profile is deploy/nginx's, not the portal's);
brute_login_form (sign-in is rate-limited per address: it would test the limiter, then shut sign-in); buster, nikto, wapp, htp,
cms, wp_enum, network_device, spring4shell, takeover (fingerprinting of other products, or
databases downloaded from the internet)."""


@dataclass(frozen=True, slots=True)
class Budget:
    """How long wapiti may take: crawling (``scan``) and each module's attack (``attack``), in seconds."""

    scan: float
    attack: float


FULL = Budget(scan=180, attack=90)
QUICK = Budget(scan=8, attack=2.5)


@dataclass(frozen=True, slots=True)
class Finding:
    """One vulnerability or anomaly of wapiti's JSON report."""

    kind: str
    """``vulnerability`` or ``anomaly`` (a 5xx answer or a timeout)."""
    category: str
    module: str
    method: str
    path: str
    parameter: str
    info: str

    def __str__(self) -> str:
        where = f" parameter {self.parameter}" if self.parameter else ""
        return f"[{self.module}] {self.category}: {self.method} {self.path}{where} — {self.info}"


@dataclass(frozen=True, slots=True)
class Accepted:
    """An entry of the baseline: findings of ``category`` at paths matching ``path`` (a glob)."""

    category: str
    path: str
    reason: str
    parameter: str = "*"

    def covers(self, finding: Finding) -> bool:
        return (
            finding.category == self.category
            and fnmatch.fnmatchcase(finding.path, self.path)
            and fnmatch.fnmatchcase(finding.parameter, self.parameter)
        )


@dataclass(frozen=True, slots=True)
class Scan:
    """One wapiti run: what it found and what it cost."""

    who: str
    findings: list[Finding]
    seconds: float
    requests: int
    """Requests that reached nginx during the run (its access log)."""
    crawled: int
    """Pages and forms wapiti found and attacked."""


@dataclass(frozen=True, slots=True)
class Demo:
    url: str
    folder: Path
    access_log: Path
    trust: ssl.SSLContext
    """Trusts the certificate made for this run, and nothing else."""

    def requests_so_far(self) -> int:
        if not self.access_log.exists():
            return 0
        with self.access_log.open("rb") as log:
            return sum(1 for _ in log)


def install_wapiti() -> Path:
    """wapiti's executable, installed first if var/ does not have it yet."""
    done = WAPITI_HOME / ".installed"
    if done.exists():
        return WAPITI
    shutil.rmtree(WAPITI_HOME, ignore_errors=True)
    # As the Makefile finds it: `python3 -m uv` where pip put uv's script off PATH (see .ci/bootstrap).
    found = shutil.which("uv")
    uv = [found] if found else ["python3", "-m", "uv"]
    # wapiti3 3.2.3 needs Python 3.10-3.12: the portal's own interpreter (3.11) serves.
    subprocess.run([*uv, "venv", "--quiet", "--python", sys.executable, WAPITI_HOME], check=True)
    python = WAPITI_HOME / "bin" / "python"
    subprocess.run([*uv, "pip", "install", "--quiet", "--python", python, f"wapiti3=={WAPITI_VERSION}"], check=True)
    done.touch()
    return WAPITI


def baseline() -> list[Accepted]:
    entries = [Accepted(**entry) for entry in tomllib.loads(BASELINE.read_text()).get("accepted", [])]
    assert all(entry.reason.strip() for entry in entries), f"every entry of {BASELINE.name} says why"
    return entries


def unexplained(findings: list[Finding], accepted: list[Accepted]) -> list[Finding]:
    return [finding for finding in findings if not any(entry.covers(finding) for entry in accepted)]


def findings_of(report: dict[str, object]) -> list[Finding]:
    found = []
    for kind, section in (("vulnerability", "vulnerabilities"), ("anomaly", "anomalies")):
        categories = report.get(section) or {}
        assert isinstance(categories, dict)
        for category, items in categories.items():
            found += [
                Finding(
                    kind=kind,
                    category=category,
                    module=item["module"],
                    method=item["method"],
                    path=item["path"],
                    parameter=item["parameter"] or "",
                    info=item["info"],
                )
                for item in items
            ]
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_demo(folder: Path) -> Iterator[Demo]:
    """``carefront demo`` on a free port in ``folder``, behind nginx on another with TLS."""
    if not Path(NGINX).exists():
        raise RuntimeError("nginx is missing: .ci/bootstrap installs Debian's nginx")
    app_port, https_port, http_port = free_port(), free_port(), free_port()
    url = f"https://127.0.0.1:{https_port}"
    # The demo's sandbox waits 40 ms on every EHR call to feel like a real hospital; a scan does not need that.
    (folder / "carefront.toml").write_text("[adapters.sandbox]\nlatency_ms = 0\n")
    environ = {
        key: value for key, value in os.environ.items() if not key.startswith("CAREFRONT_") and key != "DATABASE_URL"
    }
    # The demo's own defaults otherwise (SQLite in the data folder, the sandbox only); the public URL
    # is nginx's, as a hospital would configure it.
    environ |= {
        "CAREFRONT_CONFIG": str(folder / "carefront.toml"),
        "CAREFRONT_DATA_DIR": str(folder / "data"),
        "CAREFRONT_PUBLIC_URL": url,
    }
    with processes(folder, environ) as start:
        demo = start("demo", [CARE_FRONT, "demo", "--host", "127.0.0.1", "--port", str(app_port)])
        wait_for(f"http://127.0.0.1:{app_port}/readyz", demo, "carefront demo", folder / "demo.log", seconds=120)
        cert, key = self_signed(folder)
        # deploy/'s template balances two app processes; the demo is one, named twice.
        config = nginx_config(
            folder, https_port=https_port, http_port=http_port, apps=[app_port, app_port], cert=cert, key=key
        )
        nginx = start("nginx", [NGINX, "-p", folder, "-c", config, "-g", "daemon off;"])
        trust = ssl.create_default_context(cafile=str(cert))
        wait_for(f"{url}/healthz", nginx, "nginx", folder / "error.log", verify=trust, seconds=120)
        yield Demo(url, folder, folder / "access.log", trust)


def demo_patient_cookies(demo: Demo) -> str:
    """A ``Cookie`` header of a signed-in demo patient: the parent, who also sees her child's pages."""
    email = next(p.email for p in carefront_demo_personas() if p.role == "guarantor")
    with httpx.Client(base_url=demo.url, verify=demo.trust, timeout=30) as client:
        form = client.get("/sign-in")
        token = CSRF_INPUT.search(form.text)
        assert token, form.text
        answer = client.post(
            "/sign-in", data={"_csrf_token": token.group(1), "email": email, "password": DEMO_PASSWORD}
        )
        assert answer.status_code == 303, answer.text
        return "; ".join(f"{name}={client.cookies[name]}" for name in (SESSION_COOKIE, CSRF_COOKIE))


def still_signed_in(demo: Demo, cookies: str) -> bool:
    """Whether the session wapiti used is still a patient's (nothing it did signed it out)."""
    answer = httpx.get(f"{demo.url}/home", headers={"cookie": cookies}, verify=demo.trust, timeout=30)
    return answer.status_code == 200


def scan(demo: Demo, who: str, budget: Budget, *, cookies: str | None = None) -> Scan:
    """One wapiti run against ``demo``; ``cookies`` makes it a signed-in one."""
    wapiti = install_wapiti()
    folder = demo.folder / f"wapiti-{who}"
    folder.mkdir()
    report = folder / "report.json"
    command: list[str | Path] = [
        wapiti, "--url", f"{demo.url}/", "--scope", "folder", "--module", MODULES,
        "--max-scan-time", str(budget.scan), "--max-attack-time", str(budget.attack),
        "--format", "json", "--output", report, "--store-session", folder / "session",
        "--store-config", folder / "config", "--no-bugreport", "--flush-session", "--verbose", "0",
        "--timeout", "20", "--tasks", "4",
    ]  # fmt: skip
    if cookies:
        # A fixed Cookie header on every request; wapiti must not sign its own session out.
        command += ["--cookie-value", cookies, "--exclude", f"{demo.url}/sign-out*"]
    before, started = demo.requests_so_far(), time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=folder)
    seconds = time.monotonic() - started
    (folder / "wapiti.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0 or not report.exists():
        raise RuntimeError(f"wapiti failed ({result.returncode}):\n{(result.stdout + result.stderr)[-6000:]}")
    document = json.loads(report.read_text())
    crawled = int(document["infos"].get("crawled_pages_nbr") or 0)
    return Scan(who, findings_of(document), seconds, demo.requests_so_far() - before, crawled)


def scan_demo(folder: Path, budget: Budget) -> tuple[list[Scan], bool]:
    """The signed-in scan, then the anonymous one; and whether the patient was still signed in after
    the signed-in scan. The patient signs in first: the anonymous scan's hundreds of wrong sign-ins
    from 127.0.0.1 trip the sign-in rate limit, as they would for any one address."""
    with running_demo(folder) as demo:
        cookies = demo_patient_cookies(demo)
        patient = scan(demo, "patient", budget, cookies=cookies)
        signed_in = still_signed_in(demo, cookies)
        anonymous = scan(demo, "anonymous", budget)
        return [anonymous, patient], signed_in


def summary(scans: list[Scan], accepted: list[Accepted]) -> str:
    lines = []
    for run in scans:
        lines.append(
            f"{run.who}: {run.seconds:.0f} s, {run.requests} requests, {run.crawled} pages and forms, "
            f"{len(run.findings)} findings ({len(unexplained(run.findings, accepted))} not in the baseline)"
        )
        lines += [f"  {finding}" for finding in run.findings]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.scans.web_scan", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the suite's short scan instead of the full one")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep the reports and logs")
    parser.add_argument("--install-only", action="store_true", help="install wapiti in var/ and stop")
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    install_wapiti()
    if args.install_only:
        return 0
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=False)
        scans, signed_in = scan_demo(args.keep.resolve(), budget)
    else:
        with tempfile.TemporaryDirectory(prefix="carefront-wapiti-") as folder:
            scans, signed_in = scan_demo(Path(folder), budget)
    accepted = baseline()
    print(summary(scans, accepted))
    if not signed_in:
        print("The patient's session ended during the scan: the signed-in scan lost its way in.")
    failing = [finding for run in scans for finding in unexplained(run.findings, accepted)]
    if failing:
        print(f"{len(failing)} finding(s) not in {BASELINE.relative_to(ROOT)}: fix them or explain them there.")
    return 1 if failing or not signed_in else 0


if __name__ == "__main__":
    sys.exit(main())
