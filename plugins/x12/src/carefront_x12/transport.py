"""How X12 reaches a clearinghouse: real-time over HTTPS, and batch files over SFTP.

- :class:`Transport` is the real-time interface: hand over an interchange, get the answer back.
  :class:`HttpsTransport` implements it in the manner of CAQH CORE connectivity: an HTTP POST of a
  MIME multipart form carrying the payload and its envelope fields (PayloadType, ProcessingMode,
  PayloadID, TimeStamp, SenderID, ReceiverID, CORERuleVersion), authenticated with HTTP basic auth
  or an OAuth 2.0 client-credentials token. It reads a multipart answer's ``Payload`` field, or a
  plain X12 body.
- :class:`BatchTransport` is the batch interface: upload files, later collect the answers.
  :class:`SftpBatchTransport` implements it over SFTP (asyncssh), verifying the server's host key.

Failures are raised as :class:`carefront_sdk.errors.Unavailable` whose detail names the host and
status, never the payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

import asyncssh
import httpx
from carefront_sdk.errors import Unavailable
from carefront_sdk.models import Health

from carefront_x12.core import X12Error, parse_interchange

__all__ = [
    "BatchFile",
    "BatchTransport",
    "HttpsTransport",
    "OAuth2ClientCredentials",
    "SftpBatchTransport",
    "Transport",
    "payload_type",
]

CORE_RULE_VERSION = "2.2.0"
_RESPONSE_KINDS = {"270": "271", "276": "277"}
# Renew a token this long before the server says it expires, so no request carries a stale one.
_TOKEN_MARGIN_SECONDS = 30.0


@runtime_checkable
class Transport(Protocol):
    """Real-time exchange: one interchange out, the clearinghouse's interchange back."""

    async def exchange(self, payload: str) -> str:
        """Send ``payload`` and return the answer; ``Unavailable`` when there is none."""
        ...

    async def health(self) -> Health:
        """Whether the clearinghouse answers at all."""
        ...


@dataclass(frozen=True, slots=True)
class BatchFile:
    name: str
    content: str


@runtime_checkable
class BatchTransport(Protocol):
    """Batch exchange: files go up now; answers (999, 271, 277, 835) are collected later."""

    async def submit(self, payload: str, name: str) -> str:
        """Upload ``payload`` as file ``name``; the name it was stored under."""
        ...

    async def poll(self) -> list[BatchFile]:
        """The answer files waiting to be collected, oldest name first; they stay until acknowledged."""
        ...

    async def acknowledge(self, names: list[str]) -> None:
        """Remove answer files that have been processed."""
        ...


def payload_type(payload: str) -> str:
    """The CAQH CORE PayloadType of a request, e.g. ``X12_270_Request_005010X279A1``."""
    interchange = parse_interchange(payload)
    group = interchange.groups[0]
    if not group.transactions:
        raise X12Error("the functional group holds no transaction set", "GS")
    return f"X12_{group.transactions[0].code}_Request_{group.version}"


@dataclass(frozen=True, slots=True)
class OAuth2ClientCredentials:
    token_url: str
    client_id: str
    client_secret: str
    scope: str = ""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def _form_fields(response: httpx.Response) -> dict[str, str]:
    head = f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + response.content)
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        if not isinstance(part, EmailMessage):
            continue
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return fields


