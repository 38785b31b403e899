"""The forms of the portal as a person meets them, what a fuzzer sends through them, and what must come back.

- ``crawl``: breadth-first over the app's own links from a role's home pages (GET only, same origin,
  no sign-out, no downloads), bounded per page shape, collecting every ``<form method="post">``.
- ``submissions``: a hypothesis strategy per form: each field omitted, kept valid, or replaced with
  hostile text; sometimes unknown and repeated fields.
- ``problems``: what is wrong with the answer to one submission (PROMISES.md 20).
"""

from __future__ import annotations

import re
from collections import Counter, deque
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx
from hypothesis import strategies as st

ORIGIN = "https://testserver"
BODY_LIMIT = 10_000_000
"""Litestar's default ``request_max_body_size``: the app sets no other (uploads have their own)."""

DOWNLOADS = re.compile(r"\.(pdf|ics|csv|png|jpe?g|webp)$|/pdf$|/export")
NOT_FOLLOWED = ("sign-out", "/static/", "/branding/", "/-/sandbox/oidc")
ID_SEGMENT = re.compile(r"\d")
CHOSEN_NOT_TYPED = ("radio", "checkbox", "submit", "button")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|\b(?:[A-Z][a-z0-9]+)+(?:Error|Exception)\b")


# --- What a page holds -------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One named control of a form, with every value the page offers for it."""

    name: str
    kind: str
    """``typed`` (a person types it), ``password``, ``code`` (a one-time code, which a re-rendered form
    may clear), ``hidden``, ``choice`` (select or radio), ``checkbox``, ``file`` or ``submit`` (a named
    button)."""
    values: tuple[str, ...]
    """The value on the page (typed, password, hidden) or every option (choice, checkbox, submit)."""
    input_type: str = "text"
    multiple: bool = False
    required: bool = False


@dataclass(frozen=True)
class Form:
    role: str
    page: str
    action: str
    """Path and query the form posts to."""
    fields: tuple[Field, ...]
    multipart: bool = False

    @property
    def path(self) -> str:
        return urlsplit(self.action).path

    def __str__(self) -> str:
        return f"{self.role}: POST {self.action} (the form on {self.page})"


@dataclass
class _Control:
    tag: str
    attrs: dict[str, str]
    options: list[str] = field(default_factory=list)
    text: str = ""


@dataclass
class _FormMarkup:
    attrs: dict[str, str]
    controls: list[_Control] = field(default_factory=list)


