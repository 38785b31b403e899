"""Serving the portal for tests that run it as a deployment does: processes that log to files and stop
at the end, a self-signed certificate, nginx from deploy/'s template, and waiting until each answers.
Used by the production topology test and the wapiti scan of the demo (tests/scans/web_scan.py)."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
NGINX_TEMPLATE = ROOT / "deploy" / "nginx" / "carefront.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

Start = Callable[[str, list[str | Path]], "subprocess.Popen[bytes]"]
"""``start(what, command)``: a process logging to ``<folder>/<what>.log``."""


@contextmanager
def processes(folder: Path, environ: dict[str, str]) -> Iterator[Start]:
    """Start processes with ``environ``; at the end each is stopped, the last started first."""
    started: list[subprocess.Popen[bytes]] = []

    def start(what: str, command: list[str | Path]) -> subprocess.Popen[bytes]:
        log = (folder / f"{what}.log").open("wb")
        process = subprocess.Popen(command, env=environ, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in reversed(started):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_for(
    url: str, process: subprocess.Popen[bytes], what: str, log: Path, *, verify: object = True, seconds: float = 60
) -> None:
    """Until ``url`` answers 200; fails with the end of ``log`` if ``process`` exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2, verify=verify).status_code == 200:  # type: ignore[arg-type]
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url} within {seconds:g} s:\n{log.read_text()[-4000:]}")


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, valid for a day, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "carefront topology test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def nginx_config(folder: Path, *, https_port: int, http_port: int, apps: list[int], cert: Path, key: Path) -> Path:
    """deploy/'s site template, filled in, inside a main configuration that keeps nginx in ``folder``."""
    site = Template(NGINX_TEMPLATE.read_text()).safe_substitute(
        CAREFRONT_SERVER_NAME="127.0.0.1 localhost",
        CAREFRONT_HTTPS_PORT=f"127.0.0.1:{https_port}",
        CAREFRONT_HTTP_PORT=f"127.0.0.1:{http_port}",
        CAREFRONT_TLS_CERTIFICATE=str(cert),
        CAREFRONT_TLS_KEY=str(key),
        CAREFRONT_APP_1=f"127.0.0.1:{apps[0]}",
        CAREFRONT_APP_2=f"127.0.0.1:{apps[1]}",
    )
    assert "${CAREFRONT_" not in site, "every placeholder of the template is filled"
    (folder / "site.conf").write_text(site)
    temp = folder / "temp"
    temp.mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root, workers would switch to nobody and lose folder
    main = f"""{user}worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} info;
events {{ worker_connections 512; }}
http {{
    access_log {folder / "access.log"};
    client_body_temp_path {temp / "body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    include {folder / "site.conf"};
}}
"""
    path = folder / "nginx.conf"
    path.write_text(main)
    return path