class HttpsTransport:
    """Real-time X12 over HTTPS, CAQH CORE style. ``client`` is injectable for tests."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        sender_id: str,
        receiver_id: str,
        timeout: float,
        basic_auth: tuple[str, str] | None = None,
        oauth2: OAuth2ClientCredentials | None = None,
        client: httpx.AsyncClient | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = endpoint_url
        self._host = urlsplit(endpoint_url).netloc
        self._sender_id = sender_id
        self._receiver_id = receiver_id
        self._timeout = timeout
        self._basic = basic_auth
        self._oauth2 = oauth2
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout))
        self._monotonic = monotonic
        self._token: tuple[str, float] | None = None
        self._token_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(
        self,
        url: str,
        *,
        data: dict[str, str] | None = None,
        files: dict[str, tuple[None, str]] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> httpx.Response:
        try:
            return await self._client.post(
                url,
                data=data,
                files=files,
                headers=headers,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                timeout=self._timeout,
            )
        except httpx.TimeoutException:
            raise Unavailable(f"x12: {urlsplit(url).netloc} did not answer within {self._timeout:g}s") from None
        except httpx.HTTPError as error:
            raise Unavailable(f"x12: cannot reach {urlsplit(url).netloc} ({type(error).__name__})") from None

    async def _bearer(self, *, renew: bool) -> str:
        assert self._oauth2 is not None
        async with self._token_lock:
            if self._token and not renew and self._token[1] > self._monotonic():
                return self._token[0]
            form = {"grant_type": "client_credentials"} | ({"scope": self._oauth2.scope} if self._oauth2.scope else {})
            response = await self._post(
                self._oauth2.token_url, data=form, auth=(self._oauth2.client_id, self._oauth2.client_secret)
            )
            if response.status_code != 200:
                raise Unavailable(
                    f"x12: the token endpoint {urlsplit(self._oauth2.token_url).netloc} answered"
                    f" HTTP {response.status_code}"
                )
            try:
                body = response.json()
                token, lifetime = str(body["access_token"]), float(body.get("expires_in", 300))
            except (ValueError, KeyError, TypeError):
                raise Unavailable("x12: the token endpoint's answer has no access_token") from None
            self._token = (token, self._monotonic() + max(lifetime - _TOKEN_MARGIN_SECONDS, 0.0))
            return token

    async def _headers(self, *, renew: bool = False) -> tuple[dict[str, str], tuple[str, str] | None]:
        if self._oauth2 is not None:
            return {"Authorization": f"Bearer {await self._bearer(renew=renew)}"}, None
        return {}, self._basic

    def _form(self, payload: str, kind: str) -> dict[str, str]:
        return {
            "PayloadType": kind,
            "ProcessingMode": "RealTime",
            "PayloadID": str(uuid.uuid4()),
            "TimeStamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "SenderID": self._sender_id,
            "ReceiverID": self._receiver_id,
            "CORERuleVersion": CORE_RULE_VERSION,
            "Payload": payload,
        }

    async def exchange(self, payload: str) -> str:
        kind = payload_type(payload)
        # Every form field travels as its own multipart part, as CORE's HTTP MIME envelope has it.
        files = {name: (None, value) for name, value in self._form(payload, kind).items()}
        headers, auth = await self._headers()
        response = await self._post(self._url, files=files, headers=headers, auth=auth)
        if response.status_code == 401 and self._oauth2 is not None:
            # The token may have been revoked early: fetch a new one once.
            headers, auth = await self._headers(renew=True)
            response = await self._post(self._url, files=files, headers=headers, auth=auth)
        return self._answer(response)

    def _answer(self, response: httpx.Response) -> str:
        status = response.status_code
        if status in {401, 403}:
            raise Unavailable(f"x12: {self._host} refused the credentials (HTTP {status})")
        if status == 429 or status >= 500:
            raise Unavailable(f"x12: {self._host} answered HTTP {status}", retry_after=_retry_after(response))
        if status != 200:
            raise Unavailable(f"x12: {self._host} answered HTTP {status}")
        if response.headers.get("content-type", "").startswith("multipart/"):
            fields = _form_fields(response)
            error_code = fields.get("ErrorCode", "Success")
            if error_code != "Success":
                raise Unavailable(f"x12: {self._host} answered CORE error {error_code[:60]}")
            if not fields.get("Payload"):
                raise Unavailable(f"x12: {self._host} answered without a Payload")
            return fields["Payload"]
        return response.text

    async def health(self) -> Health:
        try:
            if self._oauth2 is not None:
                await self._bearer(renew=False)
            response = await self._client.head(self._url, timeout=self._timeout)
        except Unavailable as error:
            return Health(False, error.detail)
        except httpx.HTTPError as error:
            return Health(False, f"x12: cannot reach {self._host} ({type(error).__name__})")
        # Any HTTP answer (a 405 to HEAD included) shows the endpoint is up; 5xx shows it is not.
        return Health(response.status_code < 500, f"x12: {self._host} answered HTTP {response.status_code}")


class SftpBatchTransport:
    """Batch X12 over SFTP: upload to ``upload_dir``, collect answers from ``download_dir``.

    ``known_hosts`` holds the server's key in OpenSSH known_hosts form; a server presenting any
    other key is refused. Uploads are written under a temporary name and renamed when complete,
    so the clearinghouse never picks up half a file.
    """

    def __init__(
        self,
        host: str,
        *,
        port: int = 22,
        username: str,
        known_hosts: str,
        password: str | None = None,
        private_key: str | None = None,
        upload_dir: str = "inbound",
        download_dir: str = "outbound",
        timeout: float = 30.0,
    ) -> None:
        self._host = host
        self._port = port
        self._username = username
        self._known_hosts = asyncssh.import_known_hosts(known_hosts)
        self._password = password
        self._keys = [asyncssh.import_private_key(private_key)] if private_key else None
        self._upload_dir = upload_dir.rstrip("/")
        self._download_dir = download_dir.rstrip("/")
        self._timeout = timeout

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[asyncssh.SFTPClient]:
        try:
            async with (
                asyncio.timeout(self._timeout),
                asyncssh.connect(
                    self._host,
                    self._port,
                    username=self._username,
                    password=self._password,
                    client_keys=self._keys,
                    known_hosts=self._known_hosts,
                    connect_timeout=self._timeout,
                    agent_path=None,
                ) as connection,
                connection.start_sftp_client() as sftp,
            ):
                yield sftp
        except (OSError, asyncssh.Error, TimeoutError) as error:
            raise Unavailable(f"x12: sftp {self._host}:{self._port} failed ({type(error).__name__})") from None

    async def submit(self, payload: str, name: str) -> str:
        if "/" in name or name.startswith("."):
            raise ValueError(f"{name!r} is not a plain file name")
        target = f"{self._upload_dir}/{name}"
        async with self._session() as sftp:
            async with sftp.open(f"{target}.part", "wb") as handle:
                await handle.write(payload.encode("utf-8"))
            await sftp.rename(f"{target}.part", target)
        return name

    async def poll(self) -> list[BatchFile]:
        found: list[BatchFile] = []
        async with self._session() as sftp:
            for name in sorted(await sftp.listdir(self._download_dir)):
                path = f"{self._download_dir}/{name}"
                if name.startswith(".") or name.endswith(".part") or not await sftp.isfile(path):
                    continue
                async with sftp.open(path, "r", encoding="utf-8", errors="replace") as handle:
                    found.append(BatchFile(name, str(await handle.read())))
        return found

    async def acknowledge(self, names: list[str]) -> None:
        async with self._session() as sftp:
            for name in names:
                await sftp.remove(f"{self._download_dir}/{name}")
