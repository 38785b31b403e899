"""Passkeys (WebAuthn): registering one for an account, signing in with one, naming and removing them.

A service: it knows the Passkey table and the WebAuthn rules (through py_webauthn), nothing of HTTP.
The relying party is the portal's public address: its host is the RP id, its origin the only origin
accepted. Sign-in uses discoverable credentials, so nobody types a username; the authenticator
returns the account's user handle, a value derived from the account's random public id that names
neither the person nor the id itself. User verification is required, so a passkey is two factors.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from portal.identity import accounts, throttle
from portal.identity.tables import Account, Passkey
from portal.settings import Settings

log = logging.getLogger("carefront.passkeys")

CEREMONY_TIMEOUT = timedelta(minutes=5)
"""How long the browser may take, and how long a challenge stays usable."""
NAME_LENGTH = 100
# A signature cannot be guessed, so the limit only keeps one address from flooding the endpoints; a
# sign-in counts twice (options, then the answer).
ADDRESS_LIMIT = throttle.Limit(attempts=60, window=timedelta(minutes=15))
ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
_HANDLE_LABEL = b"carefront passkey user handle\x00"


class PasskeyRefused(Exception):
    """The browser's answer does not prove what it should; the message is for the log, not the person."""


@dataclass(frozen=True, slots=True)
class RelyingParty:
    id: str
    """The host of the public URL, e.g. portal.riverside.example.org."""
    origin: str
    """scheme://host[:port], the only origin a ceremony may come from."""
    name: str

    @classmethod
    def of(cls, settings: Settings) -> RelyingParty:
        parts = urlsplit(settings.public_url)
        return cls(id=parts.hostname or "", origin=f"{parts.scheme}://{parts.netloc}", name=settings.hospital.name)


@dataclass(frozen=True, slots=True)
class Ceremony:
    """Options for the browser (JSON text) and the challenge the answer must sign."""

    options_json: str
    challenge: bytes


def user_handle(account: dict[str, Any]) -> bytes:
    """The account's WebAuthn user id: stable, random-looking, and neither the email nor the public id."""
    return hashlib.sha256(_HANDLE_LABEL + str(account["public_id"]).encode()).digest()


async def of_account(account_id: int) -> list[dict[str, Any]]:
    """The account's passkeys, oldest first."""
    return await Passkey.select().where(Passkey.account == account_id).order_by(Passkey.created_at).run()


def registration_ceremony(settings: Settings, account: dict[str, Any], existing: list[dict[str, Any]]) -> Ceremony:
    """Options to create a passkey for ``account``; authenticators that already hold one are excluded."""
    party = RelyingParty.of(settings)
    full_name = f"{account['given_name']} {account['family_name']}".strip()
    options = generate_registration_options(
        rp_id=party.id,
        rp_name=party.name,
        user_id=user_handle(account),
        user_name=account["email"] or full_name,
        user_display_name=full_name or account["email"],
        timeout=int(CEREMONY_TIMEOUT.total_seconds() * 1000),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[_descriptor(passkey) for passkey in existing],
        supported_pub_key_algs=ALGORITHMS,
    )
    return Ceremony(options_to_json(options), options.challenge)


async def register(
    settings: Settings, account: dict[str, Any], answer: Any, challenge: bytes, name: str, now: datetime
) -> dict[str, Any]:
    """Check the browser's answer to :func:`registration_ceremony` and keep the new passkey."""
    party = RelyingParty.of(settings)
    try:
        credential = parse_registration_credential_json(answer)
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=party.id,
            expected_origin=party.origin,
            require_user_verification=True,
            supported_pub_key_algs=ALGORITHMS,
        )
    except (WebAuthnException, ValueError, TypeError) as error:
        raise PasskeyRefused(f"registration not verified: {type(error).__name__}") from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if len(credential_id) > Passkey.credential_id.length or await Passkey.exists().where(
        Passkey.credential_id == credential_id
    ):
        raise PasskeyRefused("credential id too long or already registered")
    transports = ",".join(transport.value for transport in credential.response.transports or [])
    (row,) = (
        await Passkey.insert(
            Passkey(
                account=account["id"],
                credential_id=credential_id,
                public_key=verified.credential_public_key,
                sign_count=verified.sign_count,
                transports=transports[:200],
                name=clean_name(name),
                created_at=now,
            )
        )
        .returning(*Passkey.all_columns())
        .run()
    )
    return row


