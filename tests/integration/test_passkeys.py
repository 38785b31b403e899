"""Passkeys end to end: registration and sign-in ceremonies against a software authenticator.

The authenticator below is real cryptography, not a mock: an EC P-256 key made here, and the bytes a
browser and authenticator would send (clientDataJSON, authenticatorData, a CBOR attestation object
in the "none" format, an ECDSA signature) built by hand as the WebAuthn spec lays them out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import cbor2
import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from litestar import Litestar
from litestar.serialization import encode_json

from portal.app import SESSION_COOKIE
from portal.identity import accounts
from portal.identity.passwords import hash_password
from portal.identity.tables import Passkey, SignInEvent

PUBLIC_URL = "https://testserver"
PASSWORD = "correct horse battery staple"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftwareAuthenticator:
    """A platform authenticator holding one discoverable P-256 credential, with user verification."""

    def __init__(self, origin: str = PUBLIC_URL) -> None:
        self.origin = origin
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = secrets.token_bytes(32)
        self.sign_count = 0
        self.user_handle = b""
        self.rp_id = ""

    def _cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def _authenticator_data(self, *, attested: bool) -> bytes:
        flags = 0x01 | 0x04 | (0x40 if attested else 0)  # user present, user verified, attested data
        data = hashlib.sha256(self.rp_id.encode()).digest() + bytes([flags]) + self.sign_count.to_bytes(4, "big")
        if attested:
            credential = len(self.credential_id).to_bytes(2, "big") + self.credential_id
            data += bytes(16) + credential + self._cose_public_key()
        return data

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}).encode()

    def create(self, options: dict[str, Any]) -> dict[str, Any]:
        """What navigator.credentials.create() gives the page, as JSON."""
        assert options["authenticatorSelection"]["userVerification"] == "required"
        self.rp_id = options["rp"]["id"]
        self.user_handle = unb64(options["user"]["id"])
        client_data = self._client_data("webauthn.create", options["challenge"])
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": self._authenticator_data(attested=True)})
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64(client_data),
                "attestationObject": b64(attestation),
                "transports": ["internal", "hybrid"],
            },
        }

    def get(self, options: dict[str, Any], *, count_step: int = 1) -> dict[str, Any]:
        """What navigator.credentials.get() gives the page, as JSON; the counter moves by ``count_step``."""
        assert options["rpId"] == self.rp_id
        self.sign_count += count_step
        client_data = self._client_data("webauthn.get", options["challenge"])
        authenticator_data = self._authenticator_data(attested=False)
        signature = self.key.sign(authenticator_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64(self.credential_id),
            "rawId": b64(self.credential_id),
            "type": "public-key",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64(client_data),
                "authenticatorData": b64(authenticator_data),
                "signature": b64(signature),
                "userHandle": b64(self.user_handle),
            },
        }


async def new_patient(now: datetime) -> dict[str, Any]:
    tag = secrets.token_hex(5)
    return await accounts.create(
        now,
        public_id=uuid.uuid4(),
        realm="patient",
        email=f"passkey-{tag}@example.org",
        email_verified_at=now,
        password_hash=hash_password(PASSWORD),
        given_name="Ana",
        family_name=f"Passkey{tag}",
        patient_id=f"pk-{tag}",
    )


async def sign_in(app: Litestar, client: httpx.AsyncClient, account: dict[str, Any], at: datetime) -> str:
    """A patient session that began at ``at``, as signing_in.complete leaves it."""
    key = secrets.token_hex(32)
    data = {
        "account_id": str(account["public_id"]),
        "realm": "patient",
        "acting_for": account["patient_id"],
        "access": "self",
        "signed_in_at": at.isoformat(),
    }
    await app.stores.get("sessions").set(key, encode_json(data), expires_in=15 * 60)
    client.cookies.set(SESSION_COOKIE, key, domain="testserver.local")
    return key


async def csrf(client: httpx.AsyncClient, path: str = "/account/security") -> dict[str, str]:
    """The CSRF header htmx would send, read from the page's <body hx-headers>."""
    page = await client.get(path)
    assert page.status_code == 200, page.text
    token = page.text.split('"x-csrftoken": "', 1)[1].split('"', 1)[0]
    return {"x-csrftoken": token}


async def add_passkey(client: httpx.AsyncClient, authenticator: SoftwareAuthenticator, name: str = "My phone"):
    headers = await csrf(client)
    options = await client.post("/account/security/passkeys/options", headers=headers, json={})
    assert options.status_code == 200, options.text
    answer = authenticator.create(options.json())
    return await client.post(
        "/account/security/passkeys", headers=headers, json={"credential": answer, "name": name}
    ), options.json()


