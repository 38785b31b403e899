"""The form fuzzer's own parts: what it reads from a page, and that its checks catch what they must."""

from __future__ import annotations

import httpx
from hypothesis import given, settings

from tests.scans.forms_support import BODY_LIMIT, Form, Page, Submission, kept, problems, submissions

FORM_PAGE = """<!doctype html><html><body>
<form method="get" action="/appointments/slots"><select name="visit_type"><option value="">Choose</option>
  <option value="vt-1">Check-up</option></select></form>
<div hidden><form method="post" action="/sign-in/passkey/verify"><button>Passkey</button></form></div>
<form method="post" action="/questions/new">
  <input type="hidden" name="_csrf_token" value="t0k3n">
  <input type="hidden" name="statement" value="st-1">
  <select name="category"><option value="amount">Amount</option><option value="paid">Paid</option></select>
  <input type="radio" name="reply_by" value="email"><input type="radio" name="reply_by" value="portal">
  <input type="checkbox" name="checks" value="name"><input type="checkbox" name="checks" value="birth_date">
  <textarea name="message" aria-invalid="true" aria-describedby="message-error">{message}</textarea>
  <p id="message-error">{error}</p>
  <input type="password" name="password" value="{password}">
  <input name="code" autocomplete="one-time-code">
  <button type="submit" name="action" value="preview">Preview</button>
  <button type="submit" name="action" value="create">Send</button>
</form>
<a href="/statements/st-1">A statement</a> <a href="/statements/st-1/pdf" download>PDF</a>
</body></html>"""


def page(message: str = "", error: str = "Tell us more.", password: str = "") -> str:
    return FORM_PAGE.format(message=message, error=error, password=password)


def the_form() -> Form:
    (form,) = Page(page()).post_forms("patient", "https://testserver/questions/new")
    return form


def answer(status: int, body: str) -> httpx.Response:
    request = httpx.Request("POST", "https://testserver/questions/new")
    return httpx.Response(status, text=body, headers={"content-type": "text/html; charset=utf-8"}, request=request)


def test_a_page_gives_its_visible_post_forms_with_every_kind_of_field_and_its_links() -> None:
    form = the_form()
    kinds = {field.name: (field.kind, field.values) for field in form.fields}
    assert kinds == {
        "_csrf_token": ("hidden", ("t0k3n",)),
        "statement": ("hidden", ("st-1",)),
        "category": ("choice", ("amount", "paid")),
        "reply_by": ("choice", ("email", "portal")),
        "checks": ("checkbox", ("name", "birth_date")),
        "message": ("typed", ("",)),
        "password": ("password", ("",)),
        "code": ("code", ("",)),
        "action": ("submit", ("preview", "create")),
    }
    parsed = Page(page())
    assert parsed.links == ["/statements/st-1"], "a download is not followed"
    assert parsed.get_forms("https://testserver/appointments/book") == [
        "https://testserver/appointments/slots?visit_type=vt-1"
    ]


@settings(max_examples=50, database=None, deadline=None)
@given(submission=submissions(the_form(), "t0k3n"))
def test_every_submission_carries_the_token_and_says_when_a_browser_could_not_send_it(submission: Submission) -> None:
    assert ("_csrf_token", "t0k3n") in submission.pairs
    names = [name for name, _ in submission.pairs]
    if names.count("statement") != 1 or ("statement", "st-1") not in submission.pairs:
        assert submission.tampered, "a hidden field changed or dropped is tampering"
    assert all(len(value) <= BODY_LIMIT + 1 for _, value in submission.pairs)


def test_a_re_rendered_form_that_keeps_the_input_beside_its_error_passes() -> None:
    sent = Submission((("_csrf_token", "t0k3n"), ("message", "  What is this?\x00 "), ("password", "secret words")))
    assert problems(the_form(), sent, answer(422, page(message="What is this?"))) == []


def test_lost_input_an_echoed_password_a_missing_error_and_a_server_error_are_each_caught() -> None:
    form = the_form()
    sent = Submission((("_csrf_token", "t0k3n"), ("message", "What is this?"), ("password", "secret words")))
    assert any("not as typed" in found for found in problems(form, sent, answer(422, page(message="What"))))
    echoed = problems(form, sent, answer(422, page(message="What is this?", password="secret words")))
    assert any("password" in found for found in echoed)
    silent = problems(form, sent, answer(422, page(message="What is this?", error="")))
    assert any("no error message" in found for found in silent)
    assert any("without the form" in found for found in problems(form, sent, answer(400, "<h1>Bad</h1>")))
    crashed = problems(form, sent, answer(500, "<pre>Traceback (most recent call last): KeyError</pre>"))
    assert any("500" in found for found in crashed)
    assert any("Python error" in found for found in crashed)


def test_a_tampered_submission_may_get_a_plain_error_page() -> None:
    sent = Submission((("_csrf_token", "t0k3n"), ("message", "Hi")), tampered=("statement left out",))
    assert problems(the_form(), sent, answer(400, "<h1>We could not use what was sent</h1>")) == []


def test_what_counts_as_kept() -> None:
    assert kept(" a\x00b ", "ab")
    assert kept("line\r\nnext", "line\nnext")
    assert not kept("abc", "ab")
