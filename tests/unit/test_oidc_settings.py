"""``[identity.staff_oidc]`` and ``[identity.patient_oidc]``: read, with a clear message for every bad value."""

from __future__ import annotations

import pytest

from portal.settings import DEFAULT_MFA_AMR, OidcProvider, Settings, SettingsError

SECRET = "s" * 40
STAFF = {
    "issuer": "https://login.riverside.example.org/realms/staff",
    "client_id": "carefront",
    "client_secret": {"$env": "STAFF_OIDC_SECRET"},
    "roles": {"carefront-reps": "representative", "carefront-admins": "administrator"},
}


def load(identity: dict, **env: str) -> Settings:
    return Settings.from_document({"identity": identity}, {"CAREFRONT_SECRET_KEY": SECRET, **env}, None)


def test_no_identity_section_means_no_single_sign_on():
    settings = load({})
    assert settings.identity.staff_oidc is None
    assert settings.identity.patient_oidc is None


def test_staff_and_patient_providers_are_read_with_secrets_by_reference():
    patient = {"issuer": "https://login.riverside.example.org/", "client_id": "patients", "name": "MyChart"}
    settings = load({"staff_oidc": STAFF, "patient_oidc": patient}, STAFF_OIDC_SECRET="from-the-environment")
    assert settings.identity.staff_oidc == OidcProvider(
        issuer="https://login.riverside.example.org/realms/staff",
        client_id="carefront",
        client_secret="from-the-environment",
        roles={"carefront-reps": "representative", "carefront-admins": "administrator"},
        mfa="amr",
        mfa_amr=DEFAULT_MFA_AMR,
    )
    # The issuer is kept exactly as given: id_tokens must name it byte for byte.
    assert settings.identity.patient_oidc == OidcProvider(
        issuer="https://login.riverside.example.org/", client_id="patients", name="MyChart"
    )


def test_carefront_s_own_totp_and_loopback_http_are_accepted():
    staff = STAFF | {"issuer": "http://127.0.0.1:8000/-/sandbox/oidc", "mfa": "totp", "client_secret": "x"}
    assert load({"staff_oidc": staff}).identity.staff_oidc.mfa == "totp"


@pytest.mark.parametrize(
    ("identity", "setting", "expected"),
    [
        ({"staff_oidc": STAFF | {"issuer": "http://login.example.org"}}, "identity.staff_oidc.issuer", "https://"),
        ({"staff_oidc": STAFF | {"issuer": "login.example.org"}}, "identity.staff_oidc.issuer", "https://"),
        (
            {"staff_oidc": {k: v for k, v in STAFF.items() if k != "client_id"}},
            "identity.staff_oidc.client_id",
            "non-empty",
        ),
        ({"staff_oidc": STAFF | {"roles": {}}}, "identity.staff_oidc.roles", "group = role"),
        ({"staff_oidc": STAFF | {"roles": {"it": "root"}}}, "identity.staff_oidc.roles", "representative"),
        ({"staff_oidc": STAFF | {"mfa": "sms"}}, "identity.staff_oidc.mfa", "amr (trust the provider) or totp"),
        ({"staff_oidc": STAFF | {"mfa_amr": [], "mfa_acr": []}}, "identity.staff_oidc.mfa_amr", "at least one"),
        ({"staff_oidc": STAFF | {"scopes": ["email"]}}, "identity.staff_oidc.scopes", "includes openid"),
        ({"staff_oidc": STAFF | {"groups": "x"}}, "identity.staff_oidc.groups", "one of"),
        ({"patient_oidc": STAFF | {"client_secret": "x"}}, "identity.patient_oidc.roles", "one of"),
        ({"workforce": {}}, "identity.workforce", "[identity.staff_oidc]"),
    ],
)
def test_a_bad_value_is_named(identity, setting, expected):
    with pytest.raises(SettingsError) as error:
        load(identity, STAFF_OIDC_SECRET="x")
    assert error.value.setting == setting
    assert expected in error.value.expected


def test_a_secret_whose_variable_is_missing_names_the_setting():
    with pytest.raises(SettingsError, match="STAFF_OIDC_SECRET") as error:
        load({"staff_oidc": STAFF})
    assert error.value.setting == "identity.staff_oidc.client_secret"