async def passkey_sign_in(client: httpx.AsyncClient, authenticator: SoftwareAuthenticator, **how: int):
    headers = await csrf(client, "/")
    options = await client.post("/sign-in/passkey/options", headers=headers, json={})
    assert options.status_code == 200, options.text
    return await client.post(
        "/sign-in/passkey/verify", headers=headers, json={"credential": authenticator.get(options.json(), **how)}
    )


async def test_register_then_sign_in_with_the_passkey(portal, clock, browser):
    account = await new_patient(clock.now)
    authenticator = SoftwareAuthenticator()
    async with browser(portal) as client:
        await sign_in(portal, client, account, clock.now)
        added, options = await add_passkey(client, authenticator, name="  My   phone ")
        assert added.status_code == 200, added.text
        assert added.json() == {"redirect": "/account/security?done=passkey-added"}

        assert options["rp"] == {"id": "testserver", "name": portal.state["settings"].hospital.name}
        assert options["authenticatorSelection"]["residentKey"] == "preferred"
        handle = unb64(options["user"]["id"])
        assert account["email"].encode() not in handle
        assert account["public_id"].bytes not in handle

        page = await client.get("/account/security?done=passkey-added")
        assert "My phone" in page.text
        assert "Your passkey is ready" in page.text
        (stored,) = await Passkey.select().where(Passkey.account == account["id"]).run()
        assert stored["credential_id"] == b64(authenticator.credential_id)
        assert stored["transports"] == "internal,hybrid"
        assert stored["last_used_at"] is None

        # A second registration excludes the authenticator that already holds a passkey.
        again = await client.post("/account/security/passkeys/options", headers=await csrf(client), json={})
        assert [item["id"] for item in again.json()["excludeCredentials"]] == [stored["credential_id"]]

    clock.now += timedelta(hours=1)
    async with browser(portal) as stranger:
        signed_in = await passkey_sign_in(stranger, authenticator)
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["redirect"]
        security = await stranger.get("/account/security")
        assert security.status_code == 200
        assert "My phone" in security.text
    (used,) = await Passkey.select().where(Passkey.account == account["id"]).run()
    assert used["sign_count"] == 1
    assert used["last_used_at"] == clock.now
    event = await SignInEvent.select().where(SignInEvent.account == account["id"]).first().run()
    assert (event["method"], event["outcome"]) == ("passkey", "succeeded")


async def test_a_sign_count_that_goes_back_is_refused_as_a_possible_clone(portal, clock, caplog, browser):
    account = await new_patient(clock.now)
    authenticator = SoftwareAuthenticator()
    async with browser(portal) as client:
        await sign_in(portal, client, account, clock.now)
        added, _ = await add_passkey(client, authenticator)
        assert added.status_code == 200
    async with browser(portal) as client:
        assert (await passkey_sign_in(client, authenticator, count_step=5)).status_code == 200
    async with browser(portal) as clone:
        refused = await passkey_sign_in(clone, authenticator, count_step=-2)
        assert refused.status_code == 400
        assert refused.json()["message"].startswith("That passkey could not be used")
        assert (await clone.get("/account/security", follow_redirects=False)).status_code != 200
    assert "possible cloned authenticator" in caplog.text
    assert account["email"] not in caplog.text
    (stored,) = await Passkey.select().where(Passkey.account == account["id"]).run()
    assert stored["sign_count"] == 5
    refusal = (
        await SignInEvent.select()
        .where((SignInEvent.account == account["id"]) & (SignInEvent.outcome == "wrong_secret"))
        .first()
        .run()
    )
    assert refusal["method"] == "passkey"


async def test_a_challenge_works_once(portal, clock, browser):
    account = await new_patient(clock.now)
    authenticator = SoftwareAuthenticator()
    async with browser(portal) as client:
        await sign_in(portal, client, account, clock.now)
        assert (await add_passkey(client, authenticator))[0].status_code == 200
    async with browser(portal) as client:
        headers = await csrf(client, "/")
        options = (await client.post("/sign-in/passkey/options", headers=headers, json={})).json()
        first = authenticator.get(options)
        replay = authenticator.get(options)  # a fresh signature, over the same challenge
        assert (
            await client.post("/sign-in/passkey/verify", headers=headers, json={"credential": first})
        ).status_code == 200
        again = await client.post("/sign-in/passkey/verify", headers=headers, json={"credential": replay})
        assert again.status_code == 400
        assert again.json()["message"] == "That took too long. Please try again."


