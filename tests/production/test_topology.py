"""The deployment of deploy/, proven: nginx (Debian) terminating TLS with a certificate made here, two
`carefront serve` processes and one `carefront worker`, all on PostgreSQL, on 127.0.0.1.

Patient journeys run over real HTTPS: sign in with a password, the home page, the statements, one
statement, a payment through the hosted checkout. One app process is then killed with SIGKILL in the
middle of the traffic and of a payment: nginx sends everything to the other process, no request
answers a 5xx beyond those in flight at that moment, and the payment is neither lost nor doubled —
its ledger row exists, succeeded, and the worker posts it to the EHR.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from portal.identity.demo_accounts import DEMO_PASSWORD
from tests.production.serving import NGINX, nginx_config, processes, self_signed, wait_for

pytestmark = pytest.mark.production

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PSQL = "/usr/lib/postgresql/15/bin/psql" if Path("/usr/lib/postgresql/15/bin/psql").exists() else "psql"


@dataclass
class Topology:
    """nginx at ``url`` (https), two app processes, one worker; ``database_url`` for checking rows."""

    url: str
    http_url: str
    """Plain HTTP, which only redirects to ``url``."""
    certificate: Path
    database_url: str
    folder: Path
    apps: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    sign_ins: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Demo persona label -> (patient id, sign-in email)."""

    def kill_app(self, port: int) -> None:
        """SIGKILL one app process: no clean shutdown, connections drop mid-request."""
        process = self.apps[port]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(self.folder.glob("*.log")))


