"""What the identity domain stores: accounts, their ways in, sessions, one-time codes and throttles."""

from piccolo.columns import UUID, BigInt, Boolean, Bytea, ForeignKey, Integer, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.table import Table


class Account(Table, tablename="account"):
    """Someone who signs in: a patient (or a proxy acting for patients), or a member of staff.

    ``realm`` keeps the two apart: a staff account never opens patient pages as itself, and a
    patient account never reaches a staff route. ``(realm, email)`` and a patient's ``patient_id``
    are unique (indexes in the migration).
    """

    public_id = UUID(unique=True, index=True)
    """The id sessions, links and audit rows name; the serial ``id`` stays internal."""
    realm = Varchar(length=16)
    """patient or staff."""
    email = Varchar(length=254, null=True, default=None, index=True)
    """Lower-cased."""
    email_verified_at = Timestamptz(null=True, default=None)
    phone = Varchar(length=32, null=True, default=None)
    """E.164, e.g. +15550100123."""
    phone_verified_at = Timestamptz(null=True, default=None)
    password_hash = Text(null=True, default=None)
    """argon2id; None for accounts that sign in only by code, passkey or single sign-on."""
    given_name = Varchar(length=100)
    family_name = Varchar(length=100)
    patient_id = Varchar(length=64, null=True, default=None, index=True)
    """The EHR's id of the account holder when they are a patient themselves."""
    role = Varchar(length=32, null=True, default=None)
    """Staff only: representative, supervisor or administrator."""
    language = Varchar(length=8, default="en")
    paperless = Boolean(default=False)
    totp_secret = Text(null=True, default=None)
    """Encrypted with the portal's secret key."""
    totp_enabled_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


class OidcLink(Table, tablename="oidc_link"):
    """An account's identity at an OpenID provider: linked by (issuer, subject), never by email."""

    account = ForeignKey(Account, on_delete=OnDelete.restrict)
    issuer = Varchar(length=255)
    subject = Varchar(length=255)
    created_at = Timestamptz()


class OneTimeCode(Table, tablename="one_time_code"):
    """A short code sent to an email address or phone: to verify it, to sign in, or to reset a password.

    Only a keyed hash of the code is stored; a code expires, allows a few attempts, and works once.
    """

    purpose = Varchar(length=32)
    destination = Varchar(length=254, index=True)
    code_hash = Varchar(length=64)
    account = ForeignKey(Account, null=True, default=None, on_delete=OnDelete.restrict)
    attempts = Integer(default=0)
    expires_at = Timestamptz()
    consumed_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


class Throttle(Table, tablename="throttle"):
    """A counter per key (e.g. sign-in attempts for one account, or from one address) in a time window."""

    key = Varchar(length=200, unique=True, index=True)
    window_started = BigInt()
    """Unix seconds: plain integers compare the same way in SQLite and PostgreSQL raw SQL."""
    count = Integer(default=0)


class SignInEvent(Table, tablename="sign_in_event"):
    """Every sign-in attempt with an account, shown to its holder as sign-in history."""

    account = ForeignKey(Account, on_delete=OnDelete.restrict, index=True)
    occurred_at = Timestamptz()
    method = Varchar(length=32)
    """password, code, passkey, oidc, totp."""
    outcome = Varchar(length=32)
    """succeeded, wrong_secret, locked, throttled."""
    address = Varchar(length=64)
    user_agent = Varchar(length=200)


class WebSession(Table, tablename="web_session"):
    """A server-side session: the browser holds only its random key (PROMISES.md 3)."""

    key = Varchar(length=64, unique=True, index=True)
    data = Bytea()
    created_at = Timestamptz()
    expires_at = Timestamptz(index=True)
    account_public_id = Varchar(length=36, null=True, default=None, index=True)
    """Whose session this is, so the account page can list and end them."""


class Passkey(Table, tablename="passkey"):
    """A WebAuthn credential an account holder registered (a phone's or a security key's passkey)."""

    account = ForeignKey(Account, on_delete=OnDelete.restrict, index=True)
    credential_id = Varchar(length=512, unique=True, index=True)
    """base64url, as the authenticator gave it."""
    public_key = Bytea()
    sign_count = BigInt(default=0)
    transports = Varchar(length=200, default="")
    name = Varchar(length=100)
    """What the holder calls it, e.g. "My phone"."""
    created_at = Timestamptz()
    last_used_at = Timestamptz(null=True, default=None)


class ProxyInvitation(Table, tablename="proxy_invitation"):
    """A patient's invitation to a caregiver or billing delegate, sent by email, accepted once."""

    patient_id = Varchar(length=64, index=True)
    invited_by = ForeignKey(Account, on_delete=OnDelete.restrict)
    email = Varchar(length=254)
    access = Varchar(length=16)
    """caregiver or billing."""
    token_hash = Varchar(length=64, unique=True)
    expires_at = Timestamptz()
    accepted_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


class ProxyGrant(Table, tablename="proxy_grant"):
    """An account may act for a patient other than its holder, with the access given.

    A guardian grant comes from the EHR (the patient's related persons name the account holder as
    guardian); caregiver and billing grants come from the patient's invitation. One live grant per
    (proxy, patient) (an index in the migration); revoking keeps the row for the record.
    """

    proxy = ForeignKey(Account, on_delete=OnDelete.restrict, index=True)
    patient_id = Varchar(length=64, index=True)
    access = Varchar(length=16)
    """guardian, caregiver or billing."""
    source = Varchar(length=16)
    """ehr or invitation."""
    invitation = ForeignKey(ProxyInvitation, null=True, default=None, on_delete=OnDelete.restrict)
    created_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)


class RecoveryCode(Table, tablename="recovery_code"):
    """A single-use code that stands in for the authenticator app when the phone is lost.

    Ten are made when two-step verification is turned on (or made anew); only an HMAC is kept.
    """

    account = ForeignKey(Account, on_delete=OnDelete.restrict, index=True)
    code_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
