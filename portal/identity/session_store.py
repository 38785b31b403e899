"""Server-side sessions kept in the database, so any app process can serve any request.

Litestar's session middleware stores the session here under a random key; the browser holds only
that key. Besides the idle expiry Litestar renews on each request, the store enforces the absolute
lifetime (PROMISES.md 3): a session older than ``absolute`` is gone, however active.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.stores.base import Store
from litestar.types import Empty, Message, ScopeSession
from litestar.utils.dataclass import extract_dataclass_items

from portal.identity.tables import WebSession


def _now() -> datetime:
    return datetime.now(UTC)


RENEW_STEP = timedelta(minutes=1)
"""Renewing the idle expiry is a write; a session is renewed at most once a minute, not on every
request (a page and its htmx partials are several). A session so ends after 14 to 15 minutes idle."""


class DatabaseSessionStore(Store):
    def __init__(self, absolute: timedelta, clock: Callable[[], datetime] = _now) -> None:
        self.absolute = absolute
        self.clock = clock

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        now = self.clock()
        data = value.encode() if isinstance(value, str) else value
        expires_at = now + _as_delta(expires_in) if expires_in is not None else now + self.absolute
        owner = _owner(data)
        # created_at is kept on update: the absolute lifetime counts from the first write.
        await (
            WebSession.insert(
                WebSession(key=key, data=data, created_at=now, expires_at=expires_at, account_public_id=owner)
            )
            .on_conflict(
                target=WebSession.key,
                action="DO UPDATE",
                values=[WebSession.data, WebSession.expires_at, WebSession.account_public_id],
            )
            .run()
        )

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        now = self.clock()
        live = (WebSession.key == key) & (WebSession.expires_at > now) & (WebSession.created_at > now - self.absolute)
        rows = await WebSession.select(WebSession.data, WebSession.expires_at).where(live).run()
        if not rows:
            await self.delete(key)  # expired (or never was): gone for good
            return None
        if renew_for is not None and rows[0]["expires_at"] < now + _as_delta(renew_for) - RENEW_STEP:
            await WebSession.update({WebSession.expires_at: now + _as_delta(renew_for)}).where(live).run()
        return bytes(rows[0]["data"])

    async def delete(self, key: str) -> None:
        await WebSession.delete().where(WebSession.key == key).run()

    async def delete_all(self) -> None:
        await WebSession.delete(force=True).run()

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def expires_in(self, key: str) -> int | None:
        row = await WebSession.select(WebSession.expires_at).where(WebSession.key == key).first().run()
        if row is None:
            return None
        return max(0, int((row["expires_at"] - self.clock()).total_seconds()))

    async def sessions_of(self, account_public_id: str) -> list[dict[str, Any]]:
        """The account's live sessions, newest first: key, started, expires and the session's data."""
        now = self.clock()
        rows = (
            await WebSession.select(WebSession.key, WebSession.data, WebSession.created_at, WebSession.expires_at)
            .where(
                (WebSession.account_public_id == account_public_id)
                & (WebSession.expires_at > now)
                & (WebSession.created_at > now - self.absolute)
            )
            .order_by(WebSession.created_at, ascending=False)
            .run()
        )
        return [{**row, "data": json.loads(bytes(row["data"]))} for row in rows]

    async def end_sessions_of(self, account_public_id: str, *, keep: str | None = None) -> int:
        """Sign the account out everywhere (but the session ``keep``); returns how many ended."""
        condition = WebSession.account_public_id == account_public_id
        if keep is not None:
            condition &= WebSession.key != keep
        return len(await WebSession.delete().where(condition).returning(WebSession.id).run())

    async def delete_expired(self) -> int:
        """Remove sessions past their expiry; returns how many."""
        now = self.clock()
        gone = (
            await WebSession.delete()
            .where((WebSession.expires_at <= now) | (WebSession.created_at <= now - self.absolute))
            .returning(WebSession.id)
            .run()
        )
        return len(gone)


def _owner(data: bytes) -> str | None:
    try:
        decoded = json.loads(data)
    except ValueError:
        return None
    return decoded.get("account_id") if isinstance(decoded, dict) else None


def _as_delta(value: int | timedelta) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


ROTATE = "carefront.rotate_session"
"""Set in a request's scope (by ``portal.identity.sessions``) to give its session a new key."""
_NEW_KEY = "carefront.new_session_key"
_LOADED = "carefront.loaded_session"


class LazySessionBackend(ServerSideSessionBackend):
    """Writes a session only when there is something new in it, and gives it a new key on request.

    Litestar stores the session, and sets its cookie, on every response: for anonymous page views
    that is a database write each and a cookie nobody needs, and for signed-in ones a write of
    what was just read. Here an unchanged session is not written again (the store renews its
    expiry when it is read), an empty one is never stored, and an emptied session that the browser
    did present is still deleted, which is what ending a session means. A new key at sign-in and
    when impersonation starts or ends defeats session fixation (PROMISES.md 3).
    """

    def get_session_id(self, connection: ASGIConnection) -> str:
        return connection.scope.get(_NEW_KEY) or super().get_session_id(connection)  # type: ignore[return-value]

    async def load_from_connection(self, connection: ASGIConnection) -> dict[str, Any]:
        if session_id := connection.cookies.get(self.config.key):
            data = await self.get(session_id, store=self.config.get_store_from_app(connection.scope["app"]))
            if data is not None:
                connection.scope[_LOADED] = data  # type: ignore[literal-required]
                return self.deserialize_data(data)
        return {}

    async def store_in_message(self, scope_session: ScopeSession, message: Message, connection: ASGIConnection) -> None:
        presented = connection.cookies.get(self.config.key)
        if not scope_session and not presented:
            return
        if connection.scope.get(ROTATE) and _NEW_KEY not in connection.scope:
            if presented:
                await self.delete(presented, store=self.config.get_store_from_app(connection.scope["app"]))
            connection.scope[_NEW_KEY] = self.generate_session_id()  # type: ignore[literal-required]
        elif scope_session and connection.scope.get(_LOADED) == self.serialize_data(scope_session, connection.scope):
            # Unchanged: the cookie is sent again (its Max-Age follows the renewed expiry), the row stays.
            cookie = dict(extract_dataclass_items(self.config, exclude_none=True, include=Cookie.__dict__.keys()))
            MutableScopeHeaders.from_message(message).add(
                "Set-Cookie",
                Cookie(value=self.get_session_id(connection), key=self.config.key, **cookie).to_header(header=""),
            )
            return
        await super().store_in_message(scope_session or Empty, message, connection)


@dataclass
class SessionConfig(ServerSideSessionConfig):
    _backend_class = LazySessionBackend
