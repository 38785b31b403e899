"""Typed settings, read once at start-up from ``carefront.toml`` and the environment.

Precedence: environment variable > ``carefront.toml`` > default. Any value in the file may be a
reference (``{ "$env" = "NAME" }``) so secrets stay out of it. A missing or invalid setting raises
:class:`SettingsError` naming the setting and what was expected, and the portal does not start.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carefront_sdk.adapters import Port

from portal.access import STAFF_ROLES

SUPPORTED_LANGUAGES = ("en", "es")
MIN_SECRET_LENGTH = 32


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it and what was expected."""

    def __init__(self, setting: str, expected: str) -> None:
        super().__init__(f"setting {setting}: {expected}")
        self.setting = setting
        self.expected = expected


@dataclass(frozen=True, slots=True)
class Hospital:
    name: str = "Riverside Community Hospital"
    billing_phone: str = "+1 (555) 010-4400"
    time_zone: str = "America/Chicago"
    logo: Path | None = None
    """An image file shown beside the name; served from ``/branding/``."""
    languages: tuple[str, ...] = SUPPORTED_LANGUAGES
    default_language: str = "en"
    alerts_email: str | None = None
    """Where the portal tells staff about work it gave up on (an outbox message parked)."""


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """PROMISES.md 3: sessions end after 15 minutes idle and 12 hours in all."""

    idle: timedelta = timedelta(minutes=15)
    absolute: timedelta = timedelta(hours=12)


MFA_METHODS = ("amr", "totp")
DEFAULT_MFA_AMR = ("mfa", "otp", "hwk")
"""RFC 8176 methods that prove a second factor: any multi-factor, a one-time code, a hardware key."""


@dataclass(frozen=True, slots=True)
class Jobs:
    """Background work: the outbox relay and the other periodic jobs of ``portal.jobs``."""

    in_process: bool = True
    """Run them inside the web process (one process on SQLite); false when ``carefront worker`` runs them."""
    interval_seconds: float = 5.0
    outbox_max_attempts: int = 8


@dataclass(frozen=True, slots=True)
class Payments:
    """Paying bills: how long a pay link a representative sends stays valid."""

    pay_link_days: int = 7


MAX_ACTING_MINUTES = 30
"""PROMISES.md 7: acting as a patient ends after at most 30 minutes."""


@dataclass(frozen=True, slots=True)
class Console:
    """The representatives' console: ``[console]``."""

    acting_minutes: int = MAX_ACTING_MINUTES
    """How long a representative may act as a patient before it ends by itself (1 to 30)."""
    question_reply_hours: int = 48
    """The service level for billing questions: a reply is due this many hours after one is asked."""


@dataclass(frozen=True, slots=True)
class Scheduling:
    """``[scheduling]``: the hospital's rules for appointments changed online, and when reminders go out."""

    cancel_cutoff_hours: int = 24
    """Within this many hours of the visit, cancelling or moving it online is refused: the patient calls."""
    reminder_hours: tuple[int, ...] = (24, 2)
    """Hours before a visit booked through the portal at which a reminder is sent."""
    phone: str | None = None
    """Whom patients call about appointments; unset: the phone of the appointment's location."""


@dataclass(frozen=True, slots=True)
class OidcProvider:
    """An OpenID Connect provider people sign in with: ``[identity.staff_oidc]`` or ``[identity.patient_oidc]``."""

    issuer: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    """None for a public client (PKCE only); give it by reference: ``{ "$env" = "NAME" }``."""
    name: str | None = None
    """Shown on the sign-in button, "Sign in with <name>"; without it the button names no provider."""
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    groups_claim: str = "groups"
    """Staff only: the id_token claim that lists the person's groups."""
    roles: Mapping[str, str] = field(default_factory=dict)
    """Staff only: group → representative, supervisor or administrator."""
    mfa: str = "amr"
    """Staff only: ``amr`` trusts the provider's ``amr``/``acr``; ``totp`` asks for Carefront's own code."""
    mfa_amr: tuple[str, ...] = DEFAULT_MFA_AMR
    """With ``mfa = "amr"``: any of these in ``amr`` proves a second factor."""
    mfa_acr: tuple[str, ...] = ()
    """With ``mfa = "amr"``: an ``acr`` among these proves it too."""


