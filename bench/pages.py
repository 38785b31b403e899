"""The pages the benchmark measures, found by following the portal's own links as a patient would.

A page whose route does not exist yet (or that the persona's data does not reach) is skipped, and the
output says why; add a page here when a new one lands.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import httpx

STATEMENT = re.compile(r'href="(/statements/[^"/?#]+)"')
HX_GET = re.compile(r'hx-get="([^"]+)"')
CHARGE = re.compile(r'<li class="charge"')
ALL_LINES = re.compile(r"Show all (\d+) lines")
Found = tuple[str | None, str | None, str]
"""(path, why it is skipped, a note for the table); a path may end in "\t" + a form body to POST."""


class Session:
    """A signed-in patient on plain HTTP: cookies kept by hand (the portal's are Secure, this is 127.0.0.1)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.cookies: dict[str, str] = {}
        self.client = httpx.Client(base_url=url, timeout=30, follow_redirects=False)

    def cookie_header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def _keep(self, response: httpx.Response) -> httpx.Response:
        for header in response.headers.get_list("set-cookie"):
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response

    def get(self, path: str, *, htmx: bool = False, compressed: bool = True) -> httpx.Response:
        """GET ``path``; a path with "\t" + a form body (see Found) is POSTed with that body."""
        headers = {"Cookie": self.cookie_header(), "Accept-Encoding": "gzip, br" if compressed else "identity"}
        if htmx:
            headers["HX-Request"] = "true"
        path, _, body = path.partition("\t")
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return self._keep(self.client.post(path, content=body, headers=headers))
        return self._keep(self.client.get(path, headers=headers))

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self._keep(self.client.post(path, data=data, headers={"Cookie": self.cookie_header()}))


@dataclass(frozen=True)
class Page:
    name: str
    persona: str
    """Whose session: "balance", "plan", "parent" or "inpatient" (bench.run signs them in)."""
    find: Callable[[Session], Found]
    htmx: bool = False


def fixed(path: str) -> Callable[[Session], Found]:
    def find(session: Session) -> Found:
        answer = session.get(path)
        if answer.status_code == 404:
            return None, f"{path} does not exist yet", ""
        return path, None, ""

    return find


def statement_of_about(lines: int) -> Callable[[Session], Found]:
    """The persona's statement whose charge-line count is nearest ``lines``."""

    def find(session: Session) -> Found:
        listing = session.get("/statements")
        if listing.status_code == 404:
            return None, "/statements does not exist yet", ""
        counted = []
        for path in dict.fromkeys(STATEMENT.findall(listing.text)):
            page = session.get(path).text
            shown = len(CHARGE.findall(page))
            # A long visit shows its first lines and "Show all N lines"; count those in full.
            total = shown + sum(int(n) - 5 for n in ALL_LINES.findall(page))
            counted.append((abs(total - lines), total, path))
        if not counted:
            return None, "the persona has no statement", ""
        _, total, path = min(counted)
        return path, None, f"{total} lines"

    return find


def longest_visit_lines(session: Session) -> Found:
    """The htmx partial with every line of the longest visit of the persona's newest statement."""
    listing = session.get("/statements")
    first = STATEMENT.search(listing.text)
    if first is None:
        return None, "the persona has no statement", ""
    page = session.get(first.group(1)).text
    partials = [path for path in HX_GET.findall(page) if "/visits/" in path]
    if not partials:
        return None, "no visit of the statement is long enough to load its lines with htmx", ""
    counts = [int(n) for n in ALL_LINES.findall(page)]
    return partials[0].replace("&amp;", "&"), None, f"{counts[0]} lines" if counts else ""


class _Form(HTMLParser):
    """The fields of the form posting to ``action``, as a browser sends them (checked boxes and radios only)."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.fields: list[tuple[str, str]] = []
        self.hx_vals: str | None = None
        self._inside = False
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self._inside = found.get("action") == self.action and not self.fields
            if self._inside:
                self.hx_vals = found.get("hx-vals")
        if tag == "select" and self._inside:
            self._select = found.get("name")
        if tag == "option" and self._select:
            # The selected option, else the first: what a browser sends for an untouched select.
            if "selected" in found or not any(name == self._select for name, _ in self.fields):
                self.fields = [(n, v) for n, v in self.fields if n != self._select]
                self.fields.append((self._select, found.get("value") or ""))
            return
        if tag != "input" or not self._inside or not found.get("name"):
            return
        if found.get("type") in {"checkbox", "radio"} and "checked" not in found:
            return
        self.fields.append((found["name"] or "", found.get("value") or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False
        if tag == "select":
            self._select = None


def slot_day(session: Session) -> Found:
    """The first bookable visit type, the first place, then the next day's open times (htmx)."""
    choose = session.get("/appointments/book")
    if choose.status_code == 404:
        return None, "/appointments/book does not exist yet", ""
    kind = re.search(r'name="visit_type"[^>]*value="([^"]+)"', choose.text)
    if kind is None:
        return None, "no visit type to choose", ""
    place = session.get(f"/appointments/book?{urlencode({'visit_type': kind.group(1)})}")
    where = re.search(r'name="where"[^>]*value="([^"]+)"', place.text)
    if where is None:
        return None, "the visit type has no place to choose", ""
    day = session.get(f"/appointments/slots?{urlencode({'visit_type': kind.group(1), 'where': where.group(1)})}")
    next_day = next((path for path in HX_GET.findall(day.text) if "/appointments/slots" in path), None)
    if next_day is None:
        return None, "the slot page has no next-day link", ""
    return next_day.replace("&amp;", "&"), None, ""


def plan_preview(session: Session) -> Found:
    """The builder's form as it first shows, posted as htmx does on a change: the preview partial."""
    builder = session.get("/plans/new")
    if builder.status_code == 404:
        return None, "/plans/new does not exist yet", ""
    if builder.status_code != 200:
        return None, f"/plans/new answered {builder.status_code} for this persona", ""
    form = _Form("/plans/new")
    form.feed(builder.text)
    if not form.fields:
        return None, "the plan builder shows no form for this persona", ""
    extra = re.findall(r'"(\w+)":\s*"(\w+)"', form.hx_vals or "")
    return f"/plans/new\t{urlencode([*form.fields, *extra])}", None, "POST"


PAGES: list[Page] = [
    Page("dashboard", "balance", fixed("/home")),
    Page("statement list", "balance", fixed("/statements")),
    Page("statement, 16 lines", "balance", statement_of_about(16)),
    Page("statement, 200 lines", "inpatient", statement_of_about(200)),
    Page("visit lines partial (htmx)", "inpatient", longest_visit_lines, htmx=True),
    Page("plan preview partial (htmx)", "plan", plan_preview, htmx=True),
    Page("slot picker partial (htmx)", "balance", slot_day, htmx=True),
]
