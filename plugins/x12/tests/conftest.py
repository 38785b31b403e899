"""A local "payer" for the x12 tests: a real HTTP server on 127.0.0.1 that answers X12 by rules.

It speaks CAQH CORE-style HTTP MIME multipart, checks basic or OAuth 2.0 bearer credentials, reads
the 270/276 payload with its own walk over segments, and writes 271/277 interchanges by hand
(f-strings, not the plugin's builder) so the plugin's encoder and decoder are checked against an
independent implementation. Its rules, by member id (NM109 of NM1*IL) and claim id (TRN02):

- W100200300: active, plan CHOICE POS II, $25 office copay, $1,500 deductible with $400 left,
  20 % coinsurance, $6,000 out-of-pocket maximum with $4,100 left (the SDK fake's figures);
- ending in 000: inactive (EB*6); SLOW: answers after 3 s; GARBAGE: answers text that is no X12;
  WRONGTRACE: echoes a trace the inquiry never had; BUSY: HTTP 503 with Retry-After;
- any other member: AAA*Y**72*C (invalid member id) in loop 2100C;
- claim CLM-1001: F1/65 paid $90 of $180; any other claim: A4/35 (not found).
"""

from __future__ import annotations

import base64
import contextlib
import email.parser
import email.policy
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

ACTIVE_MEMBER = "W100200300"
BASIC_USER, BASIC_PASSWORD = "portal", "s3cret-basic"
CLIENT_ID, CLIENT_SECRET = "carefront", "s3cret-client"
BOUNDARY = "CarefrontPayerBoundary"


def interchange(functional_id: str, version: str, code: str, body: list[str], control: int = 1) -> str:
    """A 00501 interchange from segments written out by hand ("NM1*PR*2*…", no terminator)."""
    isa = (
        f"ISA*00*{' ' * 10}*00*{' ' * 10}*ZZ*{'TESTPAYER':<15}*ZZ*{'CAREFRONT':<15}"
        f"*250303*1500*^*00501*{control:09d}*0*T*:"
    )
    segments = [
        isa,
        f"GS*{functional_id}*TESTPAYER*CAREFRONT*20250303*1500*{control}*X*{version}",
        f"ST*{code}*0001*{version}",
        *body,
        f"SE*{len(body) + 2}*0001",
        f"GE*1*{control}",
        f"IEA*1*{control:09d}",
    ]
    return "~\n".join(segments) + "~\n"


def segments_of(payload: str) -> list[list[str]]:
    """The payer's own reading of an inquiry: delimiters from ISA, then a plain split."""
    element, terminator, repetition = payload[3], payload[105], payload[82]
    rows = [raw.strip() for raw in payload.split(terminator) if raw.strip()]
    return [row.replace(repetition, "^").split(element) for row in rows]


def _first(rows: list[list[str]], *prefix: str) -> list[str]:
    return next(row for row in rows if row[: len(prefix)] == list(prefix))


def answer_270(payload: str) -> str:
    rows = segments_of(payload)
    member = _first(rows, "NM1", "IL")[9]
    trace = _first(rows, "TRN", "1")[2]
    dependent = any(row[0] == "HL" and row[3] == "23" for row in rows)
    head = [
        "BHT*0022*11*" + _first(rows, "BHT")[3] + "*20250303*1500",
        "HL*1**20*1",
        "NM1*PR*2*AETNA*****PI*60054",
        "HL*2*1*21*1",
        "NM1*1P*2*" + _first(rows, "NM1", "1P")[3] + "*****XX*" + _first(rows, "NM1", "1P")[9],
        f"HL*3*2*22*{1 if dependent else 0}",
    ]
    echo = "WRONG0000TRACE" if member == "WRONGTRACE" else trace
    subscriber = [f"NM1*IL*1*RIVERA*ALEX****MI*{member}"]
    patient = [f"TRN*2*{echo}*9TESTPAYER"]
    if dependent:
        body = [*head, *subscriber, "HL*4*3*23*0", *patient, "NM1*03*1*RIVERA*SAM", "INS*N*19"]
    else:
        body = [*head, *patient, *subscriber, "DMG*D8*19850412"]
    if member in {ACTIVE_MEMBER, "WRONGTRACE"}:
        body += [
            "DTP*346*D8*20240101",
            "EB*1*IND*30*PR*CHOICE POS II",
            "EB*B*IND*98***27*25*****Y",
            "MSG*OFFICE VISIT",
            "EB*C*IND*30***23*1500*****Y",
            "EB*C*IND*30***29*400*****Y",
            "EB*C*FAM*30***23*3000*****Y",
            "EB*A*IND*30*****.2****Y",
            "EB*G*IND*30***23*6000*****Y",
            "EB*G*IND*30***29*4100*****Y",
        ]
    elif member.endswith("000"):
        body += ["EB*6*IND*30"]
    else:
        body += ["AAA*Y**72*C"]
    return interchange("HB", "005010X279A1", "271", body)