@dataclass(frozen=True, slots=True)
class Identity:
    staff_oidc: OidcProvider | None = None
    patient_oidc: OidcProvider | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    secret_key: str
    database_url: str
    data_dir: Path
    public_url: str
    hospital: Hospital = field(default_factory=Hospital)
    ports: Mapping[Port, str] = field(default_factory=dict)
    """Which registered adapter serves each port; a port left out takes the only one offered."""
    adapters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Raw ``[adapters.<name>]`` sections, checked against each adapter's declared fields."""
    plugins_allow: tuple[str, ...] | None = None
    plugins_block: tuple[str, ...] = ()
    adapter_timeout_seconds: float = 10.0
    session: SessionPolicy = field(default_factory=SessionPolicy)
    identity: Identity = field(default_factory=Identity)
    jobs: Jobs = field(default_factory=Jobs)
    scheduling: Scheduling = field(default_factory=Scheduling)
    payments: Payments = field(default_factory=Payments)
    console: Console = field(default_factory=Console)
    plans: Plans = field(default_factory=lambda: Plans())
    config_path: Path | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``CAREFRONT_CONFIG`` (default ``./carefront.toml``) and the environment."""
        env = os.environ if environ is None else environ
        config_path = _config_path(env)
        document = _read_toml(config_path) if config_path else {}
        return cls.from_document(document, env, config_path)

    @classmethod
    def from_document(
        cls, document: Mapping[str, Any], env: Mapping[str, str], config_path: Path | None = None
    ) -> Settings:
        base = config_path.parent if config_path else Path.cwd()
        server = _section(document, "server")
        hospital_doc = _section(document, "hospital")

        def pick(setting: str, env_name: str, section: Mapping[str, Any], key: str) -> Any:
            if env_name in env:
                return env[env_name]
            return _dereference(f"{setting}", section.get(key), env)

        data_dir = Path(pick("server.data_dir", "CAREFRONT_DATA_DIR", server, "data_dir") or base / "var")
        if not data_dir.is_absolute():
            data_dir = base / data_dir
        database_url = pick("server.database_url", "DATABASE_URL", server, "database_url") or (
            f"sqlite:///{data_dir / 'carefront.sqlite3'}"
        )
        _check_database_url(database_url)
        secret_key = pick("server.secret_key", "CAREFRONT_SECRET_KEY", server, "secret_key")
        if not isinstance(secret_key, str) or len(secret_key) < MIN_SECRET_LENGTH:
            raise SettingsError(
                "server.secret_key (CAREFRONT_SECRET_KEY)",
                f"at least {MIN_SECRET_LENGTH} characters of random text, e.g. the output of "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'",
            )
        public_url = str(pick("server.public_url", "CAREFRONT_PUBLIC_URL", server, "public_url") or "")
        public_url = public_url.rstrip("/") or "http://127.0.0.1:8000"
        if urlsplit(public_url).scheme not in {"http", "https"} or not urlsplit(public_url).netloc:
            raise SettingsError("server.public_url (CAREFRONT_PUBLIC_URL)", f"an http(s) URL, got {public_url!r}")
        timeout = server.get("adapter_timeout_seconds", 10.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise SettingsError("server.adapter_timeout_seconds", f"a positive number of seconds, got {timeout!r}")

        plugins = _section(document, "plugins")
        allow = _name_list("CAREFRONT_PLUGINS", env) if "CAREFRONT_PLUGINS" in env else plugins.get("allow")
        block = (
            _name_list("CAREFRONT_DISABLE_PLUGINS", env)
            if "CAREFRONT_DISABLE_PLUGINS" in env
            else plugins.get("block", [])
        )
        return cls(
            secret_key=secret_key,
            database_url=database_url,
            data_dir=data_dir,
            public_url=public_url,
            hospital=_hospital(hospital_doc, base),
            ports=_ports(_section(document, "ports")),
            adapters={name: dict(values) for name, values in _section(document, "adapters").items()},
            plugins_allow=None if allow is None else tuple(_strings("plugins.allow", allow)),
            plugins_block=tuple(_strings("plugins.block", block)),
            adapter_timeout_seconds=float(timeout),
            identity=_identity(_section(document, "identity"), env),
            jobs=_jobs(_section(document, "jobs"), env),
            scheduling=_scheduling(_section(document, "scheduling")),
            payments=_payments(_section(document, "payments")),
            console=_console(_section(document, "console")),
            plans=_plans(_section(document, "plans")),
            config_path=config_path,
        )


def _config_path(env: Mapping[str, str]) -> Path | None:
    if "CAREFRONT_CONFIG" in env:
        path = Path(env["CAREFRONT_CONFIG"])
        if not path.is_file():
            raise SettingsError("CAREFRONT_CONFIG", f"a readable carefront.toml, but {path} does not exist")
        return path.resolve()
    default = Path.cwd() / "carefront.toml"
    return default if default.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(str(path), f"valid TOML ({error})") from None


def _section(document: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = document.get(name, {})
    if not isinstance(value, Mapping):
        raise SettingsError(f"[{name}]", "a table of settings")
    return value


def _dereference(setting: str, value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, Mapping) and set(value) == {"$env"}:
        if value["$env"] not in env:
            raise SettingsError(setting, f"environment variable {value['$env']} to be set")
        return env[value["$env"]]
    return value


def _check_database_url(url: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        if not url.startswith("sqlite:///") or len(url) <= len("sqlite:///"):
            raise SettingsError("DATABASE_URL", f"sqlite:///path/to/file.sqlite3, got {url!r}")
    elif scheme in {"postgres", "postgresql"}:
        if not urlsplit(url).hostname:
            raise SettingsError("DATABASE_URL", "postgresql://user:password@host:port/database with a host")
    else:
        raise SettingsError("DATABASE_URL", f"a sqlite:/// or postgresql:// URL, got scheme {scheme!r}")


def _name_list(name: str, env: Mapping[str, str]) -> list[str]:
    return [item.strip() for item in env[name].split(",") if item.strip()]


def _strings(setting: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SettingsError(setting, f"a list of plugin names, got {value!r}")
    return value


def _hospital(doc: Mapping[str, Any], base: Path) -> Hospital:
    default = Hospital()
    for key in ("name", "billing_phone", "time_zone", "default_language"):
        if key in doc and (not isinstance(doc[key], str) or not doc[key].strip()):
            raise SettingsError(f"hospital.{key}", f"a non-empty string, got {doc[key]!r}")
    time_zone = doc.get("time_zone", default.time_zone)
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            "hospital.time_zone", f"an IANA time zone such as America/Chicago, got {time_zone!r}"
        ) from None
    languages = tuple(doc.get("languages", default.languages))
    unknown = [code for code in languages if code not in SUPPORTED_LANGUAGES]
    if not languages or unknown:
        raise SettingsError(
            "hospital.languages",
            f"a list drawn from {', '.join(SUPPORTED_LANGUAGES)}, got {list(languages)!r}",
        )
    default_language = doc.get("default_language", languages[0])
    if default_language not in languages:
        raise SettingsError("hospital.default_language", f"one of {', '.join(languages)}, got {default_language!r}")
    logo = None
    if "logo" in doc:
        logo = Path(doc["logo"])
        logo = logo if logo.is_absolute() else base / logo
        if logo.suffix.lower() not in {".svg", ".png", ".webp"} or not logo.is_file():
            raise SettingsError("hospital.logo", f"an existing .svg, .png or .webp file, got {logo}")
    alerts_email = doc.get("alerts_email")
    if alerts_email is not None and (not isinstance(alerts_email, str) or "@" not in alerts_email):
        raise SettingsError("hospital.alerts_email", f"an email address, got {alerts_email!r}")
    return Hospital(
        name=doc.get("name", default.name),
        alerts_email=alerts_email,
        billing_phone=doc.get("billing_phone", default.billing_phone),
        time_zone=time_zone,
        logo=logo,
        languages=languages,
        default_language=default_language,
    )


def _jobs(doc: Mapping[str, Any], env: Mapping[str, str]) -> Jobs:
    default = Jobs()
    unknown = sorted(set(doc) - {"in_process", "interval_seconds", "outbox_max_attempts"})
    if unknown:
        raise SettingsError(f"jobs.{unknown[0]}", "one of in_process, interval_seconds, outbox_max_attempts")
    in_process = doc.get("in_process", default.in_process)
    if "CAREFRONT_JOBS_IN_PROCESS" in env:
        in_process = env["CAREFRONT_JOBS_IN_PROCESS"].strip().lower() in {"1", "true", "yes"}
    if not isinstance(in_process, bool):
        raise SettingsError("jobs.in_process", f"true or false, got {in_process!r}")
    interval = doc.get("interval_seconds", default.interval_seconds)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise SettingsError("jobs.interval_seconds", f"a positive number of seconds, got {interval!r}")
    attempts = doc.get("outbox_max_attempts", default.outbox_max_attempts)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise SettingsError("jobs.outbox_max_attempts", f"a whole number of at least 1, got {attempts!r}")
    return Jobs(in_process=in_process, interval_seconds=float(interval), outbox_max_attempts=attempts)


def _payments(doc: Mapping[str, Any]) -> Payments:
    unknown = sorted(set(doc) - {"pay_link_days"})
    if unknown:
        raise SettingsError(f"payments.{unknown[0]}", "pay_link_days")
    days = doc.get("pay_link_days", Payments().pay_link_days)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 90:
        raise SettingsError("payments.pay_link_days", f"a whole number of days from 1 to 90, got {days!r}")
    return Payments(pay_link_days=days)


def _console(doc: Mapping[str, Any]) -> Console:
    unknown = sorted(set(doc) - {"acting_minutes", "question_reply_hours"})
    if unknown:
        raise SettingsError(f"console.{unknown[0]}", "one of acting_minutes, question_reply_hours")
    default = Console()
    minutes = doc.get("acting_minutes", default.acting_minutes)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_ACTING_MINUTES:
        raise SettingsError("console.acting_minutes", f"a whole number of minutes from 1 to 30, got {minutes!r}")
    hours = doc.get("question_reply_hours", default.question_reply_hours)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 24 * 30:
        raise SettingsError("console.question_reply_hours", f"a whole number of hours from 1 to 720, got {hours!r}")
    return Console(acting_minutes=minutes, question_reply_hours=hours)


def _ports(doc: Mapping[str, Any]) -> dict[Port, str]:
    ports: dict[Port, str] = {}
    for key, value in doc.items():
        try:
            port = Port(key)
        except ValueError:
            raise SettingsError(f"ports.{key}", f"one of {', '.join(p.value for p in Port)}") from None
        if not isinstance(value, str) or not value:
            raise SettingsError(f"ports.{key}", f"the name of a registered adapter, got {value!r}")
        ports[port] = value
    return ports


def _identity(doc: Mapping[str, Any], env: Mapping[str, str]) -> Identity:
    unknown = sorted(set(doc) - {"staff_oidc", "patient_oidc"})
    if unknown:
        raise SettingsError(
            f"identity.{unknown[0]}", "one of the tables [identity.staff_oidc], [identity.patient_oidc]"
        )
    staff = _section(doc, "staff_oidc")
    patient = _section(doc, "patient_oidc")
    return Identity(
        staff_oidc=_oidc_provider("identity.staff_oidc", staff, env, staff=True) if staff else None,
        patient_oidc=_oidc_provider("identity.patient_oidc", patient, env, staff=False) if patient else None,
    )


def _oidc_provider(where: str, doc: Mapping[str, Any], env: Mapping[str, str], *, staff: bool) -> OidcProvider:
    default = OidcProvider(issuer="", client_id="")
    known = {"issuer", "client_id", "client_secret", "name", "scopes"}
    if staff:
        known |= {"groups_claim", "roles", "mfa", "mfa_amr", "mfa_acr"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise SettingsError(f"{where}.{unknown[0]}", f"one of {', '.join(sorted(known))}")

    def text(key: str, fallback: str | None = None) -> str:
        value = _dereference(f"{where}.{key}", doc.get(key, fallback), env)
        if not isinstance(value, str) or not value.strip():
            raise SettingsError(f"{where}.{key}", f"a non-empty string, got {value!r}")
        return value.strip()

    def texts(key: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
        value = doc.get(key, list(fallback))
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise SettingsError(f"{where}.{key}", f"a list of strings, got {value!r}")
        return tuple(value)

    issuer = text("issuer")
    parts = urlsplit(issuer)
    # OpenID Connect needs TLS; plain http is allowed on this machine only (the sandbox's provider).
    loopback = parts.hostname in {"localhost", "127.0.0.1", "::1"}
    if not parts.netloc or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise SettingsError(
            f"{where}.issuer", f"an https:// URL (http:// only on 127.0.0.1 or localhost), got {issuer!r}"
        )
    scopes = texts("scopes", default.scopes)
    if "openid" not in scopes:
        raise SettingsError(f"{where}.scopes", f"a list that includes openid, got {list(scopes)!r}")
    provider = OidcProvider(
        issuer=issuer,
        client_id=text("client_id"),
        client_secret=text("client_secret") if "client_secret" in doc else None,
        name=text("name") if "name" in doc else None,
        scopes=scopes,
    )
    if not staff:
        return provider
    roles = doc.get("roles", {})
    if (
        not isinstance(roles, Mapping)
        or not roles
        or not all(isinstance(group, str) and role in STAFF_ROLES for group, role in roles.items())
    ):
        raise SettingsError(
            f"{where}.roles",
            f"a table of group = role, each role one of {', '.join(sorted(STAFF_ROLES))}, got {roles!r}",
        )
    mfa = doc.get("mfa", default.mfa)
    if mfa not in MFA_METHODS:
        raise SettingsError(f"{where}.mfa", f"amr (trust the provider) or totp (Carefront asks a code), got {mfa!r}")
    mfa_amr, mfa_acr = texts("mfa_amr", default.mfa_amr), texts("mfa_acr", default.mfa_acr)
    if mfa == "amr" and not (mfa_amr or mfa_acr):
        raise SettingsError(f"{where}.mfa_amr", "at least one amr (or mfa_acr) value that proves a second factor")
    return replace(
        provider,
        groups_claim=text("groups_claim", default.groups_claim),
        roles=dict(roles),
        mfa=mfa,
        mfa_amr=mfa_amr,
        mfa_acr=mfa_acr,
    )


def _scheduling(doc: Mapping[str, Any]) -> Scheduling:
    default = Scheduling()
    unknown = sorted(set(doc) - {"cancel_cutoff_hours", "reminder_hours", "phone"})
    if unknown:
        raise SettingsError(f"scheduling.{unknown[0]}", "one of cancel_cutoff_hours, reminder_hours, phone")
    cutoff = doc.get("cancel_cutoff_hours", default.cancel_cutoff_hours)
    if isinstance(cutoff, bool) or not isinstance(cutoff, int) or cutoff < 0:
        raise SettingsError("scheduling.cancel_cutoff_hours", f"a whole number of hours, 0 or more, got {cutoff!r}")
    hours = doc.get("reminder_hours", list(default.reminder_hours))
    if not isinstance(hours, list) or not all(
        isinstance(hour, int) and not isinstance(hour, bool) and hour > 0 for hour in hours
    ):
        raise SettingsError("scheduling.reminder_hours", f"a list of whole hours above 0, e.g. [24, 2], got {hours!r}")
    phone = doc.get("phone", default.phone)
    if phone is not None and (not isinstance(phone, str) or not phone.strip()):
        raise SettingsError("scheduling.phone", f"a phone number, got {phone!r}")
    return Scheduling(cancel_cutoff_hours=cutoff, reminder_hours=tuple(sorted(set(hours), reverse=True)), phone=phone)


@dataclass(frozen=True, slots=True)
class PlanTier:
    """Balances up to ``up_to`` minor units (None: any larger balance) may be spread over ``max_months``."""

    up_to: int | None
    max_months: int


@dataclass(frozen=True, slots=True)
class Plans:
    """``[plans]``: the hospital's rules for payment plans patients set up themselves (amounts in cents)."""

    tiers: tuple[PlanTier, ...] = (
        PlanTier(50_000, 6),
        PlanTier(200_000, 12),
        PlanTier(500_000, 18),
        PlanTier(None, 24),
    )
    """Ascending by ``up_to``; a balance above the last tier with an ``up_to`` cannot be planned online."""
    minimum_monthly: int = 2_500
    """The smallest monthly amount; only the last installment, which carries the remainder, may be less."""
    down_payment_percent: int = 0
    """Percent of the balance paid when the plan starts (0: none); at most one of the two down payments."""
    down_payment_amount: int = 0
    """A fixed down payment instead (capped at the balance); 0: none."""
    days_of_month: tuple[int, ...] = (1, 5, 10, 15, 20, 25)
    """Days a patient may choose for installments: 1 to 28, so that every month has them."""
    grace_days: int = 10
    """An installment unpaid this many days after its date is missed."""
    missed_before_default: int = 2
    """Missed installments after which the plan is in default."""
    allow_adding_statements: bool = True
    """Whether a patient may add a new statement to an active plan (the schedule recomputes)."""
    reminder_days: int = 3
    """Days before each installment's date that its reminder is sent."""
    retry_days: tuple[int, ...] = (3, 7)
    """Days after an installment's date on which a declined autopay charge is tried again (within grace_days)."""
    staff_max_months: int = 60
    """The widest a representative may stretch a plan, whatever the tier."""


