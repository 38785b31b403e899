"""Server-side sessions (PROMISES.md 3): lifetimes, lazy writes, and the cookie's flags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portal.app import SESSION_COOKIE
from portal.identity.session_store import DatabaseSessionStore
from portal.identity.tables import WebSession


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_a_session_ends_after_its_idle_time_unless_renewed(settings, app):
    clock = Clock()
    store = DatabaseSessionStore(timedelta(hours=12), clock=clock)
    await store.set("idle-a", b"{}", expires_in=900)
    await store.set("idle-b", b"{}", expires_in=900)
    clock.now += timedelta(minutes=14)
    assert await store.get("idle-a", renew_for=900) == b"{}"
    clock.now += timedelta(minutes=14)
    assert await store.get("idle-a") == b"{}", "renewed 14 minutes ago"
    assert await store.get("idle-b") is None, "idle for 28 minutes"
    assert not await WebSession.exists().where(WebSession.key == "idle-b").run()


async def test_a_session_ends_after_twelve_hours_however_active(settings, app):
    clock = Clock()
    store = DatabaseSessionStore(timedelta(hours=12), clock=clock)
    await store.set("busy", b'{"n": 0}', expires_in=900)
    for _ in range(47):
        clock.now += timedelta(minutes=15) - timedelta(seconds=1)
        assert await store.get("busy", renew_for=900) is not None
    await store.set("busy", b'{"n": 1}', expires_in=900)  # a write does not restart the clock
    clock.now += timedelta(minutes=20)
    assert clock.now - datetime(2026, 11, 22, 9, 0, tzinfo=UTC) > timedelta(hours=12)
    assert await store.get("busy", renew_for=900) is None


async def test_expired_sessions_are_swept(settings, app):
    clock = Clock()
    store = DatabaseSessionStore(timedelta(hours=12), clock=clock)
    await store.set("sweep-old", b"{}", expires_in=60)
    await store.set("sweep-new", b"{}", expires_in=900)
    clock.now += timedelta(minutes=5)
    assert await store.delete_expired() >= 1
    assert await store.expires_in("sweep-new") == 600
    assert await store.expires_in("sweep-old") is None


async def test_an_anonymous_page_view_writes_no_session(client):
    before = await WebSession.count().run()
    response = await client.get("/")
    assert response.status_code == 200
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert await WebSession.count().run() == before


async def test_the_session_cookie_is_host_only_secure_httponly_lax_and_short(client, session_as):
    await session_as("patient")
    response = await client.get("/")
    cookie = next(value for value in response.headers.get_list("set-cookie") if value.startswith(SESSION_COOKIE))
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
    assert cookie.startswith("__Host-")
    assert "secure" in flags
    assert "httponly" in flags
    assert flags["samesite"].lower() == "samesite=lax"
    assert flags["path"] == "Path=/"
    assert "domain" not in flags
    assert flags["max-age"] == "Max-Age=900"


async def test_a_session_is_renewed_at_most_once_a_minute(settings, app):
    clock = Clock()
    store = DatabaseSessionStore(timedelta(hours=12), clock=clock)
    await store.set("steady", b"{}", expires_in=900)
    first = clock.now + timedelta(seconds=900)
    clock.now += timedelta(seconds=59)
    assert await store.get("steady", renew_for=900) == b"{}"
    expiry = await WebSession.select(WebSession.expires_at).where(WebSession.key == "steady").first().run()
    assert expiry["expires_at"] == first, "a page and its partials a few seconds apart write nothing"
    clock.now += timedelta(seconds=2)
    assert await store.get("steady", renew_for=900) == b"{}"
    expiry = await WebSession.select(WebSession.expires_at).where(WebSession.key == "steady").first().run()
    assert expiry["expires_at"] == clock.now + timedelta(seconds=900), "over a minute on: renewed"


async def test_a_request_that_changes_nothing_in_the_session_does_not_write_it(client, session_as):
    key = await session_as("patient")
    before = await WebSession.select(WebSession.data, WebSession.expires_at).where(WebSession.key == key).first().run()
    response = await client.get("/")
    assert response.status_code == 200
    cookie = next(value for value in response.headers.get_list("set-cookie") if value.startswith(SESSION_COOKIE))
    assert cookie.startswith(f"{SESSION_COOKIE}={key};"), "the browser's cookie is refreshed all the same"
    after = await WebSession.select(WebSession.data, WebSession.expires_at).where(WebSession.key == key).first().run()
    assert after == before