def answer_276(payload: str) -> str:
    rows = segments_of(payload)
    claim_id = _first(rows, "TRN", "1")[2]
    levels = [row[3] for row in rows if row[0] == "HL"]
    head = [
        "BHT*0010*08*" + _first(rows, "BHT")[3] + "*20250303*1500*DG",
        "HL*1**20*1",
        "NM1*PR*2*AETNA*****PI*60054",
        "HL*2*1*21*1",
        "NM1*41*2*" + _first(rows, "NM1", "41")[3] + "*****46*" + _first(rows, "NM1", "41")[9],
        "HL*3*2*19*1",
        "NM1*1P*2*" + _first(rows, "NM1", "1P")[3] + "*****XX*" + _first(rows, "NM1", "1P")[9],
        f"HL*4*3*22*{1 if '23' in levels else 0}",
        "NM1*IL*1*RIVERA*ALEX****MI*" + _first(rows, "NM1", "IL")[9],
    ]
    if "23" in levels:
        head += ["HL*5*4*23", "NM1*QC*1*RIVERA*SAM"]
    if claim_id == "CLM-1001":
        status = ["STC*F1:65*20250210**180*90*20250212**20250212*EFT12345"]
    else:
        status = ["STC*A4:35*20250303"]
    body = [*head, f"TRN*2*{claim_id}", *status, f"REF*EJ*{claim_id}", "DTP*472*D8*20250114"]
    return interchange("HN", "005010X212", "277", body)


@dataclass
class Payer:
    """The running payer: its URL, what it received, and switches tests flip."""

    url: str
    received: list[str] = field(default_factory=list)
    form_fields: list[dict[str, str]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    """Every OAuth token issued, oldest first."""
    revoked: set[str] = field(default_factory=set)
    answer_raw: bool = False
    """Answer with the bare X12 body instead of a multipart form."""

    active_member: str = ACTIVE_MEMBER
    basic_user: str = BASIC_USER
    basic_password: str = BASIC_PASSWORD
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET

    @property
    def endpoint(self) -> str:
        return f"{self.url}/x12"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def config(self, **overrides: object) -> dict[str, object]:
        """``[adapters.x12]`` as a hospital would write it, pointing at this payer; the password
        comes by ``$env`` reference from X12_TEST_PASSWORD."""
        config: dict[str, object] = {
            "endpoint_url": self.endpoint,
            "auth": "basic",
            "username": BASIC_USER,
            "password": {"$env": "X12_TEST_PASSWORD"},
            "submitter_id": "CAREFRONT",
            "receiver_id": "TESTPAYER",
            "provider_npi": "1234567893",
            "provider_name": "Springfield General Hospital",
            "payer_ids": ["60054=60054"],
            "usage": "T",
            "timeout": 2.0,
        }
        config.update(overrides)
        return config


def _multipart_fields(content_type: str, body: bytes) -> dict[str, str]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields = {}
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str)
        assert isinstance(payload, bytes)
        fields[name] = payload.decode()
    return fields


def _multipart(fields: dict[str, str]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


def _handler(payer: Payer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # the test output stays quiet
            pass

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            # The client may have given up waiting (the SLOW rule), as a real one would.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.send_response(405)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _authorized(self) -> bool:
            header = self.headers.get("Authorization", "")
            if header.startswith("Bearer "):
                token = header.removeprefix("Bearer ")
                return token in payer.tokens and token not in payer.revoked
            expected = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
            return header == f"Basic {expected}"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/token":
                form = parse_qs(body.decode())
                expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {expected}" or form.get("grant_type") != [
                    "client_credentials"
                ]:
                    self._send(401, b'{"error":"invalid_client"}', "application/json")
                    return
                token = uuid.uuid4().hex
                payer.tokens.append(token)
                self._send(200, json.dumps({"access_token": token, "expires_in": 3600}).encode(), "application/json")
                return
            if not self._authorized():
                self._send(401, b"", "text/plain")
                return
            fields = _multipart_fields(self.headers["Content-Type"], body)
            payer.form_fields.append(fields)
            payload = fields["Payload"]
            payer.received.append(payload)
            rows = segments_of(payload)
            member = next((row[9] for row in rows if row[:2] == ["NM1", "IL"]), "")
            if member == "BUSY":
                self._send(503, b"", "text/plain", {"Retry-After": "7"})
                return
            if member == "SLOW":
                time.sleep(3)
            if member == "GARBAGE":
                answer = "this is no X12 at all"
            elif fields["PayloadType"].startswith("X12_270_"):
                answer = answer_270(payload)
            else:
                answer = answer_276(payload)
            if payer.answer_raw:
                self._send(200, answer.encode(), "application/edi-x12")
                return
            response = {
                "PayloadType": fields["PayloadType"].replace("Request", "Response").replace("270", "271"),
                "ProcessingMode": "RealTime",
                "PayloadID": fields["PayloadID"],
                "TimeStamp": "2025-03-03T15:00:00Z",
                "SenderID": fields["ReceiverID"],
                "ReceiverID": fields["SenderID"],
                "CORERuleVersion": "2.2.0",
                "ErrorCode": "Success",
                "ErrorMessage": "None",
                "Payload": answer,
            }
            self._send(200, _multipart(response), f"multipart/form-data; boundary={BOUNDARY}")

    return Handler


@pytest.fixture
def payer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Payer]:
    """The local payer, serving on an ephemeral port of 127.0.0.1 for one test."""
    monkeypatch.setenv("X12_TEST_PASSWORD", BASIC_PASSWORD)
    state = Payer("")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    host, port = server.server_address[:2]
    state.url = f"http://{host!s}:{port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
