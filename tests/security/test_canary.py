"""PROMISES.md 18: no PHI in logs, URLs or at rest in the clear — proven with canaries.

Ten kinds of fake identifier, each a string found nowhere else (names, MRN, account number,
statement code, email, phone, member ID, group number, address, card last-4), are planted in one
sandbox patient, their coverage and their payment. The patient then signs in with a password and
walks the portal: home, statements, each statement and its PDF, insurance, a card photo upload
whose file name carries the canaries, a payment with the card, the receipt, the account. Every log
record of every logger (message and arguments), every URL requested or redirected to, the audit
log's rows, and the card photo files at rest with their names are searched: no canary may appear.

tests/e2e/test_canary_storage.py runs the same patient in Chromium and searches the browser's
URLs, localStorage, sessionStorage and cookies.
"""

from __future__ import annotations

import io
import logging
import re
import secrets
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from carefront_sandbox.identifiers import format_id
from PIL import Image

from portal import jobs
from portal.audit.tables import AuditEvent
from portal.coverage import card_photos
from portal.identity import accounts
from portal.identity.passwords import hash_password

CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
TOKEN = re.compile(r'name="token" value="([^"]+)"')
STATEMENT = re.compile(r'href="(/statements/[^"/?#]+)"')
PASSWORD = "canary sings at dawn"
CARD = "4242 4242 4242 4242"  # the sandbox's success card; its last 4 are searched as a whole number
SANDBOX_KEY = 57
"""The sandbox patient that carries the canaries; other tests use the first patients of the hospital."""


def canaries() -> dict[str, str]:
    """One fresh, unmistakable value per kind of identifier."""
    tag = secrets.token_hex(3).upper()
    return {
        "given name": f"Canarygiven{tag}",
        "family name": f"Canaryfamily{tag}",
        "MRN": f"CMRN{tag}77",
        "account number": f"CACCT{tag}88",
        "statement code": f"CSC{tag}",
        "email": f"canary.{tag.lower()}@example.org",
        "phone": f"+1555{int(tag, 16) % 10_000_000:07d}",
        "member ID": f"CMEM{tag}99",
        "group number": f"CGRP{tag}66",
        "address": f"{int(tag, 16) % 9000 + 100} Canaryvale Lane{tag}",
    }


def plant(sandbox: Path, planted: dict[str, str], key: int = SANDBOX_KEY) -> None:
    """Write the canaries into the sandbox hospital's own rows for patient ``key``."""
    with closing(sqlite3.connect(sandbox)) as db, db:
        db.execute(
            "UPDATE patients SET given_name = ?, family_name = ?, mrn = ?, account_number = ?, email = ?,"
            " phone = ?, address = ? WHERE id = ?",
            (planted["given name"], planted["family name"], planted["MRN"], planted["account number"],
             planted["email"], planted["phone"], planted["address"], key),
        )  # fmt: skip
        db.execute("UPDATE statements SET account_number = ? WHERE patient_id = ?", (planted["account number"], key))
        newest = db.execute(
            "SELECT id FROM statements WHERE patient_id = ? ORDER BY issued_on DESC LIMIT 1", (key,)
        ).fetchone()
        db.execute("UPDATE statements SET statement_code = ? WHERE id = ?", (planted["statement code"], newest[0]))
        db.execute(
            "UPDATE coverages SET member_id = ?, group_number = ?, subscriber_name = ? WHERE patient_id = ?",
            (planted["member ID"], planted["group number"], f"{planted['given name']} {planted['family name']}",
             key),
        )  # fmt: skip


