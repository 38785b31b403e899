"""FHIR R4 REST over httpx: timeouts, retries on 429/503, Bundle paging, and errors as SDK tiers.

Searches are sent as ``POST [type]/_search`` with a form body, so names, birth dates and member ids
never appear in a URL (and so never in an access log). Log lines name the interaction and the
resource type, never a body, a query or an OperationOutcome's text: any of them may carry PHI.

How answers become SDK errors:

- 404 and 410 raise ``NotFound``;
- 409 and 412 raise :class:`Conflict` (a ``Refused``), which callers turn into their own codes;
- other 4xx raise :class:`Rejected` (an ``Unavailable`` naming the status and the OperationOutcome's
  issue codes), which callers turn into a ``Refused`` where the patient can fix the input;
- 429 and 503 are retried after ``Retry-After`` (or a jittered backoff), then raise ``Unavailable``;
- other 5xx, timeouts and connection errors raise ``Unavailable``.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, NoReturn
from urllib.parse import urlencode

import httpx
from carefront_sdk.errors import NotFound, Refused, Unavailable

from carefront_fhir.auth import SmartAuth
from carefront_fhir.config import Settings

__all__ = ["Conflict", "FhirClient", "Rejected", "Resource"]

log = logging.getLogger(__name__)

Resource = dict[str, Any]
"""A FHIR resource as parsed JSON (decimals as ``Decimal``)."""

FHIR_JSON = "application/fhir+json"
_RETRIED = frozenset({429, 503})
_BACKOFF_SECONDS = 0.25


class Conflict(Refused):
    """The server refused a write because the resource changed meanwhile (409, 412)."""

    def __init__(self, status: int) -> None:
        super().__init__("conflict", "This was changed by someone else a moment ago. Please try again.")
        self.status = status


class Rejected(Unavailable):
    """The server refused a request as invalid (a 4xx other than 404, 409, 410, 412, 429)."""

    def __init__(self, detail: str, status: int, issue_codes: tuple[str, ...]) -> None:
        super().__init__(detail)
        self.status = status
        self.issue_codes = issue_codes


def _issues(body: object) -> tuple[tuple[str, ...], str]:
    """The OperationOutcome's issue codes, and a log-safe summary: codes and FHIRPath locations only."""
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return (), "no OperationOutcome"
    codes: list[str] = []
    parts: list[str] = []
    for issue in body.get("issue", [])[:5]:
        code = str(issue.get("code", "unknown"))
        codes.append(code)
        where = issue.get("expression") or issue.get("location") or []
        parts.append(f"{code} at {', '.join(map(str, where[:2]))}" if where else code)
    return tuple(codes), "; ".join(parts) or "empty OperationOutcome"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _json_number(value: object) -> float:
    """Decimals go out as JSON numbers: up to 15 significant digits, which money and quantities fit."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


def _parse(response: httpx.Response) -> object:
    if not response.content:
        return None
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return None


class FhirClient:
    """One FHIR server, one connection pool, one token."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.base_url = settings.base_url
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(settings.timeout_seconds), follow_redirects=False)
        self._auth = SmartAuth(settings, self._http) if settings.auth == "smart" else None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def authorize(self) -> None:
        """Make sure a token can be had (with SMART); nothing to do without auth."""
        if self._auth is not None:
            await self._auth.authorization()

    # --- the interactions the adapter uses ---

    async def capabilities(self) -> Resource:
        """The server's CapabilityStatement (``GET metadata``)."""
        return await self._resource("GET", "metadata", label="metadata", what="capability statement")

    async def read(self, resource_type: str, resource_id: str) -> Resource:
        """``GET [type]/[id]``; ``NotFound`` when the server does not know it (or it was deleted)."""
        if not resource_id or "/" in resource_id or "?" in resource_id:
            raise NotFound(resource_type, resource_id)
        return await self._resource("GET", f"{resource_type}/{resource_id}", label=resource_type, what=resource_type)

    async def create(self, resource: Resource, *, if_none_exist: str) -> Resource:
        """Conditional create: the existing match of ``if_none_exist`` if there is one, else a new resource."""
        resource_type = resource["resourceType"]
        return await self._resource(
            "POST",
            resource_type,
            label=resource_type,
            what=resource_type,
            body=resource,
            headers={"If-None-Exist": if_none_exist},
        )

    async def update(self, resource: Resource) -> Resource:
        """``PUT`` the resource, only if it is still at the version it was read at (``If-Match``)."""
        resource_type, resource_id = resource["resourceType"], resource["id"]
        version = resource.get("meta", {}).get("versionId")
        headers = {"If-Match": f'W/"{version}"'} if version else {}
        return await self._resource(
            "PUT",
            f"{resource_type}/{resource_id}",
            label=resource_type,
            what=resource_type,
            body=resource,
            headers=headers,
        )

    async def delete(self, resource_type: str, resource_id: str) -> None:
        """``DELETE [type]/[id]``; a resource that is already gone counts as deleted."""
        try:
            await self._send("DELETE", f"{self.base_url}/{resource_type}/{resource_id}", label=resource_type)
        except NotFound:
            return

    async def search(self, resource_type: str, params: Sequence[tuple[str, str]]) -> list[Resource]:
        """Every match of the search, following Bundle ``next`` links up to ``max_pages`` pages."""
        form = [*params, ("_count", str(self._settings.page_size))]
        bundle = await self._bundle(
            "POST", f"{self.base_url}/{resource_type}/_search", label=f"{resource_type} search", form=form
        )
        found: list[Resource] = []
        for page in range(1, self._settings.max_pages + 1):
            for entry in bundle.get("entry", []):
                resource = entry.get("resource")
                mode = entry.get("search", {}).get("mode", "match")
                if isinstance(resource, dict) and resource.get("resourceType") == resource_type and mode == "match":
                    found.append(resource)
            following = next(
                (link.get("url") for link in bundle.get("link", []) if link.get("relation") == "next"), None
            )
            if not following:
                return found
            # A next link is followed only on this server: the bearer token must not travel elsewhere.
            if not isinstance(following, str) or not following.startswith(f"{self.base_url}/"):
                raise Unavailable(f"fhir: {resource_type} search's next link leaves the server")
            if page == self._settings.max_pages:
                break
            bundle = await self._bundle("GET", following, label=f"{resource_type} search page {page + 1}")
        raise Unavailable(f"fhir: {resource_type} search has more than {self._settings.max_pages} pages")

    # --- plumbing ---

    async def _resource(
        self,
        method: str,
        path: str,
        *,
        label: str,
        what: str,
        body: Resource | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Resource:
        url = f"{self.base_url}/{path}"
        response = await self._send(method, url, label=label, body=body, headers=headers, what=what, ident=path)
        parsed = _parse(response)
        if not isinstance(parsed, dict) and response.headers.get("Location") and method in {"POST", "PUT"}:
            # A server that answers writes with return=minimal: read what it stored.
            location = response.headers["Location"].split("/_history/")[0]
            response = await self._send("GET", location, label=label, what=what, ident=path)
            parsed = _parse(response)
        if not isinstance(parsed, dict) or "resourceType" not in parsed:
            raise Unavailable(f"fhir: {method} {label} answered {response.status_code} without a resource")
        return parsed

    async def _bundle(
        self, method: str, url: str, *, label: str, form: Sequence[tuple[str, str]] | None = None
    ) -> Resource:
        response = await self._send(method, url, label=label, form=form)
        parsed = _parse(response)
        if not isinstance(parsed, dict) or parsed.get("resourceType") != "Bundle":
            raise Unavailable(f"fhir: {label} answered without a Bundle")
        return parsed

    async def _send(
        self,
        method: str,
        url: str,
        *,
        label: str,
        body: Resource | None = None,
        form: Sequence[tuple[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        what: str = "resource",
        ident: str = "",
    ) -> httpx.Response:
        sent = {"Accept": FHIR_JSON, **(headers or {})}
        content: bytes | None = None
        if body is not None:
            sent["Content-Type"] = FHIR_JSON
            sent["Prefer"] = "return=representation"
            content = json.dumps(body, default=_json_number).encode()
        elif form is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
            content = urlencode(form).encode()
        attempt, reauthorized = 0, False
        while True:
            if self._auth is not None:
                sent["Authorization"] = await self._auth.authorization()
            started = time.monotonic()
            try:
                response = await self._http.request(method, url, headers=sent, content=content)
            except httpx.HTTPError as error:
                # Only reads are repeated after a lost answer; writes are repeated by their caller, with their key.
                if method == "GET" and attempt < self._settings.max_retries:
                    attempt += 1
                    await asyncio.sleep(_BACKOFF_SECONDS * 2**attempt * random.random())
                    continue
                raise Unavailable(f"fhir: {type(error).__name__} on {method} {label}") from None
            status = response.status_code
            log.debug("fhir: %s %s -> %d in %.0f ms", method, label, status, (time.monotonic() - started) * 1000)
            if status == 401 and self._auth is not None and not reauthorized:
                # The token may have been revoked before its time: buy a new one, once.
                self._auth.forget(sent["Authorization"])
                reauthorized = True
                continue
            if status in _RETRIED:
                wait = _retry_after(response)
                backoff = _BACKOFF_SECONDS * 2**attempt * (0.5 + random.random())
                delay = backoff if wait is None else wait
                if attempt < self._settings.max_retries and delay <= self._settings.max_retry_wait_seconds:
                    attempt += 1
                    log.warning("fhir: %s %s answered %d; retry %d in %.2f s", method, label, status, attempt, delay)
                    await asyncio.sleep(delay)
                    continue
                raise Unavailable(f"fhir: {method} {label} answered {status}", retry_after=wait)
            if status < 400:
                return response
            self._raise(response, method, label, what, ident)

    def _raise(self, response: httpx.Response, method: str, label: str, what: str, ident: str) -> NoReturn:
        status = response.status_code
        if status in (404, 410):
            raise NotFound(what, ident)
        if status in (409, 412):
            raise Conflict(status)
        codes, summary = _issues(_parse(response))
        detail = f"fhir: {method} {label} answered {status} ({summary})"
        if 400 <= status < 500:
            raise Rejected(detail, status, codes)
        raise Unavailable(detail)
