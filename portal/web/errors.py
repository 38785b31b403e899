"""Friendly error pages for the whole app, and toasts for htmx requests (PROMISES.md 20).

Every exception that reaches the app becomes a translated page with the right status, never a stack
trace. An htmx request gets a short text body instead, and an ``HX-Trigger`` header with the event
``{"toast": {"message": "...", "level": "error"}}`` that static/js/toast.js announces. Not signed in
(401) sends a full page to the way in, and an htmx request there through ``HX-Redirect``.

A failure (500) is logged with a reference the page shows, so a caller can quote it; the log line
has the exception's type and stack, not its message, which may carry a patient's details.
"""

from __future__ import annotations

import json
import logging
import secrets
import traceback
from dataclasses import dataclass

from carefront_sdk.errors import NotFound, Refused, Unavailable, WebhookRejected
from litestar import Litestar
from litestar.enums import MediaType
from litestar.exceptions import HTTPException, InternalServerException, NoRouteMatchFoundException
from litestar.plugins.htmx import HTMXHeaders, HTMXRequest
from litestar.response import Redirect, Response, Template

from portal.i18n import N_, I18n

log = logging.getLogger("carefront.errors")

SIGN_IN_ROUTE = "sign-in"
CSRF_FAILURE = "CSRF token verification failed"
"""Litestar's CSRF middleware raises a plain 403 with this detail."""


@dataclass(frozen=True, slots=True)
class ErrorText:
    """What a patient reads: a short title, and a sentence that says what to do next."""

    title: str
    message: str


ERRORS = {
    400: ErrorText(
        N_("We could not use what was sent"),
        N_("Something was missing or not in the form we expected. Please go back, check it and try again."),
    ),
    403: ErrorText(
        N_("This page is not available to you"),
        N_("Your account cannot open this page. If you think that is a mistake, call the billing office."),
    ),
    404: ErrorText(
        N_("We cannot find that page"),
        N_("The link may be old or mistyped, or the page may have moved."),
    ),
    405: ErrorText(
        N_("That did not work from here"),
        N_("This page cannot do what was asked. Please go back and try again."),
    ),
    409: ErrorText(
        N_("We could not finish that"),
        N_("Something changed while you were working. Please go back, reload the page and try again."),
    ),
    413: ErrorText(
        N_("That is too large to send"),
        N_("The file or form is larger than we can accept. Please try a smaller file."),
    ),
    429: ErrorText(N_("Too many tries"), N_("Please wait a few minutes, then try again.")),
    500: ErrorText(
        N_("Something went wrong on our side"),
        N_(
            "Please try again in a few minutes. If it keeps happening, call the billing office and "
            "give them the reference below."
        ),
    ),
    503: ErrorText(
        N_("This service is not answering right now"),
        N_("Part of the hospital's system is not available. Please try again in a few minutes."),
    ),
}
SESSION_ENDED = N_("Your session has ended. Please sign in again to continue.")
CSRF_EXPIRED = ErrorText(
    N_("This form has expired"),
    N_("For your safety, forms stop working after a while. Please reload the page and try again."),
)


class Explained(HTTPException):
    """A refusal whose page says why in the patient's words, instead of the status's general text."""

    def __init__(self, status_code: int, text: ErrorText) -> None:
        super().__init__(status_code=status_code, detail=text.title)
        self.text = text


DENIED = "carefront.denied"
"""Set in the scope when a request is refused, so the audit middleware records it (PROMISES.md 8)."""
DENIALS = {401, 403, 404}


def route_path(app: Litestar, name: str) -> str | None:
    """The path of the route called ``name``, or None while no installed code offers it."""
    try:
        return app.route_reverse(name)
    except NoRouteMatchFoundException:
        return None