class Everything(logging.Handler):
    """Every record of every logger, rendered with its arguments and exception."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + repr(record.args) + repr(getattr(record, "__dict__", {})))


@pytest.fixture
def logs() -> Iterator[Everything]:
    """Every logger's records at INFO, the level the portal runs at (CAREFRONT_LOG_LEVEL's default).

    At DEBUG, database drivers (aiosqlite) log each statement with its parameters: never run
    production at DEBUG.
    """
    handler = Everything()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def card_photo(planted: dict[str, str]) -> bytes:
    """A small JPEG whose EXIF description carries canaries (the portal strips EXIF)."""
    image = Image.new("RGB", (640, 400), (200, 220, 240))
    exif = Image.Exif()
    exif[0x010E] = f"{planted['member ID']} {planted['family name']}"  # ImageDescription
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def found_in(text: str, planted: dict[str, str]) -> list[str]:
    lowered = text.lower()
    hits = [kind for kind, value in planted.items() if value.lower() in lowered]
    if re.search(r"(?<![\dA-Fa-f])4242(?![\dA-Fa-f])", text):
        hits.append("card last-4")
    return hits


async def test_no_canary_in_logs_urls_audit_or_files_at_rest(app, logs):
    settings = app.state["settings"]
    host = app.state["plugin_host"]
    planted = canaries()
    sandbox = next(settings.data_dir.glob("sandbox-*.sqlite3"))
    plant(sandbox, planted)
    patient_id = format_id("pt", SANDBOX_KEY)
    patient = await host.ehr.read_patient(patient_id)
    assert patient.mrn == planted["MRN"], "the canaries reached the EHR"
    now = host.clock()
    await accounts.create(
        now,
        public_id=uuid.uuid4(),
        realm="patient",
        email=planted["email"],
        email_verified_at=now,
        password_hash=hash_password(PASSWORD),
        given_name=planted["given name"],
        family_name=planted["family name"],
        patient_id=patient_id,
    )
    urls: list[str] = []

    async def remember(response: httpx.Response) -> None:
        urls.append(str(response.request.url))
        if location := response.headers.get("location"):
            urls.append(location)

    transport = httpx.ASGITransport(app=app, client=("10.18.18.18", 40000))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://testserver", event_hooks={"response": [remember]}
    ) as client:

        async def post(path: str, data: dict[str, str], page: str | None = None, **extra) -> httpx.Response:
            token = CSRF.search((await client.get(page or path)).text).group(1)
            return await client.post(path, data={"_csrf_token": token, **data}, **extra)

        signed_in = await post("/sign-in", {"email": planted["email"], "password": PASSWORD})
        assert signed_in.status_code == 303, signed_in.text
        assert (await client.get("/home")).status_code == 200
        listing = await client.get("/statements")
        for path in dict.fromkeys(STATEMENT.findall(listing.text)):
            assert (await client.get(path)).status_code == 200
            await client.get(f"{path}/pdf")
        insurance = await client.get("/insurance")
        assert insurance.status_code == 200
        assert planted["member ID"] in insurance.text, "the patient sees their own member ID"
        cards = await client.get("/insurance/cards")
        token = CSRF.search(cards.text).group(1)
        name = f"{planted['family name']}-{planted['member ID']}-{planted['MRN']}.jpg"
        upload = await client.post(
            "/insurance/cards",
            data={"_csrf_token": token},
            files={"front": (name, card_photo(planted), "image/jpeg")},
        )
        assert upload.status_code in {200, 303}, upload.text
        pay = await client.get("/pay")
        fields = {"token": TOKEN.search(pay.text).group(1), "choice": "other", "amount": "12.34"}
        statement = re.search(r'name="statement" value="([^"]*)"', pay.text)
        fields["statement"] = statement.group(1) if statement else ""
        started = await post("/pay", fields)
        assert started.status_code == 303, started.text
        checkout = started.headers["location"]
        card = {"number": CARD, "expiry": "12/40", "cvc": "123"}
        paid = await post(checkout, card, page=checkout)
        assert paid.status_code == 303, paid.text
        returned = await client.get(paid.headers["location"])
        receipt = await client.get(returned.headers["location"])
        assert "4242" in receipt.text, "the receipt names the card by its last 4 digits"
        await jobs.run_once(host, settings)
        await jobs.run_once(host, settings)
        for path in ("/payments", "/account", "/appointments"):
            await client.get(path)

    assert urls, "the journey made requests"
    problems = {
        "logs": found_in("\n".join(logs.lines), planted),
        "URLs": found_in("\n".join(urls), planted),
        # Without the row ids: the 4,242nd row of a long run is no card number.
        "audit log": found_in(
            repr(await AuditEvent.select(*AuditEvent.all_columns(exclude=[AuditEvent.id])).run()), planted
        ),
    }
    for path in (settings.data_dir / card_photos.FOLDER).rglob("*"):
        problems.setdefault("card photo files", []).extend(found_in(path.name, planted))
        if path.is_file():
            problems["card photo files"] += found_in(path.read_bytes().decode("latin-1"), planted)
    assert logs.lines, "logging was captured"
    assert not any(problems.values()), f"canaries found: {problems}"