class Page(HTMLParser):
    """The links, forms, ids and error markup of one HTML page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.forms: list[_FormMarkup] = []
        self.texts_by_id: dict[str, str] = {}
        self.alerts: list[str] = []
        self.described: list[str] = []
        """Ids that controls with ``aria-invalid="true"`` name in their ``aria-describedby``."""
        self.unlinked_invalid: list[str] = []
        self._form: _FormMarkup | None = None
        self._control: _Control | None = None
        self._open: list[tuple[str, str | None, bool, bool]] = []  # (tag, id, is an alert, is hidden)
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attributes: list[tuple[str, str | None]]) -> None:
        attrs = {name: value or "" for name, value in attributes}
        if attrs.get("aria-invalid") == "true":
            described = attrs.get("aria-describedby", "").split()
            self.described.extend(described)
            if not described:
                self.unlinked_invalid.append(attrs.get("name", tag))
        if tag == "a" and "href" in attrs and "download" not in attrs:
            self.links.append(attrs["href"])
        elif tag == "form":
            self._form = _FormMarkup(attrs)
            # A form in a ``hidden`` element is shown only by a script, which sends it its own way.
            if not any(hidden for *_, hidden in self._open) and "hidden" not in attrs:
                self.forms.append(self._form)
        elif tag in ("input", "button", "select", "textarea") and self._form is not None:
            self._control = _Control(tag, attrs)
            self._form.controls.append(self._control)
        elif tag == "option" and self._control is not None and self._control.tag == "select":
            self._control.options.append(attrs.get("value", ""))
        if tag not in VOID:
            self._open.append((tag, attrs.get("id"), attrs.get("role") == "alert", "hidden" in attrs))
            if attrs.get("id"):
                self.texts_by_id.setdefault(attrs["id"], "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        if tag in ("select", "textarea", "button"):
            self._control = None
        while self._open:
            opened, *_ = self._open.pop()
            if opened == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._control is not None and self._control.tag == "textarea":
            self._control.text += data
        for _, ident, _, _ in self._open:
            if ident:
                self.texts_by_id[ident] += data
        if any(alert for _, _, alert, _ in self._open) and data.strip():
            self.alerts.append(data.strip())

    def post_forms(self, role: str, url: str) -> list[Form]:
        found = []
        for markup in self.forms:
            if markup.attrs.get("method", "get").lower() != "post":
                continue
            action = urljoin(url, markup.attrs.get("action") or url)
            if not action.startswith(ORIGIN):
                continue
            parts = urlsplit(action)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            multipart = markup.attrs.get("enctype", "") == "multipart/form-data"
            found.append(Form(role, _local(url), target, _fields(markup.controls), multipart))
        return found

    def get_forms(self, url: str) -> list[str]:
        """Where each ``<form method="get">`` leads, sent with the first choice of each list and the
        values the page fills in: a step of a journey (visit type, place, day), followed like a link."""
        found = []
        for markup in self.forms:
            if markup.attrs.get("method", "get").lower() != "get":
                continue
            pairs: list[tuple[str, str]] = []
            radios: set[str] = set()
            for control in markup.controls:
                name, kind = control.attrs.get("name"), control.attrs.get("type", "text").lower()
                if not name or "disabled" in control.attrs:
                    continue
                if control.tag == "select":
                    chosen = [value for value in control.options if value]
                    pairs.extend((name, value) for value in chosen[:1])
                elif kind == "radio" and name not in radios:
                    radios.add(name)
                    pairs.append((name, control.attrs.get("value", "on")))
                elif kind == "checkbox" and "checked" in control.attrs:
                    pairs.append((name, control.attrs.get("value", "on")))
                elif control.tag in ("input", "textarea") and kind not in ("radio", "checkbox", "submit", "button"):
                    pairs.append((name, control.text if control.tag == "textarea" else control.attrs.get("value", "")))
            action = urljoin(url, markup.attrs.get("action") or url).split("?")[0]
            found.append(f"{action}?{urlencode(pairs)}" if pairs else action)
        return found

    def values_of(self, form_path: str, url: str) -> dict[str, list[str]] | None:
        """What the controls of the form posting to ``form_path`` hold now, or None if no form does."""
        for markup in self.forms:
            action = urlsplit(urljoin(url, markup.attrs.get("action") or url)).path
            if markup.attrs.get("method", "get").lower() != "post" or action != form_path:
                continue
            values: dict[str, list[str]] = {}
            for control in markup.controls:
                name = control.attrs.get("name")
                if not name or control.tag == "button" or control.attrs.get("type") in CHOSEN_NOT_TYPED:
                    continue
                text = control.text if control.tag == "textarea" else control.attrs.get("value", "")
                values.setdefault(name, []).append(text)
            return values
        return None

    def field_errors(self) -> list[str]:
        """The messages tied to a field: ``aria-invalid`` and ``aria-describedby`` naming a text."""
        return [self.texts_by_id.get(ident, "").strip() for ident in self.described]


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def _local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _fields(controls: list[_Control]) -> tuple[Field, ...]:
    grouped: dict[str, list[_Control]] = {}
    for control in controls:
        name = control.attrs.get("name")
        if name and "disabled" not in control.attrs:
            grouped.setdefault(name, []).append(control)
    fields = []
    for name, group in grouped.items():
        first = group[0]
        kind_of = first.attrs.get("type", "submit" if first.tag == "button" else "text").lower()
        required = "required" in first.attrs
        if first.tag == "select":
            fields.append(Field(name, "choice", tuple(first.options), "select", "multiple" in first.attrs, required))
        elif first.tag == "textarea":
            fields.append(Field(name, "typed", (first.text,), "textarea", required=required))
        elif kind_of in ("submit", "button", "image") or first.tag == "button":
            fields.append(Field(name, "submit", tuple(c.attrs.get("value", "") for c in group)))
        elif kind_of == "radio":
            fields.append(Field(name, "choice", tuple(c.attrs.get("value", "on") for c in group), "radio"))
        elif kind_of == "checkbox":
            values = tuple(c.attrs.get("value", "on") for c in group)
            fields.append(Field(name, "checkbox", values, "checkbox", len(group) > 1, required))
        elif kind_of == "hidden":
            fields.append(Field(name, "hidden", tuple(c.attrs.get("value", "") for c in group), "hidden"))
        elif kind_of == "file":
            fields.append(Field(name, "file", (), "file", "multiple" in first.attrs, required))
        elif kind_of == "password":
            fields.append(Field(name, "password", ("",), "password", required=required))
        elif first.attrs.get("autocomplete") == "one-time-code":
            fields.append(Field(name, "code", ("",), kind_of, required=required))
        else:
            fields.append(
                Field(name, "typed", tuple(c.attrs.get("value", "") for c in group), kind_of, len(group) > 1, required)
            )
    return tuple(fields)


# --- The crawl ---------------------------------------------------------------------------------


def shape(url: str) -> str:
    """A page's kind: its path with ids blanked, and its query's names (``/statements/{}?visit``)."""
    parts = urlsplit(url)
    path = "/".join("{}" if ID_SEGMENT.search(segment) else segment for segment in parts.path.split("/"))
    names = sorted({name for name, _ in parse_qsl(parts.query, keep_blank_values=True)})
    return path + ("?" + "&".join(names) if names else "")


def form_key(form: Form, route: str) -> tuple[Any, ...]:
    return (route, tuple(sorted((f.name, f.kind) for f in form.fields)))


async def crawl(
    client: httpx.AsyncClient, role: str, starts: list[str], *, pages: int = 80, per_shape: int = 2
) -> tuple[list[Form], list[str]]:
    """Every post form met from ``starts`` by following the app's links, and the pages visited."""
    queue = deque(urljoin(ORIGIN, start) for start in starts)
    seen: set[str] = set(queue)
    shapes: Counter[str] = Counter()
    visited: list[str] = []
    forms: list[Form] = []
    while queue and len(visited) < pages:
        url = queue.popleft()
        if shapes[shape(url)] >= per_shape:
            continue
        shapes[shape(url)] += 1
        answer = await client.get(url, follow_redirects=True)
        if not str(answer.url).startswith(ORIGIN) or "text/html" not in answer.headers.get("content-type", ""):
            continue
        visited.append(_local(str(answer.url)))
        page = Page(answer.text)
        forms.extend(page.post_forms(role, str(answer.url)))
        for href in [*page.links, *page.get_forms(str(answer.url))]:
            target = urljoin(str(answer.url), href).split("#")[0]
            if (
                target.startswith(ORIGIN + "/")
                and target not in seen
                and not DOWNLOADS.search(urlsplit(target).path)
                and not any(part in target for part in NOT_FOLLOWED)
            ):
                seen.add(target)
                queue.append(target)
    return forms, visited