def handle_exception(request: HTMXRequest, exc: Exception) -> Response:
    """The app's one exception handler: every status, every exception."""
    status, headers = _status_and_headers(exc)
    if status in DENIALS:
        request.scope[DENIED] = status  # type: ignore[literal-required]
    if status == 401:
        return _sign_in_again(request)
    reference = None
    if _client_went_away(exc):
        # Nobody is there to read an answer, and nothing failed on our side: not an error to page on.
        log.info("%s %s: the client went away before its request's body arrived", request.method, _where(request))
    elif status >= 500 and status != 503:
        reference = secrets.token_hex(5)
        _log_failure(request, exc, reference)
    if isinstance(exc, Explained):
        text = exc.text
    elif status == 403 and isinstance(exc, HTTPException) and exc.detail == CSRF_FAILURE:
        text = CSRF_EXPIRED
    else:
        text = ERRORS.get(status) or ERRORS[500 if status >= 500 else 400]
    return error_response(request, status, text, reference=reference, headers=headers)


def error_response(
    request: HTMXRequest,
    status: int,
    text: ErrorText,
    *,
    reference: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The error page, or for an htmx request a short body and a toast."""
    i18n: I18n = request.app.state["i18n"]
    title, message = i18n.gettext(text.title), i18n.gettext(text.message)
    if request.htmx:
        toast = f"{title}. {message}"
        if reference:
            toast += f" ({i18n.gettext('Reference')}: {reference})"
        return Response(
            toast,
            status_code=status,
            media_type=MediaType.TEXT,
            headers={**(headers or {}), **toast_header(toast)},
        )
    return Template(
        "errors/error.html",
        status_code=status,
        headers=headers,
        context={"title": title, "message": message, "reference": reference},
    )


def toast_header(message: str, level: str = "error") -> dict[str, str]:
    """The ``HX-Trigger`` header that makes static/js/toast.js announce ``message``."""
    # ensure_ascii: header values are bytes, and \u escapes survive any message in any language.
    return {HTMXHeaders.TRIGGER_EVENT.value: json.dumps({"toast": {"message": message, "level": level}})}


def _sign_in_again(request: HTMXRequest) -> Response:
    target = route_path(request.app, SIGN_IN_ROUTE) or "/"
    if request.htmx:
        i18n: I18n = request.app.state["i18n"]
        message = i18n.gettext(SESSION_ENDED)
        return Response(
            message,
            status_code=401,
            media_type=MediaType.TEXT,
            headers={HTMXHeaders.REDIRECT.value: target, **toast_header(message)},
        )
    return Redirect(target, status_code=303)


def _status_and_headers(exc: Exception) -> tuple[int, dict[str, str]]:
    if isinstance(exc, HTTPException):
        # Keep what the exception asks for: Allow on a 405, Retry-After on a 429.
        return exc.status_code, dict(exc.headers or {})
    if isinstance(exc, NotFound):
        return 404, {}  # PROMISES.md 2: someone else's object looks exactly like a missing one
    if isinstance(exc, Unavailable):
        retry = {"Retry-After": str(round(exc.retry_after))} if exc.retry_after else {}
        return 503, retry
    if isinstance(exc, WebhookRejected):
        return 400, {}
    if isinstance(exc, Refused):
        return 409, {}
    return 500, {}


CLIENT_DISCONNECTED = "client disconnected prematurely"
"""What Litestar's request raises (as a 500) when the client hangs up while sending its body."""


def _client_went_away(exc: Exception) -> bool:
    return isinstance(exc, InternalServerException) and exc.detail == CLIENT_DISCONNECTED


def _where(request: HTMXRequest) -> str:
    """The handler's name: the path may carry an id."""
    return getattr(request.scope.get("route_handler"), "handler_name", "") or "no route"


def _log_failure(request: HTMXRequest, exc: Exception, reference: str) -> None:
    where = _where(request)
    chain: list[str] = []
    error: BaseException | None = exc
    while error is not None and len(chain) < 5:
        # Types and frames only, no message and no source line: either may quote a patient's data.
        frames = "".join(
            f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n'
            for frame in traceback.extract_tb(error.__traceback__)
        )
        chain.append(f"{type(error).__module__}.{type(error).__qualname__}\n{frames}")
        error = error.__cause__ or error.__context__
    log.error("reference=%s %s %s failed: %s", reference, request.method, where, "\ncaused by ".join(chain))