def _plans(doc: Mapping[str, Any]) -> Plans:
    known = {
        "tiers",
        "minimum_monthly",
        "down_payment_percent",
        "down_payment_amount",
        "days_of_month",
        "grace_days",
        "missed_before_default",
        "allow_adding_statements",
        "reminder_days",
        "retry_days",
        "staff_max_months",
    }
    unknown = sorted(set(doc) - known)
    if unknown:
        raise SettingsError(f"plans.{unknown[0]}", f"one of {', '.join(sorted(known))}")
    default = Plans()

    def whole(key: str, low: int, high: int, what: str) -> int:
        value = doc.get(key, getattr(default, key))
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SettingsError(f"plans.{key}", f"{what} from {low} to {high}, got {value!r}")
        return value

    tiers = default.tiers
    if "tiers" in doc:
        raw = doc["tiers"]
        if not isinstance(raw, list) or not raw:
            raise SettingsError("plans.tiers", "a list of [[plans.tiers]] tables with up_to (cents) and max_months")
        parsed = []
        for index, tier in enumerate(raw):
            where = f"plans.tiers[{index}]"
            if not isinstance(tier, Mapping) or set(tier) - {"up_to", "max_months"} or "max_months" not in tier:
                raise SettingsError(where, f"a table with max_months and, except for the last, up_to; got {tier!r}")
            up_to, months = tier.get("up_to"), tier["max_months"]
            if up_to is not None and (isinstance(up_to, bool) or not isinstance(up_to, int) or up_to <= 0):
                raise SettingsError(f"{where}.up_to", f"a balance in cents above 0, got {up_to!r}")
            if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 120:
                raise SettingsError(f"{where}.max_months", f"a whole number of months from 1 to 120, got {months!r}")
            parsed.append(PlanTier(up_to, months))
        bounds = [tier.up_to for tier in parsed]
        if None in bounds[:-1] or any(a >= b for a, b in pairwise(bounds) if a and b):
            raise SettingsError("plans.tiers", "tiers in ascending order of up_to, only the last without up_to")
        tiers = tuple(parsed)
    minimum = whole("minimum_monthly", 1, 10_000_000, "an amount in cents")
    percent = whole("down_payment_percent", 0, 90, "a whole percent")
    amount = whole("down_payment_amount", 0, 10_000_000, "an amount in cents")
    if percent and amount:
        raise SettingsError("plans.down_payment_amount", "0 when down_payment_percent is set: one down payment or none")
    days = doc.get("days_of_month", list(default.days_of_month))
    if (
        not isinstance(days, list)
        or not days
        or not all(isinstance(day, int) and not isinstance(day, bool) and 1 <= day <= 28 for day in days)
    ):
        raise SettingsError("plans.days_of_month", f"a list of days from 1 to 28, e.g. [1, 15], got {days!r}")
    grace = whole("grace_days", 0, 60, "a whole number of days")
    retries = doc.get("retry_days", list(default.retry_days))
    if not isinstance(retries, list) or not all(
        isinstance(day, int) and not isinstance(day, bool) and 1 <= day <= grace for day in retries
    ):
        raise SettingsError(
            "plans.retry_days",
            f"a list of days after the due date, each from 1 to grace_days ({grace}), got {retries!r}",
        )
    adding = doc.get("allow_adding_statements", default.allow_adding_statements)
    if not isinstance(adding, bool):
        raise SettingsError("plans.allow_adding_statements", f"true or false, got {adding!r}")
    return Plans(
        tiers=tiers,
        minimum_monthly=minimum,
        down_payment_percent=percent,
        down_payment_amount=amount,
        days_of_month=tuple(sorted(set(days))),
        grace_days=grace,
        missed_before_default=whole("missed_before_default", 1, 12, "a whole number of installments"),
        allow_adding_statements=adding,
        reminder_days=whole("reminder_days", 0, 28, "a whole number of days"),
        retry_days=tuple(sorted(set(retries))),
        staff_max_months=whole("staff_max_months", max(tier.max_months for tier in tiers), 120, "a number of months"),
    )