def authentication_ceremony(settings: Settings) -> Ceremony:
    """Options to sign in with any passkey for this portal: the authenticator says whose it is."""
    options = generate_authentication_options(
        rp_id=RelyingParty.of(settings).id,
        timeout=int(CEREMONY_TIMEOUT.total_seconds() * 1000),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return Ceremony(options_to_json(options), options.challenge)


async def authenticate(
    settings: Settings, answer: Any, challenge: bytes, *, address: str, user_agent: str, now: datetime
) -> dict[str, Any]:
    """The patient account whose passkey signed ``challenge``, after checking signature and sign count.

    A sign count that does not grow (when the authenticator keeps one) means two copies of the key
    exist: the sign-in is refused and the passkey's holder sees it in their history.
    """
    party = RelyingParty.of(settings)
    try:
        credential = parse_authentication_credential_json(answer)
    except (WebAuthnException, ValueError, TypeError) as error:
        raise PasskeyRefused(f"assertion not readable: {type(error).__name__}") from None
    passkey = await Passkey.select().where(Passkey.credential_id == credential.id).first().run()
    if passkey is None:
        raise PasskeyRefused("unknown credential")
    account = await Account.select().where(Account.id == passkey["account"]).first().run()
    if account is None or account["realm"] != "patient":
        raise PasskeyRefused("credential of no patient account")
    if credential.response.user_handle != user_handle(account):
        raise PasskeyRefused("user handle does not match the credential's account")
    try:
        # The sign count is compared below, so that a cloned key is told apart from a bad signature.
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=party.id,
            expected_origin=party.origin,
            credential_public_key=bytes(passkey["public_key"]),
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, TypeError) as error:
        raise PasskeyRefused(f"assertion not verified: {type(error).__name__}") from None
    stored, presented = passkey["sign_count"], verified.new_sign_count
    if (stored or presented) and presented <= stored:
        log.warning(
            "passkey %s of account %s: sign count %d after %d; possible cloned authenticator, sign-in refused",
            passkey["id"],
            account["public_id"],
            presented,
            stored,
        )
        await accounts.record(account["id"], "passkey", accounts.Outcome.WRONG_SECRET, address, user_agent, now)
        raise PasskeyRefused("sign count did not increase")
    await (
        Passkey.update({Passkey.sign_count: presented, Passkey.last_used_at: now})
        .where(Passkey.id == passkey["id"])
        .run()
    )
    return account


async def rename(account_id: int, passkey_id: int, name: str) -> bool:
    """Give one of the account's passkeys a new name; False when it has no such passkey."""
    renamed = (
        await Passkey.update({Passkey.name: clean_name(name)})
        .where((Passkey.id == passkey_id) & (Passkey.account == account_id))
        .returning(Passkey.id)
        .run()
    )
    return bool(renamed)


async def remove(account_id: int, passkey_id: int) -> bool:
    """Forget one of the account's passkeys; False when it has no such passkey."""
    removed = (
        await Passkey.delete()
        .where((Passkey.id == passkey_id) & (Passkey.account == account_id))
        .returning(Passkey.id)
        .run()
    )
    return bool(removed)


def clean_name(name: str) -> str:
    """The name as shown: one line, trimmed, at most 100 characters (empty stays empty)."""
    return " ".join(name.split())[:NAME_LENGTH]


def _descriptor(passkey: dict[str, Any]) -> PublicKeyCredentialDescriptor:
    transports = []
    for value in filter(None, passkey["transports"].split(",")):
        try:
            transports.append(AuthenticatorTransport(value))
        except ValueError:
            continue  # a transport this version of the library does not know
    return PublicKeyCredentialDescriptor(id=base64url_to_bytes(passkey["credential_id"]), transports=transports or None)