@pytest.fixture(scope="module")
def topology(
    postgres_server: str,
    tmp_path_factory: pytest.TempPathFactory,
    unused_tcp_port_factory: Callable[[], int],
    portal_environ: Callable[..., dict[str, str]],
) -> Iterator[Topology]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is missing: .ci/bootstrap installs Debian's nginx")
    folder = tmp_path_factory.mktemp("topology")
    name = f"carefront_topology_{secrets.token_hex(4)}"
    psql = [PSQL, postgres_server, "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-qc"]
    subprocess.run([*psql, f'CREATE DATABASE "{name}"'], check=True, capture_output=True)
    database_url = urlsplit(postgres_server)._replace(path=f"/{name}").geturl()
    https_port, http_port = unused_tcp_port_factory(), unused_tcp_port_factory()
    app_ports = [unused_tcp_port_factory(), unused_tcp_port_factory()]
    url = f"https://127.0.0.1:{https_port}"
    environ = {
        **os.environ,
        **portal_environ(database_url, folder / "data", url),
        "CAREFRONT_JOBS_IN_PROCESS": "false",
    }
    try:
        with processes(folder, environ) as start:
            migrated = subprocess.run([BIN / "carefront", "migrate"], env=environ, capture_output=True, text=True)
            assert migrated.returncode == 0, migrated.stdout + migrated.stderr
            # The sandbox hospital is generated on first use; make it once, before several processes start.
            opened = subprocess.run(
                [sys.executable, "-m", "bench.accounts"],
                cwd=ROOT,
                env=environ,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert opened.returncode == 0, opened.stdout + opened.stderr
            cert, key = self_signed(folder)
            topology = Topology(url, f"http://127.0.0.1:{http_port}", cert, database_url, folder)
            for line in opened.stdout.splitlines():
                label, patient_id, email = line.split("\t")
                topology.sign_ins[label] = (patient_id, email)
            for port in app_ports:
                app = start(f"app-{port}", [BIN / "carefront", "serve", "--host", "127.0.0.1", "--port", str(port)])
                topology.apps[port] = app
                wait_for(f"http://127.0.0.1:{port}/readyz", app, f"app on {port}", folder / f"app-{port}.log")
            start("worker", [BIN / "carefront", "worker"])
            config = nginx_config(
                folder, https_port=https_port, http_port=http_port, apps=app_ports, cert=cert, key=key
            )
            nginx = start("nginx", [NGINX, "-p", folder, "-c", config, "-g", "daemon off;"])
            trust = ssl.create_default_context(cafile=str(cert))
            wait_for(f"{url}/healthz", nginx, "nginx", folder / "error.log", verify=trust)
            yield topology
    finally:
        subprocess.run([*psql, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=False, capture_output=True)


CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
TOKEN = re.compile(r'name="token" value="([^"]+)"')
STATEMENT_LINK = re.compile(r'href="(/statements/[^"/?#]+)"')
BROWSERS = 6
"""Patients browsing at once while a process is killed: at most this many requests are in flight."""


@asynccontextmanager
async def https(topology: Topology) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client that trusts only the topology's own certificate."""
    trust = ssl.create_default_context(cafile=str(topology.certificate))
    async with httpx.AsyncClient(base_url=topology.url, verify=trust, timeout=30) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, topology: Topology, label_word: str) -> str:
    """Sign in as the demo persona whose label has ``label_word``; its patient id."""
    patient_id, email = next(value for label, value in topology.sign_ins.items() if label_word in label)
    form = await client.get("/sign-in")
    token = CSRF.search(form.text)
    assert token, form.text
    answer = await client.post(
        "/sign-in", data={"_csrf_token": token.group(1), "email": email, "password": DEMO_PASSWORD}
    )
    assert answer.status_code == 303, answer.text
    return patient_id


def sql(topology: Topology, query: str) -> list[str]:
    result = subprocess.run(
        [PSQL, topology.database_url, "--no-psqlrc", "-At", "-v", "ON_ERROR_STOP=1", "-c", query],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.split()


async def test_https_secure_cookies_and_hsts(topology: Topology) -> None:
    async with https(topology) as client:
        front = await client.get("/")
        assert front.status_code == 200
        assert "max-age=" in front.headers["strict-transport-security"]
        assert front.headers["server"] == "nginx"  # through nginx, and without its version (server_tokens off)
        await sign_in(client, topology, "200 lines")
        session = next(c for c in client.cookies.jar if c.name == "__Host-carefront")
        assert session.secure, "the session cookie is Secure over the proxy's https"
        assert next(c for c in client.cookies.jar if c.name == "__Host-csrftoken").secure
        home = await client.get("/home")
        assert home.status_code == 200, home.text
        assert home.headers["cache-control"] == "no-store"
        statements = await client.get("/statements")
        assert statements.status_code == 200
        link = STATEMENT_LINK.search(statements.text)
        assert link, "the inpatient persona has statements"
        statement = await client.get(link.group(1))
        assert statement.status_code == 200
        assert statement.text.count('class="charge"') >= 5
    async with httpx.AsyncClient() as plain_http:
        plain = await plain_http.get(f"{topology.http_url}/home")
    assert plain.status_code == 301
    assert plain.headers["location"].startswith("https://")


async def browse(topology: Topology, stop: asyncio.Event, statuses: Counter[int]) -> None:
    """A patient reading pages over and over until ``stop``."""
    async with https(topology) as client:
        await sign_in(client, topology, "emergency room")
        while not stop.is_set():
            for path in ("/home", "/statements", "/payments"):
                try:
                    answer = await client.get(path)
                except httpx.TransportError:
                    statuses[0] += 1  # no answer at all: counted with the 5xx below
                    continue
                statuses[answer.status_code] += 1


async def test_a_killed_app_process_loses_no_payment_and_serves_no_5xx(topology: Topology) -> None:
    stop = asyncio.Event()
    statuses: Counter[int] = Counter()
    browsers = [asyncio.create_task(browse(topology, stop, statuses)) for _ in range(BROWSERS)]
    async with https(topology) as client:
        patient_id = await sign_in(client, topology, "emergency room")
        form = await client.get("/pay")
        assert form.status_code == 200, form.text
        fields = {
            "_csrf_token": CSRF.search(form.text).group(1),
            "token": TOKEN.search(form.text).group(1),
            "statement": re.search(r'name="statement" value="([^"]*)"', form.text).group(1),
        }
        started = await client.post("/pay", data={**fields, "choice": "other", "amount": "25"})
        assert started.status_code == 303, started.text
        checkout = started.headers["location"]
        assert checkout.startswith(f"{topology.url}/-/sandbox/checkout/")
        hosted = await client.get(checkout)
        card = {"_csrf_token": CSRF.search(hosted.text).group(1), "number": "4242 4242 4242 4242"}
        paid = await client.post(checkout, data={**card, "expiry": "12/40", "cvc": "123"})
        assert paid.status_code == 303, paid.text
        await asyncio.sleep(1.5)  # traffic on both processes
        served_before = sum(statuses.values())
        topology.kill_app(next(iter(topology.apps)))
        # The patient comes back from the checkout after the process that started the payment died.
        returned = await client.get(paid.headers["location"])
        assert returned.status_code == 303, returned.text
        receipt = await client.get(returned.headers["location"])
        assert receipt.status_code == 200, receipt.text
        assert "$25.00" in receipt.text
        await asyncio.sleep(2)
    stop.set()
    await asyncio.gather(*browsers)
    failed = statuses[0] + sum(count for status, count in statuses.items() if status >= 500)
    assert sum(statuses.values()) > served_before > 0, statuses
    assert failed <= BROWSERS, f"{failed} failed answers beyond the {BROWSERS} in flight: {statuses}\n{topology.logs()}"
    assert set(statuses) <= {0, 200, 502, 503, 504}, statuses
    # The worker posts the payment to the EHR: one ledger row, settled.
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        rows = sql(topology, f"SELECT status FROM payment_attempt WHERE patient_id = '{patient_id}' AND amount = 2500")
        if rows == ["posted"]:
            break
        await asyncio.sleep(0.5)
    assert rows == ["posted"], f"the payment's ledger rows: {rows}\n{topology.logs()}"