# --- What the fuzzer sends ---------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """One post of a form: its body, the files, and what a person could not have sent that way."""

    pairs: tuple[tuple[str, str], ...]
    files: tuple[tuple[str, tuple[str, bytes, str]], ...] = ()
    tampered: tuple[str, ...] = ()
    """Why a browser would not send this (a hidden field changed, a field dropped, a field repeated):
    the answer need not re-render the form, but it must still be a clear 4xx, never a 5xx."""

    def __repr__(self) -> str:
        """The body as pairs, a long value shortened to its first characters and its length."""

        def short(value: str | bytes) -> str:
            return repr(value) if len(value) <= 80 else f"{value[:20]!r}...({len(value):,} long)"

        pairs = ", ".join(f"({name!r}, {short(value)})" for name, value in self.pairs if name != "_csrf_token")
        files = ", ".join(f"({name!r}, {short(content)})" for name, (_, content, _) in self.files)
        tampered = f", tampered={list(self.tampered)}" if self.tampered else ""
        return f"Submission([{pairs}]{', files=[' + files + ']' if files else ''}{tampered})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def typed(self, form: Form) -> dict[str, str]:
        """The values of typed fields sent once each: what the re-rendered form must keep."""
        counts = Counter(name for name, _ in self.pairs)
        kinds = {f.name: f for f in form.fields}
        return {
            name: value
            for name, value in self.pairs
            if counts[name] == 1 and name in kinds and kinds[name].kind in ("typed", "password", "code")
        }


ODD_NUMBERS = (
    "-0", "1e3", "0x1F", "NaN", "inf", "-inf", "1,000.005", "$-5.00", "0.001", "+1", " 12 ", "1_000",
    "\uff11\uff12", "\u0661\u0662\u0663", "\u00bd", "9" * 400, "-9223372036854775809", "12.", ".5", "1e-400",
)  # fmt: skip
SNIPPETS = (
    "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "' OR 1=1 --", "{{ 7*7 }}", "${7*7}",
    "%00", "\u202egnp.exe", "../../etc/passwd", "javascript:alert(1)", "]]></x><!--", "\\", "%s%n",
)  # fmt: skip
WHITESPACE = " \t\n\r\u00a0\u2002\u2003\u200b\u3000\ufeff"
ANY_CHARACTER = st.characters(exclude_categories=("Cs",))  # a browser cannot send a lone surrogate


