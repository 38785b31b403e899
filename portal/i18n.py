"""Languages: which one a request is in, its translations, and locale-aware formatting.

Every patient-facing string is written in English and translated through gettext catalogs in
``portal/locale/<lang>/LC_MESSAGES/messages.po`` (PROMISES.md 23). Catalogs are compiled in memory
at start-up, so no binary ``.mo`` files live in the repository.
"""

from __future__ import annotations

import contextvars
import io
from collections.abc import Iterable
from datetime import date, datetime, tzinfo
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, get_currency_precision
from babel.support import NullTranslations, Translations
from carefront_sdk.models import Money
from jinja2 import Environment
from litestar.types import ASGIApp, Receive, Scope, Send

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGE_COOKIE = "lang"
LANGUAGE_NAMES = {"en": "English", "es": "Español"}

_current = contextvars.ContextVar("carefront_language", default="en")


def N_(message: str) -> str:
    """Mark ``message`` for extraction (babel's default keyword); it is translated when shown."""
    return message


def read_catalog(language: str, locale_dir: Path = LOCALE_DIR) -> Catalog:
    """Every ``*.po`` file of ``language`` merged into one catalog.

    Each domain keeps its own file (``messages.po`` for the shared pages, ``identity.po``, …) so that
    work on two domains never edits one file; a msgid translated in two files must agree.
    """
    merged = Catalog(locale=language)
    for po_path in sorted((locale_dir / language / "LC_MESSAGES").glob("*.po")):
        with po_path.open("rb") as handle:
            for message in read_po(handle, locale=language):
                if not message.id:
                    continue  # the header
                known = merged.get(message.id, context=message.context)
                if known is not None and known.string != message.string:
                    raise ValueError(f"{po_path.name}: {message.id!r} is translated differently in another file")
                merged[message.id] = message
    return merged


def load_catalogs(languages: Iterable[str], locale_dir: Path = LOCALE_DIR) -> dict[str, NullTranslations]:
    """Compile each language's catalog in memory; English is the source text itself."""
    catalogs: dict[str, NullTranslations] = {}
    for language in languages:
        catalog = read_catalog(language, locale_dir)
        if not len(catalog):
            catalogs[language] = NullTranslations()
            continue
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        catalogs[language] = Translations(buffer)
    return catalogs


class I18n:
    """The catalogs of the hospital's languages, and the request's choice among them."""

    def __init__(self, languages: tuple[str, ...], default: str, locale_dir: Path = LOCALE_DIR) -> None:
        self.languages = languages
        self.default = default
        self.catalogs = load_catalogs(languages, locale_dir)

    @staticmethod
    def current() -> str:
        return _current.get()

    def gettext(self, message: str) -> str:
        return self.catalogs.get(_current.get(), NullTranslations()).gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.catalogs.get(_current.get(), NullTranslations()).ngettext(singular, plural, n)

    def negotiate(self, cookie: str | None, accept_language: str | None) -> str:
        """The language cookie if valid, else the browser's best supported preference, else the default."""
        if cookie in self.languages:
            return cookie
        for candidate, _quality in _parse_accept_language(accept_language or ""):
            primary = candidate.split("-")[0].lower()
            if primary in self.languages:
                return primary
        return self.default

    def install(self, environment: Environment, time_zone: str) -> None:
        """Give templates ``_``/``gettext``/``ngettext`` for the request's language, and formatters.

        Moments are shown in the hospital's time zone: a patient reads "9:30 AM" as local time.
        """
        zone = ZoneInfo(time_zone)
        environment.add_extension("jinja2.ext.i18n")
        environment.install_gettext_callables(self.gettext, self.ngettext, newstyle=True)  # type: ignore[attr-defined]
        environment.globals.update(
            current_language=self.current, languages=self.languages, language_names=LANGUAGE_NAMES
        )
        environment.filters.update(money=format_money, day=format_day, moment=lambda value: format_moment(value, zone))

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """ASGI middleware: settle the request's language before any handler or template runs."""

        async def set_language(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                headers = dict(scope["headers"])
                cookie = _cookie_value(headers.get(b"cookie", b"").decode("latin-1"), LANGUAGE_COOKIE)
                accept = headers.get(b"accept-language", b"").decode("latin-1")
                token = _current.set(self.negotiate(cookie, accept))
                try:
                    await app(scope, receive, send)
                finally:
                    _current.reset(token)
            else:
                await app(scope, receive, send)

        return set_language


def _parse_accept_language(header: str) -> list[tuple[str, float]]:
    preferences = []
    for part in header.split(","):
        pieces = part.strip().split(";")
        if not pieces[0]:
            continue
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        preferences.append((pieces[0].strip(), quality))
    return sorted(preferences, key=lambda item: -item[1])


def _cookie_value(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


@cache
def _parsed_locale(language: str) -> Locale:
    try:
        return Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def _locale() -> Locale:
    return _parsed_locale(_current.get())


# Babel formats one amount or day in ~15 µs; a 200-line statement shows ~1,000 of them, mostly the
# same few values (a price list's charges, one service day). Remembering the text by value keeps the
# page's render in the low milliseconds (PROMISES.md budgets).
@lru_cache(maxsize=65_536)
def _money_text(amount: int, currency: str, language: str) -> str:
    units = Decimal(amount).scaleb(-get_currency_precision(currency))
    return format_currency(units, currency, locale=_parsed_locale(language))


@lru_cache(maxsize=16_384)
def _day_text(value: date, language: str) -> str:
    return babel_format_date(value, format="medium", locale=_parsed_locale(language))


def format_money(money: Money) -> str:
    """$1,234.50 in English, 1234,50 US$ in Spanish: the reader's own conventions."""
    return _money_text(money.amount, money.currency, _current.get())


def format_day(value: date) -> str:
    return _day_text(value, _current.get())


def format_moment(value: datetime, zone: tzinfo) -> str:
    return babel_format_datetime(value, format="medium", tzinfo=zone, locale=_locale())