async def test_a_registration_challenge_works_once_and_not_for_long(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        await sign_in(portal, client, account, clock.now)
        headers = await csrf(client)
        options = (await client.post("/account/security/passkeys/options", headers=headers, json={})).json()
        first, second = SoftwareAuthenticator(), SoftwareAuthenticator()
        body = {"credential": first.create(options), "name": "one"}
        assert (await client.post("/account/security/passkeys", headers=headers, json=body)).status_code == 200
        body = {"credential": second.create(options), "name": "two"}
        assert (await client.post("/account/security/passkeys", headers=headers, json=body)).status_code == 400

        options = (await client.post("/account/security/passkeys/options", headers=headers, json={})).json()
        clock.now += timedelta(minutes=6)
        late = {"credential": second.create(options), "name": "late"}
        assert (await client.post("/account/security/passkeys", headers=headers, json=late)).status_code in {400, 403}
    assert [row["name"] for row in await Passkey.select().where(Passkey.account == account["id"]).run()] == ["one"]


async def test_an_answer_from_another_origin_is_refused(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        await sign_in(portal, client, account, clock.now)
        phished = SoftwareAuthenticator(origin="https://testserver.evil.example")
        added, _ = await add_passkey(client, phished)
        assert added.status_code == 400
        assert added.json()["message"] == "The passkey was not added. Please try again."
        assert not await Passkey.exists().where(Passkey.account == account["id"]).run()

        genuine = SoftwareAuthenticator()
        assert (await add_passkey(client, genuine))[0].status_code == 200
    genuine.origin = "https://testserver.evil.example"
    async with browser(portal) as client:
        assert (await passkey_sign_in(client, genuine)).status_code == 400


async def test_a_tampered_signature_or_unknown_key_is_refused(portal, clock, browser):
    account = await new_patient(clock.now)
    authenticator = SoftwareAuthenticator()
    async with browser(portal) as client:
        await sign_in(portal, client, account, clock.now)
        assert (await add_passkey(client, authenticator))[0].status_code == 200
    impostor = SoftwareAuthenticator()
    impostor.credential_id, impostor.rp_id, impostor.user_handle = (
        authenticator.credential_id,
        authenticator.rp_id,
        authenticator.user_handle,
    )
    async with browser(portal) as client:
        assert (await passkey_sign_in(client, impostor)).status_code == 400
        stranger = SoftwareAuthenticator()
        stranger.rp_id = "testserver"
        assert (await passkey_sign_in(client, stranger)).status_code == 400
        # Garbage in a well-formed request is a refusal, not a failure.
        headers = await csrf(client, "/")
        await client.post("/sign-in/passkey/options", headers=headers, json={})
        junk = await client.post("/sign-in/passkey/verify", headers=headers, json={"credential": {"id": "x"}})
        assert junk.status_code == 400


async def test_another_accounts_passkey_is_not_found(portal, clock, browser):
    owner, other = await new_patient(clock.now), await new_patient(clock.now)
    async with browser(portal) as client:
        await sign_in(portal, client, owner, clock.now)
        assert (await add_passkey(client, SoftwareAuthenticator()))[0].status_code == 200
    (passkey,) = await Passkey.select().where(Passkey.account == owner["id"]).run()
    async with browser(portal) as client:
        await sign_in(portal, client, other, clock.now)
        headers = await csrf(client)
        base = f"/account/security/passkeys/{passkey['id']}"
        assert (await client.get(base)).status_code == 404
        assert (await client.post(f"{base}/remove", headers=headers)).status_code == 404
        renamed = await client.post(f"{base}/name", headers=headers, data={"name": "mine now"})
        assert renamed.status_code == 404
        assert (await client.get("/account/security/passkeys/999999999")).status_code == 404
    assert await Passkey.exists().where((Passkey.id == passkey["id"]) & (Passkey.name == "My phone")).run()


async def test_rename_and_remove_a_passkey(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        await sign_in(portal, client, account, clock.now)
        assert (await add_passkey(client, SoftwareAuthenticator()))[0].status_code == 200
        (passkey,) = await Passkey.select().where(Passkey.account == account["id"]).run()
        base = f"/account/security/passkeys/{passkey['id']}"
        headers = await csrf(client)

        page = await client.get(base)
        assert page.status_code == 200
        assert "My phone" in page.text
        empty = await client.post(f"{base}/name", headers=headers, data={"name": "   "})
        assert empty.status_code == 422
        assert 'aria-invalid="true"' in empty.text
        assert "Enter a name for this passkey" in empty.text
        renamed = await client.post(f"{base}/name", headers=headers, data={"name": "Work laptop"})
        assert (renamed.status_code, renamed.headers["location"]) == (303, "/account/security?done=passkey-renamed")
        assert await Passkey.exists().where((Passkey.id == passkey["id"]) & (Passkey.name == "Work laptop")).run()

        removed = await client.post(f"{base}/remove", headers=headers)
        assert (removed.status_code, removed.headers["location"]) == (303, "/account/security?done=passkey-removed")
        assert not await Passkey.exists().where(Passkey.id == passkey["id"]).run()


async def test_adding_or_removing_a_passkey_needs_a_recent_sign_in(portal, clock, browser):
    account = await new_patient(clock.now)
    authenticator = SoftwareAuthenticator()
    async with browser(portal) as client:
        await sign_in(portal, client, account, clock.now)
        assert (await add_passkey(client, authenticator))[0].status_code == 200
        (passkey,) = await Passkey.select().where(Passkey.account == account["id"]).run()

        clock.now += timedelta(minutes=11)
        headers = await csrf(client)
        options = await client.post("/account/security/passkeys/options", headers=headers, json={})
        assert options.status_code == 403
        assert options.json()["confirm"] == "/account/confirm?next=%2Faccount%2Fsecurity"
        removed = await client.post(f"/account/security/passkeys/{passkey['id']}/remove", headers=headers)
        assert (removed.status_code, removed.headers["location"]) == (303, options.json()["confirm"])
        assert await Passkey.exists().where(Passkey.id == passkey["id"]).run()

        confirm = await client.get(options.json()["confirm"])
        assert confirm.status_code == 200
        assert 'autocomplete="current-password"' in confirm.text
        wrong = await client.post(
            "/account/confirm", headers=headers, data={"password": "not my password", "next": "/account/security"}
        )
        assert wrong.status_code == 422
        assert "That password is not right" in wrong.text
        assert "not my password" not in wrong.text
        right = await client.post(
            "/account/confirm", headers=headers, data={"password": PASSWORD, "next": "/account/security"}
        )
        assert (right.status_code, right.headers["location"]) == (303, "/account/security?done=confirmed")

        removed = await client.post(f"/account/security/passkeys/{passkey['id']}/remove", headers=headers)
        assert removed.status_code == 303
        assert not await Passkey.exists().where(Passkey.id == passkey["id"]).run()

        clock.now += timedelta(minutes=10, seconds=1)
        options = await client.post("/account/security/passkeys/options", headers=headers, json={})
        assert options.status_code == 403


async def test_nothing_changes_while_a_representative_acts_as_the_patient(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        key = await sign_in(portal, client, account, clock.now)
        assert (await add_passkey(client, SoftwareAuthenticator()))[0].status_code == 200
        (passkey,) = await Passkey.select().where(Passkey.account == account["id"]).run()

        store = portal.stores.get("sessions")
        data = json.loads(await store.get(key))
        await store.set(key, encode_json({**data, "impersonator": str(uuid.uuid4())}), expires_in=900)

        headers = await csrf(client)
        page = await client.get("/account/security")
        assert "Only the patient can change" in page.text
        options = await client.post("/account/security/passkeys/options", headers=headers, json={})
        assert options.status_code == 403
        assert "signed in as themselves" in options.json()["message"]
        for path in (f"/account/security/passkeys/{passkey['id']}/remove", "/account/security/two-step/start"):
            refused = await client.post(path, headers=headers)
            assert refused.status_code == 403, path
            assert "Not while acting for a patient" in refused.text
        renamed = await client.post(
            f"/account/security/passkeys/{passkey['id']}/name", headers=headers, data={"name": "x"}
        )
        assert renamed.status_code == 403
    assert await Passkey.exists().where((Passkey.id == passkey["id"]) & (Passkey.name == "My phone")).run()


async def test_passkey_sign_in_is_limited_per_address(portal, clock, browser):
    async with browser(portal) as client:
        headers = await csrf(client, "/")
        answers = [
            (await client.post("/sign-in/passkey/options", headers=headers, json={})).status_code for _ in range(61)
        ]
        assert answers[:60] == [200] * 60
        assert answers[60] == 429
        clock.now += timedelta(minutes=16)
        assert (await client.post("/sign-in/passkey/options", headers=headers, json={})).status_code == 200


async def test_the_security_page_is_for_signed_in_patients_only(portal, clock, browser):
    async with browser(portal) as client:
        anonymous = await client.get("/account/security", follow_redirects=False)
        assert anonymous.status_code == 303
        key = secrets.token_hex(32)
        staff = {"account_id": str(uuid.uuid4()), "realm": "staff", "role": "administrator"}
        await portal.stores.get("sessions").set(key, encode_json(staff), expires_in=900)
        client.cookies.set(SESSION_COOKIE, key, domain="testserver.local")
        assert (await client.get("/account/security")).status_code == 403


async def test_the_security_page_in_spanish(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        await sign_in(portal, client, account, clock.now)
        page = await client.get("/account/security", headers={"accept-language": "es"})
        assert page.status_code == 200
        assert "Llaves de acceso" in page.text
        assert "Verificación en dos pasos" in page.text