def hostile() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(ANY_CHARACTER, max_size=40),
        st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=10),  # controls, NUL included
        st.text(ANY_CHARACTER, max_size=40).map(lambda text: "/" + text),  # a path, where one is expected
        # Long, up to past the body limit: of characters a form sends as one byte each, so the size is the body's.
        st.builds(
            lambda character, size: character * size,
            st.sampled_from("aZ7 .-_*"),
            st.sampled_from([256, 4_096, 65_536, 1_000_000, BODY_LIMIT // 2, BODY_LIMIT + 1]),
        ),
        st.sampled_from(ODD_NUMBERS),
        st.sampled_from(SNIPPETS),
        st.text(st.sampled_from(WHITESPACE), min_size=1, max_size=12),
    )


HINTS_BY_TYPE = {
    "email": "fuzz.person@example.org",
    "tel": "555-010-0199",
    "number": "3",
    "date": "2030-01-15",
    "password": "a fuzzing passphrase of some length",
}
HINTS_BY_NAME = (
    ("amount", "10.00"),
    ("month", "5"),
    ("day", "12"),
    ("year", "1980"),
    ("code", "123456"),
    ("email", "fuzz.person@example.org"),
    ("phone", "555-010-0199"),
    ("member", "ABC123456789"),
    ("name", "Robin"),
    ("", "A few words a person typed"),
)


def plausible(field: Field) -> str:
    """A value a person would type into an empty ``field``."""
    if field.values and field.values[0]:
        return field.values[0]
    if field.input_type in HINTS_BY_TYPE:
        return HINTS_BY_TYPE[field.input_type]
    return next(hint for part, hint in HINTS_BY_NAME if part in field.name.lower())


Choice = tuple[tuple[str, ...], str | None]
"""The values one field sends, and why a browser would not send them (None: it would)."""


def _field_strategy(field: Field) -> st.SearchStrategy[Choice]:
    """What one field sends: mostly what a person could send, now and then what only a tamperer can."""
    tamper = hostile().map(lambda text: ((text,), f"{field.name} changed"))
    dropped: st.SearchStrategy[Choice] = st.just(((), f"{field.name} left out"))
    if field.kind in ("typed", "password", "code"):
        person = st.one_of(st.just(plausible(field)), st.just(""), hostile()).map(
            lambda text: ((text,) * max(1, len(field.values)) if field.multiple else (text,), None)
        )
        return _mostly(person, dropped)
    if field.kind == "hidden":
        return _mostly(st.just((field.values, None)), tamper, dropped)
    if field.kind == "choice" and field.multiple:
        some = st.lists(st.sampled_from(field.values), unique=True).map(lambda chosen: (tuple(chosen), None))
        return _mostly(some if field.values else st.just(((), None)), tamper)
    if field.kind == "choice":
        options = st.sampled_from(field.values).map(lambda value: ((value,), None)) if field.values else dropped
        # No radio button checked sends nothing: a person can do that when none is checked at first.
        unchosen = st.just(((), None)) if field.input_type == "radio" else dropped
        return _mostly(options, unchosen, tamper)
    if field.kind == "checkbox":
        ticked = st.lists(st.sampled_from(field.values), unique=True, max_size=len(field.values))
        return _mostly(ticked.map(lambda chosen: (tuple(chosen), None)), tamper)
    if field.kind == "submit":
        return _mostly(st.sampled_from(field.values).map(lambda value: ((value,), None)), dropped, tamper)
    raise AssertionError(f"no strategy for {field}")


def _mostly(usual: st.SearchStrategy[Choice], *rare: st.SearchStrategy[Choice]) -> st.SearchStrategy[Choice]:
    """``usual`` four times in five, else one of ``rare``: most examples stay ones a browser sends."""
    return st.one_of(*[usual] * 4 * len(rare), *rare)


FILES = st.one_of(
    st.binary(max_size=2_048),
    st.just(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
    st.just(b"GIF89a" + b"\xff" * 32),
    st.just(b"%PDF-1.7\n%%EOF"),
)


def submissions(form: Form, csrf_token: str) -> st.SearchStrategy[Submission]:
    """What a person (and a tamperer) might send through ``form``."""
    names = [f.name for f in form.fields if f.kind != "file"]
    singles = [
        f.name
        for f in form.fields
        if f.kind in ("typed", "password", "code", "hidden", "choice") and not f.multiple and f.name != "_csrf_token"
    ]
    files = [f for f in form.fields if f.kind == "file"]

    @st.composite
    def build(draw: st.DrawFn) -> Submission:
        pairs: list[tuple[str, str]] = [("_csrf_token", csrf_token)]
        tampered: list[str] = []
        for f in form.fields:
            if f.kind == "file" or f.name == "_csrf_token":
                continue
            values, why = draw(_field_strategy(f), label=f.name)
            pairs.extend((f.name, value) for value in values)
            if why:
                tampered.append(why)
        uploads = tuple(
            (f.name, (draw(st.text(ANY_CHARACTER, min_size=1, max_size=30)), draw(FILES), "image/jpeg")) for f in files
        )
        for name, value in draw(st.lists(st.tuples(st.text(ANY_CHARACTER, max_size=20), hostile()), max_size=2)):
            if name not in names and name != "_csrf_token":
                pairs.append((name, value))  # unknown fields: a form that does not know them ignores them
        if singles and draw(st.integers(0, 5)) == 0:
            name = draw(st.sampled_from(singles))
            pairs.append((name, draw(hostile())))
            tampered.append(f"{name} repeated")
        return Submission(tuple(pairs), uploads, tuple(tampered))

    return build()


def encoded(form: Form, submission: Submission) -> dict[str, Any]:
    """The keyword arguments of ``httpx.AsyncClient.post`` for ``submission``, encoded as ``form`` says."""
    if form.multipart:
        return {"data": _as_dict(submission.pairs), "files": list(submission.files)}
    return {
        "content": urlencode(list(submission.pairs)).encode(),
        "headers": {"content-type": "application/x-www-form-urlencoded"},
    }


def _as_dict(pairs: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


# --- What must come back -----------------------------------------------------------------------


def kept(sent: str, shown: str) -> bool:
    """Whether ``shown`` is what was typed, as the portal normalises it: trimmed, and NUL and the
    other C0 controls but tab and line ends dropped (PostgreSQL stores no NUL), and CRLF as LF."""
    cleaned = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", sent)
    candidates = {sent, sent.strip(), cleaned, cleaned.strip()}
    candidates |= {text.replace("\r\n", "\n") for text in candidates}
    return shown in candidates or shown.replace("\r\n", "\n") in candidates


def problems(form: Form, submission: Submission, answer: httpx.Response) -> list[str]:
    """Everything wrong with ``answer`` to ``submission`` of ``form`` (PROMISES.md 20)."""
    found = []
    body = answer.text
    if answer.status_code >= 500:
        found.append(f"answered {answer.status_code}")
    if match := TRACEBACK.search(body):
        found.append(f"the page shows a Python error: {match.group(0)!r}")
    if answer.status_code not in (400, 422) or "text/html" not in answer.headers.get("content-type", ""):
        return found
    page = Page(body)
    if submission.tampered:
        if answer.status_code == 400 and not page.alerts and "<h1" not in body:
            found.append("a refused tampered form gets no message")
        return found
    typed = submission.typed(form)
    shown = page.values_of(form.path, str(answer.request.url))
    if shown is None:
        # A refusal that no longer offers the form (a plan already cancelled) loses nothing typed.
        if any(value.strip() for value in typed.values()):
            found.append(f"answered {answer.status_code} without the form: what was typed is lost")
        elif not page.alerts and "<h1" not in body:
            found.append(f"answered {answer.status_code} with no message")
        return found
    for name, value in typed.items():
        kind = next(f.kind for f in form.fields if f.name == name)
        now = (shown.get(name) or [""])[0]
        if kind == "code":
            continue
        if kind == "password":
            if value and now == value:
                found.append(f"the password field {name!r} is echoed back")
        elif name not in shown:
            found.append(f"the field {name!r} is missing from the re-rendered form")
        elif not kept(value, now):
            found.append(f"the field {name!r} came back as {now[:80]!r}, not as typed {value[:80]!r}")
    errors = [message for message in page.field_errors() if message]
    if not errors and not page.alerts:
        found.append("no error message beside a field or in the form's alert region")
    if page.unlinked_invalid:
        found.append(f"aria-invalid without aria-describedby on {page.unlinked_invalid}")
    return found
