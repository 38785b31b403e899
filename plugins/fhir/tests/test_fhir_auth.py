"""SMART Backend Services against the test server's token endpoint, which checks the client
assertion's signature with the public key the test registered, and its iss, sub, aud, exp and jti."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from carefront_fhir.auth import ASSERTION_LIFETIME, SmartAuth
from carefront_fhir.config import read_settings
from carefront_fhir.ehr import FhirEHR
from carefront_sdk.errors import Unavailable
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MakeEHR = Callable[..., FhirEHR]

ES_CLIENT_ID = "carefront-portal-es"


def _claims(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, claims, _ = token.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return decode(header), decode(claims)


async def test_the_token_is_bought_once_and_reused(make_ehr: MakeEHR, server: Any) -> None:
    ehr = make_ehr()
    await asyncio.gather(*(ehr.read_patient("pt-1") for _ in range(20)))
    await ehr.list_coverages("pt-1")
    assert server.stats()["tokens_issued"] == 1


async def test_a_token_is_refreshed_before_it_expires(make_ehr: MakeEHR, server: Any) -> None:
    server.control("config", {"token_lifetime": 2})
    ehr = make_ehr()
    await ehr.read_patient("pt-1")
    await ehr.read_patient("pt-1")
    assert server.stats()["tokens_issued"] == 1
    await asyncio.sleep(2.0)
    await ehr.read_patient("pt-1")
    stats = server.stats()
    assert stats["tokens_issued"] == 2
    assert all(item["status"] != 401 for item in stats["requests"]), "refreshed before the server refused it"


async def test_a_revoked_token_is_replaced_once(make_ehr: MakeEHR, server: Any) -> None:
    ehr = make_ehr()
    await ehr.read_patient("pt-1")
    server.control("revoke")
    assert (await ehr.read_patient("pt-1")).id == "pt-1"
    assert server.stats()["tokens_issued"] == 2
    assert [item["status"] for item in server.requests("GET", "Patient/pt-1")] == [200, 401, 200]


async def test_the_token_endpoint_is_discovered_or_configured(make_ehr: MakeEHR, server: Any) -> None:
    assert (await make_ehr(token_url="").read_patient("pt-1")).id == "pt-1"
    assert (await make_ehr(token_url=f"{server.url}/auth/token").read_patient("pt-1")).id == "pt-1"
    with pytest.raises(Unavailable, match="token endpoint answered 404"):
        await make_ehr(token_url=f"{server.url}/elsewhere/token").read_patient("pt-1")


async def test_es384_with_the_key_from_the_environment(
    make_ehr: MakeEHR, server: Any, ec_key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREFRONT_FHIR_TEST_KEY", ec_key.private_pem)
    ehr = make_ehr(
        client_id=ES_CLIENT_ID, key_id="", algorithm="ES384", private_key={"$env": "CAREFRONT_FHIR_TEST_KEY"}
    )
    assert (await ehr.read_patient("pt-1")).id == "pt-1"


async def test_a_key_the_ehr_does_not_know_is_unavailable_and_unhealthy(
    make_ehr: MakeEHR, server: Any, tmp_path: Any
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "stranger.pem"
    path.write_bytes(
        stranger.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ehr = make_ehr(private_key={"$file": str(path)})
    with pytest.raises(Unavailable, match=r"answered 401 \(invalid_client\)"):
        await ehr.read_patient("pt-1")
    health = await ehr.health()
    assert not health.ok
    assert "invalid_client" in health.detail
    assert (await make_ehr().health()).ok


async def test_without_auth_a_protected_server_refuses_and_an_open_one_answers(make_ehr: MakeEHR, server: Any) -> None:
    with pytest.raises(Unavailable, match="answered 401"):
        await make_ehr(auth="none", client_id="", private_key="").read_patient("pt-1")
    server.control("reset")
    server.control("load", {"resources": [{"resourceType": "Patient", "id": "open", "birthDate": "1990-01-01"}]})
    assert (await make_ehr(auth="none", client_id="", private_key="").read_patient("open")).id == "open"
    assert server.stats()["token_requests"] == 0


async def test_the_client_assertion_follows_backend_services(rsa_key: Any) -> None:
    settings = read_settings(
        {
            "base_url": "https://ehr.example/fhir",
            "client_id": "carefront-portal",
            "key_id": "kid-1",
            "private_key": rsa_key.private_pem,
            "mrn_system": "urn:mrn",
            "account_system": "urn:account",
            "statement_code_system": "urn:statement",
        }
    )
    async with httpx.AsyncClient() as http:
        auth = SmartAuth(settings, http)
        first, second = auth._assertion("https://ehr.example/token"), auth._assertion("https://ehr.example/token")
    header, claims = _claims(first)
    assert header == {"alg": "RS384", "kid": "kid-1", "typ": "JWT"}
    assert claims["iss"] == claims["sub"] == "carefront-portal"
    assert claims["aud"] == "https://ehr.example/token"
    assert 0 < claims["exp"] - claims["iat"] == ASSERTION_LIFETIME <= 300
    assert claims["jti"] != _claims(second)[1]["jti"], "every assertion has its own jti"
