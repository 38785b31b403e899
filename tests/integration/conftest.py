"""Helpers for in-process HTTP tests."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from litestar import Litestar
from litestar.serialization import encode_json

from portal.app import SESSION_COOKIE


@pytest.fixture
def session_as(app: Litestar, client: httpx.AsyncClient) -> Callable[..., Awaitable[str]]:
    """Put a server-side session with ``role`` (and any other values) in the real store, and send its cookie.

    Sign-in itself is tested where it is built; tests of other pages start from a session.
    """

    async def start(role: str = "patient", **values: str) -> str:
        session_id = secrets.token_hex(32)
        realm = "patient" if role == "patient" else "staff"
        data = {"account_id": f"account-{secrets.token_hex(4)}", "realm": realm, "role": role, **values}
        await app.stores.get("sessions").set(session_id, encode_json(data), expires_in=15 * 60)
        client.cookies.set(SESSION_COOKIE, session_id)
        return session_id

    return start


@pytest.fixture
def client_for() -> Callable[[Litestar], AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with client_for(app) as client``: start an app built in the test, and talk to it."""

    @asynccontextmanager
    async def running(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
        async with app.lifespan():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
                yield client

    return running
