"""Patient single sign-on through the hospital's patient OpenID provider (``[identity.patient_oidc]``).

An identity at the provider opens the Carefront account it is linked to, by (issuer, subject) and
never by email alone. An identity not linked yet is kept for ten minutes in an encrypted cookie (the
session cannot hold it: signing in gives the session a new key and nothing else); the patient, once
signed in to Carefront with a password or a code, links it with one more button press. Linking needs
a recent sign-in and is refused while a representative acts as the patient (PROMISES.md 6 and 7).

Controllers only: the protocol lives in ``oidc``, the links in ``oidc_links``.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from portal.access import patients_only
from portal.identity import accounts, oidc, oidc_links, recent_sign_in, signing_in
from portal.identity.secrets_at_rest import SecretUnreadable, decrypt, encrypt
from portal.identity.sessions import Realm, viewer
from portal.identity.staff import sign_in_failed
from portal.plugin_host import PluginHost
from portal.settings import OidcProvider, Settings
from portal.web.errors import SIGN_IN_ROUTE, route_path

log = logging.getLogger("carefront.patient_sso")

START_ROUTE = "patient-sso-start"
CALLBACK_ROUTE = "patient-sso-callback"
LINK_ROUTE = "patient-sso-link"
HOME_ROUTE = "home"
CONFIRM_ROUTE = "account-confirm"

FLOW = "patient_oidc_flow"
"""Session key: the state, nonce and PKCE verifier of the patient sign-in under way."""
PENDING_COOKIE = "__Host-carefront-sso"
"""The provider identity waiting to be linked: encrypted, HttpOnly, ten minutes."""
PENDING_LIFETIME = timedelta(minutes=10)
PUBLIC = {"public": True}


def _provider(settings: Settings) -> OidcProvider:
    if settings.identity.patient_oidc is None:
        raise NotFoundException()
    return settings.identity.patient_oidc


def _pending_cookie(settings: Settings, identity: oidc.VerifiedIdentity, now: datetime) -> Cookie:
    sealed = encrypt(settings, json.dumps({"iss": identity.issuer, "sub": identity.subject, "at": now.isoformat()}))
    return Cookie(
        key=PENDING_COOKIE,
        value=sealed,
        max_age=int(PENDING_LIFETIME.total_seconds()),
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )


def _forget_pending() -> Cookie:
    return Cookie(key=PENDING_COOKIE, value="", max_age=0, path="/", secure=True, httponly=True, samesite="lax")


def _pending_identity(request: Request[Any, Any, Any], settings: Settings, now: datetime) -> tuple[str, str] | None:
    """(issuer, subject) of the identity waiting to be linked, if it came from the provider in use lately."""
    sealed = request.cookies.get(PENDING_COOKIE)
    if not sealed or settings.identity.patient_oidc is None:
        return None
    try:
        pending = json.loads(decrypt(settings, sealed))
        issued = datetime.fromisoformat(pending["at"])
    except (SecretUnreadable, ValueError, KeyError, TypeError):
        return None
    if (
        pending.get("iss") != settings.identity.patient_oidc.issuer
        or not timedelta(0) <= now - issued <= PENDING_LIFETIME
    ):
        return None
    return pending["iss"], pending["sub"]


async def _signed_in_patient(request: Request[Any, Any, Any]) -> dict[str, Any] | None:
    """The patient-realm account signed in as itself (not while staff act as a patient)."""
    current = viewer(request)
    if current is None or current.realm is not Realm.PATIENT or not current.account_id:
        return None
    if request.session.get("impersonator"):
        return None
    try:
        public_id = str(uuid.UUID(current.account_id))
    except ValueError:
        return None
    return await accounts.find(public_id)


class PatientSsoController(Controller):
    """/sign-in/oidc: sign in with the hospital's patient provider, and link it to a Carefront account."""

    path = "/sign-in/oidc"

    @post(name=START_ROUTE, opt=PUBLIC)
    async def start(
        self, request: HTMXRequest, settings: NamedDependency[Settings], plugin_host: NamedDependency[PluginHost]
    ) -> Redirect | Template:
        """Begin a sign-in at the provider; the state, nonce and PKCE verifier stay in the session."""
        provider = _provider(settings)
        try:
            authorization = await oidc.client_of(request.app.state).begin(
                provider, self._callback_url(request, settings), plugin_host.clock()
            )
        except oidc.ProviderUnavailable as error:
            log.warning("patient sign-in: provider unavailable at %s", error.step)
            return sign_in_failed(request, self._retry(request), unavailable=True)
        request.set_session({**request.session, FLOW: authorization.flow})
        return Redirect(authorization.url, status_code=303)

    @get("/callback", name=CALLBACK_ROUTE, opt=PUBLIC)
    async def callback(
        self, request: HTMXRequest, settings: NamedDependency[Settings], plugin_host: NamedDependency[PluginHost]
    ) -> Redirect | Template:
        """A linked identity signs in; one not linked yet waits to be linked (never matched by email)."""
        provider = _provider(settings)
        now = plugin_host.clock()
        session = dict(request.session)
        flow = session.pop(FLOW, None)  # one use
        request.set_session(session)
        try:
            identity = await oidc.client_of(request.app.state).complete(
                provider, self._callback_url(request, settings), flow, dict(request.query_params), now
            )
        except oidc.SignInFailed as error:
            log.warning("patient sign-in did not complete: check=%s failed", error.check)
            return sign_in_failed(request, self._retry(request))
        except oidc.ProviderUnavailable as error:
            log.warning("patient sign-in: provider unavailable at %s", error.step)
            return sign_in_failed(request, self._retry(request), unavailable=True)
        account = await oidc_links.linked_account(identity.issuer, identity.subject, Realm.PATIENT)
        if account is not None:
            await signing_in.complete(request, account, "oidc", now)
            return Redirect(route_path(request.app, HOME_ROUTE) or "/", status_code=303)
        return Redirect(
            request.app.route_reverse(LINK_ROUTE), status_code=303, cookies=[_pending_cookie(settings, identity, now)]
        )

    @get("/link", name=LINK_ROUTE, opt=PUBLIC)
    async def link_page(
        self,
        request: HTMXRequest,
        settings: NamedDependency[Settings],
        plugin_host: NamedDependency[PluginHost],
        done: FromQuery[str | None] = None,
    ) -> Template:
        """Offer to link the identity to the signed-in patient; else, ask them to sign in once first."""
        provider = _provider(settings)
        now = plugin_host.clock()
        pending = _pending_identity(request, settings, now)
        patient = await _signed_in_patient(request)
        link_url = request.app.route_reverse(LINK_ROUTE)
        sign_in_url = route_path(request.app, SIGN_IN_ROUTE)
        return Template(
            "identity/sso/link.html",
            context={
                "provider_name": provider.name,
                "done": done if done in {"linked", "taken"} else None,
                "pending": pending is not None,
                "signed_in": patient is not None,
                "recent": recent_sign_in.is_recent(request.session, now),
                "sign_in_url": f"{sign_in_url}?{urlencode({'next': link_url})}" if sign_in_url else None,
                "confirm_url": self._confirm_url(request),
            },
        )

    @post("/link", name="patient-sso-link-confirm", guards=[patients_only])
    async def link(
        self, request: HTMXRequest, settings: NamedDependency[Settings], plugin_host: NamedDependency[PluginHost]
    ) -> Redirect:
        """Link the waiting identity to the signed-in patient's account."""
        _provider(settings)
        now = plugin_host.clock()
        link_url = request.app.route_reverse(LINK_ROUTE)
        patient = await _signed_in_patient(request)
        pending = _pending_identity(request, settings, now)
        if patient is None or pending is None:
            return Redirect(link_url, status_code=303)
        if not recent_sign_in.is_recent(request.session, now):
            return Redirect(self._confirm_url(request) or link_url, status_code=303)
        issuer, subject = pending
        # False when it is linked already, to this account or another: which one is not said.
        done = "linked" if await oidc_links.link(patient, issuer, subject, now) else "taken"
        log.info("account=%s link to the patient provider: %s", patient["public_id"], done)
        return Redirect(f"{link_url}?{urlencode({'done': done})}", status_code=303, cookies=[_forget_pending()])

    @staticmethod
    def _callback_url(request: Request[Any, Any, Any], settings: Settings) -> str:
        return settings.public_url + request.app.route_reverse(CALLBACK_ROUTE)

    @staticmethod
    def _retry(request: Request[Any, Any, Any]) -> str:
        return route_path(request.app, SIGN_IN_ROUTE) or "/"

    @staticmethod
    def _confirm_url(request: Request[Any, Any, Any]) -> str | None:
        confirm = route_path(request.app, CONFIRM_ROUTE)
        return f"{confirm}?{urlencode({'next': request.app.route_reverse(LINK_ROUTE)})}" if confirm else None


ROUTES = [PatientSsoController]
